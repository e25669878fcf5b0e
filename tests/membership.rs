//! Membership changes and leadership transfer (Raft thesis chapter 4 and §3.10) on real
//! processes through the proxy: nodes joining under load (learners, promoted once caught up),
//! a follower and the leader removed, a removed node left running, every member replaced with
//! the KV service running, and leadership moved to each follower.
#![allow(non_snake_case)]

use harness::kvtest::generic::{check_clnt_appends, check_linearizable};
use harness::kvtest::KvTester;
use harness::linearizability::HistoryRecorder;
use harness::timing::{election_timeout, ms, NodeTimers};
use harness::{cmd_int, Tester};
use raft_node::control::NodeState;
use raft_node::core::{MembershipChange, VoterSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long a membership change may take to be accepted and committed, retries included.
fn change_bound() -> Duration {
    10 * election_timeout()
}

/// What the membership helpers need of a tester: the lab 2 one or the KV one.
trait Members {
    /// Node ids, spares included.
    fn ids(&self) -> usize;
    /// Node i's state as it reports it; `None` if it does not run (or does not answer).
    fn state(&self, i: usize) -> Option<NodeState>;
    /// Asks node i, the leader, for `change`: `Ok(index)` of its entry, or why not.
    fn propose(&self, i: usize, change: MembershipChange) -> Result<u64, String>;
}

impl Members for Tester {
    fn ids(&self) -> usize {
        self.n()
    }
    fn state(&self, i: usize) -> Option<NodeState> {
        self.node_state(i)
    }
    fn propose(&self, i: usize, change: MembershipChange) -> Result<u64, String> {
        self.change_membership(i, change)
    }
}

impl Members for KvTester {
    fn ids(&self) -> usize {
        self.n()
    }
    fn state(&self, i: usize) -> Option<NodeState> {
        self.node_state(i)
    }
    fn propose(&self, i: usize, change: MembershipChange) -> Result<u64, String> {
        self.change_membership(i, change)
    }
}

/// The node that leads now, as it says itself: of those that say they lead, the one of the
/// highest term. Waits for one.
fn leader(cfg: &impl Members) -> usize {
    let deadline = Instant::now() + change_bound();
    loop {
        let leader = (0..cfg.ids())
            .filter_map(|i| cfg.state(i).map(|s| (s, i)))
            .filter(|(s, _)| s.is_leader)
            .map(|(s, i)| (s.term, i))
            .max();
        if let Some((_, i)) = leader {
            return i;
        }
        assert!(
            Instant::now() < deadline,
            "no leader within {:?}",
            change_bound()
        );
        sleep(ms(20));
    }
}

/// Has the leader propose `change` until it accepts (refusals such as "not caught up" or "a
/// change is pending" are retried), then waits until every node in `expect` (voters and
/// learners) reports the configuration `expect` committed. Returns the change's index.
fn change(cfg: &impl Members, change: MembershipChange, expect: (&[usize], &[usize])) -> u64 {
    let deadline = Instant::now() + change_bound();
    let index = loop {
        let leader = leader(cfg);
        match cfg.propose(leader, change) {
            Ok(index) => break index,
            Err(why) => {
                assert!(
                    Instant::now() < deadline,
                    "{change:?} still refused after {:?}: {why}",
                    change_bound()
                );
                sleep(ms(20));
            }
        }
    };
    wait_config(cfg, expect.0, expect.1);
    index
}

/// Waits until every node of the configuration (`voters`, `learners`) reports it, committed.
fn wait_config(cfg: &impl Members, voters: &[usize], learners: &[usize]) {
    let ids = |ids: &[usize]| ids.iter().map(|&i| i as u32).collect::<Vec<_>>();
    let (voters32, learners32) = (ids(voters), ids(learners));
    let deadline = Instant::now() + change_bound();
    loop {
        let states: Vec<_> = (voters.iter().chain(learners))
            .map(|&i| cfg.state(i))
            .collect();
        let done = states.iter().all(|s| {
            s.as_ref().is_some_and(|s| {
                s.voters == voters32
                    && s.learners == learners32
                    && s.commit_index >= s.membership_index
            })
        });
        if done {
            return;
        }
        let seen: Vec<_> = (states.iter().flatten())
            .map(|s| (s.id, s.config_label(), s.membership_index, s.commit_index))
            .collect();
        assert!(
            Instant::now() < deadline,
            "configuration voters {voters:?} learners {learners:?} not committed everywhere \
             within {:?}: (id, configuration, its index, commit) {seen:?}",
            change_bound(),
        );
        sleep(ms(20));
    }
}

/// A client that commits `cmd_int(x)` for growing x through whichever node leads, expecting
/// each on `expected` nodes at least, until `done`; what it saw committed goes to `committed`.
fn load(cfg: &Tester, done: &AtomicBool, committed: &Mutex<Vec<(u64, i64)>>, expected: usize) {
    let mut x = 1000;
    while !done.load(Ordering::Acquire) {
        x += 1;
        let index = cfg.one(&cmd_int(x), expected, true);
        committed.lock().unwrap().push((index, x));
    }
}

/// Waits until the client has committed `more` more commands.
fn wait_commits(committed: &Mutex<Vec<(u64, i64)>>, more: usize) {
    let before = committed.lock().unwrap().len();
    let deadline = Instant::now() + change_bound();
    while committed.lock().unwrap().len() < before + more {
        assert!(Instant::now() < deadline, "commits stalled");
        sleep(ms(10));
    }
}

/// Every command the client saw committed is at its index on every node of `nodes`.
fn check_committed_on(cfg: &Tester, committed: &[(u64, i64)], nodes: usize) {
    for &(index, x) in committed {
        let (n, cmd) = cfg.n_committed(index);
        assert!(n >= nodes, "index {index} is on {n} nodes, not {nodes}");
        assert_eq!(cmd, Some(cmd_int(x)), "index {index} lost command {x}");
    }
}

/// §4.2.1: two nodes join a 3-node cluster under client load, each as a learner promoted once
/// caught up; no command the client saw committed is lost, commits never stall, and both new
/// nodes apply the whole log from index 1.
#[test]
fn TestAddTwoNodesUnderLoad() {
    let cfg = Tester::with_spares(3, 2, false);
    cfg.begin("Test (membership): add two nodes to three, under load");
    cfg.one(&cmd_int(1), 3, true);
    let done = AtomicBool::new(false);
    let committed = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        s.spawn(|| load(&cfg, &done, &committed, 3));
        wait_commits(&committed, 5);
        let mut voters = vec![0, 1, 2];
        for new in [3, 4] {
            cfg.join(new);
            change(
                &cfg,
                MembershipChange::AddLearner(new as u32),
                (&voters, &[new]),
            );
            wait_commits(&committed, 5);
            voters.push(new);
            change(&cfg, MembershipChange::Promote(new as u32), (&voters, &[]));
            wait_commits(&committed, 5);
        }
        done.store(true, Ordering::Release);
    });
    // The new nodes apply everything, from index 1: wait for them to catch up with the last.
    let committed = committed.into_inner().unwrap();
    let last = committed.last().unwrap().0;
    cfg.wait(last, 5, None);
    check_committed_on(&cfg, &committed, 5);
    let (n, _) = cfg.n_committed(1);
    assert_eq!(n, 5, "index 1 is not on every node");
    cfg.end();
}

