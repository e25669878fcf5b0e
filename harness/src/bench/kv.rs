//! `raft-bench kv` (`just bench kv`): the KV service (`raft-node run --service kv`) on 3 nodes,
//! fsync on, every clerk datagram through netproxy. For each clerk count, on a fresh cluster:
//! closed-loop clerks, each running 50% Put / 50% Get on uniformly drawn keys, measured over a
//! window after a warm-up. Around the first (smallest) count the machine's floors are measured
//! (`floor`), half before and half after its window, so the two see the same machine load.

use super::floor::{self, Floors};
use super::kv_pool::{self, Tally, Target};
use super::{ms, node_clients, thousands, wait_for_leader, Percentiles, NODES};
use harness::cluster::{Cluster, NodeOptions};
use harness::timing::NodeTimers;
use raft_node::kv::Op;
use raft_node::runtime::ServiceKind;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::io;
use std::net::UdpSocket;
use std::thread;
use std::time::{Duration, Instant};

/// Operations per second the cluster should sustain with [`TARGET_CLERKS`] clerks.
pub const TARGET_RATE: f64 = 75_000.0;
pub const TARGET_CLERKS: usize = 256;
/// A single clerk's Put and Get p50, at most this many times their floors (issue 21).
pub const TARGET_RATIO: f64 = 1.3;

#[derive(Clone, Debug)]
pub struct Settings {
    /// Clerk counts to measure, in increasing order.
    pub clerks: Vec<usize>,
    /// Clerk endpoints (sockets, one thread each) the clerks are spread over, at most.
    pub sockets: usize,
    pub keys: usize,
    pub value_size: usize,
    pub warmup: Duration,
    pub window: Duration,
    /// Samples of each floor, half before and half after the first count's window.
    pub floor_samples: usize,
}

/// What one clerk count measured.
pub struct Level {
    pub clerks: usize,
    pub sockets: usize,
    pub window: Duration,
    pub tally: Tally,
}

impl Level {
    pub fn rate(&self, latencies: &[Duration]) -> f64 {
        latencies.len() as f64 / self.window.as_secs_f64()
    }

    pub fn ops(&self) -> usize {
        self.tally.puts.len() + self.tally.gets.len()
    }
}

/// The nodes of every KV phase: the KV service, lab timers, fsync on.
pub fn options(timers: NodeTimers, max_raft_state: Option<u64>) -> NodeOptions {
    NodeOptions {
        timers,
        service: ServiceKind::Kv,
        max_raft_state,
        ..NodeOptions::lab()
    }
}

/// Every clerk count in turn, each on a fresh cluster, and the floors around the first.
pub fn run(timers: NodeTimers, settings: &Settings) -> io::Result<(Vec<Level>, Floors)> {
    let mut floors = floor::Samples::default();
    let mut levels = Vec::new();
    for (n, &clerks) in settings.clerks.iter().enumerate() {
        let name = format!("raft-bench-kv-{clerks}-clerks");
        let cluster = Cluster::launch_with(&name, NODES, options(timers, None))?;
        let leader = wait_for_leader(&cluster, &node_clients(&cluster))?.id;
        let half = settings.floor_samples.div_ceil(2);
        if n == 0 {
            floors.take(cluster.run_dir(), half, None)?;
        }
        let level = measure(&cluster, leader, clerks, settings)?;
        if n == 0 {
            floors.take(cluster.run_dir(), half, None)?;
        }
        levels.push(level);
    }
    Ok((levels, floors.floors()))
}

/// `clerks` clerks on a fresh cluster led by `leader`, through the warm-up and the window.
fn measure(
    cluster: &Cluster,
    leader: usize,
    clerks: usize,
    settings: &Settings,
) -> io::Result<Level> {
    let sockets = clerks.min(settings.sockets);
    eprintln!(
        "kv: {clerks} clerk(s) on {sockets} clerk endpoint(s), n{leader} leads; {} keys, \
         {}-byte values, 50% Put / 50% Get; {:?} warm-up, then {:?} measured",
        settings.keys, settings.value_size, settings.warmup, settings.window
    );
    let value = "v".repeat(settings.value_size);
    let keys = settings.keys;
    let mixed = move |rng: &mut SmallRng| {
        let key = format!("key-{:06}", rng.gen_range(0..keys));
        Some(if rng.gen_bool(0.5) {
            Op::Put {
                key,
                value: value.clone(),
            }
        } else {
            Op::Get { key }
        })
    };
    let start = Instant::now() + settings.warmup;
    let end = start + settings.window;
    let tally = pools(cluster, leader, clerks, sockets, mixed, (start, end), end)?;
    let level = Level {
        clerks,
        sockets,
        window: settings.window,
        tally,
    };
    let (puts, gets) = (&level.tally.puts, &level.tally.gets);
    if puts.is_empty() || gets.is_empty() {
        return Err(io::Error::other(format!(
            "{clerks} clerks completed {} Puts and {} Gets in the window: nothing to measure",
            puts.len(),
            gets.len()
        )));
    }
    let (put, get) = (Percentiles::of(puts.clone()), Percentiles::of(gets.clone()));
    eprintln!(
        "  {} ops/s; Put p50 {} p99 {}; Get p50 {} p99 {}; {} retries",
        thousands(level.ops() as u64 * 1000 / settings.window.as_millis().max(1) as u64),
        ms(put.p50),
        ms(put.p99),
        ms(get.p50),
        ms(get.p99),
        thousands(level.tally.retries)
    );
    Ok(level)
}

/// Runs `clerks` clerks, starting at `leader`, spread over `sockets` of the cluster's clerk endpoints, one pool thread
/// each, every pool drawing its operations from `ops` with its own random generator, and sums
/// what they measured. See `kv_pool::run` for `window` and `end`.
pub fn pools<F>(
    cluster: &Cluster,
    leader: usize,
    clerks: usize,
    sockets: usize,
    ops: F,
    window: (Instant, Instant),
    end: Instant,
) -> io::Result<Tally>
where
    F: Fn(&mut SmallRng) -> Option<Op> + Clone + Send,
{
    let layout = cluster.layout();
    let target = Target {
        servers: layout.faces.clone(),
        key: cluster.key(),
        leader,
    };
    let bound: Vec<UdpSocket> = (0..sockets)
        .map(|k| UdpSocket::bind(layout.clerks[k]))
        .collect::<io::Result<_>>()?;
    thread::scope(|scope| {
        let handles: Vec<_> = bound
            .iter()
            .enumerate()
            .map(|(k, socket)| {
                let (target, ops) = (&target, ops.clone());
                // Clerks spread evenly: the first `clerks % sockets` pools get one more.
                let here = clerks / sockets + usize::from(k < clerks % sockets);
                scope.spawn(move || {
                    let mut rng = SmallRng::from_entropy();
                    kv_pool::run(socket, target, here, || ops(&mut rng), window, end)
                })
            })
            .collect();
        let mut total = Tally::default();
        for handle in handles {
            let tally = handle
                .join()
                .map_err(|_| io::Error::other("a clerk pool panicked"))??;
            total.add(tally);
        }
        Ok(total)
    })
}
