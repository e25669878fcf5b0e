//! Partial connectivity on real processes through netproxy (issue 16): links cut one at a time
//! or one way, where Pre-Vote and CheckQuorum alone either get stuck (the constrained election)
//! or must not hold elections they do not need (a chained cut, a leader that can only send or
//! only receive, a flapping link). Relaying (`core::relay`, `runtime/peers.rs`) carries messages
//! between nodes that reach each other only through a third.
//!
//! Each test reads the elections from the run's log (every node's `starting election` and
//! `became leader` lines) and every node's term, not only that some leader exists. Where a new
//! leader is needed, exactly one node may win after the cut, the node whose links are cut may
//! never stand, and every other candidacy must be in an earlier term that elected no one: a
//! split vote between two nodes whose timers ran out together (the last heartbeat reset both),
//! which the randomized timeouts resolve, as in any Raft.

use harness::tester::Election;
use harness::timing::{ms, NodeTimers};
use harness::{cmd_int, Tester};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The nodes' maximum election timeout.
fn election_max() -> Duration {
    NodeTimers::scaled().election_max
}

/// Every node's term, as it reports it.
fn terms(cfg: &Tester) -> Vec<u64> {
    (0..cfg.n())
        .map(|i| cfg.get_state(i).expect("the test crashes no node").0)
        .collect()
}

/// The first node of `among` to say it leads a term above `above`, its term, and how long that
/// took; polled every 10 ms, for at most `patience`.
fn new_leader(
    cfg: &Tester,
    among: &[usize],
    above: u64,
    patience: Duration,
) -> Option<(usize, u64, Duration)> {
    let start = Instant::now();
    while start.elapsed() < patience {
        for &i in among {
            if let Some((term, true)) = cfg.get_state(i).filter(|&(t, _)| t > above) {
                return Some((i, term, start.elapsed()));
            }
        }
        sleep(ms(10));
    }
    None
}

/// Commits `count` commands from `first` on, each on at least `expected` nodes; returns their
/// (index, command).
fn commit(cfg: &Tester, first: i64, count: i64, expected: usize) -> Vec<(u64, Vec<u8>)> {
    (first..first + count)
        .map(|x| {
            let cmd = cmd_int(x);
            (cfg.one(&cmd, expected, true), cmd)
        })
        .collect()
}

/// Checks the elections since `mark` (a length of `cfg.elections()`): `leader` won `term`, the
/// only win; no node of `never` stood; every other candidacy lost, in `term` or in an earlier
/// term that elected no one (a split vote). Returns the number of terms stood in.
fn one_leader_elected(
    cfg: &Tester,
    mark: usize,
    (leader, term): (usize, u64),
    never: &[usize],
) -> usize {
    let since: Vec<Election> = cfg.elections()[mark..].to_vec();
    let won: Vec<&Election> = since.iter().filter(|e| e.won).collect();
    assert_eq!(
        won,
        [&Election {
            node: leader as u32,
            term,
            won: true
        }],
        "one leader elected; elections {since:?}"
    );
    for e in &since {
        assert!(
            !never.contains(&(e.node as usize)),
            "n{} stood in term {}; elections {since:?}",
            e.node,
            e.term
        );
        assert!(e.term <= term, "elections {since:?}");
    }
    let mut terms: Vec<u64> = since.iter().map(|e| e.term).collect();
    terms.sort_unstable();
    terms.dedup();
    terms.len()
}

/// Relayed copies the nodes sent, forwarded and received, summed.
fn relayed(cfg: &Tester) -> (u64, u64, u64) {
    (0..cfg.n())
        .filter_map(|i| cfg.node_state(i))
        .fold((0, 0, 0), |(s, f, r), state| {
            let relay = &state.relay;
            (s + relay.sent, f + relay.forwarded, r + relay.received)
        })
}

