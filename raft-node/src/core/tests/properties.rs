//! Whole-cluster runs on the in-memory network (`cluster.rs`): randomized faults checking the
//! safety properties of §5.2/§5.4 and liveness after healing, with and without services that
//! snapshot (§7), fast backup in round trips (§5.3), and the lab's message budgets.

use super::cluster::{Cluster, Net, Stats};
use super::helpers::{self, ms};
use crate::core::{Config, HardState, Index, NodeId, Restored, Term, ENTRY_OVERHEAD};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Proposes `command` at the current leader until one accepts and every peer applies it at the
/// index it was accepted at; returns that index. Panics after 20 s of virtual time.
fn commit_everywhere(c: &mut Cluster, command: Vec<u8>) -> Index {
    let deadline = c.now + ms(20_000);
    while c.now < deadline {
        let accepted = c.leader().and_then(|l| c.propose(l, command.clone()));
        let Some((index, term)) = accepted else {
            c.run_for(ms(50));
            continue;
        };
        let applied_everywhere = |c: &Cluster| {
            c.committed
                .get(index as usize - 1)
                .is_some_and(|e| e.term == term)
                && c.peers.iter().all(|p| p.applied >= index)
        };
        if c.run_until(c.now + ms(2_000), applied_everywhere) {
            return index;
        }
    }
    panic!("no agreement within 20 s");
}

/// Client/fault steps per randomized run (each 1–20 ms of virtual time apart).
const STEPS: usize = 3_000;

/// A cluster with random faults and batch sizes; with `snapshots`, services snapshot every few
/// entries, and snapshots span several InstallSnapshot chunks.
fn random_cluster(members: u32, seed: u64, snapshots: bool, rng: &mut SmallRng) -> Cluster {
    let net = Net::random(rng);
    // Commands are 8 bytes: batches of 1 to 8 entries, so catching up takes several.
    let max_append_bytes = rng.gen_range(1..=8) * (8 + ENTRY_OVERHEAD);
    let mut c = Cluster::with_batches(members, seed, net, max_append_bytes);
    if snapshots {
        c.snapshot_every = Some(rng.gen_range(3..=15));
        c.snapshot_len = rng.gen_range(16..=4 * max_append_bytes);
    }
    c
}

/// One randomized run: random faults, partitions (the lab's isolated-peer model), crashes and
/// restarts while clients propose to every peer that claims leadership; then heal and check
/// that everything committed is applied everywhere. Safety is checked on every effect by the
/// cluster itself.
fn chaos(members: u32, seed: u64, snapshots: bool) -> Stats {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut c = random_cluster(members, seed, snapshots, &mut rng);
    let mut command = 0u64;
    for _ in 0..STEPS {
        c.run_for(ms(rng.gen_range(1..20)));
        let id = rng.gen_range(0..members);
        match rng.gen_range(0..100) {
            0..=44 => {
                // Like the lab's Figure 8 tests: offer the command to every self-declared
                // leader, stale ones included.
                command += 1;
                for id in 0..members {
                    c.propose(id, command.to_be_bytes().to_vec());
                }
            }
            45..=46 => c.peers[id as usize].connected = !c.peers[id as usize].connected,
            47 => c.crash(id),
            48..=51 => c.restart(id),
            _ => {}
        }
    }
    let committed_in_chaos = c.committed.len() as Index;
    c.heal();
    let last = commit_everywhere(&mut c, b"final".to_vec());
    assert!(last > committed_in_chaos);
    for (id, peer) in c.peers.iter().enumerate() {
        assert!(
            peer.applied >= last,
            "seed {seed}: n{id} applied {}",
            peer.applied
        );
    }
    c.stats
}

/// §5.2 Election Safety, §5.4 Leader Completeness and State Machine Safety, under loss,
/// duplication, reordering, partitions and crashes; liveness once healed. Three members.
#[test]
fn randomized_faults_three_members() {
    for seed in 0..200 {
        chaos(3, seed, false);
    }
}

/// As above with five members.
#[test]
fn randomized_faults_five_members() {
    for seed in 1000..1200 {
        chaos(5, seed, false);
    }
}

