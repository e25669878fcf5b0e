//! The `snapshot` file: the service's latest snapshot and the log position it covers.
//!
//! A 44-byte sealed block (see [`super::block`]; magic `RLSP`) whose body is
//! `last_included_index: u64`, `last_included_term: u64`, the configuration's length `u32`,
//! the data's length `u64` and the CRC32 `u32` of the configuration and data together,
//! followed by the configuration as of the last included index (as configuration entries
//! encode it, `record.rs`), then the data. The header has its own checksum so a damaged
//! length cannot make the reader trust the wrong number of bytes. (Format version 1 had no
//! configuration; `block.rs` refuses such a file by its version.) Like `state`, it is only ever
//! replaced whole through `snapshot.tmp` (see [`super::atomic_file`]); a crash never tears it,
//! so any mismatch is damage and an error, never a silent fall back to no snapshot.

use super::atomic_file;
use super::block::{self, le_u32, le_u64};
use super::error::StorageError;
use super::record;
use crate::core::Snapshot;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

pub(super) const SNAPSHOT_FILE: &str = "snapshot";
pub(super) const TMP_FILE: &str = "snapshot.tmp";
const MAGIC: &[u8; 4] = b"RLSP";
const BODY_LEN: usize = 8 + 8 + 4 + 8 + 4;
pub(super) const HEADER_LEN: usize = block::sealed_len(BODY_LEN);

pub(super) fn path(dir: &Path) -> PathBuf {
    dir.join(SNAPSHOT_FILE)
}

pub(super) fn encode(snapshot: &Snapshot) -> Vec<u8> {
    let mut tail = Vec::new();
    record::encode_membership(&mut tail, &snapshot.membership);
    let membership_len = tail.len() as u32;
    tail.extend_from_slice(&snapshot.data);
    let mut body = Vec::with_capacity(BODY_LEN);
    body.extend_from_slice(&snapshot.last_included_index.to_le_bytes());
    body.extend_from_slice(&snapshot.last_included_term.to_le_bytes());
    body.extend_from_slice(&membership_len.to_le_bytes());
    body.extend_from_slice(&(snapshot.data.len() as u64).to_le_bytes());
    body.extend_from_slice(&crc32fast::hash(&tail).to_le_bytes());
    let mut bytes = block::seal(MAGIC, &body);
    bytes.extend_from_slice(&tail);
    bytes
}

fn decode(path: &Path, mut bytes: Vec<u8>) -> Result<Snapshot, StorageError> {
    let header_len = HEADER_LEN.min(bytes.len());
    let body = block::unseal(
        path,
        "snapshot header",
        &bytes[..header_len],
        MAGIC,
        BODY_LEN,
    )?;
    let last_included_index = le_u64(&body[..8]);
    let last_included_term = le_u64(&body[8..16]);
    let membership_len = le_u32(&body[16..20]) as u64;
    let data_len = le_u64(&body[20..28]);
    let tail_crc = le_u32(&body[28..32]);
    let corrupt = |reason: String| StorageError::corrupt(path, None, reason);
    // Index 0 is the empty prefix and entries have terms of at least 1: no snapshot this
    // store writes has either (`Storage::stage` refuses them).
    if last_included_index == 0 || last_included_index == u64::MAX || last_included_term == 0 {
        return Err(corrupt(format!(
            "snapshot header names index {last_included_index}, term {last_included_term}"
        )));
    }
    let actual_len = (bytes.len() - HEADER_LEN) as u64;
    if Some(actual_len) != membership_len.checked_add(data_len) {
        return Err(corrupt(format!(
            "snapshot configuration and data are {actual_len} bytes, the header says \
             {membership_len} + {data_len}"
        )));
    }
    let mut data = bytes.split_off(HEADER_LEN);
    if crc32fast::hash(&data) != tail_crc {
        return Err(corrupt("snapshot data fails its checksum".to_owned()));
    }
    let membership = record::decode_membership(&data[..membership_len as usize])
        .map_err(|reason| corrupt(format!("snapshot configuration: {reason}")))?;
    data.drain(..membership_len as usize);
    Ok(Snapshot {
        last_included_index,
        last_included_term,
        membership,
        data,
    })
}

/// The durable snapshot and its file's size, or `None` when there is no `snapshot` file yet.
pub(super) fn read(dir: &Path) -> Result<Option<(Snapshot, u64)>, StorageError> {
    let path = path(dir);
    match fs::read(&path) {
        Ok(bytes) => {
            let len = bytes.len() as u64;
            decode(&path, bytes).map(|snapshot| Some((snapshot, len)))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io(&path, "read")(e)),
    }
}

/// Atomically replaces `snapshot`; durable when this returns. Returns the file's size.
pub(super) fn replace(
    dir: &Path,
    dir_handle: &File,
    snapshot: &Snapshot,
) -> Result<u64, StorageError> {
    let bytes = encode(snapshot);
    atomic_file::replace(dir, dir_handle, SNAPSHOT_FILE, TMP_FILE, &bytes)?;
    Ok(bytes.len() as u64)
}
