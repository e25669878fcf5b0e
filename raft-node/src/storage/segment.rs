//! Segment files: the log's append-only files, `log-<seq>.seg` with `seq` a 20-digit decimal
//! sequence number, consecutive within a generation (see the module docs of `storage`).
//!
//! A segment is a 20-byte header (a sealed block, see [`super::block`], whose body is the
//! segment's `seq: u64`, so a renamed or copied file is caught) followed by records (see
//! [`super::record`]). Segments are named by sequence rather than by first entry index because
//! a truncation marker in a later segment can reach back into an earlier one: replay order is
//! the write order, not index order.

use super::block::{self, le_u64};
use super::error::StorageError;
use std::fs;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"RLSG";
const BODY_LEN: usize = 8;
pub(super) const HEADER_LEN: usize = block::sealed_len(BODY_LEN);
const PREFIX: &str = "log-";
const SUFFIX: &str = ".seg";
/// Where compaction writes a generation's first segment before renaming it into place.
pub(super) const TMP_FILE: &str = "segment.tmp";

pub(super) fn file_name(seq: u64) -> String {
    format!("{PREFIX}{seq:020}{SUFFIX}")
}

pub(super) fn header(seq: u64) -> Vec<u8> {
    block::seal(MAGIC, &seq.to_le_bytes())
}

/// Checks a segment's header (its first [`HEADER_LEN`] bytes) against the `seq` in its name.
pub(super) fn check_header(path: &Path, header: &[u8], seq: u64) -> Result<(), StorageError> {
    let body = block::unseal(path, "segment header", header, MAGIC, BODY_LEN)?;
    let written = le_u64(body);
    if written != seq {
        return Err(StorageError::corrupt(
            path,
            Some(0),
            format!("header says segment {written}, the file name says {seq}"),
        ));
    }
    Ok(())
}

/// The segment files in `dir`, oldest first.
pub(super) fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
    let mut segments = Vec::new();
    for dir_entry in fs::read_dir(dir).map_err(StorageError::io(dir, "list directory"))? {
        let dir_entry = dir_entry.map_err(StorageError::io(dir, "list directory"))?;
        let name = dir_entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let Some(digits) = name
            .strip_prefix(PREFIX)
            .and_then(|n| n.strip_suffix(SUFFIX))
        else {
            continue;
        };
        let path = dir_entry.path();
        match digits.parse::<u64>() {
            Ok(seq) if file_name(seq) == name => segments.push((seq, path)),
            _ => {
                return Err(StorageError::corrupt(
                    &path,
                    None,
                    "segment file name is not log-<20-digit sequence number>.seg",
                ))
            }
        }
    }
    segments.sort_unstable_by_key(|&(seq, _)| seq);
    Ok(segments)
}

/// Checks that `segments` (oldest first) are consecutive: a missing segment in the middle of a
/// generation would silently drop part of the log.
pub(super) fn check_consecutive(segments: &[(u64, PathBuf)]) -> Result<(), StorageError> {
    for pair in segments.windows(2) {
        let (previous, (seq, path)) = (pair[0].0, &pair[1]);
        if *seq != previous + 1 {
            return Err(StorageError::corrupt(
                path,
                None,
                format!("segment {} is missing before it", previous + 1),
            ));
        }
    }
    Ok(())
}

/// A durable segment and how many bytes of it are valid.
#[derive(Debug)]
pub(super) struct SegmentFile {
    pub seq: u64,
    pub len: u64,
}
