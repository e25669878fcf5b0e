//! A data directory as a node finds it at start. Each input first builds a valid store through
//! `Storage` itself (a short history of terms, appends, truncations and snapshots, so there are
//! real `state`, `snapshot` and segment files, compacted generations included), then damages its
//! files: byte flips, cuts, appended bytes, records with good checksums and any payload,
//! checksums recomputed after a flip (so the damage gets past them and reaches the decoding
//! behind), segments renumbered or copied, files removed or written whole.
//!
//! Then the node's start: `Storage::open` must return `Ok` or an error naming a file in the
//! directory, never panic or hang. What it returns must pass `check_restored` with an error
//! naming a file, or be state a Raft core accepts (`Raft::new`, whose debug assertions check
//! it); and the store must be usable: reopened as it is it restores the same state, and an entry
//! appended and synced is there after another reopen.

#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use raft_node::core::{
    Config, Entry, HardState, Index, Membership, Persist, Raft, Restored, Snapshot, Term,
};
use raft_node::storage::Storage;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bounds that keep one run to a few milliseconds.
const MAX_STEPS: usize = 12;
const MAX_DAMAGE: usize = 8;

#[derive(Arbitrary, Debug)]
struct Input {
    history: Vec<Step>,
    damage: Vec<Damage>,
}

/// One `Persist` and its sync, as the runtime makes them.
#[derive(Arbitrary, Debug)]
enum Step {
    /// A later term, maybe with a vote.
    Term { up: u8, vote: Option<u8> },
    /// Entries of the current term (term 1 first, on a fresh store).
    Append { count: u8, len: u8 },
    /// A follower's conflict: the last entries go.
    Truncate { back: u8 },
    /// The service's snapshot through an index of the log.
    Snapshot { back: u8, len: u8 },
    /// An InstallSnapshot past the end of the log, which replaces all of it.
    Install { ahead: u8, len: u8 },
}

/// What happens to the files afterwards. `file` picks one of the directory's files, in name
/// order, modulo their number.
#[derive(Arbitrary, Debug)]
enum Damage {
    Flip {
        file: u8,
        offset: u16,
        xor: u8,
    },
    Cut {
        file: u8,
        len: u16,
    },
    AppendBytes {
        file: u8,
        bytes: Vec<u8>,
    },
    /// A record with a good checksum; any payload.
    AppendRecord {
        file: u8,
        record: Record,
    },
    /// Recomputes every checksum of the file the way the store writes them.
    Reseal {
        file: u8,
    },
    /// A segment renamed to another number, its header resealed to match.
    Renumber {
        file: u8,
        seq: u64,
    },
    /// A segment copied to another number, its header resealed to match.
    Copy {
        file: u8,
        seq: u64,
    },
    Remove {
        file: u8,
    },
    Write {
        name: Name,
        bytes: Vec<u8>,
    },
}