/// §4.1: a follower leaves a 5-node cluster under load; the rest keep committing as four, and
/// once it is gone for good the cluster goes on without it.
#[test]
fn TestRemoveFollower() {
    let cfg = Tester::new(5, false, false);
    cfg.begin("Test (membership): remove a follower, under load");
    cfg.one(&cmd_int(1), 5, true);
    let done = AtomicBool::new(false);
    let committed = Mutex::new(Vec::new());
    let leader0 = leader(&cfg);
    let gone = (leader0 + 1) % 5;
    let rest: Vec<usize> = (0..5).filter(|&i| i != gone).collect();
    std::thread::scope(|s| {
        s.spawn(|| load(&cfg, &done, &committed, 4));
        wait_commits(&committed, 5);
        change(&cfg, MembershipChange::Remove(gone as u32), (&rest, &[]));
        cfg.retire(gone);
        wait_commits(&committed, 10);
        done.store(true, Ordering::Release);
    });
    let committed = committed.into_inner().unwrap();
    cfg.wait(committed.last().unwrap().0, 4, None);
    check_committed_on(&cfg, &committed, 4);
    // Three of the four are a majority now: one more may fail and commits go on.
    let other = *rest.iter().find(|&&i| i != leader(&cfg)).unwrap();
    cfg.disconnect(other);
    cfg.one(&cmd_int(7), 3, true);
    cfg.end();
}