/// The constrained election (OmniPaxos, EuroSys '23): five nodes; `behind` is cut off while
/// the others commit, so its log falls behind; then the old leader is isolated and every link
/// among the other three is cut, so that only `behind` reaches a majority, and no one votes for
/// its log. Without relaying no leader is ever elected; with it, the other three reach each
/// other through `behind`, the most up to date wins within four maximum election timeouts, and
/// keeps committing.
#[test]
fn constrained_election() {
    let cfg = Tester::new(5, false, false);
    cfg.begin("Test (16): the constrained election elects a leader through a relay");
    let old = cfg.check_one_leader();
    let behind = (old + 1) % 5;
    let rest: Vec<usize> = (0..5).filter(|&i| i != old && i != behind).collect();
    let mut before = commit(&cfg, 100, 3, 5);
    cfg.disconnect(behind);
    before.extend(commit(&cfg, 103, 10, 4));

    let mut cut: Vec<(usize, usize)> = (0..5).filter(|&i| i != old).map(|i| (old, i)).collect();
    for (k, &a) in rest.iter().enumerate() {
        cut.extend(rest[k + 1..].iter().map(|&b| (a, b)));
    }
    let old_term = cfg.get_state(old).expect("running").0;
    let mark = cfg.elections().len();
    cfg.cut(&cut);
    cfg.connect(behind);

    let bound = 4 * election_max();
    let Some((leader, term, took)) = new_leader(&cfg, &rest, old_term, 5 * bound) else {
        panic!("no leader among {rest:?} within {:?} of the cut", 5 * bound);
    };
    assert!(
        took <= bound,
        "n{leader} led term {term} {took:?} after the cut; the bound is {bound:?}"
    );

    // Everything committed before the cut, in order, on the node that was behind and on the
    // new leader.
    let (last, _) = *before.last().expect("commands");
    let deadline = Instant::now() + 10 * election_max();
    while [behind, leader]
        .iter()
        .any(|&i| cfg.applied(i, last).is_none())
    {
        assert!(
            Instant::now() < deadline,
            "n{behind} or n{leader} has not applied index {last} within {:?}",
            10 * election_max()
        );
        sleep(ms(20));
    }
    for (index, cmd) in &before {
        for i in [behind, leader] {
            assert_eq!(
                cfg.applied(i, *index).as_ref(),
                Some(cmd),
                "n{i} at {index}"
            );
        }
    }

    // Ten seconds of commits, through the relay.
    let window = Instant::now();
    let mut commits = 0;
    while window.elapsed() < ms(10_000) {
        cfg.one(&cmd_int(1000 + commits), 3, true);
        commits += 1;
    }
    assert!(commits >= 20, "{commits} commits in ten seconds");

    // One leader elected, neither the old leader nor the node behind standing; every node but
    // the isolated old leader in its term, and the old leader (which hears no one, so neither
    // wins nor raises a term) still in its own.
    let now = terms(&cfg);
    let election_terms = one_leader_elected(&cfg, mark, (leader, term), &[old, behind]);
    assert_eq!(term, old_term + election_terms as u64, "terms {now:?}");
    for i in 0..5 {
        let expect = if i == old { old_term } else { term };
        assert_eq!(now[i], expect, "n{i}'s term; terms {now:?}");
    }
    assert_eq!(
        cfg.get_state(leader),
        Some((term, true)),
        "n{leader} still leads"
    );
    let (sent, forwarded, received) = relayed(&cfg);
    assert!(
        sent > 0 && forwarded > 0 && received > 0,
        "relayed copies: sent {sent}, forwarded {forwarded}, received {received}"
    );
    println!(
        "  n{leader} led term {term} {took:?} after the cut ({election_terms} election terms); \
         {commits} commits in 10 s; relayed copies: {sent} sent, {forwarded} forwarded, \
         {received} received"
    );
    cfg.end();
}

/// Three nodes; `cut` takes the leader and a follower and cuts links between them. Commits for
/// eight maximum election timeouts, every command on all three, and checks that no node stood
/// for election and no term changed. Returns the leader and the follower.
fn no_election_across(cfg: &Tester, cut: impl FnOnce(usize, usize)) -> (usize, usize) {
    let leader = cfg.check_one_leader();
    let follower = (leader + 1) % 3;
    commit(cfg, 100, 1, 3);
    let term = cfg.get_state(leader).expect("running").0;
    let mark = cfg.elections().len();
    cut(leader, follower);

    let start = Instant::now();
    let mut x = 200;
    while start.elapsed() < 8 * election_max() {
        cfg.one(&cmd_int(x), 3, false);
        x += 1;
    }
    assert_eq!(terms(cfg), vec![term; 3], "no node changed its term");
    assert_eq!(cfg.elections()[mark..], [], "no election");
    assert_eq!(cfg.get_state(leader), Some((term, true)));
    (leader, follower)
}

