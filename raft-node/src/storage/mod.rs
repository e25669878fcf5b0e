//! Durable storage of Raft's persistent state (Figure 2: `currentTerm`, `votedFor`, `log[]`).
//!
//! A node crashes by SIGKILL and restarts as a new process on the same data directory, so what
//! it acknowledged must be on disk before it said so. The runtime [`Storage::stage`]s each
//! [`Persist`] effect the core emits, calls [`Storage::sync`] once before sending that loop
//! iteration's messages (group commit: one fdatasync per file touched, however many effects
//! were staged), and at start takes the [`Restored`] state from [`Storage::open`].
//!
//! # On-disk layout
//!
//! A data directory holds two kinds of files; all integers are little-endian and every checksum
//! is CRC32.
//!
//! - `state` (25 bytes): magic `RLST`, format version (u32, now 1), `currentTerm` (u64), a
//!   voted flag (u8) and `votedFor` (u32), then a CRC32 of the 21 bytes before it. It is never
//!   written in place: a sync writes `state.tmp`, fsyncs it, renames it over `state` and
//!   fsyncs the directory, so a crash leaves the old or the new value, never a mix. A stray
//!   `state.tmp` (a crash before the rename) is removed on open; the old `state` counts.
//! - `log-<seq>.seg`, with `seq` a 20-digit sequence number, consecutive: the log's
//!   append-only segments. Each is a 20-byte header (magic `RLSG`, format version, its own
//!   `seq`, CRC32) and then records `[payload length u32][CRC32 of length and payload u32]
//!   [payload]`. A payload is an entry (`1u8`, term u64, index u64, command bytes) or a
//!   truncation marker (`2u8`, X u64: "entries with index >= X are gone"). Replaying every
//!   record of every segment in order gives the log. A segment takes no more records once it
//!   reaches 4 MiB; the next one is created only after it is durable.
//!
//! # Why truncation is a marker record
//!
//! Removing a conflicting suffix appends a 17-byte marker instead of cutting the file at the
//! entry's offset. The marker is crash-safe by the same checksum rule as every record, needs
//! no map from index to file offset, and never deletes later segments or ftruncates earlier
//! ones (several ordered steps, each with its own fsync, when the suffix spans segments). The
//! cost is dead bytes on disk until compaction: Raft truncates rarely and only uncommitted
//! entries, and lab 2D's compaction rewrites or deletes the segments behind a snapshot (whole
//! segments are dropped, the first survivor rewritten), which is why the log is segmented.
//!
//! # What a crash leaves, and what open accepts
//!
//! - Order within a sync: a changed hard state is made durable first, and only then do the
//!   staged log records reach the segment (they wait in memory until sync, not in the OS). A
//!   crash can therefore leave the state ahead of the log, a state Raft is in anyway when
//!   entries have not arrived yet, but never the log ahead of it. Combined with the check in
//!   [`Storage::stage`] that no entry's term exceeds the current term, this makes "an entry's
//!   term is above the stored current term" impossible after any crash, so open reports it
//!   as corruption of `state`. That covers a missing `state` next to a non-empty log: entries
//!   always have a term of at least 1, which was made durable in `state` before them, so the
//!   file was lost or replaced, and starting from term 0 could let the node vote twice.
//!   A missing `state` with an empty log is a fresh node (term 0, no vote).
//! - A torn tail: a record at the end of the newest segment that is cut short or fails its
//!   checksum, with no valid record anywhere after it (searched byte by byte, so a damaged
//!   length field cannot hide what follows). That is a crash mid-write of records no sync had
//!   completed: the file is cut back to the last good record and fsynced, with a warning
//!   naming the file and offset. Likewise a newest segment shorter than its header is removed.
//! - Everything else is an error naming the file (and offset): a bad record with valid ones
//!   after it or in an older segment, a record that checksums but does not decode, an entry
//!   out of index order, a missing segment, a `state` that fails its checksum, an unknown
//!   format version. Starting with less than was acknowledged would break Raft's safety, so
//!   the node refuses to start and leaves the files for a human.
//!
//! After a crash the restored state is therefore what every completed sync made durable, plus
//! possibly a prefix of the records staged after it: whole records only, applied in order.
//!
//! The torn-tail rule assumes the lab's crash model (SIGKILL: the page cache survives, so the
//! file is always a prefix of what was written). A power loss may also persist later pages of
//! an unsynced batch without earlier ones; that can make open report corruption of records no
//! sync completed. It errs towards refusing to start, never towards dropping acknowledged data.

mod block;
mod error;
mod record;
mod replay;
mod segment;
mod state_file;
mod writer;

#[cfg(test)]
mod tests;

pub use error::StorageError;

use crate::core::{HardState, Index, Persist, Restored};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use writer::LogWriter;

/// A segment takes no more records once it has this many bytes.
const SEGMENT_BYTES: u64 = 4 << 20;

/// Raft's persistent state in a data directory; see the module docs for the layout.
pub struct Storage {
    dir: PathBuf,
    /// The directory itself, fsynced after a rename or a file creation in it.
    dir_handle: File,
    /// What `state` holds (the default when it does not exist yet).
    hard_state: HardState,
    state_file_exists: bool,
    /// The last hard state staged since the last sync; only it needs writing.
    staged_hard_state: Option<HardState>,
    log: LogWriter,
    /// The log's last index with everything staged applied.
    last_index: Index,
    /// Set when a write or sync failed; see [`StorageError::Failed`].
    failed: Option<PathBuf>,
}

impl Storage {
    /// Opens the data dir (creating it if missing) and returns what was durable: exactly the
    /// effect of every `persist` that `sync` completed before a crash, never a torn state.
    pub fn open(dir: &Path) -> Result<(Storage, Restored), StorageError> {
        Storage::open_with(dir, SEGMENT_BYTES)
    }

