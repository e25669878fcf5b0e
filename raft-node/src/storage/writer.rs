//! Writing the log: records are staged in memory and reach the segment files only in
//! [`LogWriter::sync`], which `Storage::sync` calls after the hard state and the snapshot are
//! durable, so a crash can leave them ahead of the log but never the log ahead of them.
//!
//! A sync either appends the staged records to the newest segment (starting a new one when it
//! is full) or, when a base marker was staged (a snapshot), writes the whole resulting log as a
//! new generation and deletes the old one: see [`LogWriter::start_generation`].

use super::atomic_file;
use super::error::StorageError;
use super::live_log::LiveLog;
use super::record::{self, Record};
use super::replay;
use super::segment::{self, SegmentFile, HEADER_LEN};
use crate::core::{Entry, Index};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::mem;
use std::path::{Path, PathBuf};

pub(super) struct LogWriter {
    dir: PathBuf,
    /// A segment that has reached this many bytes takes no more records.
    segment_bytes: u64,
    /// Durable segments of the current generation older than the active one, oldest first.
    sealed: Vec<SegmentFile>,
    /// The newest durable segment, open for appending.
    active: Option<ActiveSegment>,
    /// Records staged since the last sync, in order.
    pending: Vec<Record>,
    /// Whether `pending` holds a base marker, so the sync starts a new generation.
    compacting: bool,
}

struct ActiveSegment {
    seq: u64,
    len: u64,
    path: PathBuf,
    file: File,
}

/// Bytes to append to one segment; for a segment that does not exist yet they start with its
/// header.
struct Chunk {
    seq: u64,
    bytes: Vec<u8>,
}

impl LogWriter {
    /// Takes over the current generation's segments that replay found; the newest one is
    /// appended to.
    pub(super) fn new(
        dir: &Path,
        segment_bytes: u64,
        mut segments: Vec<SegmentFile>,
    ) -> Result<LogWriter, StorageError> {
        let active = match segments.pop() {
            Some(newest) => Some(ActiveSegment::open(dir, newest.seq, newest.len)?),
            None => None,
        };
        Ok(LogWriter {
            dir: dir.to_owned(),
            segment_bytes,
            sealed: segments,
            active,
            pending: Vec::new(),
            compacting: false,
        })
    }

    pub(super) fn stage_entry(&mut self, entry: &Entry) {
        self.pending.push(Record::Entry(entry.clone()));
    }

    pub(super) fn stage_truncate(&mut self, from: Index) {
        self.pending.push(Record::Truncate(from));
    }

    /// Stages "the log now starts at `first`" (every entry before it is in a snapshot that the
    /// caller makes durable before this sync).
    pub(super) fn stage_base(&mut self, first: Index) {
        self.pending.push(Record::Base(first));
        self.compacting = true;
    }

    pub(super) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Makes every staged record durable. Appending costs one write and one fdatasync per
    /// segment touched, plus one directory fsync if a segment was created; a compaction costs
    /// what [`LogWriter::start_generation`] does.
    pub(super) fn sync(&mut self, dir_handle: &File) -> Result<(), StorageError> {
        let pending = mem::take(&mut self.pending);
        if mem::take(&mut self.compacting) {
            let mut log = self.read_back()?;
            for record in pending {
                log.apply(record)
                    .map_err(|reason| StorageError::corrupt(&self.dir, None, reason))?;
            }
            self.start_generation(dir_handle, &log)
        } else {
            self.append(dir_handle, &pending)
        }
    }

    fn append(&mut self, dir_handle: &File, records: &[Record]) -> Result<(), StorageError> {
        let mut created = false;
        for chunk in self.chunks(records)? {
            let active = match self.active.take() {
                Some(active) if active.seq == chunk.seq => active,
                previous => {
                    // Its predecessor is already durable (synced earlier in this loop or by an
                    // earlier sync), so only the newest segment can ever end in a torn record.
                    if let Some(previous) = previous {
                        self.sealed.push(SegmentFile {
                            seq: previous.seq,
                            len: previous.len,
                        });
                    }
                    created = true;
                    ActiveSegment::create(&self.dir, chunk.seq)?
                }
            };
            self.active.insert(active).append(&chunk.bytes)?;
        }
        if created {
            dir_handle
                .sync_all()
                .map_err(StorageError::io(&self.dir, "fsync directory"))?;
        }
        Ok(())
    }

