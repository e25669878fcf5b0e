//! Latency of the durable store's hot path, `stage` of one 100-byte entry then `sync`, next to
//! its floor: appending the same number of bytes to a plain file and fdatasyncing it.
//!
//! `cargo run --release -p raft-node --example storage_bench [PARENT_DIR] [ITERATIONS]`
//!
//! The store lives in a temporary directory made inside PARENT_DIR (default: the current
//! directory, not /tmp, which may be a RAM disk where a sync costs nothing) and removed after.

use raft_node::core::{Entry, HardState, Persist};
use raft_node::storage::Storage;
use std::error::Error;
use std::fs::File;
use std::io::Write;
use std::time::{Duration, Instant};

const COMMAND_LEN: usize = 100;
/// An entry record's size on disk: frame, kind, term, index, command.
const RECORD_LEN: usize = 8 + 17 + COMMAND_LEN;

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

    let (mut storage, _) = Storage::open(dir.path())?;
    storage.stage(&Persist {
        hard_state: Some(HardState {
            current_term: 1,
            voted_for: None,
        }),
        ..Persist::default()
    })?;
    storage.sync()?;
    let mut store_times = Vec::new();
    for index in 1..=iterations {
        let p = Persist {
            append: vec![Entry {
                term: 1,
                index,
                command: vec![0x5a; COMMAND_LEN],
            }],
            ..Persist::default()
        };
        let start = Instant::now();
        storage.stage(&p)?;
        storage.sync()?;
        store_times.push(start.elapsed());
    }

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
    Ok(())
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