/// §4.2.2: the leader removes itself. It keeps leading until the change commits, then steps
/// down; the others elect a leader among themselves and commits go on.
#[test]
fn TestRemoveLeader() {
    let cfg = Tester::new(5, false, false);
    cfg.begin("Test (membership): remove the leader, under load");
    cfg.one(&cmd_int(1), 5, true);
    let done = AtomicBool::new(false);
    let committed = Mutex::new(Vec::new());
    let old = leader(&cfg);
    let rest: Vec<usize> = (0..5).filter(|&i| i != old).collect();
    std::thread::scope(|s| {
        s.spawn(|| load(&cfg, &done, &committed, 4));
        wait_commits(&committed, 5);
        let deadline = Instant::now() + change_bound();
        let index = loop {
            match cfg.propose(old, MembershipChange::Remove(old as u32)) {
                Ok(index) => break index,
                Err(why) => {
                    assert!(Instant::now() < deadline, "the leader refused: {why}");
                    sleep(ms(20));
                }
            }
        };
        wait_config(&cfg, &rest, &[]);
        // Stepped down once the change committed, and a new leader among the rest follows.
        let new = leader(&cfg);
        assert_ne!(new, old, "the removed leader still leads");
        assert!(rest.contains(&new));
        let state = cfg.node_state(old).expect("the old leader runs");
        assert!(
            !state.is_leader,
            "n{old} leads after its removal: {state:?}"
        );
        assert!(state.commit_index >= index);
        wait_commits(&committed, 10);
        done.store(true, Ordering::Release);
    });
    let committed = committed.into_inner().unwrap();
    cfg.wait(committed.last().unwrap().0, 4, None);
    check_committed_on(&cfg, &committed, 4);
    cfg.retire(old);
    cfg.one(&cmd_int(8), 4, true);
    cfg.end();
}

/// §4.2.3: a removed node that keeps running (and never learns it was removed: the leader
/// stops replicating to it at once) times out again and again, but Pre-Vote keeps it from
/// disturbing the cluster: no term passes, the leader stays, commits go on. Cut off and
/// reconnected, it still changes nothing.
#[test]
fn TestRemovedNodeDoesNotDisturb() {
    let cfg = Tester::new(5, false, false);
    cfg.begin("Test (membership): a removed node left running disturbs nobody");
    cfg.one(&cmd_int(1), 5, true);
    let old = leader(&cfg);
    let gone = (old + 2) % 5;
    let rest: Vec<usize> = (0..5).filter(|&i| i != gone).collect();
    // Cut it off first, so it cannot learn of the change: the hardest case (§4.2.3).
    cfg.disconnect(gone);
    change(&cfg, MembershipChange::Remove(gone as u32), (&rest, &[]));
    cfg.connect(gone);
    let term = |i: usize| cfg.get_state(i).expect("running").0;
    let before: Vec<_> = rest.iter().map(|&i| term(i)).collect();
    let leader_before = leader(&cfg);
    // Several election timeouts with the removed node timing out, and commits going on.
    let until = Instant::now() + 4 * election_timeout();
    let mut x = 100;
    while Instant::now() < until {
        x += 1;
        cfg.one(&cmd_int(x), 4, false);
        sleep(ms(50));
    }
    let after: Vec<_> = rest.iter().map(|&i| term(i)).collect();
    assert_eq!(
        before, after,
        "the members' terms moved: the removed node disturbed them"
    );
    assert_eq!(leader(&cfg), leader_before, "leadership changed");
    let removed = cfg.node_state(gone).expect("the removed node runs");
    assert!(
        removed.term <= before[0],
        "the removed node's term grew past the cluster's: {removed:?}"
    );
    assert!(!removed.is_leader);
    cfg.end();
}

