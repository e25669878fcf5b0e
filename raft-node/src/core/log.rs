//! The in-memory log (Figure 2's `log[]`) and the bookkeeping of which part of it is durable.
//!
//! Indices are 1-based. The log holds the entries after `prev_index`: today `prev_index` is 0
//! (the empty prefix), and when log compaction (§7, lab 2D) arrives it becomes the snapshot's
//! last included index, with `prev_term` its term. Every lookup goes through `prev_index`, so
//! nothing else changes when the first held index moves past 1.
//!
//! Terms in a Raft log never decrease with the index (a leader appends entries of its own term,
//! which is at least every term it holds, and followers copy leaders' prefixes), so lookups by
//! term are binary searches.

use super::{Entry, Index, Persist, Term};

/// Encoded-size allowance for an entry's framing (term, index, byte-string header) on top of its
/// command bytes, used to fit AppendEntries into one datagram. MessagePack needs at most 24.
pub const ENTRY_OVERHEAD: usize = 24;

/// The estimated encoded size of `entry` inside an AppendEntries.
pub fn entry_size(entry: &Entry) -> usize {
    entry.command.len() + ENTRY_OVERHEAD
}

pub(crate) struct RaftLog {
    /// Index of the entry just before `entries[0]` (0 until the log is compacted).
    prev_index: Index,
    /// Term of the entry at `prev_index` (0 for the empty prefix).
    prev_term: Term,
    /// Invariant: `entries[i].index == prev_index + 1 + i`, terms non-decreasing.
    entries: Vec<Entry>,
    /// Durable-state bookkeeping. Invariant: the durable log equals this log below
    /// `unpersisted_from`; after removing every durable entry >= `truncate_from`, the entries
    /// from `unpersisted_from` on are what remains to be written.
    unpersisted_from: Index,
    truncate_from: Option<Index>,
}

impl RaftLog {
    /// A log restored from durable storage (so nothing is left to persist).
    pub fn restore(entries: Vec<Entry>) -> RaftLog {
        let log = RaftLog {
            prev_index: 0,
            prev_term: 0,
            unpersisted_from: entries.len() as Index + 1,
            truncate_from: None,
            entries,
        };
        debug_assert!(log.is_well_formed(), "restored log is malformed");
        log
    }

    /// The index of the first entry held in memory.
    pub fn first_index(&self) -> Index {
        self.prev_index + 1
    }

    pub fn last_index(&self) -> Index {
        self.prev_index + self.entries.len() as Index
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.prev_term, |e| e.term)
    }

    /// The term of the entry at `index`; `None` if the log does not hold it.
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == self.prev_index {
            return Some(self.prev_term);
        }
        self.position(index).map(|i| self.entries[i].term)
    }

    /// Entries with index in `[from, to]`, clipped to what the log holds.
    pub fn slice(&self, from: Index, to: Index) -> &[Entry] {
        let from = from.max(self.first_index());
        let to = to.min(self.last_index());
        if from > to {
            return &[];
        }
        let start = (from - self.first_index()) as usize;
        let end = (to - self.first_index()) as usize + 1;
        &self.entries[start..end]
    }

    /// Entries from `from` on whose estimated encoded size fits `max_bytes`; always at least one
    /// entry when `from` is in the log, so an entry larger than the budget still makes progress.
    pub fn entries_from(&self, from: Index, max_bytes: usize) -> &[Entry] {
        let all = self.slice(from, self.last_index());
        let mut bytes = 0;
        let n = all
            .iter()
            .take_while(|e| {
                bytes += entry_size(e);
                bytes <= max_bytes
            })
            .count();
        &all[..n.max(1).min(all.len())]
    }

    /// The first index holding `term` (searching the whole held log); `None` if no entry has it.
    pub fn first_index_of_term(&self, term: Term) -> Option<Index> {
        let i = self.entries.partition_point(|e| e.term < term);
        match self.entries.get(i) {
            Some(e) if e.term == term => Some(e.index),
            _ => None,
        }
    }

    /// The last index holding `term`; `None` if no entry has it.
    pub fn last_index_of_term(&self, term: Term) -> Option<Index> {
        let i = self.entries.partition_point(|e| e.term <= term);
        match i.checked_sub(1).map(|j| &self.entries[j]) {
            Some(e) if e.term == term => Some(e.index),
            _ => None,
        }
    }

    pub fn append(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index, self.last_index() + 1);
        debug_assert!(entry.term >= self.last_term());
        self.entries.push(entry);
    }

    /// Deletes the entry at `index` and all that follow it (Figure 2, AppendEntries step 3).
    pub fn truncate_from(&mut self, index: Index) {
        debug_assert!(index > self.prev_index && index <= self.last_index());
        self.entries.truncate((index - self.first_index()) as usize);
        if index < self.unpersisted_from {
            // Entries at or after `index` may already be durable: the runtime must remove them.
            self.truncate_from = Some(self.truncate_from.map_or(index, |t| t.min(index)));
            self.unpersisted_from = index;
        }
    }

    /// The log changes made since the last call, as a durable-state effect (the hard state is
    /// the caller's to fill in). Afterwards the whole log counts as persisted.
    pub fn take_unpersisted(&mut self) -> Persist {
        let append = self
            .slice(self.unpersisted_from, self.last_index())
            .to_vec();
        self.unpersisted_from = self.last_index() + 1;
        Persist {
            hard_state: None,
            snapshot: None,
            truncate_from: self.truncate_from.take(),
            append,
        }
    }

    fn position(&self, index: Index) -> Option<usize> {
        if index <= self.prev_index || index > self.last_index() {
            return None;
        }
        Some((index - self.first_index()) as usize)
    }

    /// Contiguous indices after `prev_index`, non-decreasing terms.
    pub fn is_well_formed(&self) -> bool {
        let mut expected = (self.prev_index, self.prev_term);
        self.entries.iter().all(|e| {
            let ok = e.index == expected.0 + 1 && e.term >= expected.1;
            expected = (e.index, e.term);
            ok
        })
    }
}
