//! Opening the log: replaying every segment, oldest first, into the logical log, and repairing
//! the one kind of damage a crash leaves behind, a torn record at the end of the newest
//! segment. Everything else that does not read back is an error, never a silent loss: Raft
//! must not forget entries it acknowledged.

use super::error::StorageError;
use super::record::{self, Parsed, Record};
use super::segment::{self, SegmentFile, HEADER_LEN};
use crate::core::{Entry, Index};
use std::fs::{self, File, OpenOptions};
use std::path::Path;

/// The index of the first log entry (until lab 2D's snapshots cover a prefix).
const FIRST_INDEX: Index = 1;

pub(super) struct Replayed {
    pub entries: Vec<Entry>,
    /// The segments that remain, oldest first, with their lengths after any repair.
    pub segments: Vec<SegmentFile>,
}

pub(super) fn replay(dir: &Path, dir_handle: &File) -> Result<Replayed, StorageError> {
    let files = segment::list(dir)?;
    let mut entries = Vec::new();
    let mut segments = Vec::new();
    for (position, (seq, path)) in files.iter().enumerate() {
        let newest = position + 1 == files.len();
        let bytes = fs::read(path).map_err(StorageError::io(path, "read"))?;
        if bytes.len() < HEADER_LEN {
            if !newest {
                return Err(StorageError::corrupt(
                    path,
                    None,
                    format!("segment header cut short, {} bytes", bytes.len()),
                ));
            }
            // A crash between creating the newest segment and writing its header: nothing in it
            // was ever synced.
            log::warn!(
                "{}: segment header cut short ({} bytes); removing the segment",
                path.display(),
                bytes.len()
            );
            fs::remove_file(path).map_err(StorageError::io(path, "remove"))?;
            dir_handle
                .sync_all()
                .map_err(StorageError::io(dir, "fsync directory"))?;
            continue;
        }
        segment::check_header(path, &bytes[..HEADER_LEN], *seq)?;
        let len = replay_records(path, &bytes, newest, &mut entries)?;
        segments.push(SegmentFile { seq: *seq, len });
    }
    Ok(Replayed { entries, segments })
}

/// Applies the records of one segment to `entries`; returns the length of the segment's valid
/// prefix, having cut a torn tail off the newest segment.
fn replay_records(
    path: &Path,
    bytes: &[u8],
    newest: bool,
    entries: &mut Vec<Entry>,
) -> Result<u64, StorageError> {
    let mut at = HEADER_LEN;
    while at < bytes.len() {
        match record::parse(bytes, at) {
            Parsed::Record { record, end } => {
                apply(entries, record, path, at)?;
                at = end;
            }
            Parsed::Undecodable(reason) => {
                return Err(StorageError::corrupt(path, Some(at as u64), reason))
            }
            Parsed::Bad(reason) => {
                // A segment is synced before the next one is created, so a crash can only tear
                // the newest one, and only at its end.
                if !newest {
                    return Err(StorageError::corrupt(
                        path,
                        Some(at as u64),
                        format!("{reason}, in a segment that later segments follow"),
                    ));
                }
                if let Some(next) = next_valid_record(bytes, at + 1) {
                    return Err(StorageError::corrupt(
                        path,
                        Some(at as u64),
                        format!("{reason}, yet a valid record follows at offset {next}"),
                    ));
                }
                cut_torn_tail(path, at as u64, bytes.len() as u64, reason)?;
                break;
            }
        }
    }
    Ok(at as u64)
}

fn apply(
    entries: &mut Vec<Entry>,
    record: Record,
    path: &Path,
    at: usize,
) -> Result<(), StorageError> {
    match record {
        Record::Entry(entry) => {
            let expected = FIRST_INDEX + entries.len() as u64;
            if entry.index != expected {
                return Err(StorageError::corrupt(
                    path,
                    Some(at as u64),
                    format!(
                        "entry has index {} where the log continues at {expected}",
                        entry.index
                    ),
                ));
            }
            entries.push(entry);
        }
        Record::Truncate(from) => {
            let keep = from.saturating_sub(FIRST_INDEX);
            entries.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
        }
    }
    Ok(())
}

/// The first offset at or after `from` where a whole, checksummed record starts. Scanning every
/// byte rather than trusting the bad record's length field means a damaged length cannot pass
/// off the records after it as part of a torn tail.
fn next_valid_record(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len()).find(|&at| matches!(record::parse(bytes, at), Parsed::Record { .. }))
}

fn cut_torn_tail(path: &Path, at: u64, file_len: u64, reason: &str) -> Result<(), StorageError> {
    log::warn!(
        "{}: torn record at offset {at} ({reason}); cutting the last {} bytes off",
        path.display(),
        file_len - at
    );
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(StorageError::io(path, "open for repair"))?;
    file.set_len(at)
        .map_err(StorageError::io(path, "truncate torn tail"))?;
    file.sync_all()
        .map_err(StorageError::io(path, "fsync after truncating torn tail"))
}
