//! Writing the log: records are staged in memory and reach the segment files only in
//! [`LogWriter::sync`], which `Storage::sync` calls after the hard state is durable, so a
//! crash can leave the state ahead of the log but never the log ahead of the state.

use super::error::StorageError;
use super::record;
use super::segment::{self, SegmentFile, HEADER_LEN};
use crate::core::{Entry, Index};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::mem;
use std::path::{Path, PathBuf};

pub(super) struct LogWriter {
    dir: PathBuf,
    /// A segment that has reached this many bytes takes no more records.
    segment_bytes: u64,
    /// Durable segments older than the active one, oldest first.
    sealed: Vec<SegmentFile>,
    /// The newest durable segment, open for appending.
    active: Option<ActiveSegment>,
    /// Staged bytes, per segment, in write order. A chunk for a segment that does not exist
    /// yet starts with that segment's header.
    pending: Vec<Chunk>,
}

struct ActiveSegment {
    seq: u64,
    len: u64,
    path: PathBuf,
    file: File,
}

struct Chunk {
    seq: u64,
    bytes: Vec<u8>,
}

impl LogWriter {
    /// Takes over the segments replay found; the newest one is appended to.
    pub(super) fn new(
        dir: &Path,
        segment_bytes: u64,
        mut segments: Vec<SegmentFile>,
    ) -> Result<LogWriter, StorageError> {
        let active = match segments.pop() {
            Some(newest) => {
                let path = dir.join(segment::file_name(newest.seq));
                let file = OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(StorageError::io(&path, "open for appending"))?;
                Some(ActiveSegment {
                    seq: newest.seq,
                    len: newest.len,
                    path,
                    file,
                })
            }
            None => None,
        };
        Ok(LogWriter {
            dir: dir.to_owned(),
            segment_bytes,
            sealed: segments,
            active,
            pending: Vec::new(),
        })
    }

    pub(super) fn stage_entry(&mut self, entry: &Entry) {
        record::encode_entry(self.tail(), entry);
    }

    pub(super) fn stage_truncate(&mut self, from: Index) {
        record::encode_truncate(self.tail(), from);
    }

    /// The buffer the next record goes into, starting a new segment when the current one is
    /// full. A record never spans segments, so a segment holds at least one record however
    /// small `segment_bytes` is.
    fn tail(&mut self) -> &mut Vec<u8> {
        let next_seq = match self.projected_tail() {
            Some((seq, len)) if len < self.segment_bytes || len <= HEADER_LEN as u64 => {
                if self.pending.is_empty() {
                    self.pending.push(Chunk {
                        seq,
                        bytes: Vec::new(),
                    });
                }
                None
            }
            Some((seq, _)) => Some(seq + 1),
            None => Some(1),
        };
        if let Some(seq) = next_seq {
            self.pending.push(Chunk {
                seq,
                bytes: segment::header(seq),
            });
        }
        &mut self
            .pending
            .last_mut()
            .expect("a chunk is pending or was just pushed")
            .bytes
    }

    /// The newest segment's sequence number and length once everything staged is written.
    fn projected_tail(&self) -> Option<(u64, u64)> {
        let active = self.active.as_ref().map(|a| (a.seq, a.len));
        match self.pending.last() {
            Some(chunk) => {
                let written = match active {
                    Some((seq, len)) if seq == chunk.seq => len,
                    _ => 0,
                };
                Some((chunk.seq, written + chunk.bytes.len() as u64))
            }
            None => active,
        }
    }

    pub(super) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Writes and fdatasyncs every staged chunk: one write and one fdatasync per segment
    /// touched, plus one directory fsync if a segment was created.
    pub(super) fn sync(&mut self, dir_handle: &File) -> Result<(), StorageError> {
        let mut created = false;
        for chunk in mem::take(&mut self.pending) {
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

    /// Bytes of the segment files as of the last sync.
    pub(super) fn disk_size(&self) -> u64 {
        self.sealed.iter().map(|s| s.len).sum::<u64>() + self.active.as_ref().map_or(0, |a| a.len)
    }
}

impl ActiveSegment {
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
