//! A few short nemesis seeds in every `just test` (long campaigns: `just nemesis`): each must
//! end with a linearizable history, level replicas and no node that exited on its own.

use harness::nemesis::{self, Options};
use std::time::Duration;

fn campaign(seed: u64) {
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
    campaign(3);
}