/// Leadership moves to each follower in turn while a client keeps committing: each transfer
/// ends with the target leading within one (maximum) election timeout, in the next term (one
/// election, no other), and every command the client saw committed is committed on every
/// node at its index afterwards.
#[test]
fn TestTransferToEachFollowerUnderLoad() {
    let servers = 5;
    let cfg = Tester::new(servers, false, false);
    cfg.begin("Test (transfer): leadership to each follower in turn, under load");
    cfg.one(&cmd_int(1), servers, true);
    let done = AtomicBool::new(false);
    let committed = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut x = 1000;
            while !done.load(Ordering::Acquire) {
                x += 1;
                let index = cfg.one(&cmd_int(x), servers, true);
                committed.lock().unwrap().push((index, x));
            }
        });
        let bound = NodeTimers::scaled().election_max;
        for _ in 0..servers - 1 {
            let leader = cfg.check_one_leader();
            let term = cfg.check_terms().expect("the nodes agree on a term");
            let to = (leader + 1) % servers;
            let started = Instant::now();
            cfg.transfer(leader, to)
                .unwrap_or_else(|e| panic!("node {leader} refused to hand over to {to}: {e}"));
            let states = || (0..servers).map(|i| cfg.get_state(i)).collect::<Vec<_>>();
            let mut seen = states();
            while seen[to] != Some((term + 1, true)) {
                assert!(
                    started.elapsed() <= bound,
                    "node {to} did not lead term {} within {bound:?} of the transfer from \
                     node {leader}: {seen:?}",
                    term + 1
                );
                sleep(ms(5));
                seen = states();
            }
            // One election: the target's, in the next term, and no other leader in it.
            assert!(
                seen.iter().all(|s| s.is_some_and(|(t, _)| t <= term + 1)),
                "a term beyond {}: {seen:?}",
                term + 1
            );
            assert_eq!(cfg.check_one_leader(), to);
            // Let the client commit under the new leader before the next transfer.
            let before = committed.lock().unwrap().len();
            while committed.lock().unwrap().len() < before + 3 {
                sleep(ms(10));
            }
        }
        done.store(true, Ordering::Release);
    });
    let committed = committed.into_inner().unwrap();
    assert!(committed.len() >= 3 * (servers - 1));
    for (index, x) in committed {
        let (n, cmd) = cfg.n_committed(index);
        assert_eq!(n, servers, "index {index} is not on every node");
        assert_eq!(cmd, Some(cmd_int(x)), "index {index} lost command {x}");
    }
    cfg.end();
}

/// One KV client of the roll: appends to its own key, and reads it back expecting every append
/// it made, all recorded for the linearizability check; returns how many appends it made.
fn kv_client(cfg: &KvTester, history: &HistoryRecorder, done: &AtomicBool, cli: usize) -> u64 {
    let mut ck = cfg.make_client(&[0, 1, 2]);
    let log = Some((history, cli as u64));
    let key = cli.to_string();
    let mut last = String::new();
    cfg.put(&mut ck, &key, &last, log);
    let mut appends = 0u64;
    let mut read = false;
    while !done.load(Ordering::SeqCst) {
        if read {
            let v = cfg.get(&mut ck, &key, log);
            assert_eq!(v, last, "get of key {key} lost appends");
        } else {
            let nv = format!("x {cli} {appends} y");
            cfg.append(&mut ck, &key, &nv, log);
            last += &nv;
            appends += 1;
        }
        read = !read;
    }
    appends
}

/// Every member of a 3-node KV cluster is replaced in turn (a node joins as a learner, is
/// promoted once caught up, by snapshot or by log, then an old member is removed and stopped)
/// while clerks append and read: no append is lost and the whole history is linearizable.
#[test]
fn TestRollEveryMemberKV() {
    let cfg = KvTester::with_spares(3, 3, false, 2000);
    cfg.begin("Test (membership): replace each of 3 KV servers in turn, under load");
    let history = HistoryRecorder::new();
    let done = AtomicBool::new(false);
    let counts: Vec<u64> = std::thread::scope(|s| {
        let _cancel = cfg.cancel_on_panic();
        let clients: Vec<_> = (0..3)
            .map(|cli| {
                let (cfg, history, done) = (&cfg, &history, &done);
                s.spawn(move || kv_client(cfg, history, done, cli))
            })
            .collect();
        sleep(ms(500));
        let mut voters = vec![0, 1, 2];
        for old in 0..3 {
            let new = old + 3;
            cfg.join(new);
            change(
                &cfg,
                MembershipChange::AddLearner(new as u32),
                (&voters, &[new]),
            );
            voters.push(new);
            change(&cfg, MembershipChange::Promote(new as u32), (&voters, &[]));
            voters.retain(|&v| v != old);
            change(&cfg, MembershipChange::Remove(old as u32), (&voters, &[]));
            cfg.retire(old);
            sleep(ms(300));
        }
        sleep(ms(500));
        done.store(true, Ordering::SeqCst);
        clients
            .into_iter()
            .map(|c| c.join().unwrap_or_else(|_| panic!("a client failed")))
            .collect()
    });
    // Read through the new members only: the old ones are gone.
    let mut ck = cfg.make_client(&[3, 4, 5]);
    for (cli, &appends) in counts.iter().enumerate() {
        assert!(appends > 0, "client {cli} made no append");
        let v = cfg.get(&mut ck, &cli.to_string(), Some((&history, 99)));
        check_clnt_appends(cli, &v, appends);
    }
    check_linearizable(&cfg, &history);
    cfg.end();
}

