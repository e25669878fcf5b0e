//! Compaction really shrinks the files: a snapshot leaves one fresh segment holding only the
//! entries after it, however long the log was.

use super::*;

/// The lab's MAXLOGSIZE: RaftStateSize must stay below it with a snapshot every 10 entries.
const LAB_MAX_LOG_SIZE: u64 = 2000;

fn segment_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("log-"))
        .collect();
    names.sort();
    names
}

/// The lab's 2D pattern: every entry is synced as it arrives, and the service snapshots after
/// applying each index i with (i + 1) % 10 == 0, a few entries behind the end of the log.
fn run_lab_pattern(segment_bytes: u64, entries: Index) {
    const LAG: Index = 3;
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open_with(dir.path(), segment_bytes);
    let mut model = Model::default();
    persist(
        &mut storage,
        &mut model,
        Persist {
            hard_state: Some(hard_state(1, Some(0))),
            ..Persist::default()
        },
    );
    for index in 1..=entries {
        // The size of a MessagePack-encoded lab command plus the runtime's framing, roughly.
        let command = format!("command {index:>12}");
        persist(
            &mut storage,
            &mut model,
            append(vec![entry(1, index, command.as_bytes())]),
        );
        let applied = index.saturating_sub(LAG);
        if applied > model.snapshot_index() && (applied + 1) % 10 == 0 {
            let p = compact_through(&model, applied);
            persist(&mut storage, &mut model, p);
        }
        let size = storage.disk_size();
        assert!(size < LAB_MAX_LOG_SIZE, "index {index}: disk_size {size}");
        if index % 1000 == 0 {
            assert_eq!(size, bytes_in_dir(dir.path()), "index {index}");
            drop(storage);
            let restored;
            (storage, restored) = open_with(dir.path(), segment_bytes);
            model.assert_restored(&restored);
        }
    }
}

#[test]
fn disk_size_stays_under_the_lab_bound_through_10k_entries() {
    run_lab_pattern(super::super::SEGMENT_BYTES, 10_000);
}

#[test]
fn disk_size_stays_under_the_lab_bound_with_small_segments() {
    run_lab_pattern(256, 2_000);
}

#[test]
fn compaction_leaves_one_segment_whatever_the_log_spanned() {
    let dir = tempfile::tempdir().unwrap();
    // One entry per segment.
    let (mut storage, _) = open_with(dir.path(), 1);
    let mut model = Model::default();
    persist(
        &mut storage,
        &mut model,
        Persist {
            hard_state: Some(hard_state(1, None)),
            append: (1..=6).map(|i| entry(1, i, &[i as u8; 500])).collect(),
            ..Persist::default()
        },
    );
    assert_eq!(segment_names(dir.path()).len(), 6);
    let before = storage.disk_size();
    let p = compact_through(&model, 4);
    persist(&mut storage, &mut model, p);

    assert_eq!(segment_names(dir.path()), [segment::file_name(7)]);
    assert!(storage.disk_size() < before / 2, "{}", storage.disk_size());
    assert_eq!(storage.disk_size(), bytes_in_dir(dir.path()));
    // Appends after it continue the new generation.
    persist(
        &mut storage,
        &mut model,
        append(vec![entry(1, 7, b"seven")]),
    );
    assert_eq!(segment_names(dir.path()).len(), 2);
    drop(storage);
    let (_, restored) = open_with(dir.path(), 1);
    model.assert_restored(&restored);
}

#[test]
fn a_compaction_drops_dead_truncated_records_too() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, mut model) = store_with_entries(dir.path(), 10);
    for term in 2..=5 {
        persist(
            &mut storage,
            &mut model,
            Persist {
                hard_state: Some(hard_state(term, None)),
                truncate_from: Some(6),
                append: (6..=10).map(|i| entry(term, i, &[0; 100])).collect(),
                ..Persist::default()
            },
        );
    }
    let p = compact_through(&model, 5);
    persist(&mut storage, &mut model, p);
    // state, then a segment of header, base marker and entries 6..=10 alone.
    let records: u64 = 5 * (8 + 17 + 100);
    assert_eq!(
        storage.disk_size(),
        25 + segment::HEADER_LEN as u64 + 17 + records
    );
    drop(storage);
    let (_, restored) = open(dir.path());
    model.assert_restored(&restored);
}

#[test]
fn a_log_never_compacted_without_its_first_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open_with(dir.path(), 1);
    let mut model = Model::default();
    persist(
        &mut storage,
        &mut model,
        Persist {
            hard_state: Some(hard_state(1, None)),
            append: (1..=3).map(|i| entry(1, i, b"x")).collect(),
            ..Persist::default()
        },
    );
    drop(storage);
    fs::remove_file(segment_path(dir.path(), 1)).unwrap();

    let error = open_err(dir.path());
    assert_eq!(error.path(), segment_path(dir.path(), 2));
    assert!(error.to_string().contains("segment 1"), "{error}");
}

#[test]
fn a_missing_segment_inside_the_current_generation_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, mut model) = store_with_entries(dir.path(), 4);
    let p = compact_through(&model, 2);
    persist(&mut storage, &mut model, p);
    drop(storage);
    // Segment 2 is the generation's first; fill 3 and 4 with one entry each.
    let (mut storage, _) = open_with(dir.path(), 1);
    persist(
        &mut storage,
        &mut model,
        append(vec![entry(1, 5, b"a"), entry(1, 6, b"b")]),
    );
    drop(storage);
    assert!(segment_path(dir.path(), 4).exists());
    fs::remove_file(segment_path(dir.path(), 3)).unwrap();

    assert_eq!(open_err(dir.path()).path(), segment_path(dir.path(), 4));
}
