//! The in-memory log (Figure 2's `log[]`), offset by the latest snapshot (§7), and the
//! bookkeeping of which part of it is durable.
//!
//! Indices are 1-based. The log holds the entries after the snapshot's last included index
//! (after 0, the empty prefix, when there is no snapshot); the snapshot stands for every entry
//! through that index, and its last included term answers `term(snapshot_index)`, which is
//! what the consistency check at the first held entry needs. Every lookup goes through
//! `snapshot_index`, so nothing else changes when the first held index moves past 1.
//!
//! Terms in a Raft log never decrease with the index (a leader appends entries of its own term,
//! which is at least every term it holds, and followers copy leaders' prefixes), so lookups by
//! term are binary searches.

use super::{Entry, Index, Membership, Persist, Snapshot, Term};

/// Encoded-size allowance for an entry's framing (term, index, byte-string header) on top of its
/// command bytes, used to fit AppendEntries into one datagram. MessagePack needs at most 24.
pub const ENTRY_OVERHEAD: usize = 24;

/// The estimated encoded size of `entry` inside an AppendEntries.
pub fn entry_size(entry: &Entry) -> usize {
    entry.command.len() + ENTRY_OVERHEAD
}

pub(crate) struct RaftLog {
    /// The latest snapshot; it replaces every entry through its last included index.
    snapshot: Option<Snapshot>,
    /// Invariant: `entries[i].index == snapshot_index() + 1 + i`, terms non-decreasing from
    /// `snapshot_term()`.
    entries: Vec<Entry>,
    /// Durable-state bookkeeping. Invariant: the durable log, once the unpersisted snapshot (if
    /// any) has discarded what it covers, equals this log below `unpersisted_from`; after also
    /// removing every durable entry >= `truncate_from`, the entries from `unpersisted_from` on
    /// are what remains to be written.
    unpersisted_from: Index,
    truncate_from: Option<Index>,
    snapshot_unpersisted: bool,
    /// The runtime has made this log durable through this index (`Raft::persisted`): what a
    /// leader may count itself for (§10.2.1 of the thesis). Never above the last index, and
    /// lowered by whatever removes or replaces entries it covered.
    durable: Index,
}

impl RaftLog {
    /// A log restored from durable storage (so nothing is left to persist): `entries` follow
    /// `snapshot`.
    pub fn restore(snapshot: Option<Snapshot>, entries: Vec<Entry>) -> RaftLog {
        let mut log = RaftLog {
            snapshot,
            entries,
            unpersisted_from: 0,
            truncate_from: None,
            snapshot_unpersisted: false,
            durable: 0,
        };
        log.unpersisted_from = log.last_index() + 1;
        log.durable = log.last_index();
        debug_assert!(log.is_well_formed(), "restored log is malformed");
        log
    }

    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// The snapshot's last included index: 0 when there is none.
    pub fn snapshot_index(&self) -> Index {
        self.snapshot.as_ref().map_or(0, |s| s.last_included_index)
    }

    /// The snapshot's last included term: 0 when there is none.
    pub fn snapshot_term(&self) -> Term {
        self.snapshot.as_ref().map_or(0, |s| s.last_included_term)
    }

    /// The index of the first entry held in memory.
    pub fn first_index(&self) -> Index {
        self.snapshot_index() + 1
    }

