//! Whole-cluster runs on the simulator's network (`crate::sim::Cluster`, which checks the
//! safety properties after every step): fast backup in round trips (§5.3), the lab's message
//! budgets, and agreement after leader churn under long reordering. The randomized safety and
//! liveness runs are the simulator's seeds (`raft-node/tests/sim.rs`).

use super::helpers::{self, ms};
use crate::core::{Config, HardState, Index, NodeId, Restored, Term};
use crate::sim::{Cluster, Faults, Violation};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Proposes `command` at the current leader until every peer applies it; returns its index.
/// Panics after 20 s of virtual time.
fn commit_everywhere(c: &mut Cluster, command: Vec<u8>) -> Result<Index, Violation> {
    let deadline = c.now + ms(20_000);
    Ok(c.agree(command, deadline)?.expect("agreement within 20 s"))
}

fn restored(term: Term, log_terms: &[Term]) -> Restored {
    Restored {
        hard_state: HardState {
            current_term: term,
            voted_for: None,
        },
        snapshot: None,
        entries: helpers::log(log_terms),
    }
}

/// Three peers: n0 (which times out first and wins) and n1 hold `leader_log`; n2 holds
/// `lagging_log`. Returns the AppendEntries sent to n2 until its log equals the leader's.
fn catch_up(leader_log: &[Term], lagging_log: &[Term]) -> Result<usize, Violation> {
    let term = leader_log
        .iter()
        .chain(lagging_log)
        .max()
        .copied()
        .unwrap_or(0);
    let configs: Vec<Config> = (0..3)
        .map(|id| Config {
            election_timeout_min: ms(if id == 0 { 10 } else { 300 }),
            election_timeout_max: ms(if id == 0 { 11 } else { 600 }),
            ..helpers::config(id, 3)
        })
        .collect();
    let states = vec![
        restored(term, leader_log),
        restored(term, leader_log),
        restored(term, lagging_log),
    ];
    let mut c = Cluster::with_state(configs, states, 7, Faults::reliable());
    let caught_up = |c: &Cluster| {
        let (leader, lagging) = (&c.raft(0).log, &c.raft(2).log);
        c.leader() == Some(0)
            && lagging.last_index() == leader.last_index()
            && lagging.term(lagging.last_index()) == leader.term(leader.last_index())
    };
    assert!(c.run_until(ms(1_000), caught_up)?);
    assert_eq!(c.leader(), Some(0 as NodeId));
    Ok(c.stats.appends_to[2])
}

/// §5.3 fast backup: a follower with a 50-entry conflicting tail from a term the leader lacks
/// catches up in two round trips (the probe, then the whole suffix), not 50.
#[test]
fn conflicting_tail_of_fifty_is_repaired_in_two_round_trips() -> Result<(), Violation> {
    let mut leader = vec![1; 10];
    leader.extend([3; 50]);
    let mut lagging = vec![1; 10];
    lagging.extend([2; 50]);
    assert_eq!(catch_up(&leader, &lagging)?, 2);
    Ok(())
}

/// §5.3 fast backup over several terms: one round trip per conflicting term at most, plus the
/// final batch; a short log is skipped to its end at once.
#[test]
fn multi_term_divergence_needs_a_round_trip_per_term() -> Result<(), Violation> {
    let leader: Vec<Term> = [vec![1; 5], vec![4; 20], vec![6; 20]].concat();
    let lagging: Vec<Term> = [vec![1; 5], vec![2; 10], vec![3; 10], vec![5; 30]].concat();
    assert!(catch_up(&leader, &lagging)? <= 4);
    let short: Vec<Term> = vec![1; 3];
    assert_eq!(catch_up(&leader, &short)?, 2);
    Ok(())
}

/// The lab's TestInitialElection2A/TestCount2B budget: electing the first leader of three
/// costs at most 30 RPCs (60 datagrams) in the window the tester measures (~1 s).
#[test]
fn first_election_fits_the_lab_budget() -> Result<(), Violation> {
    for seed in 0..50 {
        let mut c = Cluster::new(3, seed, Faults::reliable());
        c.run_for(ms(1_000))?;
        assert!(c.leader().is_some(), "seed {seed}: no leader");
        assert!(
            c.stats.datagrams <= 60,
            "seed {seed}: {}",
            c.stats.datagrams
        );
    }
    Ok(())
}

