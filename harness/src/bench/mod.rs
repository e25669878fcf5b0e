//! The phases of `raft-bench` and what they share: node clients, finding the leader, a node's
//! apply stream read against a deadline, and percentiles.
//!
//! Each phase runs on its own fresh 3-node cluster, so one phase's log or crashed nodes never
//! colour the next one's figures.

pub mod catchup;
pub mod failover;
pub mod floor;
pub mod kv;
pub mod kv_memory;
pub mod kv_pool;
pub mod kv_report;
pub mod latency;
pub mod procfs;
pub mod report;
pub mod shardkv;
pub mod shardkv_report;
pub mod throughput;
pub mod transfer;

use harness::cluster::Cluster;
use harness::node_client::NodeClient;
use raft_node::control::{read_frame, write_frame, Request, Response};
use raft_node::core::{Index, Term};
use std::io::{self, BufReader};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The cluster size every phase measures.
pub const NODES: usize = 3;

/// How long a phase waits for the cluster to settle (an election, a restarted node catching
/// up) before it gives up: far beyond anything a healthy cluster needs.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a phase polls node state while it waits for the cluster to settle.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// One control client per node of `cluster`.
pub fn node_clients(cluster: &Cluster) -> Vec<NodeClient> {
    (0..cluster.len()).map(|i| cluster.client(i)).collect()
}

/// The leader the live nodes agree on.
#[derive(Clone, Copy, Debug)]
pub struct Leader {
    pub id: usize,
    pub term: Term,
}

/// Waits until every live node is in the same term and names the same leader, and that node
/// says it leads. Agreement (not just one node claiming to lead) means the election is over, so
/// a measurement that starts now does not race a second one.
pub fn wait_for_leader(cluster: &Cluster, clients: &[NodeClient]) -> io::Result<Leader> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        if let Some(leader) = agreed_leader(cluster, clients) {
            return Ok(leader);
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the live nodes did not agree on a leader within {SETTLE_TIMEOUT:?}"),
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

fn agreed_leader(cluster: &Cluster, clients: &[NodeClient]) -> Option<Leader> {
    let mut states = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        if cluster.is_alive(i) {
            states.push(client.get_state().ok()?);
        }
    }
    let first = states.first()?;
    let leader = first.leader?;
    let agree = states
        .iter()
        .all(|s| s.term == first.term && s.leader == first.leader);
    let leads = states.iter().any(|s| s.id == leader && s.is_leader);
    (agree && leads).then_some(Leader {
        id: leader as usize,
        term: first.term,
    })
}

/// Waits until node `i` has applied everything up to `index`.
pub fn wait_for_applied(client: &NodeClient, index: Index) -> io::Result<()> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        // A node that just restarted may not answer yet; only the deadline is fatal.
        if client.get_state().is_ok_and(|s| s.last_applied >= index) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "node at {} did not apply index {index} within {SETTLE_TIMEOUT:?}",
                    client.addr()
                ),
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// A node's apply stream (`Subscribe`), read against deadlines so that a phase never hangs on a
/// command that will not commit (its node lost leadership, or died).
pub struct Applies {
    reader: BufReader<TcpStream>,
}

impl Applies {
    /// Subscribes to `node`'s applied entries from index `from` on.
    pub fn subscribe(node: &NodeClient, from: Index) -> io::Result<Applies> {
        let mut stream = node.connect()?;
        write_frame(&mut stream, &Request::Subscribe { from })?;
        Ok(Applies {
            reader: BufReader::new(stream),
        })
    }

    /// Reads applied entries up to the one at `index` and returns its command, or `None` if
    /// `deadline` passes first or the node goes away. After `None` the stream may be cut in
    /// the middle of a frame: drop it.
    pub fn wait_for(&mut self, index: Index, deadline: Instant) -> io::Result<Option<Vec<u8>>> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.reader.get_ref().set_read_timeout(Some(left))?;
            let msg = match read_frame::<Response>(&mut self.reader) {
                Ok(Response::Apply(msg)) => msg,
                Ok(other) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unexpected frame on an apply stream: {other:?}"),
                    ))
                }
                Err(e) if gave_up(&e) => return Ok(None),
                Err(e) => return Err(e),
            };
            if msg.index >= index {
                // The stream is gap-free and starts at or before `index`, so this is it.
                return Ok(Some(msg.command));
            }
        }
    }
}

/// A read that timed out, or a node that went away: both mean "not applied (yet)".
fn gave_up(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
    )
}

/// A command of exactly `size` bytes that carries `tag` and `seq`, so that the apply stream
/// shows which submission an entry is.
pub fn command(tag: u64, seq: u64, size: usize) -> Vec<u8> {
    let mut cmd = vec![b'.'; size.max(16)];
    cmd[..8].copy_from_slice(&tag.to_be_bytes());
    cmd[8..16].copy_from_slice(&seq.to_be_bytes());
    cmd
}

/// Nearest-rank percentiles of a set of durations.
#[derive(Clone, Copy, Debug)]
pub struct Percentiles {
    pub count: usize,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Percentiles {
    /// # Panics
    /// If `samples` is empty.
    pub fn of(mut samples: Vec<Duration>) -> Percentiles {
        assert!(!samples.is_empty(), "percentiles of no samples");
        samples.sort_unstable();
        let at = |p: f64| samples[((p * samples.len() as f64).ceil() as usize).max(1) - 1];
        Percentiles {
            count: samples.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: samples[samples.len() - 1],
        }
    }
}

/// Milliseconds with a precision that suits the magnitude: `0.312 ms`, `41.7 ms`, `412 ms`.
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    match ms {
        ms if ms < 10.0 => format!("{ms:.3} ms"),
        ms if ms < 100.0 => format!("{ms:.1} ms"),
        ms => format!("{ms:.0} ms"),
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
