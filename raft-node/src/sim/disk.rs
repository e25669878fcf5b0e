//! What a simulated peer's disk holds: exactly the `Ready::persist` effects applied so far, in
//! the order `Persist` documents. A crash keeps this and loses everything else; a restart hands
//! it to `Raft::new`.
//!
//! Next to every entry it keeps the digest of the log through that entry ([`service::chain`]),
//! so that "do these two logs agree through index i" is one comparison. A snapshot's digest is
//! the one its data carries (the service's state after its last included index).

use super::service;
use crate::core::{Entry, HardState, Index, Persist, Restored, Snapshot, Term};

#[derive(Clone, Debug, Default)]
pub struct Disk {
    pub hard_state: HardState,
    snapshot: Option<Snapshot>,
    /// The digest through the snapshot's last included index (0 without a snapshot).
    snapshot_digest: u64,
    /// The entries after the snapshot, contiguous.
    entries: Vec<Entry>,
    /// `digests[i]`: the digest of the log through `entries[i]`.
    digests: Vec<u64>,
}

/// What one `Persist` wrote, for the checks that look at new data only.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// A snapshot replaced the log's prefix.
    pub snapshot: bool,
    /// Entries were removed from this index on.
    pub truncated_from: Option<Index>,
    /// The first index appended, if any were.
    pub appended_from: Option<Index>,
}

impl Disk {
    /// The disk of a peer that restarts from `restored`. Fails if the state is not a log
    /// (a gap, or a snapshot whose data is not the service's).
    pub fn new(restored: Restored) -> Result<Disk, String> {
        let mut disk = Disk {
            hard_state: restored.hard_state,
            ..Disk::default()
        };
        disk.apply(Persist {
            hard_state: None,
            snapshot: restored.snapshot,
            truncate_from: None,
            append: restored.entries,
        })?;
        Ok(disk)
    }

    /// Makes `persist` durable. Fails, changing nothing further, if it would leave a gap.
    pub fn apply(&mut self, persist: Persist) -> Result<Written, String> {
        let mut written = Written::default();
        if let Some(hard_state) = persist.hard_state {
            // As `Storage::stage` refuses it: a term going back could let a peer vote twice.
            if hard_state.current_term < self.hard_state.current_term {
                return Err(format!(
                    "persist takes the current term back from t{} to t{}",
                    self.hard_state.current_term, hard_state.current_term
                ));
            }
            self.hard_state = hard_state;
        }
        if let Some(snapshot) = persist.snapshot {
            let (index, digest) = service::parse_snapshot(&snapshot.data)
                .filter(|&(index, _)| index == snapshot.last_included_index)
                .ok_or_else(|| {
                    format!(
                        "snapshot through {} does not hold the service's state",
                        snapshot.last_included_index
                    )
                })?;
            if index <= self.snapshot_index() {
                return Err(format!(
                    "persist replaces the snapshot through {} with an older one through {index}",
                    self.snapshot_index()
                ));
            }
            let covered = self.entries.partition_point(|e| e.index <= index);
            self.entries.drain(..covered);
            self.digests.drain(..covered);
            self.snapshot = Some(snapshot);
            self.snapshot_digest = digest;
            written.snapshot = true;
        }
        if let Some(from) = persist.truncate_from {
            let kept = self.entries.partition_point(|e| e.index < from);
            if kept < self.entries.len() {
                written.truncated_from = Some(from);
            }
            self.entries.truncate(kept);
            self.digests.truncate(kept);
        }
        for entry in persist.append {
            let expected = self.last_index() + 1;
            if entry.index != expected {
                return Err(format!(
                    "persist appends index {} after {}: a gap",
                    entry.index,
                    expected - 1
                ));
            }
            written.appended_from.get_or_insert(entry.index);
            let digest = service::chain(self.digest_at(expected - 1).expect("held"), &entry);
            self.entries.push(entry);
            self.digests.push(digest);
        }
        Ok(written)
    }

