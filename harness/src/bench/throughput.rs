//! Phase 1: committed commands per second under many concurrent submitters.
//!
//! Each submitter thread has its own control connection to the leader and keeps between
//! `depth / 2` and `depth` `Start`s in flight: it writes a batch of them with one `write`, then
//! reads answers, and tops the batch up once half have been answered. So the leader's event loop
//! finds many proposals per wakeup and replicates them as one AppendEntries per follower.
//!
//! `Start` answers once the leader has appended the entry, before it commits, so what the
//! submitters see is the offered load. The figure is the leader's commit index, read at both
//! ends of the measured window: only commands that were really committed count.

use super::procfs::{self, Sample, Usage};
use super::{command, node_clients, thousands, wait_for_leader};
use harness::cluster::Cluster;
use harness::node_client::NodeClient;
use netproxy::LinkCounters;
use raft_node::control::{encode_frame, read_frame, NodeState, Request, Response};
use std::io::{self, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Committed commands per second the cluster should sustain with [`TARGET_LOAD`] in flight
/// (issue 21: not below what the runtime reached here before the commit path changed).
pub const TARGET: f64 = 500_000.0;
/// Submitters × `Start`s in flight each, the load [`TARGET`] is judged at.
pub const TARGET_LOAD: (usize, usize) = (16, 64);

/// How long a submitter waits for one answer before it counts the leader as hung.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct Settings {
    /// Submitter threads, each with its own connection.
    pub clients: usize,
    /// `Start`s each submitter keeps in flight, at most.
    pub depth: usize,
    pub command_size: usize,
    /// Submitting before the window opens, so it measures the steady state.
    pub warmup: Duration,
    /// The measured window, in whole seconds (one progress line each).
    pub seconds: u64,
}

pub struct Outcome {
    pub leader: usize,
    /// Entries the leader committed in the window, and how long the window really was.
    pub commits: u64,
    pub window: Duration,
    /// Entries the leader appended in the window (what the submitters got accepted).
    pub appended: u64,
    /// Appended but not yet committed when the window closed.
    pub backlog_at_end: u64,
    /// CPU used and UDP datagrams dropped at the sockets of the proxy and each node (and the
    /// bench's CPU), in the window.
    pub usage: Usage,
    /// Every datagram that entered netproxy in the window, summed over links.
    pub proxy: LinkCounters,
    /// `Start`s answered "not leader" during the whole run: a sign of a leader change.
    pub refused: u64,
    /// Whether the node that led at the start of the window still led, in the same term, at
    /// its end.
    pub same_leader: bool,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.commits as f64 / self.window.as_secs_f64()
    }

    /// Datagrams through the proxy per committed command: how well proposals are batched.
    pub fn datagrams_per_commit(&self) -> f64 {
        self.proxy.received as f64 / self.commits.max(1) as f64
    }
}

/// Runs the phase on `cluster` (fresh, reliable network).
pub fn run(cluster: &Cluster, settings: &Settings) -> io::Result<Outcome> {
    let clients = node_clients(cluster);
    let leader = wait_for_leader(cluster, &clients)?.id;
    eprintln!(
        "throughput: n{leader} leads; {} submitters x {} Starts in flight, {}-byte commands; \
         {:?} warm-up, then {} s measured",
        settings.clients, settings.depth, settings.command_size, settings.warmup, settings.seconds
    );
    let stop = Arc::new(AtomicBool::new(false));
    let submitters: Vec<JoinHandle<io::Result<u64>>> = (0..settings.clients)
        .map(|id| spawn_submitter(&clients[leader], id, settings, &stop))
        .collect::<io::Result<_>>()?;
    thread::sleep(settings.warmup);
    let window = measure(cluster, &clients[leader], settings.seconds);
    stop.store(true, Ordering::Relaxed);
    let mut refused = 0;
    for submitter in submitters {
        refused += submitter
            .join()
            .map_err(|_| io::Error::other("a submitter thread panicked"))??;
    }
    Ok(Outcome { refused, ..window? })
}

fn spawn_submitter(
    leader: &NodeClient,
    id: usize,
    settings: &Settings,
    stop: &Arc<AtomicBool>,
) -> io::Result<JoinHandle<io::Result<u64>>> {
    let (depth, size, stop) = (settings.depth, settings.command_size, Arc::clone(stop));
    let writer = leader.connect()?;
    thread::Builder::new()
        .name(format!("submitter-{id}"))
        .spawn(move || submit(writer, id as u64, depth, size, &stop))
}

/// Keeps `depth / 2 ..= depth` `Start`s in flight on one connection until `stop`, then collects
/// the outstanding answers. Returns how many were refused; after a refusal (the node no longer
/// leads) it submits no more.
fn submit(
    mut writer: TcpStream,
    tag: u64,
    depth: usize,
    size: usize,
    stop: &AtomicBool,
) -> io::Result<u64> {
    writer.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    let mut reader = BufReader::with_capacity(64 * 1024, writer.try_clone()?);
    let (mut seq, mut in_flight, mut refused) = (0, 0, 0);
    let mut batch = Vec::new();
    loop {
        if refused == 0 && !stop.load(Ordering::Relaxed) && in_flight <= depth / 2 {
            batch.clear();
            for _ in in_flight..depth {
                let command = command(tag, seq, size);
                batch.extend_from_slice(&encode_frame(&Request::Start { command }));
                seq += 1;
            }
            writer.write_all(&batch)?;
            in_flight = depth;
        }
        if in_flight == 0 {
            return Ok(refused);
        }
        match read_frame::<Response>(&mut reader)? {
            Response::Started {
                is_leader: true, ..
            } => {}
            Response::Started { .. } => refused += 1,
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unexpected answer to Start: {other:?}"),
                ))
            }
        }
        in_flight -= 1;
    }
}

/// Measures the window: counters at both ends, a progress line every second.
fn measure(cluster: &Cluster, leader: &NodeClient, seconds: u64) -> io::Result<Outcome> {
    let proxy = netproxy::Client::new(cluster.proxy_control(), cluster.secret().clone());
    let processes = procfs::cluster_processes()?;
    proxy.reset_stats().map_err(io::Error::other)?;
    let before = Sample::take(&processes)?;
    let first = leader.get_state()?;
    let start = Instant::now();
    let mut previous = first.clone();
    for second in 1..=seconds {
        sleep_until(start + Duration::from_secs(second));
        let state = leader.get_state()?;
        progress(second, &previous, &state);
        previous = state;
    }
    let window = start.elapsed();
    let usage = Sample::take(&processes)?.since(&before);
    let proxy = proxy.stats().map_err(io::Error::other)?.total();
    let last = previous;
    Ok(Outcome {
        leader: first.id as usize,
        commits: last.commit_index - first.commit_index,
        window,
        appended: last.last_log_index - first.last_log_index,
        backlog_at_end: last.last_log_index - last.commit_index,
        usage,
        proxy,
        refused: 0, // counted by the submitters once they stop
        same_leader: last.is_leader && last.term == first.term,
    })
}

fn progress(second: u64, before: &NodeState, now: &NodeState) {
    eprintln!(
        "  {second:>2} s: {:>9} commits/s, {:>9} appended/s, backlog {} uncommitted{}",
        thousands(now.commit_index - before.commit_index),
        thousands(now.last_log_index - before.last_log_index),
        thousands(now.last_log_index - now.commit_index),
        if now.is_leader {
            ""
        } else {
            " (NO LONGER LEADER)"
        }
    );
}

fn sleep_until(when: Instant) {
    thread::sleep(when.saturating_duration_since(Instant::now()));
}
