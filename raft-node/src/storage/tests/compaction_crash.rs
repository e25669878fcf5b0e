//! A crash at every step of a sync that compacts. Each test runs the sync once to learn the
//! files before and after it, then builds in a fresh directory what a SIGKILL between two of
//! its steps leaves (see the module docs of `storage` for the order), and checks what open
//! makes of it: the old state, the new one, or the interrupted compaction finished. That the
//! code really takes the steps in that order is checked by making each step fail in turn.

use super::super::state_file::STATE_FILE;
use super::*;
use std::collections::BTreeMap;

type Files = BTreeMap<String, Vec<u8>>;

fn read_files(dir: &Path) -> Files {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn is_segment(name: &str) -> bool {
    name.starts_with("log-")
}

/// One compacting sync observed from outside.
struct Observed {
    before: Files,
    after: Files,
    model_before: Model,
    model_after: Model,
    segment_bytes: u64,
}

impl Observed {
    /// Runs `history`, then the `batch` in one sync, on a store whose segments take
    /// `segment_bytes`.
    fn run(segment_bytes: u64, history: &[Persist], batch: &[Persist]) -> Observed {
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, _) = open_with(dir.path(), segment_bytes);
        let mut model = Model::default();
        for p in history {
            persist(&mut storage, &mut model, p.clone());
        }
        let before = read_files(dir.path());
        let model_before = model.clone();
        for p in batch {
            storage.stage(p).unwrap();
            model.apply(p);
        }
        storage.sync().unwrap();
        Observed {
            before,
            after: read_files(dir.path()),
            model_before,
            model_after: model,
            segment_bytes,
        }
    }

    /// The new generation's first segment: the one segment that only `after` has.
    fn new_segment(&self) -> (&String, &Vec<u8>) {
        let mut new = self
            .after
            .iter()
            .filter(|(name, _)| is_segment(name) && !self.before.contains_key(*name));
        let found = new.next().expect("the sync started a generation");
        assert!(new.next().is_none());
        found
    }

    /// The old generation's segments, oldest first (the order compaction deletes them in).
    fn old_segments(&self) -> Vec<String> {
        self.before
            .keys()
            .filter(|name| is_segment(name))
            .cloned()
            .collect()
    }

    /// What open must restore once the snapshot is durable but the new generation is not:
    /// the new hard state and snapshot, and the old entries after the snapshot if the old log
    /// holds the snapshot's last entry with its term (Figure 13, step 6).
    fn model_finished_by_open(&self) -> Model {
        let snapshot = self.model_after.snapshot.clone().unwrap();
        let index = snapshot.last_included_index;
        let matches = self.model_before.term_at(index) == Some(snapshot.last_included_term);
        Model {
            hard_state: self.model_after.hard_state,
            entries: if matches {
                let old = &self.model_before.entries;
                old.iter().filter(|e| e.index > index).cloned().collect()
            } else {
                Vec::new()
            },
            snapshot: Some(snapshot),
        }
    }

    /// Every state a crash can leave, in the order the sync passes through them, each with
    /// what open must restore from it.
    fn crash_states(&self) -> Vec<(String, Files, Model)> {
        let mut states = Vec::new();
        let mut files = self.before.clone();
        let mut expected = self.model_before.clone();
        // 1. The state file.
        if self.before.get(STATE_FILE) != self.after.get(STATE_FILE) {
            let state = &self.after[STATE_FILE];
            push_with_tmp(&mut states, "state", &files, "state.tmp", state, &expected);
            files.insert(STATE_FILE.to_owned(), state.clone());
            expected.hard_state = self.model_after.hard_state;
            states.push((
                "after the state rename".to_owned(),
                files.clone(),
                expected.clone(),
            ));
        }
        // 2. The snapshot.
        let snapshot = &self.after[snapshot_file::SNAPSHOT_FILE];
        let tmp = snapshot_file::TMP_FILE;
        push_with_tmp(&mut states, "snapshot", &files, tmp, snapshot, &expected);
        files.insert(snapshot_file::SNAPSHOT_FILE.to_owned(), snapshot.clone());
        let expected = self.model_finished_by_open();
        states.push((
            "after the snapshot rename".to_owned(),
            files.clone(),
            expected.clone(),
        ));
        // 3. The new generation.
        let (new_name, new_bytes) = self.new_segment();
        push_with_tmp(
            &mut states,
            "segment",
            &files,
            segment::TMP_FILE,
            new_bytes,
            &expected,
        );
        files.insert(new_name.clone(), new_bytes.clone());
        // 4. Deleting the old generation, oldest first, and for good measure newest first.
        let old = self.old_segments();
        for order in [old.clone(), old.iter().rev().cloned().collect()] {
            let mut files = files.clone();
            states.push((
                "after the segment rename".to_owned(),
                files.clone(),
                self.model_after.clone(),
            ));
            for name in &order {
                files.remove(name);
                states.push((
                    format!("after deleting {name}"),
                    files.clone(),
                    self.model_after.clone(),
                ));
            }
        }
        assert_eq!(
            states.last().map(|(_, files, _)| files),
            Some(&self.after),
            "the last crash state is the sync's result"
        );
        states
    }

    /// Opens each crash state and checks the result, that the directory is then at rest (no
    /// temporary file, one generation starting after the snapshot) and that the store goes on.
    fn check_every_crash_state(&self) {
        for (what, files, expected) in self.crash_states() {
            let dir = tempfile::tempdir().unwrap();
            for (name, bytes) in &files {
                fs::write(dir.path().join(name), bytes).unwrap();
            }
            let (storage, restored) = Storage::open_with(dir.path(), self.segment_bytes)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let check = |restored: &Restored| {
                assert_eq!(restored.hard_state, expected.hard_state, "{what}");
                assert_eq!(restored.snapshot, expected.snapshot, "{what}");
                assert_eq!(restored.entries, expected.entries, "{what}");
            };
            check(&restored);
            assert_eq!(storage.disk_size(), bytes_in_dir(dir.path()), "{what}");
            let at_rest = read_files(dir.path());
            assert!(
                at_rest.keys().all(|name| !name.ends_with(".tmp")),
                "{what}: {:?}",
                at_rest.keys()
            );
            drop(storage);
            let (_, restored) = Storage::open_with(dir.path(), self.segment_bytes).unwrap();
            check(&restored);
            assert_eq!(
                read_files(dir.path()),
                at_rest,
                "{what}: a second open changed files"
            );

            let mut model = expected.clone();
            let (mut storage, _) = Storage::open_with(dir.path(), self.segment_bytes).unwrap();
            let term = model.hard_state.current_term;
            let next = model.last_index() + 1;
            persist(
                &mut storage,
                &mut model,
                append(vec![entry(term, next, b"on")]),
            );
            drop(storage);
            let (_, restored) = Storage::open_with(dir.path(), self.segment_bytes).unwrap();
            model.assert_restored(&restored);
        }
    }
}