#[derive(Arbitrary, Debug)]
enum Record {
    /// The entry that would continue the built log, `term_back` terms below the current one.
    Next {
        term_back: u8,
        command: Vec<u8>,
    },
    Entry {
        term: u64,
        index: u64,
        command: Vec<u8>,
    },
    Truncate(u64),
    Base(u64),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Name {
    State,
    Snapshot,
    StateTmp,
    SnapshotTmp,
    SegmentTmp,
    Segment(u64),
}

fuzz_target!(|input: Input| {
    let dir = tempfile::Builder::new()
        .prefix("storage_files")
        .tempdir_in(scratch())
        .expect("a scratch directory");
    let dir = dir.path();
    let model = build(dir, &input.history);
    for damage in input.damage.iter().take(MAX_DAMAGE) {
        apply(dir, &model, damage);
    }
    match Storage::open(dir) {
        Ok((storage, restored)) => check_usable(dir, storage, restored),
        Err(e) => {
            assert!(
                e.path().starts_with(dir),
                "{e} names no file of {}",
                dir.display()
            );
            assert!(!e.to_string().is_empty());
        }
    }
});

/// tmpfs when there is one: every sync fsyncs, and the fuzzer syncs a lot.
fn scratch() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

/// The store's meaning, to make each step a `Persist` the store accepts.
#[derive(Default)]
struct Model {
    term: Term,
    snapshot: Option<(Index, Term)>,
    /// (index, term) of the entries after the snapshot.
    entries: Vec<(Index, Term)>,
}

impl Model {
    fn last_index(&self) -> Index {
        self.entries
            .last()
            .map(|e| e.0)
            .or(self.snapshot.map(|s| s.0))
            .unwrap_or(0)
    }
}

fn build(dir: &Path, history: &[Step]) -> Model {
    let (mut storage, _) = Storage::open(dir).unwrap_or_else(|e| panic!("fresh store: {e}"));
    let mut model = Model::default();
    for step in history.iter().take(MAX_STEPS) {
        let Some(persist) = persist(&mut model, step) else {
            continue;
        };
        storage
            .stage(&persist)
            .unwrap_or_else(|e| panic!("{step:?} staged as {persist:?}: {e}"));
        storage.sync().unwrap_or_else(|e| panic!("sync: {e}"));
    }
    model
}

/// The `Persist` that `step` makes of `model`, which it updates; `None` when the step does not
/// apply (nothing to truncate, say).
fn persist(model: &mut Model, step: &Step) -> Option<Persist> {
    let data = |len: u8| vec![b's'; usize::from(len)];
    match *step {
        Step::Term { up, vote } => {
            model.term += 1 + Term::from(up % 4);
            Some(Persist {
                hard_state: Some(HardState {
                    current_term: model.term,
                    voted_for: vote.map(|v| u32::from(v) % MEMBERS),
                }),
                ..Persist::default()
            })
        }
        Step::Append { count, len } => {
            let mut p = Persist::default();
            if model.term == 0 {
                model.term = 1;
                p.hard_state = Some(HardState {
                    current_term: 1,
                    voted_for: None,
                });
            }
            let first = model.last_index() + 1;
            for index in first..first + Index::from(count % 16) + 1 {
                p.append.push(Entry::command(
                    model.term,
                    index,
                    vec![index as u8; usize::from(len)],
                ));
                model.entries.push((index, model.term));
            }
            Some(p)
        }
        Step::Truncate { back } => {
            let len = model.entries.len();
            if len == 0 {
                return None;
            }
            let keep = len - 1 - usize::from(back) % len;
            let from = model.entries[keep].0;
            model.entries.truncate(keep);
            Some(Persist {
                truncate_from: Some(from),
                ..Persist::default()
            })
        }
        Step::Snapshot { back, len } => {
            let count = model.entries.len();
            if count == 0 {
                return None;
            }
            let through = count - 1 - usize::from(back) % count;
            let (index, term) = model.entries[through];
            model.entries.drain(..=through);
            model.snapshot = Some((index, term));
            Some(Persist {
                snapshot: Some(Snapshot {
                    last_included_index: index,
                    last_included_term: term,
                    membership: Membership::voters(0..MEMBERS),
                    data: data(len),
                }),
                ..Persist::default()
            })
        }
        Step::Install { ahead, len } => {
            if model.term == 0 {
                return None;
            }
            let index = model.last_index() + 1 + Index::from(ahead % 8);
            model.entries.clear();
            model.snapshot = Some((index, model.term));
            Some(Persist {
                snapshot: Some(Snapshot {
                    last_included_index: index,
                    last_included_term: model.term,
                    membership: Membership::voters(0..MEMBERS),
                    data: data(len),
                }),
                truncate_from: Some(index + 1),
                ..Persist::default()
            })
        }
    }
}

/// The directory's files, in name order.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list the scratch directory")
        .map(|e| e.expect("list the scratch directory").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn pick(dir: &Path, file: u8) -> Option<PathBuf> {
    let files = files(dir);
    (!files.is_empty()).then(|| files[usize::from(file) % files.len()].clone())
}

fn segment_name(seq: u64) -> String {
    format!("log-{seq:020}.seg")
}

fn is_segment(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("log-") && n.ends_with(".seg"))
}

fn apply(dir: &Path, model: &Model, damage: &Damage) {
    match damage {
        Damage::Flip { file, offset, xor } => edit(dir, *file, |bytes| {
            if !bytes.is_empty() {
                let at = usize::from(*offset) % bytes.len();
                bytes[at] ^= xor;
            }
        }),
        Damage::Cut { file, len } => edit(dir, *file, |bytes| {
            bytes.truncate(usize::from(*len) % (bytes.len() + 1));
        }),
        Damage::AppendBytes { file, bytes: more } => {
            edit(dir, *file, |bytes| bytes.extend_from_slice(more))
        }
        Damage::AppendRecord { file, record } => edit(dir, *file, |bytes| {
            bytes.extend_from_slice(&encode(model, record))
        }),
        Damage::Reseal { file } => {
            if let Some(path) = pick(dir, *file) {
                let mut bytes = fs::read(&path).expect("read");
                reseal(&path, &mut bytes);
                fs::write(&path, bytes).expect("write");
            }
        }
        Damage::Renumber { file, seq } | Damage::Copy { file, seq } => {
            let Some(path) = pick(dir, *file).filter(|p| is_segment(p)) else {
                return;
            };
            let mut bytes = fs::read(&path).expect("read");
            if bytes.len() >= 16 {
                bytes[8..16].copy_from_slice(&seq.to_le_bytes());
            }
            reseal(&path, &mut bytes);
            if matches!(damage, Damage::Renumber { .. }) {
                fs::remove_file(&path).expect("remove");
            }
            fs::write(dir.join(segment_name(*seq)), bytes).expect("write");
        }
        Damage::Remove { file } => {
            if let Some(path) = pick(dir, *file) {
                fs::remove_file(path).expect("remove");
            }
        }
        Damage::Write { name, bytes } => {
            let name = match name {
                Name::State => "state".to_owned(),
                Name::Snapshot => "snapshot".to_owned(),
                Name::StateTmp => "state.tmp".to_owned(),
                Name::SnapshotTmp => "snapshot.tmp".to_owned(),
                Name::SegmentTmp => "segment.tmp".to_owned(),
                Name::Segment(seq) => segment_name(*seq),
            };
            fs::write(dir.join(name), bytes).expect("write");
        }
    }
}

fn edit(dir: &Path, file: u8, change: impl FnOnce(&mut Vec<u8>)) {
    if let Some(path) = pick(dir, file) {
        let mut bytes = fs::read(&path).expect("read");
        change(&mut bytes);
        fs::write(&path, bytes).expect("write");
    }
}

fn crc(bytes: &[u8]) -> [u8; 4] {
    crc32fast::hash(bytes).to_le_bytes()
}

/// A record as `storage::record` frames it: length, CRC32 of length and payload, payload.
fn encode(model: &Model, record: &Record) -> Vec<u8> {
    let mut payload = Vec::new();
    match record {
        Record::Next { term_back, command } => {
            payload.push(1);
            let term = model.term.saturating_sub(Term::from(*term_back));
            payload.extend_from_slice(&term.to_le_bytes());
            payload.extend_from_slice(&(model.last_index() + 1).to_le_bytes());
            payload.extend_from_slice(command);
        }
        Record::Entry {
            term,
            index,
            command,
        } => {
            payload.push(1);
            payload.extend_from_slice(&term.to_le_bytes());
            payload.extend_from_slice(&index.to_le_bytes());
            payload.extend_from_slice(command);
        }
        Record::Truncate(from) => {
            payload.push(2);
            payload.extend_from_slice(&from.to_le_bytes());
        }
        Record::Base(first) => {
            payload.push(3);
            payload.extend_from_slice(&first.to_le_bytes());
        }
        Record::Raw(raw) => payload.extend_from_slice(raw),
    }
    let len = (payload.len() as u32).to_le_bytes();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len);
    hasher.update(&payload);
    let mut bytes = len.to_vec();
    bytes.extend_from_slice(&hasher.finalize().to_le_bytes());
    bytes.extend_from_slice(&payload);
    bytes
}