/// §7, Figure 13: the same safety and liveness when services snapshot every few entries, so
/// peers that fall behind or restart catch up through InstallSnapshot (in several chunks,
/// themselves lost, duplicated and reordered).
#[test]
fn randomized_faults_with_snapshots() {
    let mut installs = 0;
    for seed in 3000..3150 {
        let stats = chaos(if seed % 2 == 0 { 3 } else { 5 }, seed, true);
        installs += stats.snapshot_chunks;
    }
    assert!(
        installs > 1000,
        "only {installs} InstallSnapshot chunks sent"
    );
}

/// The lab's TestFigure8(Unreliable)2C shape: leaders are crashed or cut off soon after they
/// accept commands, so many terms leave uncommitted entries on minorities that later leaders
/// must overwrite, and old-term entries sit on majorities (Figure 8).
fn leader_churn(members: u32, seed: u64, snapshots: bool) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut c = random_cluster(members, seed, snapshots, &mut rng);
    let mut command = 0u64;
    for _ in 0..STEPS / 3 {
        command += 1;
        let mut leader = None;
        for id in 0..members {
            if c.propose(id, command.to_be_bytes().to_vec()).is_some() {
                leader = Some(id);
            }
        }
        let pause = if rng.gen_bool(0.1) { 500 } else { 13 };
        c.run_for(ms(rng.gen_range(0..pause)));
        if let Some(leader) = leader {
            if rng.gen_bool(0.5) {
                c.crash(leader);
            } else {
                c.peers[leader as usize].connected = false;
            }
        }
        let up = |c: &Cluster| {
            c.peers
                .iter()
                .filter(|p| p.connected && p.raft.is_some())
                .count()
        };
        while up(&c) < 3 {
            let id = rng.gen_range(0..members) as usize;
            c.restart(id as NodeId);
            c.peers[id].connected = true;
        }
    }
    c.heal();
    let last = commit_everywhere(&mut c, b"final".to_vec());
    assert!(c.peers.iter().all(|p| p.applied >= last), "seed {seed}");
}

/// §5.4.2, Figure 8: safety when leaders keep failing right after accepting commands.
#[test]
fn randomized_leader_churn_five_members() {
    for seed in 2000..2200 {
        leader_churn(5, seed, false);
    }
}

