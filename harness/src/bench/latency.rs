//! Phase 2: commit latency of an unloaded cluster. One client, one command at a time: the time
//! from sending `Start` to reading that index on the leader's apply stream (the leader applies
//! an entry as soon as it is committed, in the same event-loop iteration).
//!
//! One sample covers: client → leader (TCP), leader → proxy → each follower and back (four UDP
//! hops, two event-loop wakeups on each node), then leader → client (TCP).

use super::{command, ms, node_clients, wait_for_leader, Applies, Percentiles, SETTLE_TIMEOUT};
use harness::cluster::Cluster;
use std::io;
use std::time::{Duration, Instant};

/// The median commit latency the cluster should reach.
pub const TARGET_P50: Duration = Duration::from_millis(1);

/// A progress line after every this many samples.
const PROGRESS_EVERY: usize = 1000;

#[derive(Clone, Debug)]
pub struct Settings {
    /// Commands committed first and not measured (connections, caches, allocator warm up).
    pub warmup: usize,
    pub samples: usize,
    pub command_size: usize,
}

/// Runs the phase on `cluster` (fresh, reliable network).
pub fn run(cluster: &Cluster, settings: &Settings) -> io::Result<Percentiles> {
    let clients = node_clients(cluster);
    let leader = wait_for_leader(cluster, &clients)?.id;
    let client = &clients[leader];
    eprintln!(
        "latency: n{leader} leads; {} samples after {} warm-up, {}-byte commands",
        settings.samples, settings.warmup, settings.command_size
    );
    let from = client.get_state()?.last_applied + 1;
    let mut applies = Applies::subscribe(client, from)?;
    let mut samples = Vec::with_capacity(settings.samples);
    for seq in 0..(settings.warmup + settings.samples) as u64 {
        let cmd = command(u64::MAX, seq, settings.command_size);
        let sent = Instant::now();
        let (index, _) = client.start(&cmd)?.ok_or_else(|| {
            io::Error::other(format!("n{leader} stopped leading an idle cluster"))
        })?;
        match applies.wait_for(index, sent + SETTLE_TIMEOUT)? {
            Some(applied) if applied == cmd => {}
            Some(_) => return Err(io::Error::other(format!("index {index}: another command"))),
            None => {
                return Err(io::Error::other(format!(
                    "index {index} was not applied within {SETTLE_TIMEOUT:?}"
                )))
            }
        }
        if seq >= settings.warmup as u64 {
            samples.push(sent.elapsed());
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
    }
    Ok(Percentiles::of(samples))
}
