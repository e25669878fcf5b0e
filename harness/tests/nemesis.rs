//! A few short nemesis seeds in every `just test` (long campaigns: `just nemesis`): each must
//! end with a linearizable history, level replicas and no node that exited on its own.
//! Seed 3's schedule includes a joint change of voters, so membership faults run in every
//! `just test` too.

use harness::nemesis::{self, Options};
use std::time::Duration;

/// Runs the campaign and returns the kinds of the faults it applied.
fn campaign(seed: u64) -> Vec<&'static str> {
    let opts = Options {
        seed,
        time: Duration::from_secs(12),
        clients: 4,
        nodes: 5,
        fault_every: Duration::from_secs(2),
        ..Options::default()
    };
    let report = nemesis::run(&opts);
    println!("{report}");
    assert!(report.passed(), "nemesis seed {seed} failed:\n{report}");
    assert!(!report.faults.is_empty(), "no fault was applied");
    let _ = std::fs::remove_dir_all(&report.run_dir);
    report
        .faults
        .iter()
        .map(|(_, fault)| fault.kind())
        .collect()
}

#[test]
fn nemesis_seed_1() {
    campaign(1);
}

#[test]
fn nemesis_seed_2() {
    campaign(2);
}

#[test]
fn nemesis_seed_3() {
    let kinds = campaign(3);
    assert!(
        kinds.contains(&"joint change"),
        "seed 3 no longer draws a membership change ({kinds:?}): pick a seed that does"
    );
}
