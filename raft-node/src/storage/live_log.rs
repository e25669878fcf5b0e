//! The log that a sequence of records means: the entries after the snapshot, contiguous from
//! `first`. Replay builds it from the segments on disk, and compaction from the segments plus
//! the records staged since the last sync, so both read records by the same rules.

use super::record::Record;
use crate::core::{Entry, Index, Term};

#[derive(Debug, PartialEq, Eq)]
pub(super) struct LiveLog {
    /// The index the first entry has, or would have when there is none; at least 1.
    pub first: Index,
    /// Entries `first, first + 1, ...`.
    pub entries: Vec<Entry>,
}

impl LiveLog {
    pub fn new(first: Index) -> LiveLog {
        LiveLog {
            first,
            entries: Vec::new(),
        }
    }

    /// The last entry's index; `first - 1` when the log is empty.
    pub fn last_index(&self) -> Index {
        self.first + self.entries.len() as u64 - 1
    }

    pub fn term_at(&self, index: Index) -> Option<Term> {
        let offset = index.checked_sub(self.first)?;
        let entry = self.entries.get(usize::try_from(offset).ok()?)?;
        Some(entry.term)
    }

    /// Applies one record; an entry that does not continue the log is refused with the reason.
    pub fn apply(&mut self, record: Record) -> Result<(), String> {
        match record {
            Record::Entry(entry) => {
                let expected = self.last_index() + 1;
                // The last index must stay representable, so `last_index() + 1` is too.
                if entry.index != expected || entry.index == Index::MAX {
                    return Err(format!(
                        "entry has index {} where the log continues at {expected}",
                        entry.index
                    ));
                }
                self.entries.push(entry);
            }
            Record::Truncate(from) => self.truncate_from(from),
            Record::Base(first) => self.start_at(first),
        }
        Ok(())
    }

    /// Removes every entry with index >= `from`; those before `first` are gone already.
    fn truncate_from(&mut self, from: Index) {
        let keep = from.saturating_sub(self.first);
        self.entries
            .truncate(usize::try_from(keep).unwrap_or(usize::MAX));
    }

    /// Drops every entry before `first`, which a snapshot now covers. A `first` past the end
    /// leaves the log empty, continuing at `first`; one at or before the current start changes
    /// nothing (a snapshot never gives entries back).
    fn start_at(&mut self, first: Index) {
        if first <= self.first {
            return;
        }
        let drop = usize::try_from(first - self.first).unwrap_or(usize::MAX);
        self.entries.drain(..drop.min(self.entries.len()));
        self.first = first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::EntryKind;

    fn entry(term: Term, index: Index) -> Entry {
        Entry {
            term,
            index,
            command: Vec::new(),
            kind: EntryKind::Command,
        }
    }

    fn log_of(first: Index, terms: &[Term]) -> LiveLog {
        let mut log = LiveLog::new(first);
        for (offset, &term) in terms.iter().enumerate() {
            log.apply(Record::Entry(entry(term, first + offset as u64)))
                .unwrap();
        }
        log
    }

    #[test]
    fn a_base_inside_the_log_drops_the_prefix_and_one_past_it_empties_the_log() {
        let mut log = log_of(1, &[1, 1, 2, 2]);
        log.apply(Record::Base(3)).unwrap();
        assert_eq!(log, log_of(3, &[2, 2]));
        assert_eq!(log.term_at(3), Some(2));
        assert_eq!(log.term_at(2), None);

        log.apply(Record::Base(9)).unwrap();
        assert_eq!(log, LiveLog::new(9));
        assert_eq!(log.last_index(), 8);
        log.apply(Record::Base(4)).unwrap();
        assert_eq!(log, LiveLog::new(9));
        assert!(log.apply(Record::Entry(entry(3, 10))).is_err());
        log.apply(Record::Entry(entry(3, 9))).unwrap();
        assert_eq!(log, log_of(9, &[3]));
    }

    #[test]
    fn a_truncation_before_the_start_empties_the_log_but_keeps_its_start() {
        let mut log = log_of(5, &[1, 1, 1]);
        log.apply(Record::Truncate(6)).unwrap();
        assert_eq!(log, log_of(5, &[1]));
        log.apply(Record::Truncate(2)).unwrap();
        assert_eq!(log, LiveLog::new(5));
        log.apply(Record::Truncate(0)).unwrap();
        assert_eq!(log.last_index(), 4);
    }
}
