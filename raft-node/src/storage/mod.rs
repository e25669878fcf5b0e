//! Durable storage of Raft's persistent state (Figure 2: `currentTerm`, `votedFor`, `log[]`) and
//! of the service's snapshot (Figure 13, lab 2D).
//!
//! A node crashes by SIGKILL and restarts as a new process on the same data directory, so what
//! it acknowledged must be on disk before it said so. The runtime [`Storage::stage`]s each
//! [`Persist`] effect the core emits, calls [`Storage::sync`] once before sending that loop
//! iteration's messages (group commit: one fdatasync per file touched, however many effects
//! were staged), and at start takes the [`Restored`] state from [`Storage::open`].
//!
//! # On-disk layout
//!
//! A data directory holds three kinds of files; all integers are little-endian and every
//! checksum is CRC32.
//!
//! - `state` (25 bytes): magic `RLST`, format version (u32, now 2; a file of another version
//!   is refused with an error naming both), `currentTerm` (u64), a
//!   voted flag (u8) and `votedFor` (u32), then a CRC32 of the 21 bytes before it. It is never
//!   written in place: a sync writes `state.tmp`, fsyncs it, renames it over `state` and
//!   fsyncs the directory, so a crash leaves the old or the new value, never a mix. A stray
//!   `state.tmp` (a crash before the rename) is removed on open; the old `state` counts.
//! - `snapshot`: a 44-byte header (magic `RLSP`, format version, `last_included_index` u64,
//!   `last_included_term` u64, configuration length u32, data length u64, CRC32 of the
//!   configuration and data, CRC32 of the header's 40 bytes before it), then the configuration
//!   as of the last included index (voter count u32 and ids u32, learner count u32 and ids
//!   u32), then the service's data. Replaced whole through `snapshot.tmp` exactly
//!   like `state`. A `snapshot` that fails a check is an error naming it, never "no snapshot".
//! - `log-<seq>.seg`, with `seq` a 20-digit sequence number: the log's append-only segments.
//!   Each is a 20-byte header (magic `RLSG`, format version, its own `seq`, CRC32) and then
//!   records `[payload length u32][CRC32 of length and payload u32][payload]`. A payload is an
//!   entry (`1u8`, term u64, index u64, command bytes), a configuration entry (`4u8`, term u64,
//!   index u64, the configuration as in `snapshot`), a truncation marker (`2u8`, X u64:
//!   "entries with index >= X are gone") or a base marker (`3u8`, B u64: "the log starts at
//!   index B; everything before it is in the snapshot"). A segment takes no more records once
//!   it reaches 4 MiB; the next one is created only after it is durable.
//!
//! The segments form *generations*. A generation's first segment begins with a base marker;
//! its later segments follow with consecutive `seq`s. **Replay starts at the newest segment
//! whose first record is a base marker** and replays every record from there on, in `seq`
//! order; every older segment is left over from an interrupted compaction and is deleted. A
//! log never compacted has no base marker: it starts at segment 1, at index 1 (a missing
//! segment 1 is an error). At rest the current generation starts right after the snapshot:
//! B = `last_included_index` + 1 (1 without a snapshot), so `disk_size` (`state` plus the
//! segments; the lab's RaftStateSize) is 25 + 20 + 17 bytes plus the records after the
//! snapshot.
//!
//! # Compaction
//!
//! A sync with a staged snapshot (the last one staged wins) does, in this order:
//!
//! 1. a changed hard state: `state.tmp`, fsync, rename over `state`, fsync the directory;
//! 2. `snapshot.tmp`, fsync, rename over `snapshot`, fsync the directory;
//! 3. the new generation: the current one is read back and the staged records applied (the
//!    base marker drops the entries the snapshot covers), and the resulting log is written as
//!    `segment.tmp`: header of segment `newest + 1`, base marker `last_included_index + 1`,
//!    every surviving entry; fsync; rename to `log-<newest + 1>.seg`; fsync the directory;
//! 4. the older segments are deleted (no fsync: one that a power loss brings back is older than
//!    the generation and is deleted again).
//!
//! It costs four fsyncs more than an append, once per snapshot, and rewrites only the entries
//! after the snapshot, which the service's snapshots keep few. A crash at each point leaves:
//!
//! - before 1's rename: the old everything, and a stray `state.tmp` that open removes;
//! - between 1 and 2's rename: the new hard state with the old snapshot and log (the state
//!   ahead of the rest, as in any sync), and maybe a stray `snapshot.tmp`, removed;
//! - between 2 and 3's rename: the new snapshot with the old generation, which starts at or
//!   before the snapshot, and maybe a stray `segment.tmp`, removed. Open finishes the
//!   compaction: it drops the entries the snapshot covers and keeps those after it only if the
//!   old log holds the snapshot's last entry with the snapshot's term (Figure 13, step 6;
//!   otherwise they come from a history an InstallSnapshot replaced), then writes that as a new
//!   generation exactly as step 3 does. The batch's other log records are lost, but no sync
//!   completed, so none was acknowledged;
//! - after 3's rename: the whole batch; the new generation is the newest one and open deletes
//!   the older segments that step 4 had not.
//!
//! A generation that starts after the snapshot's next index (or past index 1 without a
//! snapshot) cannot come from a crash, since the snapshot is durable before the generation that
//! relies on it: open reports the entries between as lost, naming `snapshot`.
//!
//! # Why truncation is a marker record
//!
//! Removing a conflicting suffix appends a 17-byte marker instead of cutting the file at the
//! entry's offset. The marker is crash-safe by the same checksum rule as every record, needs
//! no map from index to file offset, and never deletes later segments or ftruncates earlier
//! ones (several ordered steps, each with its own fsync, when the suffix spans segments). The
//! cost is dead bytes on disk until the next compaction, which rewrites the log without them;
//! Raft truncates rarely and only uncommitted entries.
//!
//! # What a crash leaves, and what open accepts
//!
//! - Order within a sync: a changed hard state is made durable first, then a staged snapshot,
//!   and only then do the staged log records reach the segments (they wait in memory until
//!   sync, not in the OS). A crash can therefore leave the state ahead of the snapshot and the
//!   log, a state Raft is in anyway when entries have not arrived yet, but never behind them.
//!   Combined with the check in [`Storage::stage`] that no entry's or snapshot's term exceeds
//!   the current term, this makes "a term above the stored current term" impossible after any
//!   crash, so open reports it as corruption of `state`. That covers a missing `state` next to
//!   a snapshot or a non-empty log: both always have a term of at least 1, which was made
//!   durable in `state` before them, so the file was lost or replaced, and starting from term 0
//!   could let the node vote twice. A missing `state` with neither is a fresh node.
//! - A torn tail: a record at the end of the newest segment that is cut short or fails its
//!   checksum, with no valid record anywhere after it (searched byte by byte, so a damaged
//!   length field cannot hide what follows). That is a crash mid-write of records no sync had
//!   completed: the file is cut back to the last good record and fsynced, with a warning
//!   naming the file and offset. Likewise a newest segment shorter than its header is removed.
//! - Stray `*.tmp` files are removed, and a compaction that a crash interrupted is finished
//!   (see above).
//! - Everything else is an error naming the file (and offset): a bad record with valid ones
//!   after it or in an older segment, a record that checksums but does not decode, an entry
//!   out of index order, a missing segment, a `state` or `snapshot` that fails its checksum,
//!   an unknown format version. Starting with less than was acknowledged would break Raft's
//!   safety, so the node refuses to start and leaves the files for a human.
//!
//! After a crash the restored state is therefore what every completed sync made durable, plus
//! possibly part of the batch staged after it: its hard state, its snapshot, and of its log
//! records whole ones only, applied in order. Without a snapshot in the batch that is a prefix
//! of its records; with one, all of them, or none with the log after the snapshot as Figure 13
//! keeps it (see "Compaction").
//!
//! The torn-tail rule assumes the lab's crash model (SIGKILL: the page cache survives, so the
//! file is always a prefix of what was written). A power loss may also persist later pages of
//! an unsynced batch without earlier ones; that can make open report corruption of records no
//! sync completed. It errs towards refusing to start, never towards dropping acknowledged data.

