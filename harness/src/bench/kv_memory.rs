//! `raft-bench kv`, last phase: a KV cluster with `--max-raft-state` loaded with many keys (one
//! Put each, by a pool of clerks as in the throughput phases), then the nodes' memory, then the
//! time a node that holds none of them takes to catch up by snapshot.
//!
//! That node is a follower killed before the load and started after it: its log ends at the
//! leader's first entry, which the leader's snapshot has long compacted, so it must install the
//! snapshot (in datagram-sized chunks) and then the log's tail. Not a follower wiped after the
//! load: a node that loses its disk is outside Raft's model, and the leader rightly ignores its
//! rejections as stale (they fall below the match index the node had acknowledged).

use super::kv::{self, pools};
use super::{node_clients, procfs, thousands, wait_for_applied, wait_for_leader, NODES};
use harness::cluster::Cluster;
use harness::timing::NodeTimers;
use raft_node::kv::Op;
use rand::rngs::SmallRng;
use std::fs;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long the load and the install may take before the phase gives up.
const GIVE_UP: Duration = Duration::from_secs(300);

#[derive(Clone, Debug)]
pub struct Settings {
    pub keys: usize,
    pub value_size: usize,
    pub clerks: usize,
    pub sockets: usize,
    pub max_raft_state: u64,
}

/// Resident memory of one node, in bytes: now and at its peak.
#[derive(Clone, Copy, Debug)]
pub struct Rss {
    pub now: u64,
    pub peak: u64,
}

pub struct Outcome {
    pub keys: usize,
    pub load_time: Duration,
    pub leader: usize,
    /// The nodes up during the load: id, memory before it, memory once it is applied.
    pub loaded: Vec<(usize, Rss, Rss)>,
    /// The leader's snapshot: the index it covers and its size on disk.
    pub snapshot_index: u64,
    pub snapshot_bytes: u64,
    /// The follower that missed the load, the time from its start until its service digest
    /// equals the leader's, and its memory then.
    pub fresh: usize,
    pub install_time: Duration,
    pub fresh_rss: Rss,
}

pub fn run(timers: NodeTimers, settings: &Settings) -> io::Result<Outcome> {
    let options = kv::options(timers, Some(settings.max_raft_state));
    let mut cluster = Cluster::launch_with("raft-bench-kv-memory", NODES, options)?;
    let clients = node_clients(&cluster);
    let leader = wait_for_leader(&cluster, &clients)?.id;
    let fresh = (leader + 1) % NODES;
    cluster.crash(fresh);
    let live: Vec<usize> = (0..NODES).filter(|&i| i != fresh).collect();
    eprintln!(
        "kv memory: n{leader} leads, n{fresh} down; loading {} keys with {}-byte values by {} \
         clerks, --max-raft-state {}",
        thousands(settings.keys as u64),
        settings.value_size,
        settings.clerks,
        thousands(settings.max_raft_state)
    );
    let before = rss_of(&cluster, &live)?;
    let load_time = load(&cluster, leader, &clients[leader], settings)?;
    let commit = clients[leader].get_state()?.commit_index;
    for &i in &live {
        wait_for_applied(&clients[i], commit)?;
    }
    let after = rss_of(&cluster, &live)?;
    let loaded = (live.iter().zip(before).zip(after))
        .map(|((&i, before), after)| (i, before, after))
        .collect();
    let state = clients[leader].get_state()?;
    let snapshot_bytes = fs::metadata(cluster.data_dir(leader).join("snapshot"))?.len();
    if state.snapshot_index == 0 {
        return Err(io::Error::other(
            "the leader took no snapshot: lower --max-raft-state",
        ));
    }
    eprintln!(
        "kv memory: loaded in {load_time:.1?}; n{leader}'s snapshot covers index {} ({} bytes); \
         n{fresh} started",
        state.snapshot_index,
        thousands(snapshot_bytes)
    );
    let install_time = catch_up(&mut cluster, fresh, &clients[leader])?;
    let fresh_rss = rss(&cluster, fresh)?;
    Ok(Outcome {
        keys: settings.keys,
        load_time,
        leader,
        loaded,
        snapshot_index: state.snapshot_index,
        snapshot_bytes,
        fresh,
        install_time,
        fresh_rss,
    })
}

/// Puts keys `k0000000`, `k0000001`, … once each, with a progress line every second.
fn load(
    cluster: &Cluster,
    id: usize,
    leader: &harness::node_client::NodeClient,
    settings: &Settings,
) -> io::Result<Duration> {
    let next = AtomicUsize::new(0);
    let (total, value) = (settings.keys, "v".repeat(settings.value_size));
    let puts = |_: &mut SmallRng| {
        let n = next.fetch_add(1, Ordering::Relaxed);
        (n < total).then(|| Op::Put {
            key: format!("k{n:07}"),
            value: value.clone(),
        })
    };
    let start = Instant::now();
    // An empty window: the load's latencies are not a figure.
    let never = (start, start);
    thread::scope(|scope| {
        let loader = scope.spawn(|| {
            let sockets = settings.clerks.min(settings.sockets);
            pools(
                cluster,
                id,
                settings.clerks,
                sockets,
                puts,
                never,
                start + GIVE_UP,
            )
        });
        while !loader.is_finished() {
            thread::sleep(Duration::from_secs(1));
            if let Ok(Some(keys)) = leader.get_state().map(|s| s.kv_keys) {
                eprintln!("  {:>4.0?}: {} keys", start.elapsed(), thousands(keys));
            }
        }
        loader
            .join()
            .map_err(|_| io::Error::other("the loader panicked"))?
    })?;
    let load_time = start.elapsed();
    let loaded = leader.get_state()?.kv_keys.unwrap_or(0);
    if loaded != total as u64 {
        return Err(io::Error::other(format!(
            "the leader holds {loaded} keys after the load, not {total}"
        )));
    }
    Ok(load_time)
}

/// Starts node `i` and times until it serves what the leader does (same applied index, same
/// service digest).
fn catch_up(
    cluster: &mut Cluster,
    i: usize,
    leader: &harness::node_client::NodeClient,
) -> io::Result<Duration> {
    let want = leader.service_digest()?;
    let start = Instant::now();
    cluster.start(i)?;
    let client = cluster.client(i);
    loop {
        // It may not answer while it installs; only the deadline is fatal.
        if client.service_digest().is_ok_and(|got| got == want) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > GIVE_UP {
            return Err(io::Error::other(format!(
                "n{i} did not reach the leader's state (applied {}) within {GIVE_UP:?}",
                want.0
            )));
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn rss(cluster: &Cluster, i: usize) -> io::Result<Rss> {
    let pid = cluster
        .pid(i)
        .ok_or_else(|| io::Error::other(format!("n{i} is not running")))?;
    let (now, peak) = procfs::rss(pid)?;
    Ok(Rss { now, peak })
}

fn rss_of(cluster: &Cluster, nodes: &[usize]) -> io::Result<Vec<Rss>> {
    nodes.iter().map(|&i| rss(cluster, i)).collect()
}
