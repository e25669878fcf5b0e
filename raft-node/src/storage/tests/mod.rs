//! Tests of the durable store. Each builds a store in a temporary directory, reopens it the way
//! a restarted process would, and compares what came back with [`Model`], the in-memory meaning
//! of the same `Persist`s.

mod compaction;
mod compaction_crash;
mod damage;
mod measure;
mod round_trip;
mod snapshot;
mod state;
mod usage;

use super::{segment, snapshot_file};
use super::{Storage, StorageError};
use crate::core::{
    Entry, EntryKind, HardState, Index, Membership, Persist, Restored, Snapshot, Term,
};
use std::fs;
use std::path::{Path, PathBuf};

/// What a sequence of `Persist`s means, applied in the documented order: the logical
/// (hard state, snapshot, entries after the snapshot).
#[derive(Clone, Debug, Default)]
struct Model {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
}

impl Model {
    fn apply(&mut self, p: &Persist) {
        if let Some(hard_state) = p.hard_state {
            self.hard_state = hard_state;
        }
        if let Some(snapshot) = &p.snapshot {
            self.entries
                .retain(|e| e.index > snapshot.last_included_index);
            self.snapshot = Some(snapshot.clone());
        }
        if let Some(from) = p.truncate_from {
            self.entries.retain(|e| e.index < from);
        }
        self.entries.extend_from_slice(&p.append);
    }

    fn snapshot_index(&self) -> Index {
        self.snapshot.as_ref().map_or(0, |s| s.last_included_index)
    }

    /// The last index the log covers, the snapshot included.
    fn last_index(&self) -> Index {
        self.entries
            .last()
            .map_or(self.snapshot_index(), |e| e.index)
    }

    fn term_at(&self, index: Index) -> Option<Term> {
        match &self.snapshot {
            Some(s) if s.last_included_index == index => Some(s.last_included_term),
            _ => self
                .entries
                .iter()
                .find(|e| e.index == index)
                .map(|e| e.term),
        }
    }

    fn assert_restored(&self, restored: &Restored) {
        assert_eq!(restored.hard_state, self.hard_state);
        assert_eq!(restored.snapshot, self.snapshot);
        assert_eq!(restored.entries, self.entries);
    }
}

fn entry(term: Term, index: Index, command: &[u8]) -> Entry {
    Entry {
        term,
        index,
        command: command.to_vec(),
        kind: EntryKind::Command,
    }
}

fn hard_state(current_term: Term, voted_for: Option<u32>) -> HardState {
    HardState {
        current_term,
        voted_for,
    }
}

fn snapshot(last_included_index: Index, last_included_term: Term, data: &[u8]) -> Snapshot {
    Snapshot {
        last_included_index,
        last_included_term,
        membership: Membership::voters([0, 1, 2]),
        data: data.to_vec(),
    }
}

/// The service's compaction: a snapshot of the log through `index`, whose term it takes.
fn compact_through(model: &Model, index: Index) -> Persist {
    let term = model.term_at(index).expect("the model holds the index");
    Persist {
        snapshot: Some(snapshot(
            index,
            term,
            format!("state through {index}").as_bytes(),
        )),
        ..Persist::default()
    }
}

fn append(entries: Vec<Entry>) -> Persist {
    Persist {
        append: entries,
        ..Persist::default()
    }
}

/// A first sync: term 1 and entries 1..=count of term 1, each holding `command`.
fn term_one_with(count: Index, command: &[u8]) -> Persist {
    Persist {
        hard_state: Some(hard_state(1, None)),
        append: (1..=count).map(|i| entry(1, i, command)).collect(),
        ..Persist::default()
    }
}

fn open(dir: &Path) -> (Storage, Restored) {
    Storage::open(dir).unwrap_or_else(|e| panic!("open: {e}"))
}

fn open_with(dir: &Path, segment_bytes: u64) -> (Storage, Restored) {
    Storage::open_with(dir, segment_bytes).unwrap_or_else(|e| panic!("open: {e}"))
}

fn open_err(dir: &Path) -> StorageError {
    match Storage::open(dir) {
        Ok((_, restored)) => panic!("open succeeded with {restored:?}"),
        Err(e) => e,
    }
}

/// Stages `p` in both the store and the model, then syncs the store.
fn persist(storage: &mut Storage, model: &mut Model, p: Persist) {
    storage.stage(&p).unwrap_or_else(|e| panic!("stage: {e}"));
    model.apply(&p);
    storage.sync().unwrap_or_else(|e| panic!("sync: {e}"));
}

/// A store holding term 1 and entries 1..=count, one sync each, like a follower receiving them
/// one AppendEntries at a time.
fn store_with_entries(dir: &Path, count: Index) -> (Storage, Model) {
    let (mut storage, _) = open(dir);
    let mut model = Model::default();
    persist(
        &mut storage,
        &mut model,
        Persist {
            hard_state: Some(hard_state(1, Some(0))),
            ..Persist::default()
        },
    );
    for index in 1..=count {
        let command = vec![index as u8; 100];
        persist(
            &mut storage,
            &mut model,
            append(vec![entry(1, index, &command)]),
        );
    }
    (storage, model)
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(segment::file_name(seq))
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .len()
}

/// Flips every bit of the byte at `offset` in `path`.
fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0xff;
    fs::write(path, bytes).unwrap();
}

/// Bytes of the files in `dir` but the snapshot, which `disk_size` must match after a sync.
fn bytes_in_dir(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != snapshot_file::SNAPSHOT_FILE)
        .map(|e| e.metadata().unwrap().len())
        .sum()
}
