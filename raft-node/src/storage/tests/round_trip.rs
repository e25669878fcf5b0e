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
    persist(
        &mut storage,
        &mut model,
        Persist {
            hard_state: Some(hard_state(1, None)),
            snapshot: None,
            truncate_from: None,
            append: (1..=6).map(|i| entry(1, i, b"old")).collect(),
        },
    );
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

/// A random `Persist` the core could emit after `model`: terms never go back, entries continue
/// the log (after an optional truncation) with terms up to the current one.
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
    let mut last = model.last_index();
    if last > 0 && rng.gen_bool(0.15) {
        let from = rng.gen_range(1..=last + 1);
        p.truncate_from = Some(from);
        last = last.min(from - 1);
    }
    for _ in 0..rng.gen_range(0..5) {
        last += 1;
        let len = rng.gen_range(0..300);
        let command = (0..len).map(|_| rng.gen()).collect::<Vec<u8>>();
        p.append
            .push(entry(rng.gen_range(1..=term), last, &command));
    }
    p
}

#[test]
fn random_persist_sequences_round_trip() {
    for seed in 0..16 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let segment_bytes = [64, 2048, super::super::SEGMENT_BYTES][seed as usize % 3];
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, _) = open_with(dir.path(), segment_bytes);
        let mut model = Model::default();
        for step in 0..120 {
            for _ in 0..rng.gen_range(1..=4) {
                let p = random_persist(&mut rng, &model);
                storage
                    .stage(&p)
                    .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
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
                assert_eq!(
                    restored.hard_state, model.hard_state,
                    "seed {seed} step {step}"
                );
                assert_eq!(restored.entries, model.entries, "seed {seed} step {step}");
            }
        }
        drop(storage);
        let (_, restored) = open_with(dir.path(), segment_bytes);
        model.assert_restored(&restored);
    }
}
