//! The size of a data directory's Raft state, measured from its files alone: no [`Storage`] is
//! opened, nothing is repaired or removed, so it works on the directory of a running node and of
//! a crashed one alike. The lab's tester measures `persister.RaftStateSize()` of every server,
//! crashed ones included; this is that figure for a process whose persister is a directory.
//!
//! [`Storage`]: super::Storage

use super::error::StorageError;
use super::{replay, segment, snapshot_file, state_file};
use std::fs;
use std::io;
use std::path::Path;

/// A running node may delete a segment between the listing and the reading (the end of a
/// compaction); a measurement that lost that race is taken again, this many times in all.
const TRIES: usize = 5;

/// Bytes of Raft state in `dir`: the `state` file plus the current generation's log segments
/// (from the newest that starts with a base marker on, headers and every record included). Not
/// counted: the `snapshot` (the service's state), a `*.tmp` file of an unfinished write, and the
/// segments older than the current generation, which an interrupted compaction left behind and
/// the next open deletes. 0 for a directory that does not exist yet.
pub fn measure_raft_state(dir: &Path) -> Result<u64, StorageError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match measure_once(dir) {
            Err(StorageError::Io { source, .. })
                if source.kind() == io::ErrorKind::NotFound && tries < TRIES => {}
            result => return result,
        }
    }
}

/// Bytes of the `snapshot` file in `dir` (header included); 0 without one. The lab's
/// `SnapshotSize()`, measured from outside like [`measure_raft_state`].
pub fn measure_snapshot(dir: &Path) -> Result<u64, StorageError> {
    let path = dir.join(snapshot_file::SNAPSHOT_FILE);
    match fs::metadata(&path) {
        Ok(meta) => Ok(meta.len()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(StorageError::io(&path, "stat")(e)),
    }
}

fn measure_once(dir: &Path) -> Result<u64, StorageError> {
    if !dir.exists() {
        return Ok(0);
    }
    let state_path = dir.join(state_file::STATE_FILE);
    let state = match fs::metadata(&state_path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(StorageError::io(&state_path, "stat")(e)),
    };
    let mut log = 0;
    for (_, path) in replay::current_generation(&segment::list(dir)?)? {
        log += fs::metadata(path)
            .map_err(StorageError::io(path, "stat"))?
            .len();
    }
    Ok(state + log)
}
