//! Phase 2: commit latency of an unloaded cluster. One client, one command at a time: the time
//! from sending `Start` to reading that index on the leader's apply stream (the leader applies
//! an entry as soon as it is committed, in the same event-loop iteration).
//!
//! One sample covers: client → leader (TCP), leader → proxy → each follower and back (four UDP
//! hops, two event-loop wakeups on each node), then leader → client (TCP). The machine's floors
//! (`floor`) are measured half just before and half just after the measured samples, so they
//! see the load the samples saw, and each figure is judged as a ratio to the commit floor they
//! compose (issue 21).

use super::floor::{self, At, Floors};
use super::{
    command, ms, node_clients, wait_for_leader, Applies, Percentiles, NODES, SETTLE_TIMEOUT,
};
use harness::cluster::{Cluster, NodeOptions};
use harness::node_client::NodeClient;
use harness::timing::NodeTimers;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// The commit p50, at most this many times the commit floor's p50 composition.
pub const TARGET_P50_RATIO: f64 = 1.25;
/// The commit p99, at most this many times the commit floor's p99 composition.
pub const TARGET_P99_RATIO: f64 = 1.5;
/// No sample should be above this many times the p50: a stall (a sync blocking the loop, a
/// lost wakeup) shows here before it moves the p99 of a few thousand samples.
pub const OUTLIER_FACTOR: u32 = 10;

/// A progress line after every this many samples.
const PROGRESS_EVERY: usize = 1000;

#[derive(Clone, Debug)]
pub struct Settings {
    /// Commands committed first and not measured (connections, caches, allocator warm up).
    pub warmup: usize,
    pub samples: usize,
    pub command_size: usize,
    /// Samples of each floor, half before and half after the measured samples.
    pub floor_samples: usize,
}

/// The samples' percentiles, how many were outliers, and the floors measured around them.
pub struct Outcome {
    pub latency: Percentiles,
    /// Samples above [`OUTLIER_FACTOR`] × the p50.
    pub outliers: usize,
    pub floors: Floors,
}

impl Outcome {
    fn of(samples: Vec<Duration>, floors: Floors) -> Outcome {
        let latency = Percentiles::of(samples.clone());
        Outcome {
            outliers: outliers(&samples, latency.p50),
            latency,
            floors,
        }
    }

    /// A figure of the samples as a ratio to the commit floor's composition `at`.
    pub fn ratio(&self, figure: Duration, at: At) -> f64 {
        floor::ratio(figure, self.floors.commit(at))
    }

    /// A figure as a ratio to the commit floor on one shared disk (no target; see `floor`).
    pub fn ratio_shared_disk(&self, figure: Duration, at: At) -> f64 {
        floor::ratio(figure, self.floors.commit_shared_disk(at))
    }

    pub fn meets_p50(&self) -> bool {
        self.ratio(self.latency.p50, At::P50) <= TARGET_P50_RATIO
    }

    pub fn meets_p99(&self) -> bool {
        self.ratio(self.latency.p99, At::P99) <= TARGET_P99_RATIO
    }

    pub fn meets_outliers(&self) -> bool {
        self.outliers == 0
    }
}

/// How many of `samples` are above [`OUTLIER_FACTOR`] × `p50`.
fn outliers(samples: &[Duration], p50: Duration) -> usize {
    let limit = p50 * OUTLIER_FACTOR;
    samples.iter().filter(|&&s| s > limit).count()
}

/// Runs the phase on `cluster` (fresh, reliable network).
pub fn run(cluster: &Cluster, settings: &Settings) -> io::Result<Outcome> {
    let clients = node_clients(cluster);
    let leader = wait_for_leader(cluster, &clients)?.id;
    let client = &clients[leader];
    eprintln!(
        "latency: n{leader} leads; {} samples after {} warm-up, {}-byte commands; {} samples of \
         each floor around them",
        settings.samples, settings.warmup, settings.command_size, settings.floor_samples
    );
    let from = client.get_state()?.last_applied + 1;
    let mut applies = Applies::subscribe(client, from)?;
    let mut seq = 0;
    let mut commit = || {
        let cmd = command(u64::MAX, seq, settings.command_size);
        seq += 1;
        commit_one(client, leader, &mut applies, cmd)
    };
    for _ in 0..settings.warmup {
        commit()?;
    }
    let mut floors = floor::Samples::default();
    let half = settings.floor_samples.div_ceil(2);
    floors.take(cluster.run_dir(), half, Some(client))?;
    let mut samples = Vec::with_capacity(settings.samples);
    for _ in 0..settings.samples {
        samples.push(commit()?);
        if samples.len() % PROGRESS_EVERY == 0 {
            let so_far = Percentiles::of(samples.clone());
            eprintln!(
                "  {:>5} samples: p50 {}, p99 {}",
                samples.len(),
                ms(so_far.p50),
                ms(so_far.p99)
            );
        }
    }
    floors.take(cluster.run_dir(), half, Some(client))?;
    Ok(Outcome::of(samples, floors.floors()))
}

