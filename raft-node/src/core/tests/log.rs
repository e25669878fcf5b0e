//! The in-memory log (Figure 2's `log[]`): term lookups used by fast backup (§5.3), the offset
//! by the snapshot (§7, Figure 13) and the durable-change bookkeeping behind `Ready::persist`
//! (Figure 2: persistent state is updated on stable storage before responding to RPCs).

use super::helpers::{entries, entry, log, snapshot};
use crate::core::log::{entry_size, RaftLog};
use crate::core::{Entry, Index, Persist, Snapshot};

fn persist(truncate_from: Option<Index>, append: Vec<Entry>) -> Persist {
    Persist {
        hard_state: None,
        snapshot: None,
        truncate_from,
        append,
    }
}

#[test]
fn term_lookups() {
    let l = RaftLog::restore(None, log(&[1, 1, 3, 3, 3, 5]));
    assert_eq!((l.first_index(), l.last_index(), l.last_term()), (1, 6, 5));
    assert_eq!(l.term(0), Some(0));
    assert_eq!(l.term(4), Some(3));
    assert_eq!(l.term(7), None);
    assert_eq!(l.first_index_of_term(3), Some(3));
    assert_eq!(l.last_index_of_term(3), Some(5));
    assert_eq!(l.first_index_of_term(2), None);
    assert_eq!(l.last_index_of_term(2), None);
    assert_eq!(l.last_index_of_term(6), None);
    assert_eq!(l.slice(5, 9), &log(&[1, 1, 3, 3, 3, 5])[4..]);
    assert!(l.slice(4, 3).is_empty());
}

/// A batch takes entries while their estimated size fits the budget, and always at least one,
/// so an entry larger than the budget still goes out.
#[test]
fn batches_fit_the_budget_but_never_starve() {
    let l = RaftLog::restore(None, log(&[1, 1, 1]));
    let size = entry_size(&l.slice(1, 1)[0]);
    assert_eq!(l.entries_from(1, 2 * size).len(), 2);
    assert_eq!(l.entries_from(1, 2 * size - 1).len(), 1);
    assert_eq!(l.entries_from(1, 1).len(), 1);
    assert_eq!(l.entries_from(2, usize::MAX).len(), 2);
    assert!(l.entries_from(4, usize::MAX).is_empty());
}

#[test]
fn restored_entries_are_already_durable() {
    let mut l = RaftLog::restore(None, log(&[1, 1]));
    assert_eq!(l.take_unpersisted(), Persist::default());
}

#[test]
fn appends_are_persisted_once() {
    let mut l = RaftLog::restore(None, log(&[1]));
    l.append(entry(2, 1));
    l.append(entry(3, 2));
    assert_eq!(l.take_unpersisted(), persist(None, entries(2, &[1, 2])));
    assert_eq!(l.take_unpersisted(), Persist::default());
}

/// Truncating durable entries must reach the disk; truncating entries never handed out as
/// durable needs no truncation there.
#[test]
fn truncation_of_durable_entries_is_persisted() {
    let mut l = RaftLog::restore(None, log(&[1, 1, 1]));
    l.truncate_from(3);
    l.append(entry(3, 2));
    assert_eq!(l.take_unpersisted(), persist(Some(3), entries(3, &[2])));

    l.append(entry(4, 2));
    l.append(entry(5, 2));
    l.truncate_from(5);
    l.append(entry(5, 3));
    assert_eq!(l.take_unpersisted(), persist(None, entries(4, &[2, 3])));
}

/// Several truncations before one `take_unpersisted` collapse to the lowest.
#[test]
fn truncations_merge_to_the_lowest() {
    let mut l = RaftLog::restore(None, log(&[1, 1, 1, 1]));
    l.truncate_from(4);
    l.append(entry(4, 2));
    l.append(entry(5, 2));
    l.truncate_from(2);
    l.append(entry(2, 3));
    assert_eq!(l.take_unpersisted(), persist(Some(2), entries(2, &[3])));
}

