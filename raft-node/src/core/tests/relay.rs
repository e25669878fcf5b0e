//! Relaying (`core/relay.rs`, issue 16): on a fully connected cluster nothing is relayed; a
//! follower cut off one way from its leader keeps following it through a relay; the reports
//! messages carry name whom their sender hears.

use super::helpers::*;
use crate::core::{Hears, Role};
use crate::sim::{Cluster, Faults, Violation};

/// Every term with a leader: (term, leader) of each live peer that leads.
fn leaders(c: &Cluster) -> Vec<(u64, u32)> {
    c.statuses()
        .filter(|s| s.role == Role::Leader)
        .map(|s| (s.term, s.id))
        .collect()
}

/// A fully connected cluster, through an election, commands, a leadership transfer and a
/// crash and restart of a follower, sends no relayed datagram.
#[test]
fn a_fully_connected_cluster_relays_nothing() -> Result<(), Violation> {
    for seed in 0..10 {
        let mut c = Cluster::new(5, seed, Faults::reliable());
        c.run_for(ms(2_000))?;
        let leader = c.leader().expect("a leader");
        for i in 0..30u8 {
            c.propose(c.leader().expect("a leader"), vec![i])?;
            c.run_for(ms(30))?;
        }
        c.transfer(leader, (leader + 1) % 5)?;
        c.run_for(ms(2_000))?;
        let leader = c.leader().expect("a leader after the transfer");
        c.propose(leader, vec![99])?;
        c.run_for(ms(3_000))?;
        assert_eq!(c.stats.relayed, 0, "seed {seed}");
        assert_eq!(c.stats.forwarded, 0, "seed {seed}");
        assert!(c.committed().len() >= 31, "seed {seed}");
    }
    Ok(())
}

/// The link from the leader to one follower is cut: its AppendEntries reach the follower through
/// another peer, so the follower applies every command, no election takes place and no term
/// changes.
#[test]
fn a_follower_the_leader_cannot_reach_follows_through_a_relay() -> Result<(), Violation> {
    for seed in 0..10 {
        let mut c = Cluster::new(3, seed, Faults::reliable());
        c.run_for(ms(1_000))?;
        let leader = c.leader().expect("a leader");
        let term = c.raft(leader).status().term;
        let cut = (leader + 1) % 3;
        c.cut(leader, cut)?;
        for i in 0..40u8 {
            c.propose(leader, vec![i])?;
            c.run_for(ms(100))?;
        }
        c.run_for(ms(500))?;
        assert_eq!(leaders(&c), vec![(term, leader)], "seed {seed}");
        for s in c.statuses() {
            assert_eq!(s.term, term, "seed {seed}: n{} changed term", s.id);
        }
        let committed = c.committed().len() as u64;
        assert!(committed >= 40, "seed {seed}: {committed} committed");
        assert_eq!(c.peers[cut as usize].applied, committed, "seed {seed}");
        assert!(c.stats.relayed > 0 && c.stats.forwarded > 0, "seed {seed}");
    }
    Ok(())
}

/// Without relaying the same follower never hears the leader: it lags (Pre-Vote keeps it from
/// disturbing the leader), which is what the relay changes.
#[test]
fn without_relaying_that_follower_lags() -> Result<(), Violation> {
    let mut c = Cluster::with_relay(3, 3, 1, Faults::reliable(), 64_000, false);
    c.run_for(ms(1_000))?;
    let leader = c.leader().expect("a leader");
    let cut = (leader + 1) % 3;
    c.cut(leader, cut)?;
    for i in 0..20u8 {
        c.propose(leader, vec![i])?;
        c.run_for(ms(100))?;
    }
    assert!(c.committed().len() >= 20);
    assert!(c.peers[cut as usize].applied < c.committed().len() as u64);
    assert_eq!(c.stats.relayed, 0);
    Ok(())
}

/// The report a message carries names the peers its sender heard directly, and a relayed copy
/// goes through a peer that hears both ends.
#[test]
fn messages_report_whom_their_sender_hears() {
    let mut a = node(0, 3, 1, &[]);
    // Peer 1 hears 0 and 2; peer 2 says it hears only 1.
    let mut hello = pre_vote(1, 0, 2, (0, 0), 1);
    hello.hears = Hears::of([0, 2]);
    a.step(hello, ms(10));
    let mut from_2 = pre_vote(2, 0, 2, (0, 0), 1);
    from_2.hears = Hears::of([1]);
    a.step(from_2.clone(), ms(10));
    // The replies go directly: 2's report predates anything 0 sent it.
    let messages = a.take_ready().messages;
    assert!(messages.iter().all(|m| m.via.is_none()));
    let last = messages.last().expect("replies");
    assert_eq!(last.to, 2);
    assert!(last.hears.names(1) && last.hears.names(2) && !last.hears.names(0));
    // A heartbeat interval later 2 still does not hear 0: the reply to 2 also goes through 1,
    // which hears both.
    from_2.body = pre_vote(2, 0, 2, (0, 0), 2).body;
    a.step(from_2, ms(10) + HEARTBEAT);
    let to_2: Vec<_> = a.take_ready().messages;
    assert!(to_2.iter().all(|m| m.to == 2));
    assert_eq!(
        to_2.iter().map(|m| m.via).collect::<Vec<_>>(),
        vec![None, Some(1)]
    );
    assert_eq!(a.relayed(), 1);
}