/// Recomputes the checksums of a `state` (25 bytes: CRC of the 21 before), a `snapshot` (data
/// CRC at 32, header CRC of the 36 bytes before it at 36) or a segment (header CRC of 16 bytes
/// at 16, then each record's), so that damage behind them is what open meets.
fn reseal(path: &Path, bytes: &mut [u8]) {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name == "state" || name == "state.tmp" {
        seal(bytes, 21);
    } else if name == "snapshot" || name == "snapshot.tmp" {
        if bytes.len() >= 40 {
            let sum = crc(&bytes[40..]);
            bytes[32..36].copy_from_slice(&sum);
        }
        seal(bytes, 36);
    } else if is_segment(path) || name == "segment.tmp" {
        seal(bytes, 16);
        let mut at = 20;
        while at + 8 <= bytes.len() {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
            let Some(end) = (at + 8).checked_add(len).filter(|&end| end <= bytes.len()) else {
                break;
            };
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&bytes[at..at + 4]);
            hasher.update(&bytes[at + 8..end]);
            bytes[at + 4..at + 8].copy_from_slice(&hasher.finalize().to_le_bytes());
            at = end;
        }
    }
}

/// Puts the CRC32 of the `at` bytes before it at `at`.
fn seal(bytes: &mut [u8], at: usize) {
    if bytes.len() >= at + 4 {
        let sum = crc(&bytes[..at]);
        bytes[at..at + 4].copy_from_slice(&sum);
    }
}

