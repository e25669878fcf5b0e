//! Snapshots: staged with the log changes around them, durable across a reopen, checked on
//! open, refused when they would go back.

use super::super::{atomic_file, block};
use super::*;

/// The encoded length of the tests' configuration (three voters, no learners): two counts
/// and three ids.
const MEMBERSHIP_LEN: u64 = 4 + 3 * 4 + 4;

fn snapshot_path(dir: &Path) -> PathBuf {
    dir.join(snapshot_file::SNAPSHOT_FILE)
}

fn reopen_and_check(dir: &Path, model: &Model) -> Storage {
    let (storage, restored) = open(dir);
    model.assert_restored(&restored);
    assert_eq!(storage.disk_size(), bytes_in_dir(dir));
    storage
}

#[test]
fn a_service_snapshot_keeps_the_entries_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, mut model) = store_with_entries(dir.path(), 20);
    let p = compact_through(&model, 12);
    persist(&mut storage, &mut model, p);
    assert_eq!(model.entries.first().map(|e| e.index), Some(13));
    let data_len = model.snapshot.as_ref().unwrap().data.len() as u64;
    assert_eq!(
        storage.snapshot_size(),
        snapshot_file::HEADER_LEN as u64 + MEMBERSHIP_LEN + data_len
    );
    assert_eq!(
        storage.snapshot_size(),
        file_len(&snapshot_path(dir.path()))
    );
    drop(storage);

    let mut storage = reopen_and_check(dir.path(), &model);
    assert_eq!(
        storage.snapshot_size(),
        file_len(&snapshot_path(dir.path()))
    );
    persist(
        &mut storage,
        &mut model,
        append(vec![entry(1, 21, b"after")]),
    );
    drop(storage);
    reopen_and_check(dir.path(), &model);
}

#[test]
fn an_install_snapshot_replaces_the_whole_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, mut model) = store_with_entries(dir.path(), 20);
    persist(
        &mut storage,
        &mut model,
        Persist {
            hard_state: Some(hard_state(3, None)),
            snapshot: Some(snapshot(15, 2, b"leader's state")),
            truncate_from: Some(16),
            append: vec![],
        },
    );
    assert!(model.entries.is_empty());
    drop(storage);
    let mut storage = reopen_and_check(dir.path(), &model);
    persist(
        &mut storage,
        &mut model,
        append(vec![entry(3, 16, b"x"), entry(3, 17, b"y")]),
    );
    drop(storage);
    reopen_and_check(dir.path(), &model);
}

#[test]
fn a_snapshot_beyond_the_last_index_leaves_an_empty_log_continuing_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, mut model) = store_with_entries(dir.path(), 5);
    persist(
        &mut storage,
        &mut model,
        Persist {
            snapshot: Some(snapshot(50, 1, b"far ahead")),
            ..Persist::default()
        },
    );
    match storage.stage(&append(vec![entry(1, 6, b"too early")])) {
        Err(StorageError::Rejected { .. }) => {}
        other => panic!("{other:?}"),
    }
    drop(storage);
    let mut storage = reopen_and_check(dir.path(), &model);
    assert!(storage.stage(&append(vec![entry(1, 6, b"x")])).is_err());
    persist(
        &mut storage,
        &mut model,
        append(vec![entry(1, 51, b"next")]),
    );
    drop(storage);
    reopen_and_check(dir.path(), &model);
}

#[test]
fn snapshot_truncation_and_append_in_one_persist_apply_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, mut model) = store_with_entries(dir.path(), 10);
    persist(
        &mut storage,
        &mut model,
        Persist {
            hard_state: Some(hard_state(2, Some(1))),
            snapshot: Some(snapshot(5, 1, b"through 5")),
            truncate_from: Some(8),
            append: vec![entry(2, 8, b"8'"), entry(2, 9, b"9'")],
        },
    );
    let indexes: Vec<Index> = model.entries.iter().map(|e| e.index).collect();
    assert_eq!(indexes, [6, 7, 8, 9]);
    drop(storage);
    let mut storage = reopen_and_check(dir.path(), &model);

    // A truncation reaching into the snapshot removes every entry after it.
    persist(
        &mut storage,
        &mut model,
        Persist {
            hard_state: None,
            snapshot: Some(snapshot(6, 1, b"through 6")),
            truncate_from: Some(3),
            append: vec![entry(2, 7, b"7'")],
        },
    );
    assert_eq!(model.entries, [entry(2, 7, b"7'")]);
    drop(storage);
    reopen_and_check(dir.path(), &model);
}

#[test]
fn several_snapshots_between_appends_are_one_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, mut model) = store_with_entries(dir.path(), 10);
    let batch = [
        append((11..=15).map(|i| entry(1, i, b"a")).collect()),
        Persist {
            snapshot: Some(snapshot(12, 1, b"through 12")),
            ..Persist::default()
        },
        append(vec![entry(1, 16, b"b")]),
        Persist {
            hard_state: Some(hard_state(2, None)),
            snapshot: Some(snapshot(14, 1, b"through 14")),
            truncate_from: Some(16),
            append: vec![entry(2, 16, b"c")],
        },
    ];
    for p in &batch {
        storage.stage(p).unwrap();
        model.apply(p);
    }
    storage.sync().unwrap();
    drop(storage);
    reopen_and_check(dir.path(), &model);
}