    /// What `Raft::new` restarts from.
    pub fn restored(&self) -> Restored {
        Restored {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
        }
    }

    pub fn snapshot_index(&self) -> Index {
        self.snapshot.as_ref().map_or(0, |s| s.last_included_index)
    }

    pub fn snapshot_term(&self) -> Term {
        self.snapshot.as_ref().map_or(0, |s| s.last_included_term)
    }

    pub fn last_index(&self) -> Index {
        self.snapshot_index() + self.entries.len() as Index
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.snapshot_term(), |e| e.term)
    }

    /// The entry at `index`, if held (not compacted, not past the end).
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        let first = self.snapshot_index() + 1;
        index
            .checked_sub(first)
            .and_then(|i| self.entries.get(i as usize))
    }

    /// The digest of the log through `index`: the snapshot's at its last included index, 0 at
    /// index 0, `None` for a compacted index or one past the end.
    pub fn digest_at(&self, index: Index) -> Option<u64> {
        let snapshot_index = self.snapshot_index();
        if index == snapshot_index {
            return Some(self.snapshot_digest);
        }
        index
            .checked_sub(snapshot_index + 1)
            .and_then(|i| self.digests.get(i as usize).copied())
    }

    /// The entries from `from` on, each with the digest through it.
    pub fn entries_from(&self, from: Index) -> impl Iterator<Item = (&Entry, u64)> {
        let skip = from.saturating_sub(self.snapshot_index() + 1) as usize;
        self.entries
            .iter()
            .zip(self.digests.iter().copied())
            .skip(skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{EntryKind, Membership};

    fn entry(index: Index, term: Term) -> Entry {
        Entry {
            term,
            index,
            command: vec![index as u8, term as u8],
            kind: EntryKind::Command,
        }
    }

    fn append(entries: Vec<Entry>) -> Persist {
        Persist {
            append: entries,
            ..Persist::default()
        }
    }

    #[test]
    fn digests_chain_and_survive_truncation_and_compaction() {
        let mut disk = Disk::default();
        let written = disk
            .apply(append((1..=4).map(|i| entry(i, 1)).collect()))
            .unwrap();
        assert_eq!(written.appended_from, Some(1));
        let d2 = service::chain(service::chain(0, &entry(1, 1)), &entry(2, 1));
        assert_eq!(disk.digest_at(2), Some(d2));

        let written = disk
            .apply(Persist {
                truncate_from: Some(3),
                append: vec![entry(3, 2)],
                ..Persist::default()
            })
            .unwrap();
        assert_eq!(written.truncated_from, Some(3));
        assert_eq!((disk.last_index(), disk.last_term()), (3, 2));
        assert_eq!(disk.digest_at(3), Some(service::chain(d2, &entry(3, 2))));

        let snapshot = Snapshot {
            last_included_index: 2,
            last_included_term: 1,
            data: service::snapshot_data(2, d2, 16),
            membership: Membership::voters([0]),
        };
        disk.apply(Persist {
            snapshot: Some(snapshot),
            ..Persist::default()
        })
        .unwrap();
        assert_eq!(disk.digest_at(1), None);
        assert_eq!(disk.digest_at(2), Some(d2));
        assert_eq!(disk.entry(3), Some(&entry(3, 2)));
        assert_eq!(disk.restored().entries, vec![entry(3, 2)]);
    }

    #[test]
    fn a_gap_or_a_foreign_snapshot_is_refused() {
        let mut disk = Disk::default();
        assert!(disk.apply(append(vec![entry(2, 1)])).is_err());
        let foreign = Snapshot {
            last_included_index: 5,
            last_included_term: 1,
            data: b"abc".to_vec(),
            membership: Membership::voters([0]),
        };
        assert!(disk
            .apply(Persist {
                snapshot: Some(foreign),
                ..Persist::default()
            })
            .is_err());
    }
}
