//! The replica groups' reconfiguration model (`raft_node::shardkv::model`): every seed a
//! different set of groups, configurations, clerks and faults, the invariants checked at every
//! step, then everything settled after healing.
//!
//! `SEED=n cargo test -p raft-node --test shard_model` replays seed n alone (in `model_replay`;
//! the ranges skip). Without `SEED`, 300 seeds, split so that nextest runs them in parallel.

use raft_node::shardkv::model::{run_seed, Report};
use std::ops::Range;

fn replay_seed() -> Option<u64> {
    let value = std::env::var("SEED").ok()?;
    match value.trim().parse() {
        Ok(seed) => Some(seed),
        Err(_) => panic!("SEED={value:?} is not a seed: use a whole number, e.g. SEED=42"),
    }
}

/// Runs `seeds` (none when replaying one), panicking with the first failure's report, and
/// checks that they exercised what the model claims to.
fn run_seeds(seeds: Range<u64>) {
    if replay_seed().is_some() {
        println!("SEED set: only model_replay runs");
        return;
    }
    let reports: Vec<Report> = seeds
        .map(|seed| run_seed(seed).unwrap_or_else(|failure| panic!("{failure}")))
        .collect();
    let sum = |f: fn(&Report) -> u64| reports.iter().map(f).sum::<u64>();
    println!(
        "{} seeds: {} steps, {} configurations, {} shards arrived ({} in several parts), {} \
         deleted, {} appends, {} reads, {} restarts",
        reports.len(),
        sum(|r| r.steps),
        sum(|r| r.configs),
        sum(|r| r.arrived),
        sum(|r| r.multipart),
        sum(|r| r.deleted),
        sum(|r| r.appends),
        sum(|r| r.reads),
        sum(|r| r.restarts),
    );
    assert!(reports.iter().all(|r| r.configs > 0 && r.appends > 0));
    for (what, count) in [
        ("shards arrived", sum(|r| r.arrived)),
        ("shards in several parts", sum(|r| r.multipart)),
        ("deletions", sum(|r| r.deleted)),
        ("reads", sum(|r| r.reads)),
        ("leader changes", sum(|r| r.leader_changes)),
        ("restarts", sum(|r| r.restarts)),
        ("snapshots", sum(|r| r.snapshots)),
        ("dropped messages", sum(|r| r.dropped)),
        ("duplicated messages", sum(|r| r.duplicated)),
    ] {
        assert!(count > 0, "no {what} in {} seeds", reports.len());
    }
}

#[test]
fn model_seeds_0_to_99() {
    run_seeds(0..100);
}

#[test]
fn model_seeds_100_to_199() {
    run_seeds(100..200);
}

#[test]
fn model_seeds_200_to_299() {
    run_seeds(200..300);
}

#[test]
fn model_replay() {
    let Some(seed) = replay_seed() else {
        return;
    };
    match run_seed(seed) {
        Ok(report) => println!("seed {seed} passed: {report:?}"),
        Err(failure) => panic!("{failure}"),
    }
}