/// A relay that has forwarded datagrams to a peer for two heartbeat intervals without hearing
/// from it stops naming it in its report (the senders stop choosing it for that peer), and
/// names it again once it hears from it.
#[test]
fn a_relay_stops_naming_a_peer_it_forwards_to_in_vain() {
    let mut r = node(1, 3, 1, &[]);
    r.step(pre_vote(2, 1, 2, (0, 0), 1), ms(10));
    assert!(r.hears().names(2));
    r.forwarded(0, 2, ms(20));
    r.tick(ms(20) + 2 * HEARTBEAT - ms(1));
    assert!(r.hears().names(2), "not yet two intervals");
    r.tick(ms(20) + 2 * HEARTBEAT);
    assert!(!r.hears().names(2), "forwarded in vain for two intervals");
    r.step(pre_vote(2, 1, 2, (0, 0), 2), ms(20) + 2 * HEARTBEAT + ms(1));
    assert!(r.hears().names(2), "heard again");
}

/// A peer cut off from everyone sends no relayed copy once its requests have gone unanswered
/// for two heartbeat intervals, though the last reports it got (still within the window) say
/// every peer hears every other: those reports are older than the silence.
#[test]
fn a_peer_nobody_answers_relays_nothing() {
    let mut a = node(0, 3, 1, &[]);
    for from in [1, 2] {
        let mut hello = pre_vote(from, 0, 1, (0, 0), 1);
        hello.hears = Hears::of([0, 1, 2]);
        a.step(hello, ms(10));
    }
    take_synced(&mut a);
    let stood = a.election_deadline;
    let round = time_out(&mut a).messages;
    assert_eq!(round.len(), 2);
    let mut t = stood;
    while t < stood + 4 * HEARTBEAT {
        t += ms(10);
        a.tick(t);
        for m in take_synced(&mut a).messages {
            assert_eq!(m.via, None, "relayed at {t:?}: {m:?}");
        }
    }
    assert_eq!(a.relayed(), 0);
}

/// A reply goes back through the relay its request came by, as well as directly, even though
/// the sender's report still names this peer (it heard it within the window); a reply to a
/// request that came directly goes only directly.
#[test]
fn a_reply_goes_back_through_the_relay_its_request_came_by() {
    let mut a = node(0, 3, 1, &[]);
    let mut relayed = pre_vote(1, 0, 2, (0, 0), 1);
    relayed.hears = Hears::of([0, 1, 2]);
    relayed.via = Some(2);
    a.step(relayed, ms(10));
    let replies = take_synced(&mut a).messages;
    assert_eq!(
        replies.iter().map(|m| (m.to, m.via)).collect::<Vec<_>>(),
        vec![(1, None), (1, Some(2))]
    );
    let mut direct = pre_vote(1, 0, 2, (0, 0), 2);
    direct.hears = Hears::of([0, 1, 2]);
    a.step(direct, ms(20));
    let replies = take_synced(&mut a).messages;
    assert_eq!(
        replies.iter().map(|m| (m.to, m.via)).collect::<Vec<_>>(),
        vec![(1, None)]
    );
    assert_eq!(a.relayed(), 1);
}

/// A reply that needs a relay (the leader's report says it does not hear this follower, though
/// it has replied for a heartbeat interval) goes through the peer heard from last when no
/// report qualifies one: here peer 2's last report leaves this follower out.
#[test]
fn a_reply_no_report_can_route_goes_through_the_peer_heard_last() {
    let mut a = node(0, 3, 1, &[]);
    let mut from_2 = pre_vote(2, 0, 2, (0, 0), 1);
    from_2.hears = Hears::of([1]);
    a.step(from_2, ms(10));
    take_synced(&mut a);
    let heartbeat = |at| {
        let mut m = append(1, 0, 1, (0, 0), vec![], 0);
        m.hears = Hears::of([2]);
        (m, at)
    };
    let (m, at) = heartbeat(ms(20));
    a.step(m, at);
    let replies = take_synced(&mut a).messages;
    assert!(replies.iter().all(|m| m.via.is_none()), "{replies:?}");
    let (m, at) = heartbeat(ms(20) + HEARTBEAT);
    a.step(m, at);
    let replies = take_synced(&mut a).messages;
    assert_eq!(
        replies.iter().map(|m| (m.to, m.via)).collect::<Vec<_>>(),
        vec![(1, None), (1, Some(2))]
    );
}

/// A leader cut off from everyone, as the lab's tests cut off nodes, draws no relayed copy from
/// the others, who go on without it: every report that still names it (each peer heard it within
/// the window) is older than its silence.
#[test]
fn a_leader_cut_off_from_everyone_is_not_relayed_to() -> Result<(), Violation> {
    for seed in 0..10 {
        let mut c = Cluster::new(5, seed, Faults::reliable());
        c.run_for(ms(1_000))?;
        let old = c.leader().expect("a leader");
        c.set_connected(old, false)?;
        for i in 0..20u8 {
            if let Some(leader) = c.leader().filter(|&l| l != old) {
                c.propose(leader, vec![i])?;
            }
            c.run_for(ms(100))?;
        }
        assert!(
            c.leader().is_some_and(|l| l != old),
            "seed {seed}: no new leader"
        );
        let committed = c.committed().len();
        assert!(committed >= 10, "seed {seed}: {committed} committed");
        let relayed: Vec<u64> = (0..5).map(|id| c.raft(id).relayed()).collect();
        for id in (0..5).filter(|&id| id != old) {
            assert_eq!(
                relayed[id as usize], 0,
                "seed {seed}: n{id} relayed ({relayed:?})"
            );
        }
    }
    Ok(())
}