/// TestCount2B: 1 + 11 back-to-back proposals committed on all three peers within
/// (10 + 1 + 3) * 3 = 42 RPCs (84 datagrams); then an idle second within 60 RPCs.
#[test]
fn agreement_and_idle_fit_the_lab_budget() -> Result<(), Violation> {
    for seed in 0..20 {
        let mut c = Cluster::new(3, seed, Faults::reliable());
        c.run_for(ms(1_000))?;
        let leader = c.leader().expect("a leader");
        let before = c.stats.datagrams;
        let mut last = 0;
        for i in 0..12u8 {
            last = c.propose(leader, vec![i])?.expect("leader accepts").0;
            c.run_for(ms(1))?;
        }
        let all_applied = |c: &Cluster| c.peers.iter().all(|p| p.applied >= last);
        assert!(c.run_until(c.now + ms(2_000), all_applied)?);
        let agreement = c.stats.datagrams - before;
        assert!(agreement <= 84, "seed {seed}: {agreement} datagrams");

        let before = c.stats.datagrams;
        c.run_for(ms(1_000))?;
        let idle = c.stats.datagrams - before;
        assert!(idle <= 120, "seed {seed}: {idle} datagrams idle");
    }
    Ok(())
}

/// TestRPCBytes2B: ten 5000-byte commands, each committed on all three before the next, reach
/// each follower exactly once — heartbeats never repeat acknowledged entries.
#[test]
fn each_command_reaches_each_follower_once() -> Result<(), Violation> {
    let mut c = Cluster::new(3, 3, Faults::reliable());
    c.run_for(ms(1_000))?;
    let before = c.stats.command_bytes;
    for i in 0..10u8 {
        commit_everywhere(&mut c, vec![i; 5_000])?;
    }
    assert_eq!(c.stats.command_bytes - before, 2 * 10 * 5_000);
    Ok(())
}

/// The lab's TestFigure8Unreliable2C network from its iteration 200 on, as netproxy makes it:
/// 10 % loss and, for about 42 % of datagrams (requests and replies), an extra delay of up to
/// 2.2 s.
fn long_reordering() -> Faults {
    Faults {
        drop: 0.1,
        duplicate: 0.0,
        // netproxy's UNRELIABLE_DELAY, 0..13 ms a datagram.
        delay_max: ms(14),
        long_delay_rate: 0.42,
        long_delay: ms(2_200),
    }
}

/// TestFigure8Unreliable2C's end: after leader churn on a long-reordering network, every peer
/// is reconnected while the network stays unreliable, and one command must commit on all five
/// within the tester's 10 s. Peers with stale logs must not keep deposing the one peer that can
/// win (§9.6).
#[test]
fn agreement_after_churn_under_long_reordering() -> Result<(), Violation> {
    let mut failures = Vec::new();
    for seed in 5000..5100 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut c = Cluster::new(5, seed, long_reordering());
        let mut command = 0u64;
        for _ in 0..300 {
            command += 1;
            let mut leader = None;
            for id in 0..5 {
                if c.propose(id, command.to_be_bytes().to_vec())?.is_some() {
                    leader = Some(id);
                }
            }
            let pause = if rng.gen_bool(0.1) { 500 } else { 13 };
            c.run_for(ms(rng.gen_range(0..pause)))?;
            if let Some(leader) = leader.filter(|_| rng.gen_bool(0.5)) {
                c.set_connected(leader, false)?;
            }
            while (0..5).filter(|&id| c.is_connected(id)).count() < 3 {
                c.set_connected(rng.gen_range(0..5), true)?;
            }
        }
        for id in 0..5 {
            c.set_connected(id, true)?;
        }
        let deadline = c.now + ms(10_000);
        if c.agree(b"after churn".to_vec(), deadline)?.is_none() {
            failures.push(seed);
        }
    }
    assert!(
        failures.is_empty(),
        "no agreement within 10 s: seeds {failures:?}"
    );
    Ok(())
}