/// Adds the states a crash while writing `tmp` (before its rename) leaves: it is empty, half
/// written or whole.
fn push_with_tmp(
    states: &mut Vec<(String, Files, Model)>,
    what: &str,
    files: &Files,
    tmp: &str,
    bytes: &[u8],
    expected: &Model,
) {
    for cut in [0, bytes.len() / 2, bytes.len()] {
        let mut files = files.clone();
        files.insert(tmp.to_owned(), bytes[..cut].to_vec());
        states.push((
            format!("before the {what} rename, {cut} bytes of {tmp}"),
            files,
            expected.clone(),
        ));
    }
}

/// A history of `count` entries of term 1, spread over several small segments, compacted
/// through `compacted` first when that is not 0 (so the old generation has a base marker).
fn history(count: Index, compacted: Index) -> Vec<Persist> {
    let mut history = vec![Persist {
        hard_state: Some(hard_state(1, Some(0))),
        ..Persist::default()
    }];
    for index in 1..=count {
        history.push(append(vec![entry(1, index, &[index as u8; 40])]));
        if index == compacted {
            history.push(Persist {
                snapshot: Some(snapshot(index, 1, b"earlier")),
                ..Persist::default()
            });
        }
    }
    history
}

const SMALL_SEGMENTS: u64 = 200;

fn service_compaction_batch() -> Vec<Persist> {
    vec![
        Persist {
            hard_state: Some(hard_state(2, Some(1))),
            append: vec![entry(2, 26, b"26")],
            ..Persist::default()
        },
        Persist {
            snapshot: Some(snapshot(20, 1, b"through 20")),
            ..Persist::default()
        },
        append(vec![entry(2, 27, b"27")]),
    ]
}

