//! Latency of the durable store's hot path, `stage` of one 100-byte entry then `sync`, next to
//! its floor: appending the same number of bytes to a plain file and fdatasyncing it. Then the
//! lab 2D pattern: the same appends with a snapshot staged after every 10th, where the syncs
//! that carry the snapshot pay for the compaction.
//!
//! `cargo run --release -p raft-node --example storage_bench [PARENT_DIR] [ITERATIONS]`
//!
//! The store lives in a temporary directory made inside PARENT_DIR (default: the current
//! directory, not /tmp, which may be a RAM disk where a sync costs nothing) and removed after.

use raft_node::core::{Entry, EntryKind, HardState, Index, Membership, Persist, Snapshot};
use raft_node::storage::Storage;
use std::error::Error;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const COMMAND_LEN: usize = 100;
/// An entry record's size on disk: frame, kind, term, index, command.
const RECORD_LEN: usize = 8 + 17 + COMMAND_LEN;
/// The lab's SnapShotInterval, and a service state of a size in the lab's range.
const SNAPSHOT_INTERVAL: Index = 10;
const SNAPSHOT_LEN: usize = 1000;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let parent = args.next().unwrap_or_else(|| ".".to_owned());
    let iterations: u64 = match args.next() {
        Some(n) => n.parse()?,
        None => 2000,
    };
    if iterations == 0 {
        return Err("ITERATIONS must be at least 1".into());
    }
    let dir = tempfile::tempdir_in(&parent)?;

    let store_times = append_times(&dir.path().join("store"), iterations, None)?.times;
    let mut compaction_times = Vec::new();
    let snapshotting = append_times(
        &dir.path().join("snapshotting"),
        iterations.max(SNAPSHOT_INTERVAL),
        Some(&mut compaction_times),
    )?;

    let mut file = File::create(dir.path().join("baseline"))?;
    let mut file_times = Vec::new();
    for _ in 0..iterations {
        let start = Instant::now();
        file.write_all(&[0x5a; RECORD_LEN])?;
        file.sync_data()?;
        file_times.push(start.elapsed());
    }

    println!("{iterations} iterations in {}", dir.path().display());
    report("stage(1 entry of 100 bytes) + sync()", store_times);
    report("write(125 bytes) + fdatasync (floor)", file_times);
    report(
        "the same with a snapshot every 10: appends",
        snapshotting.times,
    );
    report(
        "stage(snapshot of 1000 bytes) + sync() (compaction)",
        compaction_times,
    );
    println!(
        "disk_size (state + log, the lab's RaftStateSize) peaked at {} bytes",
        snapshotting.max_disk_size
    );
    Ok(())
}

struct Appends {
    times: Vec<Duration>,
    max_disk_size: u64,
}

/// Times `stage` of one entry + `sync`, `iterations` times, in a store made in `dir`. With
/// `compactions`, a snapshot through the entry is staged and synced after every 10th, timed
/// into it.
fn append_times(
    dir: &Path,
    iterations: u64,
    mut compactions: Option<&mut Vec<Duration>>,
) -> Result<Appends, Box<dyn Error>> {
    let (mut storage, _) = Storage::open(dir)?;
    storage.stage(&Persist {
        hard_state: Some(HardState {
            current_term: 1,
            voted_for: None,
        }),
        ..Persist::default()
    })?;
    storage.sync()?;
    let mut appends = Appends {
        times: Vec::new(),
        max_disk_size: 0,
    };
    for index in 1..=iterations {
        let p = Persist {
            append: vec![Entry {
                term: 1,
                index,
                command: vec![0x5a; COMMAND_LEN],
                kind: EntryKind::Command,
            }],
            ..Persist::default()
        };
        let start = Instant::now();
        storage.stage(&p)?;
        storage.sync()?;
        appends.times.push(start.elapsed());
        if let Some(compactions) = compactions.as_deref_mut() {
            if index % SNAPSHOT_INTERVAL == 0 {
                let p = Persist {
                    snapshot: Some(Snapshot {
                        last_included_index: index,
                        last_included_term: 1,
                        data: vec![0xa5; SNAPSHOT_LEN],
                        membership: Membership::voters([0]),
                    }),
                    ..Persist::default()
                };
                let start = Instant::now();
                storage.stage(&p)?;
                storage.sync()?;
                compactions.push(start.elapsed());
            }
        }
        appends.max_disk_size = appends.max_disk_size.max(storage.disk_size());
    }
    Ok(appends)
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort_unstable();
    let at = |quantile: f64| times[((times.len() - 1) as f64 * quantile).round() as usize];
    println!(
        "{what}: p50 {:?}  p99 {:?}  max {:?}",
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