mod atomic_file;
mod block;
mod error;
mod live_log;
mod measure;
mod record;
mod replay;
mod restore;
mod segment;
mod snapshot_file;
mod state_file;
mod writer;

#[cfg(test)]
mod tests;

pub use error::StorageError;
pub use measure::{measure_raft_state, measure_snapshot};

use crate::core::{HardState, Index, Persist, Restored, Snapshot, Term};
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
    /// The last snapshot staged since the last sync; only it needs writing.
    staged_snapshot: Option<Snapshot>,
    /// Bytes of the `snapshot` file as of the last sync (0 without one).
    snapshot_file_len: u64,
    /// The latest snapshot's last index and term with everything staged applied (0 and 0
    /// without one).
    snapshot_index: Index,
    snapshot_term: Term,
    log: LogWriter,
    /// The last index the log covers, snapshot included, with everything staged applied: the
    /// last entry's index, or the snapshot's when no entry follows it.
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
        atomic_file::remove_stray(dir, snapshot_file::TMP_FILE)?;
        atomic_file::remove_stray(dir, segment::TMP_FILE)?;
        let stored_hard_state = state_file::read(dir)?;
        let (snapshot, snapshot_file_len) = match snapshot_file::read(dir)? {
            Some((snapshot, len)) => (Some(snapshot), len),
            None => (None, 0),
        };
        let replayed = replay::replay(dir, &dir_handle)?;
        let (log, unfinished) = restore::log_after_snapshot(dir, snapshot.as_ref(), replayed.log)?;
        restore::check_terms(dir, stored_hard_state, snapshot.as_ref(), &log)?;
        let mut writer = LogWriter::new(dir, segment_bytes, replayed.segments)?;
        if unfinished {
            writer.start_generation(&dir_handle, &log)?;
        }
        let (snapshot_index, snapshot_term) = snapshot
            .as_ref()
            .map_or((0, 0), |s| (s.last_included_index, s.last_included_term));
        let hard_state = stored_hard_state.unwrap_or_default();
        let storage = Storage {
            dir: dir.to_owned(),
            dir_handle,
            hard_state,
            state_file_exists: stored_hard_state.is_some(),
            staged_hard_state: None,
            staged_snapshot: None,
            snapshot_file_len,
            snapshot_index,
            snapshot_term,
            log: writer,
            last_index: log.last_index(),
            failed: None,
        };
        let restored = Restored {
            hard_state,
            snapshot,
            entries: log.entries,
        };
        Ok((storage, restored))
    }

    /// Checks `restored`, what [`Storage::open`] returned, against what a Raft core assumes of
    /// it and the store cannot check alone; the node calls it before it starts from it. The vote
    /// must name a member of this `members`-node cluster (another vote means the data dir belongs
    /// to another, larger cluster, or `state` was replaced), and terms must never decrease along
    /// the log, from the snapshot's on (Log Matching: no core writes such a log, and the store
    /// keeps the terms it is given). `Raft::new` only debug-asserts either.
    pub fn check_restored(&self, restored: &Restored, members: u32) -> Result<(), StorageError> {
        restore::check_for_core(&self.dir, restored, members)
    }

    /// Stages one Persist effect in memory; nothing reaches the files before [`Storage::sync`]
    /// (which is what lets sync write the hard state before the snapshot, and both before the
    /// log). Several may be staged per loop iteration. A `Persist` that would break the log's
    /// invariants (an appended index that does not continue the log, a term above the current
    /// term, a current term or a snapshot going backwards) is rejected whole.
    ///
    /// A `truncate_from` at or before the snapshot's last index removes every entry after the
    /// snapshot: the entries it covers are gone already.
    pub fn stage(&mut self, p: &Persist) -> Result<(), StorageError> {
        self.check_not_failed()?;
        self.check(p)?;
        if let Some(hard_state) = p.hard_state {
            self.staged_hard_state = Some(hard_state);
        }
        if let Some(snapshot) = &p.snapshot {
            self.snapshot_index = snapshot.last_included_index;
            self.snapshot_term = snapshot.last_included_term;
            self.last_index = self.last_index.max(self.snapshot_index);
            self.log.stage_base(self.snapshot_index + 1);
            self.staged_snapshot = Some(snapshot.clone());
        }
        if let Some(from) = p.truncate_from {
            let from = from.max(self.snapshot_index + 1);
            if from <= self.last_index {
                self.log.stage_truncate(from);
                self.last_index = from - 1;
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
        let mut snapshot_index = self.snapshot_index;
        let mut last_index = self.last_index;
        if let Some(snapshot) = &p.snapshot {
            self.check_snapshot(snapshot, hard_state)?;
            snapshot_index = snapshot.last_included_index;
            last_index = last_index.max(snapshot_index);
        }
        if let Some(from) = p.truncate_from {
            last_index = last_index.min(from.max(snapshot_index + 1) - 1);
        }
        for entry in &p.append {
            if entry.index != last_index + 1 {
                return Err(self.rejected(format!(
                    "appended entry has index {} but the log continues at {}",
                    entry.index,
                    last_index + 1
                )));
            }
            // Replay keeps the index after the last one representable, as the core does.
            if entry.index == Index::MAX {
                return Err(self.rejected(format!(
                    "appended entry has index {}, after which the log cannot continue",
                    entry.index
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

    fn check_snapshot(&self, s: &Snapshot, hard_state: HardState) -> Result<(), StorageError> {
        let (index, term) = (s.last_included_index, s.last_included_term);
        // Index 0 is the empty prefix, and the log's next index must stay representable.
        if index == 0 || index == Index::MAX || term == 0 {
            return Err(self.rejected(format!(
                "a snapshot through index {index} with term {term} covers no entry"
            )));
        }
        if term > hard_state.current_term {
            return Err(self.rejected(format!(
                "snapshot through index {index} has term {term}, above the current term {}",
                hard_state.current_term
            )));
        }
        if index < self.snapshot_index {
            return Err(self.rejected(format!(
                "snapshot would go back from index {} to {index}",
                self.snapshot_index
            )));
        }
        if index == self.snapshot_index && term != self.snapshot_term {
            return Err(self.rejected(format!(
                "snapshot through index {index} has term {term}, the current one term {}",
                self.snapshot_term
            )));
        }
        Ok(())
    }

    /// Makes everything staged durable: group commit, however many Persists were staged since
    /// the last sync; a no-op if nothing was staged. Without a snapshot that is at most one
    /// fsync/fdatasync per file touched (the directory excepted when a sync both changes the
    /// hard state and starts a segment). A staged snapshot adds the snapshot file's replacement
    /// and the compaction (see the module docs): about four more fsyncs, however many
    /// snapshots were staged.
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
        if let Some(snapshot) = self.staged_snapshot.take() {
            self.snapshot_file_len =
                snapshot_file::replace(&self.dir, &self.dir_handle, &snapshot)?;
        }
        if self.log.has_pending() {
            self.log.sync(&self.dir_handle)?;
        }
        Ok(())
    }

    /// Bytes of Raft state + log on disk as of the last sync (the lab's RaftStateSize): the
    /// `state` file and every segment of the log, headers and records no longer in the log
    /// included; not the snapshot.
    pub fn disk_size(&self) -> u64 {
        let state = if self.state_file_exists {
            state_file::STATE_LEN
        } else {
            0
        };
        state + self.log.disk_size()
    }

    /// Bytes of the `snapshot` file as of the last sync, its 44-byte header included; 0 without
    /// a snapshot.
    pub fn snapshot_size(&self) -> u64 {
        self.snapshot_file_len
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
