//! The one error type of the storage module. Every variant names the file it is about, so an
//! operator reading a failed node's log knows where to look.

use super::block::FORMAT_VERSION;
use std::error::Error;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum StorageError {
    /// An operating-system call on `path` failed.
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    /// `path` holds bytes this store did not write: a checksum mismatch, a record that does not
    /// decode, a gap in the log, a state file older than the log. `offset` locates it in a log
    /// segment.
    Corrupt {
        path: PathBuf,
        offset: Option<u64>,
        reason: String,
    },
    /// `path` was written in a format version this build cannot read.
    UnsupportedVersion { path: PathBuf, version: u32 },
    /// The caller staged a `Persist` that would break the log's invariants; nothing of it was
    /// staged. `path` is the data directory.
    Rejected { path: PathBuf, reason: String },
    /// An earlier write or sync of `path` failed. After a failed fsync the kernel may have
    /// dropped the dirty pages and a retry could falsely succeed, so the store refuses all
    /// further work; reopening it re-reads what is really on disk.
    Failed { path: PathBuf },
}

impl StorageError {
    /// The file (or, for `Rejected`, the directory) the error is about.
    pub fn path(&self) -> &Path {
        match self {
            StorageError::Io { path, .. }
            | StorageError::Corrupt { path, .. }
            | StorageError::UnsupportedVersion { path, .. }
            | StorageError::Rejected { path, .. }
            | StorageError::Failed { path } => path,
        }
    }

    pub(super) fn io<'a>(
        path: &'a Path,
        action: &'static str,
    ) -> impl FnOnce(io::Error) -> Self + 'a {
        move |source| StorageError::Io {
            path: path.to_owned(),
            action,
            source,
        }
    }

    pub(super) fn corrupt(path: &Path, offset: Option<u64>, reason: impl Into<String>) -> Self {
        StorageError::Corrupt {
            path: path.to_owned(),
            offset,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Io {
                path,
                action,
                source,
            } => write!(f, "{}: {action}: {source}", path.display()),
            StorageError::Corrupt {
                path,
                offset: Some(offset),
                reason,
            } => write!(
                f,
                "{}: corrupt at offset {offset}: {reason}",
                path.display()
            ),
            StorageError::Corrupt {
                path,
                offset: None,
                reason,
            } => write!(f, "{}: corrupt: {reason}", path.display()),
            StorageError::UnsupportedVersion { path, version } => write!(
                f,
                "{}: format version {version} is not supported (this build reads version \
                 {FORMAT_VERSION})",
                path.display()
            ),
            StorageError::Rejected { path, reason } => {
                write!(f, "{}: cannot stage: {reason}", path.display())
            }
            StorageError::Failed { path } => write!(
                f,
                "{}: an earlier write or sync failed; reopen the storage",
                path.display()
            ),
        }
    }
}

impl Error for StorageError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            StorageError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
