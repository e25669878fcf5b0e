//! `measure_raft_state`: the tester's own reading of a data directory, which must agree with
//! the store's `disk_size` and leave out what is not Raft state.

use super::*;
use crate::storage::measure_raft_state;

#[test]
fn a_missing_directory_measures_zero() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        measure_raft_state(&dir.path().join("never-created")).unwrap(),
        0
    );
}

#[test]
fn the_measure_agrees_with_disk_size_across_appends_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, mut model) = store_with_entries(dir.path(), 20);
    assert_eq!(measure_raft_state(dir.path()).unwrap(), storage.disk_size());
    let compaction = compact_through(&model, 15);
    persist(&mut storage, &mut model, compaction);
    let compacted = storage.disk_size();
    assert_eq!(measure_raft_state(dir.path()).unwrap(), compacted);
    // Still measurable once the process is gone (a crashed node's directory).
    drop(storage);
    assert_eq!(measure_raft_state(dir.path()).unwrap(), compacted);
}

#[test]
fn leftovers_of_an_interrupted_compaction_and_temp_files_do_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, mut model) = store_with_entries(dir.path(), 10);
    let old_generation = fs::read(segment_path(dir.path(), 1)).unwrap();
    let compaction = compact_through(&model, 8);
    persist(&mut storage, &mut model, compaction);
    let size = storage.disk_size();
    drop(storage);
    // A crash after the new generation was renamed into place but before segment 1 was
    // deleted leaves it behind; so does one in the middle of writing `state.tmp`.
    fs::write(segment_path(dir.path(), 1), &old_generation).unwrap();
    fs::write(dir.path().join("state.tmp"), [0u8; 25]).unwrap();
    fs::write(dir.path().join("segment.tmp"), [0u8; 100]).unwrap();
    assert_eq!(measure_raft_state(dir.path()).unwrap(), size);
}
