//! A few short nemesis seeds in every `just test` (long campaigns: `just nemesis`): each must
//! end with a linearizable history, level replicas and no node that exited on its own.
//! Seed 3's schedule includes a joint change of voters, so membership faults run in every
//! `just test` too.

use harness::nemesis::sharded::{self, ShardedOptions};
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
    let _ = std::fs::remove_dir_all(&report.outcome.run_dir);
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

/// One short sharded campaign (`just nemesis --groups 3` runs long ones): Joins, Leaves and
/// Moves under group-shaped faults, then every shard at exactly one group and nothing left
/// behind by a hand-off.
#[test]
fn sharded_nemesis_seed_1() {
    let opts = ShardedOptions {
        seed: 1,
        time: Duration::from_secs(12),
        clients: 4,
        fault_every: Duration::from_secs(2),
        reconfig_every: Duration::from_secs(1),
        ..ShardedOptions::default()
    };
    let report = sharded::run(&opts);
    println!("{report}");
    assert!(report.passed(), "sharded nemesis seed 1 failed:\n{report}");
    assert!(!report.faults.is_empty(), "no fault was applied");
    assert!(report.reconfigs.len() > 3, "too few configuration changes");
    let final_config = report.final_config.as_ref().expect("a final configuration");
    assert_eq!(
        final_config.groups.len(),
        3,
        "every group joined at the end"
    );
    let _ = std::fs::remove_dir_all(&report.outcome.run_dir);
}
