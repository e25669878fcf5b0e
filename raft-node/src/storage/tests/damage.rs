//! Damaged log files: a torn tail is cut off and the store goes on; anything else is an error
//! naming the file and offset.

use super::super::record;
use super::*;

/// The record of the entry of 100 bytes `store_with_entries` writes: frame, kind, term, index.
const RECORD_LEN: u64 = 8 + 17 + 100;

#[test]
fn a_tail_torn_at_any_byte_loses_only_the_last_entry() {
    let probe = tempfile::tempdir().unwrap();
    store_with_entries(probe.path(), 5);
    let full_len = file_len(&segment_path(probe.path(), 1));
    let last_start = full_len - RECORD_LEN;

    for cut in last_start..full_len {
        let dir = tempfile::tempdir().unwrap();
        let (storage, mut model) = store_with_entries(dir.path(), 5);
        drop(storage);
        let path = segment_path(dir.path(), 1);
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(cut)
            .unwrap();

        let (mut storage, restored) = open(dir.path());
        model.entries.pop();
        model.assert_restored(&restored);
        assert_eq!(
            file_len(&path),
            last_start,
            "cut at {cut}: file not cut back"
        );

        persist(
            &mut storage,
            &mut model,
            append(vec![entry(1, 5, b"again")]),
        );
        drop(storage);
        let (_, restored) = open(dir.path());
        model.assert_restored(&restored);
    }
}

#[test]
fn a_last_record_failing_its_checksum_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, mut model) = store_with_entries(dir.path(), 3);
    drop(storage);
    let path = segment_path(dir.path(), 1);
    let full_len = file_len(&path);
    flip_byte(&path, full_len - 1);

    let (_, restored) = open(dir.path());
    model.entries.pop();
    model.assert_restored(&restored);
    assert_eq!(file_len(&path), full_len - RECORD_LEN);
}

#[test]
fn a_newest_segment_without_a_whole_header_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, model) = store_with_entries(dir.path(), 2);
    drop(storage);
    let torn = segment_path(dir.path(), 2);
    fs::write(&torn, &segment::header(2)[..7]).unwrap();

    let (mut storage, restored) = open(dir.path());
    model.assert_restored(&restored);
    assert!(!torn.exists());
    storage.stage(&append(vec![entry(1, 3, b"c")])).unwrap();
    storage.sync().unwrap();
}

#[test]
fn a_bad_record_with_valid_records_after_it_is_an_error_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    store_with_entries(dir.path(), 5);
    let path = segment_path(dir.path(), 1);
    let second = segment::HEADER_LEN as u64 + RECORD_LEN;
    // One byte of the second entry's command.
    flip_byte(&path, second + 8 + 17 + 50);

    let message = open_err(dir.path()).to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains(&format!("offset {second}")), "{message}");
    // Nothing was cut.
    assert_eq!(file_len(&path), segment::HEADER_LEN as u64 + 5 * RECORD_LEN);
}

#[test]
fn a_damaged_length_field_cannot_hide_the_records_after_it() {
    let dir = tempfile::tempdir().unwrap();
    store_with_entries(dir.path(), 5);
    let path = segment_path(dir.path(), 1);
    let second = segment::HEADER_LEN as u64 + RECORD_LEN;
    // The length's top byte: the record now claims to run far past the end of the file.
    flip_byte(&path, second + 3);

    let message = open_err(dir.path()).to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains(&format!("offset {second}")), "{message}");
}

#[test]
fn a_torn_record_in_an_older_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open_with(dir.path(), 1);
    let mut model = Model::default();
    persist(&mut storage, &mut model, term_one_with(3, b"x"));
    drop(storage);
    let older = segment_path(dir.path(), 2);
    flip_byte(&older, file_len(&older) - 1);

    match Storage::open_with(dir.path(), 1) {
        Err(StorageError::Corrupt { path, offset, .. }) => {
            assert_eq!(path, older);
            assert_eq!(offset, Some(segment::HEADER_LEN as u64));
        }
        other => panic!("{:?}", other.map(|(_, restored)| restored)),
    }
}