/// Joint consensus (§4.3) on real processes: 3 -> 5 voters in one change, during partitions.
/// Cut off with only the new servers, the leader cannot commit C_old,new (it has C_new's
/// majority, not C_old's), and no node ever reports it committed while the old majority is
/// elsewhere; with a majority of both on its side it commits C_old,new, then C_new, while the
/// minority is still cut off, and after healing all five are voters and commits go on.
#[test]
fn TestJointThreeToFiveDuringPartition() {
    let cfg = Tester::with_spares(3, 2, false);
    cfg.begin("Test (membership): 3 -> 5 by joint consensus, during partitions");
    cfg.one(&cmd_int(1), 3, true);
    for new in [3, 4] {
        cfg.join(new);
    }
    change(&cfg, MembershipChange::AddLearner(3), (&[0, 1, 2], &[3]));
    change(&cfg, MembershipChange::AddLearner(4), (&[0, 1, 2], &[3, 4]));
    cfg.one(&cmd_int(2), 5, true);
    let five = VoterSet::of(0..5).unwrap();
    let joint_committed =
        |s: &NodeState| !s.outgoing.is_empty() && s.commit_index >= s.membership_index;

    // The leader with the new servers only: C_new's majority (3 of 5), one of C_old's 3.
    let leader0 = leader(&cfg);
    let old: Vec<usize> = (0..3).filter(|&i| i != leader0).collect();
    cfg.partition(&[&[leader0, 3, 4], &old]);
    let index = loop {
        match cfg.propose(leader0, MembershipChange::Joint(five)) {
            Ok(index) => break index,
            Err(why) if why.contains("not caught up") => sleep(ms(20)),
            Err(why) => panic!("n{leader0} refused the joint change: {why}"),
        }
    };
    let until = Instant::now() + 3 * election_timeout();
    while Instant::now() < until {
        for i in 0..5 {
            if let Some(s) = cfg.state(i) {
                assert!(
                    !(joint_committed(&s) && s.membership_index == index),
                    "n{i} committed C_old,new without a majority of C_old: {s:?}"
                );
                assert!(
                    s.voters.len() < 5 || !s.outgoing.is_empty(),
                    "n{i} reached C_new during the partition: {s:?}"
                );
            }
        }
        sleep(ms(20));
    }
    // The old majority on its own side went on as C_old.
    let other = leader(&cfg);
    assert!(old.contains(&other), "the old majority elected no leader");
    cfg.heal();
    // A command of the new term, so that its leader may change the configuration (Ongaro's
    // rule: not before an entry of its term commits).
    cfg.one(&cmd_int(10), 3, true);

    // Now with a majority of both: the leader, one old follower and the new servers; the
    // other old follower cut off.
    let leader1 = leader(&cfg);
    let alone = *(0..3)
        .filter(|&i| i != leader1)
        .collect::<Vec<_>>()
        .last()
        .unwrap();
    let side: Vec<usize> = (0..5).filter(|&i| i != alone).collect();
    cfg.partition(&[&side, &[alone]]);
    // Unless the first attempt's entry survived the healing, propose it again.
    let deadline = Instant::now() + change_bound();
    loop {
        let s = cfg.state(leader(&cfg)).expect("the leader answers");
        if s.voters.len() == 5 {
            break;
        }
        if s.commit_index >= s.membership_index {
            match cfg.propose(leader(&cfg), MembershipChange::Joint(five)) {
                Ok(_) => {}
                Err(why) => assert!(Instant::now() < deadline, "joint change refused: {why}"),
            }
        }
        assert!(Instant::now() < deadline, "no joint change accepted: {s:?}");
        sleep(ms(20));
    }
    // C_old,new, then C_new, committed on the majority side while `alone` is cut off.
    let want: Vec<u32> = (0..5).collect();
    let deadline = Instant::now() + change_bound();
    loop {
        let states: Vec<_> = side.iter().filter_map(|&i| cfg.state(i)).collect();
        let done = states.len() == side.len()
            && states.iter().all(|s| {
                s.voters == want && s.outgoing.is_empty() && s.commit_index >= s.membership_index
            });
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "C_new not committed on the majority side: {:?}",
            states
                .iter()
                .map(|s| (s.id, s.config_label(), s.membership_index, s.commit_index))
                .collect::<Vec<_>>()
        );
        sleep(ms(20));
    }
    cfg.heal();
    wait_config(&cfg, &[0, 1, 2, 3, 4], &[]);
    cfg.one(&cmd_int(3), 5, true);
    // Four of five now commit: two may fail.
    let l = leader(&cfg);
    let down: Vec<usize> = (0..5).filter(|&i| i != l).take(2).collect();
    for &i in &down {
        cfg.disconnect(i);
    }
    cfg.one(&cmd_int(4), 3, true);
    cfg.end();
}
