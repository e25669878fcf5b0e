//! The simulator's seed runs (`raft_node::sim`): every seed a different cluster and schedule,
//! every property checked after every step, then liveness after healing.
//!
//! `SEED=n cargo test sim` replays seed n alone (in `sim_replay`; the ranges skip). Without
//! `SEED`, the ranges run about 500 seeds across 3, 5 and 7 members with and without snapshots,
//! split so that nextest runs them in parallel.

use raft_node::sim::{run_seed, Report, Style};
use std::ops::Range;

/// The seed to replay, if `SEED` is set.
fn replay_seed() -> Option<u64> {
    let value = std::env::var("SEED").ok()?;
    match value.trim().parse() {
        Ok(seed) => Some(seed),
        Err(_) => panic!("SEED={value:?} is not a seed: use a whole number, e.g. SEED=42"),
    }
}

/// Runs `seeds` (none when replaying one with `SEED`), panicking with the first failure's report.
fn run_seeds(seeds: Range<u64>) -> Vec<Report> {
    if let Some(seed) = replay_seed() {
        println!("SEED={seed}: only sim_replay runs");
        return Vec::new();
    }
    let reports: Vec<Report> = seeds
        .map(|seed| run_seed(seed).unwrap_or_else(|failure| panic!("{failure}")))
        .collect();
    let steps: u64 = reports.iter().map(|r| r.steps).sum();
    let committed: u64 = reports.iter().map(|r| r.committed).sum();
    let reads: usize = reports.iter().map(|r| r.reads).sum();
    let worst = reports.iter().map(|r| r.liveness).max().unwrap_or_default();
    println!(
        "{} seeds, {steps} steps, {committed} entries committed, {reads} reads confirmed; \
         slowest settling after heal {worst:?}",
        reports.len()
    );
    // The runs exercise what they claim to: elections, commits, reads confirmed and failed,
    // crashes (some with a sync under way), transfers, configuration changes, both styles, and
    // InstallSnapshot where services snapshot.
    assert!(reports
        .iter()
        .all(|r| r.leaders > 0 && r.committed > 0 && r.reads > 0));
    assert!(reports.iter().any(|r| r.failed_reads > 0));
    assert!(reports.iter().any(|r| r.crashes > 0));
    assert!(reports.iter().any(|r| r.crashes_unsynced > 0));
    assert!(reports.iter().any(|r| r.transfers > 0));
    assert!(reports.iter().any(|r| r.reconfigurations > 0));
    assert!(reports.iter().any(|r| r.style == Style::LeaderChurn));
    assert!(reports.iter().any(|r| r.style == Style::Chaos));
    assert!(reports.iter().any(|r| r.snapshots && r.snapshot_chunks > 0));
    reports
}

#[test]
fn sim_seeds_0_to_99() {
    run_seeds(0..100);
}

#[test]
fn sim_seeds_100_to_199() {
    run_seeds(100..200);
}

#[test]
fn sim_seeds_200_to_299() {
    run_seeds(200..300);
}

#[test]
fn sim_seeds_300_to_399() {
    run_seeds(300..400);
}

#[test]
fn sim_seeds_400_to_499() {
    run_seeds(400..500);
}

/// `SEED=n`: replays seed n (prints its report on failure). Either way, a seed run twice is
/// the same run: the same steps, the same trace digest, the same outcome.
#[test]
fn sim_replay() {
    let seed = replay_seed().unwrap_or(7);
    let first = run_seed(seed).unwrap_or_else(|failure| panic!("{failure}"));
    let second = run_seed(seed).expect("the second run of a seed that passed");
    assert_eq!(first, second, "seed {seed} ran differently twice");
    println!("{first:?}");
}

/// The constrained election (`sim::constrained_election`): with relaying, a command commits
/// within four maximum election timeouts of the cut on every seed tried; without it, the
/// liveness check fails (no one is elected).
#[test]
fn constrained_election_commits_only_with_relaying() {
    for seed in 0..20 {
        let worst = raft_node::sim::constrained_election(seed, true)
            .unwrap_or_else(|violation| panic!("seed {seed} with relaying: {violation}"));
        assert!(worst <= raft_node::sim::STRETCH, "seed {seed}: {worst:?}");
        let violation = raft_node::sim::constrained_election(seed, false)
            .expect_err("without relaying the constrained election elects no one");
        assert_eq!(violation.invariant, "liveness", "seed {seed}: {violation}");
    }
}