#[test]
fn an_invalid_snapshot_is_rejected_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, mut model) = store_with_entries(dir.path(), 10);
    let p = compact_through(&model, 6);
    persist(&mut storage, &mut model, p);
    let with = |s: Snapshot| Persist {
        hard_state: Some(hard_state(2, None)),
        snapshot: Some(s),
        truncate_from: None,
        append: vec![entry(2, 11, b"never")],
    };
    let invalid = [
        with(snapshot(5, 1, b"goes back")),
        with(snapshot(6, 2, b"same index, another term")),
        with(snapshot(8, 3, b"term above the current one")),
        with(snapshot(0, 1, b"index 0")),
        with(snapshot(8, 0, b"term 0")),
        with(snapshot(Index::MAX, 1, b"no next index")),
    ];
    for p in &invalid {
        match storage.stage(p) {
            Err(StorageError::Rejected { path, .. }) => assert_eq!(path, dir.path()),
            other => panic!("{p:?}: {other:?}"),
        }
    }
    storage.sync().unwrap();
    drop(storage);
    reopen_and_check(dir.path(), &model);
}

#[test]
fn a_damaged_snapshot_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, mut model) = store_with_entries(dir.path(), 10);
    let p = compact_through(&model, 10);
    persist(&mut storage, &mut model, p);
    drop(storage);
    let path = snapshot_path(dir.path());
    let good = fs::read(&path).unwrap();
    let header = snapshot_file::HEADER_LEN;

    let mut damaged = Vec::new();
    // One byte of the data, of the index in the header, and of the header's checksum.
    for offset in [header + 3, 9, header - 1] {
        let mut bytes = good.clone();
        bytes[offset] ^= 0x40;
        damaged.push(bytes);
    }
    damaged.push(good[..good.len() - 1].to_vec());
    damaged.push(good[..header - 1].to_vec());
    damaged.push([good.as_slice(), b"x"].concat());
    damaged.push(Vec::new());
    for bytes in damaged {
        fs::write(&path, &bytes).unwrap();
        match open_err(dir.path()) {
            StorageError::Corrupt { path: p, .. } => assert_eq!(p, path),
            other => panic!("{} bytes: {other}", bytes.len()),
        }
    }

    let mut bytes = good.clone();
    bytes[4..8].copy_from_slice(&(block::FORMAT_VERSION + 1).to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        open_err(dir.path()),
        StorageError::UnsupportedVersion { path: p, .. } if p == path
    ));

    fs::write(&path, &good).unwrap();
    reopen_and_check(dir.path(), &model);
}

#[test]
fn a_torn_snapshot_tmp_is_removed_and_the_old_snapshot_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, mut model) = store_with_entries(dir.path(), 10);
    let p = compact_through(&model, 4);
    persist(&mut storage, &mut model, p);
    drop(storage);
    let newer = snapshot_file::encode(&snapshot(9, 1, &[7; 300]));
    let tmp = dir.path().join(snapshot_file::TMP_FILE);
    for cut in [0, 10, newer.len() / 2, newer.len()] {
        fs::write(&tmp, &newer[..cut]).unwrap();
        drop(reopen_and_check(dir.path(), &model));
        assert!(!tmp.exists(), "cut {cut}");
    }
}

#[test]
fn a_missing_state_file_beside_a_snapshot_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, mut model) = store_with_entries(dir.path(), 3);
    persist(
        &mut storage,
        &mut model,
        Persist {
            snapshot: Some(snapshot(3, 1, b"all of it")),
            ..Persist::default()
        },
    );
    drop(storage);
    assert!(model.entries.is_empty());
    fs::remove_file(dir.path().join("state")).unwrap();

    let error = open_err(dir.path());
    assert_eq!(error.path(), dir.path().join("state"));
    assert!(error.to_string().contains("missing"), "{error}");
    assert!(error.to_string().contains("snapshot"), "{error}");
}

#[test]
fn a_snapshot_older_than_the_log_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, mut model) = store_with_entries(dir.path(), 10);
    let p = compact_through(&model, 3);
    persist(&mut storage, &mut model, p);
    let old_snapshot = fs::read(snapshot_path(dir.path())).unwrap();
    let p = compact_through(&model, 8);
    persist(&mut storage, &mut model, p);
    drop(storage);

    // The log now starts at 9; snapshot 3 leaves 4..=8 nowhere.
    fs::write(snapshot_path(dir.path()), &old_snapshot).unwrap();
    let error = open_err(dir.path());
    assert_eq!(error.path(), snapshot_path(dir.path()));
    assert!(error.to_string().contains("starts at index 9"), "{error}");

    fs::remove_file(snapshot_path(dir.path())).unwrap();
    let error = open_err(dir.path());
    assert_eq!(error.path(), snapshot_path(dir.path()));
    assert!(error.to_string().contains("missing"), "{error}");
}

#[test]
fn stray_temporary_files_of_every_kind_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, model) = store_with_entries(dir.path(), 2);
    drop(storage);
    for name in ["state.tmp", snapshot_file::TMP_FILE, segment::TMP_FILE] {
        fs::write(dir.path().join(name), b"half written").unwrap();
    }
    drop(reopen_and_check(dir.path(), &model));
    for name in ["state.tmp", snapshot_file::TMP_FILE, segment::TMP_FILE] {
        assert!(!dir.path().join(name).exists(), "{name}");
    }
    // Nothing to remove is fine too.
    atomic_file::remove_stray(dir.path(), segment::TMP_FILE).unwrap();
}