/// The chained cut: three nodes, the leader cut from one follower (both ways). The follower
/// still hears the leader through the other follower, and the leader hears its replies the
/// same way: no election at all, and every command reaches all three.
#[test]
fn chained_cut_holds_no_election() {
    let cfg = Tester::new(3, false, false);
    cfg.begin("Test (16): a leader cut from one follower keeps it, through a relay");
    let (leader, _) = no_election_across(&cfg, |leader, follower| {
        cfg.cut(&[(leader, follower)]);
    });
    let relay = cfg.node_state(leader).expect("running").relay;
    assert!(
        relay.sent > 0 && relay.received > 0,
        "the leader reached its follower through the relay: {relay:?}"
    );
    cfg.end();
}

/// A leader cut one way from both followers (`into` it: it can only send; else it can only
/// receive) is replaced by one election, within four maximum election timeouts, and the new
/// leader keeps committing. Returns the old leader, the new one, its term and every node's term
/// once four more election timeouts have passed (long enough for any further election to show).
fn replaced_once(cfg: &Tester, into: bool) -> (usize, usize, u64, Vec<u64>) {
    let old = cfg.check_one_leader();
    commit(cfg, 100, 1, 3);
    let term = cfg.get_state(old).expect("running").0;
    let mark = cfg.elections().len();
    let others: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    let cut: Vec<(usize, usize)> = (others.iter())
        .map(|&i| if into { (i, old) } else { (old, i) })
        .collect();
    cfg.cut_one_way(&cut);

    let bound = 4 * election_max();
    let Some((leader, new_term, took)) = new_leader(cfg, &others, term, 5 * bound) else {
        panic!("no new leader within {:?}", 5 * bound);
    };
    assert!(
        took <= bound,
        "a new leader after {took:?}; the bound is {bound:?}"
    );
    commit(cfg, 200, 10, 2);
    let quiet = Instant::now();
    while quiet.elapsed() < 4 * election_max() {
        commit(cfg, 300, 1, 2);
    }
    let now = terms(cfg);
    let election_terms = one_leader_elected(cfg, mark, (leader, new_term), &[old]);
    assert_eq!(new_term, term + election_terms as u64, "terms {now:?}");
    assert_eq!(cfg.get_state(leader), Some((new_term, true)));
    (old, leader, term, now)
}

/// A leader that can only send (every link into it cut): it hears no one, CheckQuorum deposes
/// it, and the others elect one leader, once. The old leader, hearing nothing, stays in its term
/// (its pre-votes raise no term).
#[test]
fn leader_that_can_only_send_is_replaced_once() {
    let cfg = Tester::new(3, false, false);
    cfg.begin("Test (16): a leader that can only send is replaced, once");
    let (old, leader, term, now) = replaced_once(&cfg, true);
    for i in 0..3 {
        let expect = if i == old { term } else { now[leader] };
        assert_eq!(now[i], expect, "n{i}'s term; terms {now:?}");
    }
    cfg.end();
}

/// A leader that can only receive (every link out of it cut): the others hear nothing from it
/// and elect one leader, once; the old leader hears the new term and follows it, and holds no
/// election of its own.
#[test]
fn leader_that_can_only_receive_is_replaced_once() {
    let cfg = Tester::new(3, false, false);
    cfg.begin("Test (16): a leader that can only receive is replaced, once");
    let (old, leader, _, now) = replaced_once(&cfg, false);
    let new_term = now[leader];
    assert_eq!(now, vec![new_term; 3], "every node in the new term");
    assert_eq!(cfg.get_state(old), Some((new_term, false)));
    cfg.end();
}