/// As above, with services snapshotting every few entries (§7).
#[test]
fn randomized_leader_churn_with_snapshots() {
    for seed in 4000..4100 {
        leader_churn(5, seed, true);
    }
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
fn catch_up(leader_log: &[Term], lagging_log: &[Term]) -> usize {
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
    let mut c = Cluster::with_state(configs, states, 7, Net::reliable());
    let caught_up = |c: &Cluster| {
        let (leader, lagging) = (&c.raft(0).log, &c.raft(2).log);
        c.leader() == Some(0)
            && lagging.last_index() == leader.last_index()
            && lagging.term(lagging.last_index()) == leader.term(leader.last_index())
    };
    assert!(c.run_until(ms(1_000), caught_up));
    assert_eq!(c.leader(), Some(0 as NodeId));
    c.stats.appends_to[2]
}

/// §5.3 fast backup: a follower with a 50-entry conflicting tail from a term the leader lacks
/// catches up in two round trips (the probe, then the whole suffix), not 50.
#[test]
fn conflicting_tail_of_fifty_is_repaired_in_two_round_trips() {
    let mut leader = vec![1; 10];
    leader.extend([3; 50]);
    let mut lagging = vec![1; 10];
    lagging.extend([2; 50]);
    assert_eq!(catch_up(&leader, &lagging), 2);
}

/// §5.3 fast backup over several terms: one round trip per conflicting term at most, plus the
/// final batch; a short log is skipped to its end at once.
#[test]
fn multi_term_divergence_needs_a_round_trip_per_term() {
    let leader: Vec<Term> = [vec![1; 5], vec![4; 20], vec![6; 20]].concat();
    let lagging: Vec<Term> = [vec![1; 5], vec![2; 10], vec![3; 10], vec![5; 30]].concat();
    assert!(catch_up(&leader, &lagging) <= 4);
    let short: Vec<Term> = vec![1; 3];
    assert_eq!(catch_up(&leader, &short), 2);
}

/// The lab's TestInitialElection2A/TestCount2B budget: electing the first leader of three
/// costs at most 30 RPCs (60 datagrams) in the window the tester measures (~1 s).
#[test]
fn first_election_fits_the_lab_budget() {
    for seed in 0..50 {
        let mut c = Cluster::new(3, seed, Net::reliable());
        c.run_for(ms(1_000));
        assert!(c.leader().is_some(), "seed {seed}: no leader");
        assert!(
            c.stats.datagrams <= 60,
            "seed {seed}: {}",
            c.stats.datagrams
        );
    }
}

/// TestCount2B: 1 + 11 back-to-back proposals committed on all three peers within
/// (10 + 1 + 3) * 3 = 42 RPCs (84 datagrams); then an idle second within 60 RPCs.
#[test]
fn agreement_and_idle_fit_the_lab_budget() {
    for seed in 0..20 {
        let mut c = Cluster::new(3, seed, Net::reliable());
        c.run_for(ms(1_000));
        let leader = c.leader().expect("a leader");
        let before = c.stats.datagrams;
        let mut last = 0;
        for i in 0..12u8 {
            last = c.propose(leader, vec![i]).expect("leader accepts").0;
            c.run_for(ms(1));
        }
        let all_applied = |c: &Cluster| c.peers.iter().all(|p| p.applied >= last);
        assert!(c.run_until(c.now + ms(2_000), all_applied));
        let agreement = c.stats.datagrams - before;
        assert!(agreement <= 84, "seed {seed}: {agreement} datagrams");

        let before = c.stats.datagrams;
        c.run_for(ms(1_000));
        let idle = c.stats.datagrams - before;
        assert!(idle <= 120, "seed {seed}: {idle} datagrams idle");
    }
}

/// TestRPCBytes2B: ten 5000-byte commands, each committed on all three before the next, reach
/// each follower exactly once — heartbeats never repeat acknowledged entries.
#[test]
fn each_command_reaches_each_follower_once() {
    let mut c = Cluster::new(3, 3, Net::reliable());
    c.run_for(ms(1_000));
    let before = c.stats.command_bytes;
    for i in 0..10u8 {
        commit_everywhere(&mut c, vec![i; 5_000]);
    }
    assert_eq!(c.stats.command_bytes - before, 2 * 10 * 5_000);
}

/// The lab's TestFigure8Unreliable2C network from its iteration 200 on, as netproxy makes it:
/// 10 % loss and, for about 42 % of datagrams (requests and replies), an extra delay of up to
/// 2.2 s.
fn long_reordering() -> Net {
    Net {
        drop: 0.1,
        duplicate: 0.0,
        delay_max: ms(27),
        long_delay_rate: 0.42,
        long_delay: ms(2_200),
    }
}

/// TestFigure8Unreliable2C's end: after leader churn on a long-reordering network, every peer
/// is reconnected while the network stays unreliable, and one command must commit on all five
/// within the tester's 10 s. Peers with stale logs must not keep deposing the one peer that can
/// win (§9.6).
#[test]
fn agreement_after_churn_under_long_reordering() {
    let mut failures = Vec::new();
    for seed in 5000..5100 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut c = Cluster::new(5, seed, long_reordering());
        let mut command = 0u64;
        for _ in 0..300 {
            command += 1;
            let mut leader = None;
            for id in 0..5 {
                if c.propose(id, command.to_be_bytes().to_vec()).is_some() {
                    leader = Some(id);
                }
            }
            let pause = if rng.gen_bool(0.1) { 500 } else { 13 };
            c.run_for(ms(rng.gen_range(0..pause)));
            if let Some(leader) = leader.filter(|_| rng.gen_bool(0.5)) {
                c.peers[leader as usize].connected = false;
            }
            while c.peers.iter().filter(|p| p.connected).count() < 3 {
                c.peers[rng.gen_range(0..5)].connected = true;
            }
        }
        c.peers.iter_mut().for_each(|p| p.connected = true);
        let start = c.now;
        let deadline = start + ms(10_000);
        let mut done = false;
        while c.now < deadline && !done {
            command += 1;
            let accepted = c
                .leader()
                .and_then(|l| c.propose(l, command.to_be_bytes().to_vec()));
            let Some((index, term)) = accepted else {
                c.run_for(ms(50));
                continue;
            };
            let everywhere = |c: &Cluster| {
                c.committed
                    .get(index as usize - 1)
                    .is_some_and(|e| e.term == term)
                    && c.peers.iter().all(|p| p.applied >= index)
            };
            done = c.run_until((c.now + ms(2_000)).min(deadline), everywhere);
        }
        if !done {
            failures.push(seed);
        }
    }
    assert!(
        failures.is_empty(),
        "no agreement within 10 s: seeds {failures:?}"
    );
}
