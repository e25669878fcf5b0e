//! What is synced comes back on reopen, exactly as the model applies it.

use super::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[test]
fn hard_state_truncation_and_appends_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, restored) = open(dir.path());
    let mut model = Model::default();
    model.assert_restored(&restored);

    let steps = [
        Persist {
            hard_state: Some(hard_state(1, Some(2))),
            snapshot: None,
            truncate_from: None,
            append: vec![entry(1, 1, b"a"), entry(1, 2, b""), entry(1, 3, b"c")],
        },
        Persist {
            hard_state: Some(hard_state(2, None)),
            snapshot: None,
            truncate_from: Some(2),
            append: vec![entry(2, 2, b"b2"), entry(2, 3, b"c2"), entry(2, 4, b"d2")],
        },
        // A truncation past the end removes nothing.
        Persist {
            hard_state: None,
            snapshot: None,
            truncate_from: Some(9),
            append: vec![entry(2, 5, b"e")],
        },
        Persist {
            hard_state: Some(hard_state(3, Some(1))),
            snapshot: None,
            truncate_from: Some(1),
            append: vec![],
        },
        append(vec![entry(3, 1, b"x")]),
    ];
    for p in steps {
        persist(&mut storage, &mut model, p);
        drop(storage);
        let restored;
        (storage, restored) = open(dir.path());
        model.assert_restored(&restored);
        assert_eq!(storage.disk_size(), bytes_in_dir(dir.path()));
    }
}

#[test]
fn several_staged_persists_are_one_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    let mut model = Model::default();
    let batch = [
        Persist {
            hard_state: Some(hard_state(1, Some(0))),
            snapshot: None,
            truncate_from: None,
            append: vec![entry(1, 1, b"one"), entry(1, 2, b"two")],
        },
        Persist {
            hard_state: Some(hard_state(2, Some(1))),
            snapshot: None,
            truncate_from: Some(2),
            append: vec![entry(2, 2, b"two'")],
        },
        append(vec![entry(2, 3, b"three")]),
    ];
    for p in &batch {
        storage.stage(p).unwrap();
        model.apply(p);
    }
    storage.sync().unwrap();
    drop(storage);
    let (_, restored) = open(dir.path());
    model.assert_restored(&restored);
}

#[test]
fn a_truncation_reaching_back_across_segments_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    // Every segment fills up with its first record: one entry per segment.
    let (mut storage, _) = open_with(dir.path(), 1);
    let mut model = Model::default();
    persist(&mut storage, &mut model, term_one_with(6, b"old"));
    assert!(segment_path(dir.path(), 6).exists());
    persist(
        &mut storage,
        &mut model,
        Persist {
            hard_state: Some(hard_state(2, None)),
            snapshot: None,
            truncate_from: Some(3),
            append: vec![entry(2, 3, b"new"), entry(2, 4, b"new")],
        },
    );
    drop(storage);
    let (mut storage, restored) = open_with(dir.path(), 1);
    model.assert_restored(&restored);
    assert_eq!(storage.disk_size(), bytes_in_dir(dir.path()));

    persist(&mut storage, &mut model, append(vec![entry(2, 5, b"more")]));
    drop(storage);
    let (_, restored) = open_with(dir.path(), 1);
    model.assert_restored(&restored);
}

/// A random `Persist` the core could emit after `model`: terms never go back, snapshots never
/// go back (the service's, through an index in the log with that entry's term, or a leader's
/// InstallSnapshot replacing the log, possibly beyond its end), entries continue the log (after
/// an optional truncation, which may reach into the snapshot) with terms up to the current one.
fn random_persist(rng: &mut SmallRng, model: &Model) -> Persist {
    let mut p = Persist::default();
    let mut term = model.hard_state.current_term;
    if term == 0 || rng.gen_bool(0.2) {
        term += rng.gen_range(1..=2);
        let voted_for = rng.gen_bool(0.5).then(|| rng.gen_range(0..5));
        p.hard_state = Some(hard_state(term, voted_for));
    } else if rng.gen_bool(0.05) {
        // An unchanged hard state: the sync must not rewrite `state` for it.
        p.hard_state = Some(model.hard_state);
    }
    let mut snapshot_index = model.snapshot_index();
    let mut last = model.last_index();
    if rng.gen_bool(0.1) {
        let data = random_bytes(rng, 200);
        if last > snapshot_index && rng.gen_bool(0.7) {
            snapshot_index = rng.gen_range(snapshot_index + 1..=last);
            let entry_term = model
                .term_at(snapshot_index)
                .expect("the index is in the log");
            p.snapshot = Some(snapshot(snapshot_index, entry_term, &data));
        } else {
            snapshot_index = rng.gen_range(snapshot_index + 1..=last + 10);
            p.snapshot = Some(snapshot(snapshot_index, rng.gen_range(1..=term), &data));
            p.truncate_from = Some(snapshot_index + 1);
            last = snapshot_index;
        }
    }
    if p.truncate_from.is_none() && last > 0 && rng.gen_bool(0.15) {
        let from = rng.gen_range(1..=last + 1);
        p.truncate_from = Some(from);
        last = last.min(from.max(snapshot_index + 1) - 1);
    }
    for _ in 0..rng.gen_range(0..5) {
        last += 1;
        let command = random_bytes(rng, 300);
        p.append
            .push(entry(rng.gen_range(1..=term), last, &command));
    }
    p
}

fn random_bytes(rng: &mut SmallRng, max_len: usize) -> Vec<u8> {
    let len = rng.gen_range(0..max_len);
    (0..len).map(|_| rng.gen()).collect()
}

#[test]
fn random_persist_sequences_round_trip() {
    for seed in 0..24 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let segment_bytes = [64, 2048, super::super::SEGMENT_BYTES][seed as usize % 3];
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, _) = open_with(dir.path(), segment_bytes);
        let mut model = Model::default();
        for step in 0..200 {
            for _ in 0..rng.gen_range(1..=4) {
                let p = random_persist(&mut rng, &model);
                storage
                    .stage(&p)
                    .unwrap_or_else(|e| panic!("seed {seed} step {step}: {e}\n{p:?}"));
                model.apply(&p);
            }
            storage.sync().unwrap();
            assert_eq!(
                storage.disk_size(),
                bytes_in_dir(dir.path()),
                "seed {seed} step {step}"
            );
            if rng.gen_bool(0.15) {
                drop(storage);
                let restored;
                (storage, restored) = open_with(dir.path(), segment_bytes);
                let at = format!("seed {seed} step {step}");
                assert_eq!(restored.hard_state, model.hard_state, "{at}");
                assert_eq!(restored.snapshot, model.snapshot, "{at}");
                assert_eq!(restored.entries, model.entries, "{at}");
            }
        }
        drop(storage);
        let (_, restored) = open_with(dir.path(), segment_bytes);
        model.assert_restored(&restored);
    }
}