/// A follower whose link to the leader flaps every second for 20 s: no election, every node
/// stays in its term, and commands commit on all three throughout.
#[test]
fn flapping_link_holds_no_election() {
    let cfg = Tester::new(3, false, false);
    cfg.begin("Test (16): a follower's flapping link to the leader holds no election");
    let leader = cfg.check_one_leader();
    let follower = (leader + 1) % 3;
    commit(&cfg, 100, 1, 3);
    let term = cfg.get_state(leader).expect("running").0;
    let mark = cfg.elections().len();

    let mut x = 200;
    for second in 0..20 {
        let flip = Instant::now();
        if second % 2 == 0 {
            cfg.cut(&[(leader, follower)]);
        } else {
            cfg.restore(&[(leader, follower)]);
        }
        cfg.one(&cmd_int(x), 3, false);
        x += 1;
        // The link's schedule, not a wait for something to happen.
        sleep(ms(1000).saturating_sub(flip.elapsed()));
    }
    cfg.restore(&[(leader, follower)]);
    cfg.one(&cmd_int(x), 3, false);
    assert_eq!(terms(&cfg), vec![term; 3], "no node changed its term");
    assert_eq!(cfg.elections()[mark..], [], "no election");
    assert_eq!(cfg.get_state(leader), Some((term, true)));
    cfg.end();
}

/// A follower the leader cannot reach (the link leader -> follower cut, the other way up): it
/// hears the leader through the other follower, so no one stands for election, no term
/// changes, and every command reaches all three.
#[test]
fn follower_cut_one_way_holds_no_election() {
    let cfg = Tester::new(3, false, false);
    cfg.begin("Test (16): a follower the leader cannot reach holds no election");
    let (_, follower) = no_election_across(&cfg, |leader, follower| {
        cfg.cut_one_way(&[(leader, follower)]);
    });
    let received = cfg.node_state(follower).expect("running").relay.received;
    assert!(
        received > 0,
        "the follower heard the leader through the relay"
    );
    cfg.end();
}

/// A stranded node: one follower of five cut off from every other for eight election
/// timeouts, then reconnected. Alone it cannot win a pre-vote, so it never stands and its term
/// stays; the other four keep their leader and commit; back, it catches up without an
/// election, and no node's term changed.
#[test]
fn stranded_node_rejoins_without_an_election() {
    let cfg = Tester::new(5, false, false);
    cfg.begin("Test (16): a stranded node rejoins without an election");
    let leader = cfg.check_one_leader();
    let stranded = (leader + 1) % 5;
    commit(&cfg, 100, 1, 5);
    let term = cfg.get_state(leader).expect("running").0;
    let mark = cfg.elections().len();
    cfg.disconnect(stranded);

    let start = Instant::now();
    let mut x = 200;
    while start.elapsed() < 8 * election_max() {
        cfg.one(&cmd_int(x), 4, false);
        x += 1;
    }
    assert_eq!(
        cfg.get_state(stranded),
        Some((term, false)),
        "alone, it stays"
    );
    cfg.connect(stranded);
    cfg.one(&cmd_int(x), 5, true);
    assert_eq!(terms(&cfg), vec![term; 5], "no node changed its term");
    assert_eq!(cfg.elections()[mark..], [], "no election");
    assert_eq!(cfg.get_state(leader), Some((term, true)));
    cfg.end();
}

/// A fully connected cluster relays nothing: through its first election, commands, a
/// leadership transfer and more commands, no node sends, forwards or receives a relayed copy.
#[test]
fn fully_connected_cluster_relays_nothing() {
    let cfg = Tester::new(5, false, false);
    cfg.begin("Test (16): a fully connected cluster relays nothing");
    let leader = cfg.check_one_leader();
    commit(&cfg, 100, 10, 5);
    let to = (leader + 1) % 5;
    cfg.transfer(leader, to)
        .unwrap_or_else(|e| panic!("transfer to n{to}: {e}"));
    let term = cfg.get_state(leader).expect("running").0;
    let Some((now_leading, _, _)) = new_leader(&cfg, &[to], term, 10 * election_max()) else {
        panic!("n{to} did not take over");
    };
    assert_eq!(now_leading, to);
    commit(&cfg, 200, 10, 5);
    assert_eq!(
        relayed(&cfg),
        (0, 0, 0),
        "relayed copies (sent, forwarded, received)"
    );
    cfg.end();
}
