//! What open makes of the three things it read: the `state` file, the `snapshot` file and the
//! replayed log. At rest the log's current generation starts right after the snapshot; a crash
//! during a compaction can leave it starting earlier, and open then finishes the compaction.

use super::error::StorageError;
use super::live_log::LiveLog;
use super::{snapshot_file, state_file};
use crate::core::{HardState, Restored, Snapshot};
use std::path::Path;

/// The log after the snapshot, and whether the disk still holds a longer one: a crash came
/// after the snapshot was made durable but before the compaction's new generation was renamed
/// into place. The entries after the snapshot are then kept only where Figure 13 (step 6)
/// keeps them: when the log holds the snapshot's last entry with the same term. Otherwise they
/// belong to a history the snapshot replaced (an InstallSnapshot that was to discard them), and
/// keeping them behind the snapshot would splice two histories.
pub(super) fn log_after_snapshot(
    dir: &Path,
    snapshot: Option<&Snapshot>,
    log: LiveLog,
) -> Result<(LiveLog, bool), StorageError> {
    let (index, term) = snapshot.map_or((0, 0), |s| (s.last_included_index, s.last_included_term));
    let first = index + 1;
    if log.first == first {
        return Ok((log, false));
    }
    if log.first > first {
        let held = match snapshot {
            Some(_) => format!("ends at index {index}"),
            None => "is missing".to_owned(),
        };
        return Err(StorageError::corrupt(
            &snapshot_file::path(dir),
            None,
            format!(
                "{held} but the log starts at index {}: the entries between are lost",
                log.first
            ),
        ));
    }
    let matches = log.term_at(index) == Some(term);
    log::info!(
        "{}: finishing a compaction a crash interrupted: the log starts at index {}, the \
         snapshot ends at {index}; {} the entries after it",
        dir.display(),
        log.first,
        if matches { "keeping" } else { "discarding" }
    );
    let mut after = LiveLog::new(first);
    if matches {
        let skip = usize::try_from(first - log.first).unwrap_or(usize::MAX);
        after.entries = log.entries.into_iter().skip(skip).collect();
    }
    Ok((after, true))
}

/// Checks that nothing durable has a term above the stored current term. A sync makes the hard
/// state durable before the snapshot and the log records of the same batch, and `stage` refuses
/// a snapshot or an entry with a term above the current one, so no crash leaves that state: it
/// means `state` was lost or replaced by an older copy. Snapshots and entries always have a term
/// of at least 1, so a missing `state` beside either is caught too; starting from term 0 could
/// let the node vote twice in a term.
pub(super) fn check_terms(
    dir: &Path,
    stored: Option<HardState>,
    snapshot: Option<&Snapshot>,
    log: &LiveLog,
) -> Result<(), StorageError> {
    let current_term = stored.map_or(0, |hs| hs.current_term);
    let snapshot_term = snapshot.map(|s| {
        let what = format!(
            "the snapshot through index {} has term {}",
            s.last_included_index, s.last_included_term
        );
        (s.last_included_term, what)
    });
    let entry_term = log.entries.iter().max_by_key(|e| e.term).map(|e| {
        let what = format!(
            "the log has an entry of term {} (index {})",
            e.term, e.index
        );
        (e.term, what)
    });
    let newest = [snapshot_term, entry_term]
        .into_iter()
        .flatten()
        .max_by_key(|(term, _)| *term);
    let Some((term, what)) = newest else {
        return Ok(());
    };
    if term <= current_term {
        return Ok(());
    }
    let held = match stored {
        Some(hs) => format!("holds current term {}", hs.current_term),
        None => "is missing".to_owned(),
    };
    Err(StorageError::corrupt(
        &state_file::path(dir),
        None,
        format!("{held} but {what}: the state file is older than the log"),
    ))
}

/// See [`super::Storage::check_restored`]. A log whose terms go back is reported against the data
/// directory: the entries may come from any of its segments.
pub(super) fn check_for_core(
    dir: &Path,
    restored: &Restored,
    members: u32,
) -> Result<(), StorageError> {
    if let Some(node) = restored
        .hard_state
        .voted_for
        .filter(|&node| node >= members)
    {
        return Err(StorageError::corrupt(
            &state_file::path(dir),
            None,
            format!(
                "votes for node {node}, but the cluster has {members} node(s): the data dir of \
                 another cluster?"
            ),
        ));
    }
    let mut previous = restored
        .snapshot
        .as_ref()
        .map(|s| (s.last_included_index, s.last_included_term));
    for entry in &restored.entries {
        if let Some((index, term)) = previous.filter(|&(_, term)| entry.term < term) {
            return Err(StorageError::corrupt(
                dir,
                None,
                format!(
                    "the log's entry {} has term {}, below the term {term} of index {index} \
                     before it: not a log Raft writes",
                    entry.index, entry.term
                ),
            ));
        }
        previous = Some((entry.index, entry.term));
    }
    Ok(())
}