    fn open_with(dir: &Path, segment_bytes: u64) -> Result<(Storage, Restored), StorageError> {
        create_dir(dir)?;
        let dir_handle = File::open(dir).map_err(StorageError::io(dir, "open directory"))?;
        state_file::clear_tmp(dir)?;
        let stored_hard_state = state_file::read(dir)?;
        let replayed = replay::replay(dir, &dir_handle)?;
        let hard_state = stored_hard_state.unwrap_or_default();
        if let Some(newest) = replayed.entries.iter().max_by_key(|e| e.term) {
            if newest.term > hard_state.current_term {
                let held = match stored_hard_state {
                    Some(hs) => format!("holds current term {}", hs.current_term),
                    None => "is missing".to_owned(),
                };
                return Err(StorageError::corrupt(
                    &state_file::path(dir),
                    None,
                    format!(
                        "{held} but the log has an entry of term {} (index {}): the state \
                         file is older than the log",
                        newest.term, newest.index
                    ),
                ));
            }
        }
        let storage = Storage {
            dir: dir.to_owned(),
            dir_handle,
            hard_state,
            state_file_exists: stored_hard_state.is_some(),
            staged_hard_state: None,
            log: LogWriter::new(dir, segment_bytes, replayed.segments)?,
            last_index: replayed.entries.last().map_or(0, |e| e.index),
            failed: None,
        };
        let restored = Restored {
            hard_state,
            snapshot: None,
            entries: replayed.entries,
        };
        Ok((storage, restored))
    }

    /// Stages one Persist effect in memory; nothing reaches the files before [`Storage::sync`]
    /// (which is what lets sync write the hard state before the log). Several may be staged per
    /// loop iteration. A `Persist` that would break the log's invariants (an appended index
    /// that does not continue the log, an entry term above the current term, a current term
    /// going backwards) is rejected whole.
    pub fn stage(&mut self, p: &Persist) -> Result<(), StorageError> {
        self.check_not_failed()?;
        self.check(p)?;
        if let Some(hard_state) = p.hard_state {
            self.staged_hard_state = Some(hard_state);
        }
        if let Some(from) = p.truncate_from {
            if from <= self.last_index {
                self.log.stage_truncate(from);
                self.last_index = from.saturating_sub(1);
            }
        }
        for entry in &p.append {
            self.log.stage_entry(entry);
            self.last_index = entry.index;
        }
        Ok(())
    }

    fn check(&self, p: &Persist) -> Result<(), StorageError> {
        let current = self.staged_hard_state.unwrap_or(self.hard_state);
        let hard_state = p.hard_state.unwrap_or(current);
        if hard_state.current_term < current.current_term {
            return Err(self.rejected(format!(
                "current term would go back from {} to {}",
                current.current_term, hard_state.current_term
            )));
        }
        let mut last_index = self.last_index;
        if let Some(from) = p.truncate_from {
            last_index = last_index.min(from.saturating_sub(1));
        }
        for entry in &p.append {
            if entry.index != last_index + 1 {
                return Err(self.rejected(format!(
                    "appended entry has index {} but the log continues at {}",
                    entry.index,
                    last_index + 1
                )));
            }
            if entry.term > hard_state.current_term {
                return Err(self.rejected(format!(
                    "entry {} has term {}, above the current term {}",
                    entry.index, entry.term, hard_state.current_term
                )));
            }
            if entry.command.len() > record::MAX_COMMAND_LEN {
                return Err(self.rejected(format!(
                    "entry {} has a {}-byte command, more than a record holds",
                    entry.index,
                    entry.command.len()
                )));
            }
            last_index = entry.index;
        }
        Ok(())
    }

    /// Makes everything staged durable: group commit — at most one fsync/fdatasync per file
    /// touched (the directory excepted when a sync both changes the hard state and starts a
    /// segment), however many Persists were staged since the last sync; a no-op if nothing
    /// was staged.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.check_not_failed()?;
        let result = self.sync_staged();
        if let Err(e) = &result {
            self.failed = Some(e.path().to_owned());
        }
        result
    }

    fn sync_staged(&mut self) -> Result<(), StorageError> {
        if let Some(hard_state) = self.staged_hard_state.take() {
            if hard_state != self.hard_state {
                state_file::replace(&self.dir, &self.dir_handle, &hard_state)?;
                self.hard_state = hard_state;
                self.state_file_exists = true;
            }
        }
        if self.log.has_pending() {
            self.log.sync(&self.dir_handle)?;
        }
        Ok(())
    }

    /// Bytes of Raft state + log on disk as of the last sync (the lab's RaftStateSize): the
    /// `state` file and every segment, headers and records no longer in the log included.
    pub fn disk_size(&self) -> u64 {
        let state = if self.state_file_exists {
            state_file::STATE_LEN
        } else {
            0
        };
        state + self.log.disk_size()
    }

    fn check_not_failed(&self) -> Result<(), StorageError> {
        match &self.failed {
            Some(path) => Err(StorageError::Failed { path: path.clone() }),
            None => Ok(()),
        }
    }

    fn rejected(&self, reason: String) -> StorageError {
        StorageError::Rejected {
            path: self.dir.clone(),
            reason,
        }
    }
}

/// Creates `dir` if it is missing, durably: the parent is fsynced so the new directory's entry
/// survives a power loss along with the files later synced inside it.
fn create_dir(dir: &Path) -> Result<(), StorageError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(StorageError::io(dir, "create data directory"))?;
    let parent = match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|parent| parent.sync_all())
        .map_err(StorageError::io(parent, "fsync directory"))
}
