//! Leadership transfer (thesis §3.10): on single cores, asserting exact effects, and on whole
//! clusters of the simulator.

use super::helpers::*;
use crate::core::{MessageBody, ProposeError, Role, TransferError, ENTRY_OVERHEAD};
use crate::sim::{Cluster, Faults, Violation, ELECTION_TIMEOUT_MAX};

fn timeout_now(from: u32, to: u32, term: u64) -> crate::core::Message {
    msg(from, to, term, MessageBody::TimeoutNow)
}

/// A target that holds the whole log is told to campaign at once; the leader takes no
/// proposal meanwhile.
#[test]
fn a_caught_up_target_gets_timeout_now_and_proposals_are_refused() {
    let mut r = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut r);
    r.transfer_leadership(1, ms(1)).unwrap();
    assert_eq!(r.transferring_to(), Some(1));
    assert_eq!(
        r.propose(b"x".to_vec(), ms(1)),
        Err(ProposeError::Transferring { to: 1 })
    );
    let sent = take_synced(&mut r).messages;
    assert_eq!(sent, vec![timeout_now(0, 1, term)]);
}

/// A target behind the leader is brought up to date first: TimeoutNow goes only once it
/// acknowledged the leader's last entry.
#[test]
fn a_lagging_target_is_caught_up_before_timeout_now() {
    let mut r = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut r);
    r.propose(b"a".to_vec(), ms(0)).unwrap();
    take_synced(&mut r);
    r.step(append_ok(2, 0, term, 1), ms(1));
    r.transfer_leadership(1, ms(2)).unwrap();
    assert!(take_synced(&mut r)
        .messages
        .iter()
        .all(|m| m.body != MessageBody::TimeoutNow));
    r.step(append_ok(1, 0, term, 1), ms(3));
    assert_eq!(take_synced(&mut r).messages, vec![timeout_now(0, 1, term)]);
}

/// With no new term within an election timeout, the transfer is given up and proposals
/// resume.
#[test]
fn an_unanswered_transfer_is_abandoned_after_an_election_timeout() {
    let mut r = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut r);
    let start = r.now;
    r.transfer_leadership(2, start).unwrap();
    take_synced(&mut r);
    // Peer 1 answers, so CheckQuorum keeps the leader.
    r.step(append_ok(1, 0, r.status().term, 0), start + ms(10));
    r.tick(start + ELECTION_TIMEOUT_MAX - ms(1));
    assert_eq!(r.transferring_to(), Some(2));
    // Follower 1 keeps answering heartbeats (a leader out of touch refuses proposals anyway).
    r.step(
        append_ok(1, 0, term, 0),
        start + ELECTION_TIMEOUT_MAX - ms(1),
    );
    r.tick(start + ELECTION_TIMEOUT_MAX);
    assert_eq!(r.transferring_to(), None);
    assert_eq!(r.status().role, Role::Leader);
    assert!(r
        .propose(b"x".to_vec(), start + ELECTION_TIMEOUT_MAX)
        .is_ok());
}

#[test]
fn transfers_that_cannot_start_are_refused() {
    let mut f = node(1, 3, 1, &[]);
    assert_eq!(
        f.transfer_leadership(2, ms(0)),
        Err(TransferError::NotLeader { leader: None })
    );
    let mut r = node(0, 3, 0, &[]);
    elect_and_sync(&mut r);
    assert_eq!(
        r.transfer_leadership(0, ms(0)),
        Err(TransferError::NotAPeer { to: 0 })
    );
    assert_eq!(
        r.transfer_leadership(3, ms(0)),
        Err(TransferError::NotAPeer { to: 3 })
    );
    r.transfer_leadership(1, ms(0)).unwrap();
    assert_eq!(
        r.transfer_leadership(2, ms(0)),
        Err(TransferError::InProgress { to: 1 })
    );
}

/// The target campaigns at once, in the next term, without a pre-vote round; TimeoutNow from
/// a peer it does not follow changes nothing.
#[test]
fn timeout_now_from_the_leader_starts_an_election_at_once() {
    let mut f = node(1, 3, 2, &[1, 2]);
    f.step(timeout_now(2, 1, 2), ms(1));
    assert_eq!(f.status().role, Role::Follower, "n2 is not its leader");
    f.step(append(0, 1, 2, (2, 2), vec![], 2), ms(2));
    take_synced(&mut f);
    f.step(timeout_now(0, 1, 2), ms(3));
    assert_eq!((f.status().role, f.status().term), (Role::Candidate, 3));
    let sent = take_synced(&mut f).messages;
    assert_eq!(sent.len(), 2);
    assert!(sent
        .iter()
        .all(|m| m.term == 3 && matches!(m.body, MessageBody::RequestVote { .. })));
}

/// Whole clusters: a transfer to each follower in turn hands leadership over within an
/// election timeout, every command committed before stays committed (the simulator checks that
/// after every step) and a new one commits under the new leader. Each target was cut off while
/// 20 commands committed, and AppendEntries carry one entry each, so it takes the leader
/// several round trips to catch it up: a TimeoutNow sent before that would start an election
/// the target cannot win (its log is behind; §5.4.1).
#[test]
fn leadership_moves_to_each_follower_in_turn() -> Result<(), Violation> {
    let one_entry = 2 + ENTRY_OVERHEAD;
    for seed in 0..10 {
        let mut c = Cluster::with_batches(3, seed, Faults::reliable(), one_entry);
        c.run_for(ms(1_000))?;
        for round in 0..3u8 {
            let leader = c.leader().expect("a leader");
            let to = (leader + 1) % 3;
            c.set_connected(to, false)?;
            for i in 0..20u8 {
                c.agree(vec![round, i], c.now + ms(3_000))?;
            }
            c.set_connected(to, true)?;
            let term = c.raft(leader).status().term;
            assert!(c.transfer(leader, to)?, "seed {seed}");
            let moved = c.run_until(c.now + ELECTION_TIMEOUT_MAX, |c| c.leader() == Some(to))?;
            assert!(moved, "seed {seed} round {round}: n{to} does not lead");
            assert_eq!(c.raft(to).status().term, term + 1, "seed {seed}");
            let index = c.agree(vec![round, 9], c.now + ms(3_000))?;
            assert!(
                index.is_some(),
                "seed {seed}: nothing commits after the transfer"
            );
        }
    }
    Ok(())
}