    pub fn last_index(&self) -> Index {
        self.snapshot_index() + self.entries.len() as Index
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.snapshot_term(), |e| e.term)
    }

    /// The term of the entry at `index`; `None` if the log does not hold it (the snapshot holds
    /// the term of its last included entry only).
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == self.snapshot_index() {
            return Some(self.snapshot_term());
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

    /// The latest configuration at or below `through`: the last configuration entry, else the
    /// snapshot's, with the index it takes effect from; `None` before any (the bootstrap
    /// configuration applies). Scans back from `through`, so callers ask only when the answer
    /// may have changed.
    pub fn latest_membership(&self, through: Index) -> Option<(Index, &Membership)> {
        self.slice(self.first_index(), through)
            .iter()
            .rev()
            .find_map(|e| e.membership().map(|m| (e.index, m)))
            .or_else(|| {
                let s = self.snapshot.as_ref()?;
                Some((s.last_included_index, &s.membership))
            })
    }

    /// The index through which this log is known durable.
    pub fn durable(&self) -> Index {
        self.durable
    }

    /// The runtime made durable every `Persist` taken up to the one after which the log ended
    /// at `index` with `term`. Log Matching makes (index, term) name that log's whole prefix,
    /// so a report that a later truncation made stale does not match and changes nothing.
    /// Returns whether `durable` advanced.
    pub fn persisted(&mut self, index: Index, term: Term) -> bool {
        let advanced = index > self.durable && self.term(index) == Some(term);
        if advanced {
            self.durable = index;
        }
        advanced
    }

    pub fn append(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index, self.last_index() + 1);
        debug_assert!(entry.term >= self.last_term());
        self.entries.push(entry);
    }

    /// Deletes the entry at `index` and all that follow it (Figure 2, AppendEntries step 3).
    pub fn truncate_from(&mut self, index: Index) {
        debug_assert!(index > self.snapshot_index() && index <= self.last_index());
        self.entries.truncate((index - self.first_index()) as usize);
        self.durable = self.durable.min(index - 1);
        if index < self.unpersisted_from {
            // Entries at or after `index` may already be durable: the runtime must remove them.
            self.truncate_from = Some(self.truncate_from.map_or(index, |t| t.min(index)));
            self.unpersisted_from = index;
        }
    }

    /// Replaces the entries through `snapshot`'s last included index, which the log holds,
    /// with `snapshot` (§7: the service's snapshot of what it applied).
    pub fn compact(&mut self, snapshot: Snapshot) {
        debug_assert!(snapshot.last_included_index > self.snapshot_index());
        debug_assert_eq!(
            self.term(snapshot.last_included_index),
            Some(snapshot.last_included_term)
        );
        self.replace_prefix(snapshot);
    }

    /// Figure 13, receiver steps 6–7: if the log holds the snapshot's last included entry, the
    /// entries after it stay; otherwise the whole log is discarded. Either way `snapshot`
    /// replaces everything through its last included index.
    pub fn install(&mut self, snapshot: Snapshot) {
        let (index, term) = (snapshot.last_included_index, snapshot.last_included_term);
        debug_assert!(index > self.snapshot_index());
        if self.term(index) != Some(term) {
            // What is durable may part from the snapshot's history anywhere after the old
            // snapshot; only that much is known to agree with it.
            self.durable = self.durable.min(self.snapshot_index());
            if index < self.last_index() {
                self.truncate_from(index + 1);
            }
        }
        self.replace_prefix(snapshot);
    }

    fn replace_prefix(&mut self, snapshot: Snapshot) {
        let index = snapshot.last_included_index;
        let covered = (index - self.snapshot_index()).min(self.entries.len() as Index);
        self.entries.drain(..covered as usize);
        // The snapshot discards the durable entries it covers (Persist applies it before the
        // truncation), so nothing at or below `index` is left to write or to truncate.
        self.unpersisted_from = self.unpersisted_from.max(index + 1);
        self.truncate_from = self.truncate_from.map(|t| t.max(index + 1));
        self.snapshot = Some(snapshot);
        self.snapshot_unpersisted = true;
    }

    /// The log changes made since the last call, as a durable-state effect (the hard state is
    /// the caller's to fill in). Afterwards the whole log counts as persisted.
    pub fn take_unpersisted(&mut self) -> Persist {
        let append = self
            .slice(self.unpersisted_from, self.last_index())
            .to_vec();
        self.unpersisted_from = self.last_index() + 1;
        let snapshot = std::mem::take(&mut self.snapshot_unpersisted)
            .then(|| self.snapshot.clone())
            .flatten();
        Persist {
            hard_state: None,
            snapshot,
            truncate_from: self.truncate_from.take(),
            append,
        }
    }

    fn position(&self, index: Index) -> Option<usize> {
        if index <= self.snapshot_index() || index > self.last_index() {
            return None;
        }
        Some((index - self.first_index()) as usize)
    }

    /// Contiguous indices after the snapshot, terms non-decreasing from its term.
    pub fn is_well_formed(&self) -> bool {
        let mut expected = (self.snapshot_index(), self.snapshot_term());
        self.entries.iter().all(|e| {
            let ok = e.index == expected.0 + 1 && e.term >= expected.1;
            expected = (e.index, e.term);
            ok
        })
    }
}