#[test]
fn an_entry_out_of_index_order_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    store_with_entries(dir.path(), 2);
    let path = segment_path(dir.path(), 1);
    let mut bytes = fs::read(&path).unwrap();
    let gap_at = bytes.len() as u64;
    record::encode_entry(&mut bytes, &entry(1, 4, b"after a gap"));
    fs::write(&path, bytes).unwrap();

    match open_err(dir.path()) {
        StorageError::Corrupt {
            path: p, offset, ..
        } => {
            assert_eq!(p, path);
            assert_eq!(offset, Some(gap_at));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_missing_segment_in_the_middle_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open_with(dir.path(), 1);
    let mut model = Model::default();
    persist(&mut storage, &mut model, term_one_with(3, b"x"));
    drop(storage);
    fs::remove_file(segment_path(dir.path(), 2)).unwrap();

    let error = open_err(dir.path());
    assert_eq!(error.path(), segment_path(dir.path(), 3));
}

#[test]
fn a_segment_header_from_another_version_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    store_with_entries(dir.path(), 1);
    let path = segment_path(dir.path(), 1);
    let mut bytes = fs::read(&path).unwrap();
    // Version 1: a data directory from before configuration entries.
    bytes[4] = 1;
    fs::write(&path, bytes).unwrap();

    match open_err(dir.path()) {
        StorageError::UnsupportedVersion { path: p, version } => {
            assert_eq!((p, version), (path, 1));
        }
        other => panic!("{other}"),
    }
}

/// Appends `entry` to segment `seq` as a record with a good checksum: not crash damage, bytes
/// some other writer put there.
fn append_record(dir: &Path, seq: u64, entry: Entry) {
    let mut bytes = fs::read(segment_path(dir, seq)).unwrap();
    record::encode(&mut bytes, &record::Record::Entry(entry));
    fs::write(segment_path(dir, seq), bytes).unwrap();
}

/// Found by the `storage_files` fuzz target (crash-f0663009…): entries 1..=7 of term 1, the
/// current term raised to 2, then a checksummed record of entry 8 with term 0. Open accepts any
/// terms (the store keeps what it is given), and `Raft::new` then failed its assertion that the
/// log is well formed. The node checks the restored log right after opening.
#[test]
fn an_entry_whose_term_goes_back_is_an_error_before_the_core_starts() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    let mut model = Model::default();
    persist(&mut storage, &mut model, term_one_with(7, &[7; 116]));
    let term_two = Persist {
        hard_state: Some(hard_state(2, Some(0))),
        ..Persist::default()
    };
    persist(&mut storage, &mut model, term_two);
    drop(storage);
    append_record(dir.path(), 1, entry(0, 8, &[0]));

    let (storage, restored) = open(dir.path());
    assert_eq!(restored.entries.len(), 8);
    let error = storage.check_restored(&restored, 5).unwrap_err();
    assert!(matches!(error, StorageError::Corrupt { .. }), "{error}");
    assert_eq!(error.path(), dir.path());
    assert!(
        error
            .to_string()
            .contains("entry 8 has term 0, below the term 1"),
        "{error}"
    );
}

/// The same check from the snapshot on: the first entry after it cannot have a lower term.
#[test]
fn an_entry_below_the_snapshots_term_is_an_error_before_the_core_starts() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    let mut model = Model::default();
    let term_two = Persist {
        hard_state: Some(hard_state(2, None)),
        append: (1..=3).map(|i| entry(2, i, b"x")).collect(),
        ..Persist::default()
    };
    persist(&mut storage, &mut model, term_two);
    let compaction = compact_through(&model, 3);
    persist(&mut storage, &mut model, compaction);
    storage.check_restored(&open(dir.path()).1, 5).unwrap();
    drop(storage);
    append_record(dir.path(), 2, entry(1, 4, b"y"));

    let (storage, restored) = open(dir.path());
    let error = storage.check_restored(&restored, 5).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("entry 4 has term 1, below the term 2 of index 3"),
        "{error}"
    );
}

/// A crafted directory: the current generation's segment renamed to the largest number there
/// is (its header resealed to match) and a snapshot ahead of it, so open must finish a
/// compaction into the segment after it. That addition overflowed (a panic in debug builds);
/// it is an error naming the segment.
#[test]
fn a_generation_to_follow_the_largest_segment_number_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    let mut model = Model::default();
    persist(&mut storage, &mut model, term_one_with(3, b"x"));
    let compaction = compact_through(&model, 1);
    persist(&mut storage, &mut model, compaction);
    drop(storage);
    let last = segment_path(dir.path(), u64::MAX);
    let mut bytes = fs::read(segment_path(dir.path(), 2)).unwrap();
    bytes[..segment::HEADER_LEN].copy_from_slice(&segment::header(u64::MAX));
    fs::write(&last, bytes).unwrap();
    fs::remove_file(segment_path(dir.path(), 2)).unwrap();
    let ahead = snapshot(3, 1, b"ahead");
    fs::write(
        dir.path().join(snapshot_file::SNAPSHOT_FILE),
        snapshot_file::encode(&ahead),
    )
    .unwrap();

    let error = open_err(dir.path());
    assert!(matches!(error, StorageError::Corrupt { .. }), "{error}");
    assert_eq!(error.path(), last);
    assert!(
        error.to_string().contains("largest segment number"),
        "{error}"
    );
}
