//! Lab 2D's promise for long-running nodes: with a snapshot every 100 entries, 100,000 commands
//! leave every node's log, data dir and memory within fixed bounds.

use harness::cluster::{Cluster, NodeOptions};
use harness::node_client::NodeClient;
use raft_node::runtime::ServiceKind;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const COMMANDS: u64 = 100_000;
const SUBMITTERS: u64 = 8;
const SNAPSHOT_EVERY: u64 = 100;
/// Entries a node may hold after its snapshot: one interval plus what was in flight.
const MAX_LOG_TAIL: u64 = 10 * SNAPSHOT_EVERY;
/// state + log segments, and the whole data dir (snapshot included).
const MAX_RAFT_STATE_BYTES: u64 = 64 << 10;
const MAX_DATA_DIR_BYTES: u64 = 256 << 10;
const MAX_RSS_BYTES: u64 = 50 << 20;

fn leader(clients: &[NodeClient], deadline: Instant) -> usize {
    loop {
        let found = clients
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.get_state().ok().map(|s| (s, i)))
            .filter(|(s, _)| s.is_leader)
            .max_by_key(|(s, _)| s.term);
        if let Some((_, i)) = found {
            return i;
        }
        assert!(Instant::now() < deadline, "no leader");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// VmRSS from /proc/<pid>/status, in bytes.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kib << 10
}

#[test]
fn a_hundred_thousand_commands_leave_log_disk_and_memory_bounded() {
    let n = 3;
    let options = NodeOptions {
        service: ServiceKind::Digest,
        snapshot_every: SNAPSHOT_EVERY,
        ..NodeOptions::lab()
    };
    let cluster = Cluster::launch_with("soak", n, options).unwrap();
    let clients: Vec<NodeClient> = (0..n).map(|i| cluster.client(i)).collect();
    let deadline = Instant::now() + Duration::from_secs(240);

    // Submitters send through whoever leads until COMMANDS entries have committed. A command a
    // leader accepted is not committed yet: a leader deposed under load loses what it had not
    // replicated, and no entry of the new leader's term would ever commit those before it (the
    // lab's leaders append no no-op), so they run until the commit index itself gets there.
    let done = AtomicBool::new(false);
    let target = std::thread::scope(|s| {
        for t in 0..SUBMITTERS {
            let (cluster, done) = (&cluster, &done);
            s.spawn(move || {
                let clients: Vec<NodeClient> = (0..n).map(|i| cluster.client(i)).collect();
                let mut to = leader(&clients, deadline);
                let mut k = t;
                while !done.load(Ordering::Relaxed) {
                    let cmd = format!("soak {k:06} {}", "x".repeat(16));
                    match clients[to].start(cmd.as_bytes()) {
                        Ok(Some(_)) => k += SUBMITTERS,
                        _ => to = leader(&clients, deadline),
                    }
                }
            });
        }
        let commit = loop {
            let commit = clients[leader(&clients, deadline)]
                .get_state()
                .map_or(0, |s| s.commit_index);
            if commit >= COMMANDS {
                break commit;
            }
            assert!(Instant::now() < deadline, "only {commit} entries committed");
            std::thread::sleep(Duration::from_millis(20));
        };
        done.store(true, Ordering::Relaxed);
        commit
    });

    // Then every node applies everything that was committed.
    for (i, c) in clients.iter().enumerate() {
        while c.get_state().unwrap().last_applied < target {
            assert!(Instant::now() < deadline, "node {i} did not catch up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    for (i, c) in clients.iter().enumerate() {
        let s = c.get_state().unwrap();
        let tail = s.last_log_index - s.snapshot_index;
        let data_dir = dir_bytes(&cluster.data_dir(i));
        let rss = resident_bytes(cluster.pid(i).unwrap());
        println!(
            "node {i}: log {} snapshot {} tail {tail}, raft state {} B, data dir {data_dir} B, \
             RSS {} KiB",
            s.last_log_index,
            s.snapshot_index,
            s.raft_state_bytes,
            rss >> 10
        );
        assert!(
            tail <= MAX_LOG_TAIL,
            "node {i} holds {tail} entries after its snapshot"
        );
        assert!(
            s.raft_state_bytes <= MAX_RAFT_STATE_BYTES,
            "node {i}: {} bytes of Raft state on disk",
            s.raft_state_bytes
        );
        assert!(
            data_dir <= MAX_DATA_DIR_BYTES,
            "node {i}: data dir of {data_dir} bytes"
        );
        assert!(rss <= MAX_RSS_BYTES, "node {i}: {} KiB resident", rss >> 10);
    }
}