fn snapshot_persist(
    snapshot: Snapshot,
    truncate_from: Option<Index>,
    append: Vec<Entry>,
) -> Persist {
    Persist {
        snapshot: Some(snapshot),
        ..persist(truncate_from, append)
    }
}

/// §7: compaction drops the entries through the snapshot, keeps the lookups working at its
/// last included entry, and persists the snapshot once, along with entries not yet durable.
#[test]
fn compaction_offsets_the_log_by_the_snapshot() {
    let mut l = RaftLog::restore(None, log(&[1, 1, 2, 2]));
    l.append(entry(5, 2));
    l.compact(snapshot(3, 2, b"s"));
    assert_eq!((l.first_index(), l.last_index(), l.last_term()), (4, 5, 2));
    assert_eq!((l.term(2), l.term(3), l.term(4)), (None, Some(2), Some(2)));
    assert_eq!(l.slice(1, 9), &entries(4, &[2, 2])[..]);
    assert_eq!(
        l.take_unpersisted(),
        snapshot_persist(snapshot(3, 2, b"s"), None, entries(5, &[2]))
    );
    assert_eq!(l.take_unpersisted(), Persist::default());
}

/// A log restored with a snapshot holds the entries after it, all durable.
#[test]
fn a_restored_snapshot_is_durable() {
    let mut l = RaftLog::restore(Some(snapshot(3, 2, b"s")), entries(4, &[2]));
    assert_eq!(
        (l.first_index(), l.last_index(), l.snapshot_index()),
        (4, 4, 3)
    );
    assert_eq!(l.take_unpersisted(), Persist::default());
}

/// Figure 13 step 7: installing a snapshot that conflicts with durable entries after it removes
/// them on disk as well (`truncate_from` just past the snapshot).
#[test]
fn installing_over_a_conflicting_log_truncates_it() {
    let mut l = RaftLog::restore(None, log(&[1, 1, 1, 1, 1]));
    l.install(snapshot(3, 2, b"s"));
    assert_eq!((l.first_index(), l.last_index(), l.last_term()), (4, 3, 2));
    assert_eq!(
        l.take_unpersisted(),
        snapshot_persist(snapshot(3, 2, b"s"), Some(4), vec![])
    );
}

/// Figure 13 step 6: a matching last included entry keeps the suffix; a snapshot past the end
/// of the log needs no truncation (it discards everything durable).
#[test]
fn installing_keeps_a_matching_suffix() {
    let mut l = RaftLog::restore(None, log(&[1, 1, 2, 2]));
    l.install(snapshot(3, 2, b"s"));
    assert_eq!(l.slice(1, 9), &entries(4, &[2])[..]);
    assert_eq!(
        l.take_unpersisted(),
        snapshot_persist(snapshot(3, 2, b"s"), None, vec![])
    );

    let mut short = RaftLog::restore(None, log(&[1]));
    short.install(snapshot(9, 3, b"s"));
    assert_eq!((short.last_index(), short.last_term()), (9, 3));
    assert_eq!(
        short.take_unpersisted(),
        snapshot_persist(snapshot(9, 3, b"s"), None, vec![])
    );
}

/// A truncation not yet persisted that the snapshot overtakes becomes one just past it (the
/// snapshot discards everything before), and the entries after it are still written.
#[test]
fn a_pending_truncation_moves_past_the_snapshot() {
    let mut l = RaftLog::restore(None, log(&[1, 1, 1, 1]));
    l.truncate_from(2);
    l.append(entry(2, 2));
    l.append(entry(3, 2));
    l.append(entry(4, 2));
    l.install(snapshot(3, 2, b"s"));
    assert_eq!(
        l.take_unpersisted(),
        snapshot_persist(snapshot(3, 2, b"s"), Some(4), entries(4, &[2]))
    );
}