/// The cluster size the node's start checks the restored state against.
const MEMBERS: u32 = 5;

/// What a successful open returned must pass the node's start (`check_restored`, then a Raft
/// core), reopen the same, and take a write.
fn check_usable(dir: &Path, storage: Storage, restored: Restored) {
    if let Err(e) = storage.check_restored(&restored, MEMBERS) {
        assert!(
            e.path().starts_with(dir),
            "{e} names no file of {}",
            dir.display()
        );
        return;
    }
    check_log(&restored);
    assert_eq!(
        storage.disk_size(),
        bytes_but_snapshot(dir),
        "disk_size after open disagrees with the files"
    );
    drop(storage);
    let (mut storage, again) =
        Storage::open(dir).unwrap_or_else(|e| panic!("reopening what opened: {e}"));
    assert_same(&restored, &again, "reopened as it was");

    // One more entry in the current term (term 1 on a store that never had one).
    let mut hard_state = restored.hard_state;
    let mut p = Persist::default();
    if hard_state.current_term == 0 {
        hard_state.current_term = 1;
        p.hard_state = Some(hard_state);
    }
    let last = restored.entries.last().map(|e| e.index).unwrap_or(
        restored
            .snapshot
            .as_ref()
            .map_or(0, |s| s.last_included_index),
    );
    let entry = Entry::command(hard_state.current_term, last + 1, b"after open".to_vec());
    p.append.push(entry.clone());
    storage
        .stage(&p)
        .unwrap_or_else(|e| panic!("staging {p:?} after open: {e}"));
    storage
        .sync()
        .unwrap_or_else(|e| panic!("sync after open: {e}"));
    drop(storage);
    let (_, after) = Storage::open(dir).unwrap_or_else(|e| panic!("reopening after a sync: {e}"));
    let mut expected = restored;
    expected.hard_state = hard_state;
    expected.entries.push(entry);
    assert_same(&expected, &after, "reopened after one more entry");
}

/// The restored log is one a Raft core can start from: `Raft::new` debug-asserts that entries
/// follow the snapshot without gaps, that terms never decrease, that none is above the current
/// term, and that the vote names a member.
fn check_log(restored: &Restored) {
    let config = Config {
        id: 0,
        members: MEMBERS,
        bootstrap: Membership::voters(0..MEMBERS),
        election_timeout_min: Duration::from_millis(300),
        election_timeout_max: Duration::from_millis(600),
        heartbeat_interval: Duration::from_millis(100),
        max_append_bytes: 60_000,
        seed: 1,
        relay: true,
    };
    Raft::new(config, restored.clone(), Duration::ZERO);
}

fn assert_same(a: &Restored, b: &Restored, what: &str) {
    assert_eq!(a.hard_state, b.hard_state, "{what}: hard state");
    assert_eq!(a.snapshot, b.snapshot, "{what}: snapshot");
    assert_eq!(a.entries, b.entries, "{what}: entries");
}

fn bytes_but_snapshot(dir: &Path) -> u64 {
    files(dir)
        .iter()
        .filter(|p| p.file_name().and_then(|n| n.to_str()) != Some("snapshot"))
        .map(|p| fs::metadata(p).expect("stat").len())
        .sum()
}
