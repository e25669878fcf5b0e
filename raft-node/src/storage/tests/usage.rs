//! How the store treats its caller: a clear error for an unusable directory, whole rejection
//! of an invalid `Persist`, nothing on disk before a sync, no work after a failed sync.

use super::*;

#[test]
fn a_directory_that_cannot_be_created_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    fs::write(&file, b"not a directory").unwrap();
    let data_dir = file.join("data");

    let error = open_err(&data_dir);
    assert!(matches!(error, StorageError::Io { .. }), "{error}");
    assert_eq!(error.path(), data_dir);
    assert!(
        error.to_string().contains("create data directory"),
        "{error}"
    );
}

#[test]
fn a_missing_directory_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("nested").join("data");
    let (mut storage, _) = open(&data_dir);
    let mut model = Model::default();
    persist(
        &mut storage,
        &mut model,
        Persist {
            hard_state: Some(hard_state(1, None)),
            snapshot: None,
            truncate_from: None,
            append: vec![entry(1, 1, b"a")],
        },
    );
    drop(storage);
    let (_, restored) = open(&data_dir);
    model.assert_restored(&restored);
}

#[test]
fn an_invalid_persist_is_rejected_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, model) = store_with_entries(dir.path(), 2);
    let invalid = [
        // Index 4 does not continue a log ending at 2.
        append(vec![entry(1, 3, b"ok"), entry(1, 5, b"gap")]),
        // Term 2 is above the current term 1.
        append(vec![entry(2, 3, b"future")]),
        // Terms never go back.
        Persist {
            hard_state: Some(hard_state(0, None)),
            ..Persist::default()
        },
    ];
    for p in &invalid {
        match storage.stage(p) {
            Err(StorageError::Rejected { path, .. }) => assert_eq!(path, dir.path()),
            other => panic!("{p:?}: {other:?}"),
        }
    }
    storage.sync().unwrap();
    drop(storage);
    let (_, restored) = open(dir.path());
    model.assert_restored(&restored);
}

#[test]
fn staged_but_unsynced_effects_never_reach_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, model) = store_with_entries(dir.path(), 2);
    let size = storage.disk_size();
    storage
        .stage(&Persist {
            hard_state: Some(hard_state(5, Some(1))),
            snapshot: None,
            truncate_from: Some(1),
            append: vec![entry(5, 1, b"unsynced")],
        })
        .unwrap();
    assert_eq!(bytes_in_dir(dir.path()), size);
    drop(storage);
    let (_, restored) = open(dir.path());
    model.assert_restored(&restored);
}

#[test]
fn after_a_failed_sync_the_store_refuses_work() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = store_with_entries(dir.path(), 1);
    // A directory where the state's temp file goes makes replacing the state fail.
    let tmp = dir.path().join("state.tmp");
    fs::create_dir(&tmp).unwrap();
    storage
        .stage(&Persist {
            hard_state: Some(hard_state(2, None)),
            ..Persist::default()
        })
        .unwrap();

    let error = storage.sync().unwrap_err();
    assert_eq!(error.path(), tmp);
    assert!(matches!(
        storage.sync(),
        Err(StorageError::Failed { path }) if path == tmp
    ));
    assert!(matches!(
        storage.stage(&Persist::default()),
        Err(StorageError::Failed { .. })
    ));
}

/// An entry at the last index there is was staged and synced, and then the store could not
/// read itself back (replay refuses it, since nothing could follow it). Seen with a crafted
/// snapshot through u64::MAX - 1 while writing the `storage_files` fuzz target; a leader's
/// InstallSnapshot can name that index too.
#[test]
fn an_entry_at_the_largest_index_is_rejected_before_it_reaches_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, mut model) = store_with_entries(dir.path(), 1);
    let install = Persist {
        snapshot: Some(snapshot(u64::MAX - 1, 1, b"far")),
        truncate_from: Some(u64::MAX),
        ..Persist::default()
    };
    persist(&mut storage, &mut model, install);

    match storage.stage(&append(vec![entry(1, u64::MAX, b"last")])) {
        Err(StorageError::Rejected { path, .. }) => assert_eq!(path, dir.path()),
        other => panic!("{other:?}"),
    }
    storage.sync().unwrap();
    drop(storage);
    let (_, restored) = open(dir.path());
    model.assert_restored(&restored);
}
