//! The `state` file: replaced atomically, checked on open, written only when it changes.

use super::super::state_file;
use super::*;
use std::os::unix::fs::MetadataExt;

fn state_path(dir: &Path) -> PathBuf {
    dir.join(state_file::STATE_FILE)
}

#[test]
fn a_state_file_failing_its_checksum_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    store_with_entries(dir.path(), 1);
    flip_byte(&state_path(dir.path()), 10);

    let error = open_err(dir.path());
    assert!(matches!(error, StorageError::Corrupt { .. }), "{error}");
    assert_eq!(error.path(), state_path(dir.path()));
    assert!(error.to_string().contains("state"), "{error}");
}

#[test]
fn a_short_state_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    store_with_entries(dir.path(), 1);
    let bytes = fs::read(state_path(dir.path())).unwrap();
    fs::write(state_path(dir.path()), &bytes[..bytes.len() - 1]).unwrap();

    assert_eq!(open_err(dir.path()).path(), state_path(dir.path()));
}

#[test]
fn a_state_file_from_another_version_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    store_with_entries(dir.path(), 1);
    let mut bytes = fs::read(state_path(dir.path())).unwrap();
    bytes[4..8].copy_from_slice(&7u32.to_le_bytes());
    fs::write(state_path(dir.path()), bytes).unwrap();

    let error = open_err(dir.path());
    assert!(
        matches!(error, StorageError::UnsupportedVersion { version: 7, .. }),
        "{error}"
    );
    assert_eq!(error.path(), state_path(dir.path()));
}

#[test]
fn a_crash_before_the_rename_keeps_the_old_state() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, model) = store_with_entries(dir.path(), 2);
    drop(storage);
    // What a crash between writing state.tmp and renaming it leaves.
    let tmp = dir.path().join("state.tmp");
    fs::write(&tmp, state_file::encode(&hard_state(9, Some(4)))).unwrap();

    let (_, restored) = open(dir.path());
    model.assert_restored(&restored);
    assert!(!tmp.exists());
}

#[test]
fn a_missing_state_file_next_to_entries_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    store_with_entries(dir.path(), 2);
    fs::remove_file(state_path(dir.path())).unwrap();

    let error = open_err(dir.path());
    assert_eq!(error.path(), state_path(dir.path()));
    assert!(error.to_string().contains("missing"), "{error}");
}

#[test]
fn a_state_file_older_than_the_log_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, mut model) = store_with_entries(dir.path(), 1);
    let old_state = fs::read(state_path(dir.path())).unwrap();
    persist(
        &mut storage,
        &mut model,
        Persist {
            hard_state: Some(hard_state(2, None)),
            snapshot: None,
            truncate_from: None,
            append: vec![entry(2, 2, b"b")],
        },
    );
    drop(storage);
    fs::write(state_path(dir.path()), old_state).unwrap();

    assert_eq!(open_err(dir.path()).path(), state_path(dir.path()));
}

#[test]
fn an_empty_directory_is_a_fresh_node() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, restored) = open(dir.path());
    Model::default().assert_restored(&restored);
    assert_eq!(storage.disk_size(), 0);
}

#[test]
fn an_unchanged_hard_state_is_not_rewritten_and_only_the_last_staged_one_is() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, mut model) = store_with_entries(dir.path(), 1);
    let inode = fs::metadata(state_path(dir.path())).unwrap().ino();
    let unchanged = model.hard_state;
    persist(
        &mut storage,
        &mut model,
        Persist {
            hard_state: Some(unchanged),
            snapshot: None,
            truncate_from: None,
            append: vec![entry(1, 2, b"b")],
        },
    );
    assert_eq!(fs::metadata(state_path(dir.path())).unwrap().ino(), inode);

    for term in 2..=4 {
        let p = Persist {
            hard_state: Some(hard_state(term, Some(term as u32))),
            ..Persist::default()
        };
        storage.stage(&p).unwrap();
        model.apply(&p);
    }
    storage.sync().unwrap();
    drop(storage);
    let (_, restored) = open(dir.path());
    model.assert_restored(&restored);
}

/// Found by the `storage_files` fuzz target (crash-f26a58d1…): a `state` file whose vote byte
/// was flipped and its checksum recomputed (voted for node 0, then node 0xBD00_0000) opens, and
/// `Raft::new` then failed its assertion that the vote names a member. The node checks the
/// restored state right after opening.
#[test]
fn a_vote_for_a_node_the_cluster_lacks_is_an_error_naming_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with_entries(dir.path(), 1));
    let (storage, restored) = open(dir.path());
    storage.check_restored(&restored, 5).unwrap();
    drop(storage);
    let mut bytes = fs::read(state_path(dir.path())).unwrap();
    bytes[20] ^= 189;
    let sealed = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..sealed]);
    bytes[sealed..].copy_from_slice(&crc.to_le_bytes());
    fs::write(state_path(dir.path()), bytes).unwrap();

    let (storage, restored) = open(dir.path());
    assert_eq!(restored.hard_state, hard_state(1, Some(0xBD00_0000)));
    let error = storage.check_restored(&restored, 5).unwrap_err();
    assert!(matches!(error, StorageError::Corrupt { .. }), "{error}");
    assert_eq!(error.path(), state_path(dir.path()));
    assert!(
        error.to_string().contains("votes for node 3170893824"),
        "{error}"
    );
    storage.check_restored(&restored, 0xBD00_0001).unwrap();
}
