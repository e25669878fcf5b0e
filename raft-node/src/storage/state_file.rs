//! The `state` file: Figure 2's `currentTerm` and `votedFor`.
//!
//! One sealed block (see [`super::block`]) whose 13-byte body is `current_term: u64`, a voted
//! flag `u8` (0 = nobody, 1 = somebody) and `voted_for: u32`; 25 bytes in all. It is never
//! written in place: [`replace`] goes through `state.tmp` (see [`super::atomic_file`]), so after
//! a crash `state` holds either the old or the new value. A crash before the rename leaves a
//! stray `state.tmp` that [`clear_tmp`] removes on open.

use super::atomic_file;
use super::block::{self, le_u32, le_u64};
use super::error::StorageError;
use crate::core::HardState;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

pub(super) const STATE_FILE: &str = "state";
const TMP_FILE: &str = "state.tmp";
const MAGIC: &[u8; 4] = b"RLST";
const BODY_LEN: usize = 13;
pub(super) const STATE_LEN: u64 = block::sealed_len(BODY_LEN) as u64;

pub(super) fn path(dir: &Path) -> PathBuf {
    dir.join(STATE_FILE)
}

pub(super) fn encode(hard_state: &HardState) -> Vec<u8> {
    let mut body = Vec::with_capacity(BODY_LEN);
    body.extend_from_slice(&hard_state.current_term.to_le_bytes());
    body.push(u8::from(hard_state.voted_for.is_some()));
    body.extend_from_slice(&hard_state.voted_for.unwrap_or(0).to_le_bytes());
    block::seal(MAGIC, &body)
}

fn decode(path: &Path, bytes: &[u8]) -> Result<HardState, StorageError> {
    let body = block::unseal(path, "state file", bytes, MAGIC, BODY_LEN)?;
    let voted_for = match body[8] {
        0 => None,
        1 => Some(le_u32(&body[9..13])),
        flag => {
            return Err(StorageError::corrupt(
                path,
                None,
                format!("voted flag is {flag}, expected 0 or 1"),
            ))
        }
    };
    Ok(HardState {
        current_term: le_u64(&body[..8]),
        voted_for,
    })
}

/// The durable hard state, or `None` when the directory has no `state` file yet.
pub(super) fn read(dir: &Path) -> Result<Option<HardState>, StorageError> {
    let path = path(dir);
    match fs::read(&path) {
        Ok(bytes) => decode(&path, &bytes).map(Some),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io(&path, "read")(e)),
    }
}

/// Atomically replaces `state` with `hard_state`; durable when this returns.
pub(super) fn replace(
    dir: &Path,
    dir_handle: &File,
    hard_state: &HardState,
) -> Result<(), StorageError> {
    atomic_file::replace(dir, dir_handle, STATE_FILE, TMP_FILE, &encode(hard_state))
}

/// Removes a `state.tmp` left by a crash before its rename: the old `state` is the one a
/// completed sync wrote. It does so by creating and then removing the file, which also proves
/// the directory writable at open rather than at the first sync.
pub(super) fn clear_tmp(dir: &Path) -> Result<(), StorageError> {
    let tmp = dir.join(TMP_FILE);
    File::create(&tmp).map_err(StorageError::io(
        &tmp,
        "create (is the data directory writable?)",
    ))?;
    fs::remove_file(&tmp).map_err(StorageError::io(&tmp, "remove"))
}