    /// Encodes `records` into per-segment chunks, starting a new segment whenever the current
    /// one is full. A record never spans segments, so a segment holds at least one record however
    /// small `segment_bytes` is.
    fn chunks(&self, records: &[Record]) -> Result<Vec<Chunk>, StorageError> {
        let mut chunks: Vec<Chunk> = Vec::new();
        // The newest segment's number and length once the chunks so far are written.
        let mut tail = self.active.as_ref().map(|a| (a.seq, a.len));
        for record in records {
            let seq = match tail {
                Some((seq, len)) if len < self.segment_bytes || len <= HEADER_LEN as u64 => seq,
                Some((seq, _)) => self.next_seq(seq)?,
                None => 1,
            };
            if chunks.last().map(|c| c.seq) != Some(seq) {
                let is_new = tail.map(|(tail_seq, _)| tail_seq) != Some(seq);
                let bytes = if is_new {
                    segment::header(seq)
                } else {
                    Vec::new()
                };
                chunks.push(Chunk { seq, bytes });
            }
            let chunk = chunks.last_mut().expect("a chunk for seq was just ensured");
            let before = chunk.bytes.len() as u64;
            record::encode(&mut chunk.bytes, record);
            let added = chunk.bytes.len() as u64 - before;
            tail = Some(match tail {
                Some((tail_seq, len)) if tail_seq == seq => (seq, len + added),
                _ => (seq, chunk.bytes.len() as u64),
            });
        }
        Ok(chunks)
    }

    /// The number of the segment after segment `seq`. No store numbers its way to the last u64
    /// (a segment per 4 MiB written); a segment named so was renamed by hand or damaged.
    fn next_seq(&self, seq: u64) -> Result<u64, StorageError> {
        seq.checked_add(1).ok_or_else(|| {
            StorageError::corrupt(
                &self.dir.join(segment::file_name(seq)),
                None,
                "the largest segment number there is: no segment can follow it",
            )
        })
    }

    /// The log the current generation's segments hold, read back from disk.
    fn read_back(&self) -> Result<LiveLog, StorageError> {
        let mut log = LiveLog::new(1);
        let segments = self
            .sealed
            .iter()
            .map(|s| (s.seq, s.len))
            .chain(self.active.as_ref().map(|a| (a.seq, a.len)));
        for (seq, len) in segments {
            let path = self.dir.join(segment::file_name(seq));
            replay::read_records(&path, len, &mut log)?;
        }
        Ok(log)
    }

    /// Replaces the log on disk with `log` as a new generation, in this order (the module docs
    /// of `storage` say what a crash between two steps leaves):
    ///
    /// 1. write its first segment, `log-<newest seq + 1>.seg`, as `segment.tmp`: the header, a
    ///    base marker for `log.first`, then every entry; fsync it;
    /// 2. rename it into place and fsync the directory: from here on replay starts at it;
    /// 3. delete every older segment. Their removal needs no fsync: one that comes back after a
    ///    power loss is older than the generation and replay removes it again.
    ///
    /// The caller has made durable the snapshot covering every index before `log.first`.
    pub(super) fn start_generation(
        &mut self,
        dir_handle: &File,
        log: &LiveLog,
    ) -> Result<(), StorageError> {
        let newest = self.active.as_ref().map(|a| a.seq);
        let seq = match newest {
            Some(newest) => self.next_seq(newest)?,
            None => 1,
        };
        let mut bytes = segment::header(seq);
        record::encode(&mut bytes, &Record::Base(log.first));
        for entry in &log.entries {
            record::encode_entry(&mut bytes, entry);
        }
        let name = segment::file_name(seq);
        atomic_file::replace(&self.dir, dir_handle, &name, segment::TMP_FILE, &bytes)?;
        let new_active = ActiveSegment::open(&self.dir, seq, bytes.len() as u64)?;
        let old: Vec<u64> = self
            .sealed
            .drain(..)
            .map(|s| s.seq)
            .chain(self.active.replace(new_active).map(|a| a.seq))
            .collect();
        for old_seq in old {
            let path = self.dir.join(segment::file_name(old_seq));
            fs::remove_file(&path).map_err(StorageError::io(&path, "remove"))?;
        }
        Ok(())
    }

    /// Bytes of the segment files as of the last sync.
    pub(super) fn disk_size(&self) -> u64 {
        self.sealed.iter().map(|s| s.len).sum::<u64>() + self.active.as_ref().map_or(0, |a| a.len)
    }
}

impl ActiveSegment {
    fn open(dir: &Path, seq: u64, len: u64) -> Result<ActiveSegment, StorageError> {
        let path = dir.join(segment::file_name(seq));
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(StorageError::io(&path, "open for appending"))?;
        Ok(ActiveSegment {
            seq,
            len,
            path,
            file,
        })
    }

    fn create(dir: &Path, seq: u64) -> Result<ActiveSegment, StorageError> {
        let path = dir.join(segment::file_name(seq));
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(StorageError::io(&path, "create"))?;
        Ok(ActiveSegment {
            seq,
            len: 0,
            path,
            file,
        })
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        self.file
            .write_all(bytes)
            .map_err(StorageError::io(&self.path, "append"))?;
        self.file
            .sync_data()
            .map_err(StorageError::io(&self.path, "fdatasync"))?;
        self.len += bytes.len() as u64;
        Ok(())
    }
}
