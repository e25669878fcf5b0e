//! Opening the log: finding the current generation, removing the older segments a compaction
//! left behind, replaying the generation's segments oldest first into the [`LiveLog`], and
//! repairing the one kind of damage a crash leaves behind, a torn record at the end of the
//! newest segment. Everything else that does not read back is an error, never a silent loss:
//! Raft must not forget entries it acknowledged.

use super::error::StorageError;
use super::live_log::LiveLog;
use super::record::{self, Parsed, Record, FRAME_LEN};
use super::segment::{self, SegmentFile, HEADER_LEN};
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The first index of a log no compaction has touched: its first segment has no base marker.
const FIRST_INDEX: u64 = 1;
/// A base marker's record length: frame, kind, index.
const BASE_RECORD_LEN: usize = FRAME_LEN + 1 + 8;

pub(super) struct Replayed {
    pub log: LiveLog,
    /// The current generation's segments, oldest first, with their lengths after any repair.
    pub segments: Vec<SegmentFile>,
}

pub(super) fn replay(dir: &Path, dir_handle: &File) -> Result<Replayed, StorageError> {
    let files = segment::list(dir)?;
    let start = generation_start(&files)?;
    remove_leftovers(dir, dir_handle, &files[..start])?;
    let generation = &files[start..];
    segment::check_consecutive(generation)?;
    let mut log = LiveLog::new(FIRST_INDEX);
    let mut segments = Vec::new();
    for (position, (seq, path)) in generation.iter().enumerate() {
        let newest = position + 1 == generation.len();
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
            // was ever synced. (A generation's first segment is renamed into place whole, so it
            // is never this one unless the file was damaged.)
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
        let len = replay_records(path, &bytes, newest, &mut log)?;
        segments.push(SegmentFile { seq: *seq, len });
    }
    Ok(Replayed { log, segments })
}

/// The current generation's segments among `files` (oldest first), as they are on disk: nothing
/// is repaired or removed.
pub(super) fn current_generation(
    files: &[(u64, PathBuf)],
) -> Result<&[(u64, PathBuf)], StorageError> {
    Ok(&files[generation_start(files)?..])
}

/// The position in `files` (oldest first) of the current generation's first segment: the newest
/// one that starts with a base marker. Without one the log was never compacted and starts at
/// segment 1. Only the first bytes of each segment are read, newest first.
fn generation_start(files: &[(u64, PathBuf)]) -> Result<usize, StorageError> {
    for (position, (seq, path)) in files.iter().enumerate().rev() {
        let mut start = Vec::with_capacity(HEADER_LEN + BASE_RECORD_LEN);
        File::open(path)
            .and_then(|file| {
                file.take((HEADER_LEN + BASE_RECORD_LEN) as u64)
                    .read_to_end(&mut start)
            })
            .map_err(StorageError::io(path, "read"))?;
        if start.len() < HEADER_LEN {
            // A torn newest segment, which replay removes, or damage it reports.
            continue;
        }
        // Every segment looked at so far is at or after the generation's start, where a bad
        // header is damage.
        segment::check_header(path, &start[..HEADER_LEN], *seq)?;
        if let Parsed::Record {
            record: Record::Base(_),
            ..
        } = record::parse(&start, HEADER_LEN)
        {
            return Ok(position);
        }
    }
    match files.first() {
        Some((seq, path)) if *seq != 1 => Err(StorageError::corrupt(
            path,
            None,
            format!(
                "no segment starts with a base marker, so the log starts at segment 1, \
                 but the oldest is segment {seq}"
            ),
        )),
        _ => Ok(0),
    }
}

/// Removes the segments older than the current generation: a compaction that renamed the new
/// generation into place was interrupted before it had deleted them all. Nothing in them is
/// needed; the snapshot and the new generation hold it.
fn remove_leftovers(
    dir: &Path,
    dir_handle: &File,
    leftovers: &[(u64, PathBuf)],
) -> Result<(), StorageError> {
    for (_, path) in leftovers {
        log::info!(
            "{}: removing, left over from an interrupted compaction",
            path.display()
        );
        fs::remove_file(path).map_err(StorageError::io(path, "remove"))?;
    }
    if !leftovers.is_empty() {
        dir_handle
            .sync_all()
            .map_err(StorageError::io(dir, "fsync directory"))?;
    }
    Ok(())
}

/// Applies the records of one segment to `log`; returns the length of the segment's valid
/// prefix, having cut a torn tail off the newest segment.
fn replay_records(
    path: &Path,
    bytes: &[u8],
    newest: bool,
    log: &mut LiveLog,
) -> Result<u64, StorageError> {
    let mut at = HEADER_LEN;
    while at < bytes.len() {
        match record::parse(bytes, at) {
            Parsed::Record { record, end } => {
                log.apply(record)
                    .map_err(|reason| StorageError::corrupt(path, Some(at as u64), reason))?;
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

/// Applies every record of a segment this store wrote and synced, where anything that does not
/// read back is damage: compaction reads the current generation back with it.
pub(super) fn read_records(path: &Path, len: u64, log: &mut LiveLog) -> Result<(), StorageError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|file| file.take(len).read_to_end(&mut bytes))
        .map_err(StorageError::io(path, "read"))?;
    if (bytes.len() as u64) < len {
        return Err(StorageError::corrupt(
            path,
            None,
            format!(
                "segment is {} bytes, {len} were written and synced",
                bytes.len()
            ),
        ));
    }
    let mut at = HEADER_LEN;
    while at < bytes.len() {
        let fail = |reason: String| StorageError::corrupt(path, Some(at as u64), reason);
        match record::parse(&bytes, at) {
            Parsed::Record { record, end } => {
                log.apply(record).map_err(fail)?;
                at = end;
            }
            Parsed::Undecodable(reason) => return Err(fail(reason)),
            Parsed::Bad(reason) => return Err(fail(reason.to_owned())),
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