/// Where the phase runs a second time with the data dirs in memory (tmpfs), where an
/// fdatasync costs next to nothing: what is left of a commit is the network and the nodes' own
/// work (wakeups, encoding, the hand-offs to and from the storage thread), and the difference
/// from the first run is the disk's share.
pub const IN_MEMORY_ROOT: &str = "/dev/shm";

/// Runs the phase on a fresh cluster whose data dirs are under [`IN_MEMORY_ROOT`]; `None` if
/// this machine has no such directory.
pub fn run_in_memory(timers: NodeTimers, settings: &Settings) -> io::Result<Option<Outcome>> {
    let root = Path::new(IN_MEMORY_ROOT);
    if !root.is_dir() {
        return Ok(None);
    }
    let root = root.join("raft-lab-runs");
    std::fs::create_dir_all(&root)
        .map_err(|e| io::Error::other(format!("{}: {e}", root.display())))?;
    let options = NodeOptions {
        timers,
        ..NodeOptions::lab()
    };
    eprintln!(
        "latency again, the data dirs in memory ({}):",
        root.display()
    );
    let cluster = Cluster::launch_under(&root, "raft-bench-latency-in-memory", NODES, options)?;
    run(&cluster, settings).map(Some)
}

/// Submits `cmd` to `leader` and waits for it on the apply stream; returns the time between.
fn commit_one(
    client: &NodeClient,
    leader: usize,
    applies: &mut Applies,
    cmd: Vec<u8>,
) -> io::Result<Duration> {
    let sent = Instant::now();
    let (index, _) = client
        .start(&cmd)?
        .ok_or_else(|| io::Error::other(format!("n{leader} stopped leading an idle cluster")))?;
    match applies.wait_for(index, sent + SETTLE_TIMEOUT)? {
        Some(applied) if applied == cmd => Ok(sent.elapsed()),
        Some(_) => Err(io::Error::other(format!("index {index}: another command"))),
        None => Err(io::Error::other(format!(
            "index {index} was not applied within {SETTLE_TIMEOUT:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// Floors whose commit composes to 400 µs at p50 and 1,000 µs at p99.
    fn floors() -> Floors {
        let p = |p50, p99| {
            let mut samples = vec![us(p50); 98];
            samples.extend([us(p99); 2]);
            Percentiles::of(samples)
        };
        Floors {
            fsync: p(200, 500),
            fsync_behind: p(250, 600),
            rtt: p(150, 300),
            tcp: Some(p(50, 200)),
        }
    }

    /// 100 samples: 98 at `p50`, then `p99` and `max`.
    fn outcome(p50: u64, p99: u64, max: u64) -> Outcome {
        let mut samples = vec![us(p50); 98];
        samples.extend([us(p99), us(max)]);
        Outcome::of(samples, floors())
    }

    #[test]
    fn the_floors_compose_as_the_test_assumes() {
        let floors = floors();
        assert_eq!(floors.commit(At::P50), us(400));
        assert_eq!(floors.commit(At::P99), us(1000));
    }

    #[test]
    fn p50_and_p99_are_judged_against_their_own_compositions() {
        let o = outcome(500, 1500, 1500);
        assert_eq!(o.ratio(o.latency.p50, At::P50), 1.25);
        assert_eq!(o.ratio(o.latency.p99, At::P99), 1.5);
        assert!(o.meets_p50() && o.meets_p99(), "the bounds are inclusive");
        let o = outcome(501, 1501, 1501);
        assert!(!o.meets_p50() && !o.meets_p99());
    }

    #[test]
    fn a_p99_within_its_own_floor_passes_even_far_above_the_p50_floor() {
        let o = outcome(400, 1400, 1400);
        assert!(o.ratio(o.latency.p99, At::P50) > TARGET_P99_RATIO);
        assert!(o.meets_p99());
    }

    #[test]
    fn outliers_are_samples_strictly_above_ten_times_the_p50() {
        let o = outcome(100, 1000, 1000);
        assert_eq!(o.outliers, 0, "exactly 10× is not above it");
        assert!(o.meets_outliers());
        let o = outcome(100, 900, 1001);
        assert_eq!(o.outliers, 1);
        assert!(!o.meets_outliers());
        assert_eq!(outliers(&[us(1), us(11), us(12)], us(1)), 2);
    }
}