#[test]
fn a_sync_failing_at_each_step_has_done_exactly_the_steps_before_it() {
    let history = history(25, 10);
    let batch = service_compaction_batch();
    let observed = Observed::run(SMALL_SEGMENTS, &history, &batch);
    let mut hard_state_only = observed.model_before.clone();
    hard_state_only.hard_state = observed.model_after.hard_state;
    let steps = [
        ("state.tmp", observed.model_before.clone()),
        (snapshot_file::TMP_FILE, hard_state_only),
        (segment::TMP_FILE, observed.model_finished_by_open()),
    ];
    for (tmp, expected) in steps {
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, _) = open_with(dir.path(), SMALL_SEGMENTS);
        for p in &history {
            storage.stage(p).unwrap();
            storage.sync().unwrap();
        }
        for p in &batch {
            storage.stage(p).unwrap();
        }
        // A directory where the step's temporary file goes makes creating that file fail.
        let blocker = dir.path().join(tmp);
        fs::create_dir(&blocker).unwrap();
        let error = storage.sync().unwrap_err();
        assert_eq!(error.path(), blocker, "{error}");
        drop(storage);
        fs::remove_dir(&blocker).unwrap();

        let (_, restored) = open_with(dir.path(), SMALL_SEGMENTS);
        expected.assert_restored(&restored);
    }
}

#[test]
fn a_service_compaction_with_appends_around_it() {
    let observed = Observed::run(
        SMALL_SEGMENTS,
        &history(25, 10),
        &service_compaction_batch(),
    );
    assert!(observed.old_segments().len() > 2);
    observed.check_every_crash_state();
}

#[test]
fn a_compaction_of_a_log_never_compacted_before() {
    let observed = Observed::run(
        SMALL_SEGMENTS,
        &history(12, 0),
        &[Persist {
            snapshot: Some(snapshot(9, 1, b"through 9")),
            ..Persist::default()
        }],
    );
    observed.check_every_crash_state();
}

#[test]
fn an_install_snapshot_over_a_conflicting_entry() {
    // Entry 22 has term 1, the snapshot's last entry term 2: the old entries after it are from
    // another history and a finished compaction must not keep them.
    let observed = Observed::run(
        SMALL_SEGMENTS,
        &history(25, 10),
        &[Persist {
            hard_state: Some(hard_state(3, None)),
            snapshot: Some(snapshot(22, 2, b"leader's")),
            truncate_from: Some(23),
            append: vec![entry(3, 23, b"23")],
        }],
    );
    assert!(observed.model_finished_by_open().entries.is_empty());
    observed.check_every_crash_state();
}

#[test]
fn an_install_snapshot_over_a_matching_entry() {
    let observed = Observed::run(
        SMALL_SEGMENTS,
        &history(25, 10),
        &[Persist {
            hard_state: Some(hard_state(3, None)),
            snapshot: Some(snapshot(22, 1, b"leader's")),
            truncate_from: Some(23),
            append: vec![],
        }],
    );
    assert_eq!(observed.model_finished_by_open().entries.len(), 3);
    observed.check_every_crash_state();
}

#[test]
fn an_install_snapshot_beyond_the_log() {
    let observed = Observed::run(
        SMALL_SEGMENTS,
        &history(15, 5),
        &[Persist {
            hard_state: Some(hard_state(2, None)),
            snapshot: Some(snapshot(40, 2, b"far ahead")),
            truncate_from: Some(41),
            append: vec![entry(2, 41, b"41")],
        }],
    );
    observed.check_every_crash_state();
}

#[test]
fn a_compaction_with_an_unchanged_hard_state_and_one_segment() {
    let observed = Observed::run(
        super::super::SEGMENT_BYTES,
        &history(8, 3),
        &[Persist {
            snapshot: Some(snapshot(6, 1, b"through 6")),
            ..Persist::default()
        }],
    );
    assert_eq!(observed.old_segments().len(), 1);
    observed.check_every_crash_state();
}

#[test]
fn a_fresh_node_whose_first_persist_is_an_install_snapshot() {
    let observed = Observed::run(
        super::super::SEGMENT_BYTES,
        &[],
        &[Persist {
            hard_state: Some(hard_state(4, Some(2))),
            snapshot: Some(snapshot(30, 3, b"everything so far")),
            truncate_from: Some(31),
            append: vec![],
        }],
    );
    assert!(observed.old_segments().is_empty());
    observed.check_every_crash_state();
}
