//! Commitment (§5.3, §5.4.2): the leader commits the highest index a majority holds, counting
//! its own copy, but only by counting replicas of an entry from its current term (Figure 8).

use super::helpers::*;
use crate::core::Raft;

/// Elects node 0 of `members` with `log_terms` and acknowledges the initial heartbeats.
fn leader(members: u32, term: u64, log_terms: &[u64]) -> (Raft, u64) {
    let mut r = node(0, members, term, log_terms);
    let term = elect(&mut r).messages[0].term;
    (r, term)
}

/// §5.3: an entry is committed once the leader has replicated it on a majority; the leader's
/// own copy counts. Committed entries are applied by the leader.
#[test]
fn leader_commits_on_a_majority_counting_itself() {
    let mut r = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut r);
    assert_eq!(r.propose(b"a".to_vec(), ms(0)), Ok((1, term)));
    r.take_ready();
    assert_eq!(r.status().commit_index, 0);
    r.step(append_ok(2, 0, term, 1), ms(1));
    assert_eq!(r.status().commit_index, 1);
    let apply = r.take_ready().apply;
    assert_eq!(apply.len(), 1);
    assert_eq!(apply[0].command, b"a");
}

/// §5.3: five members need three copies; the commit index is the highest index a majority
/// holds, whatever the order acknowledgements arrive in.
#[test]
fn commit_index_is_the_majority_match() {
    let (mut r, term) = leader(5, 1, &[]);
    for _ in 0..10 {
        r.propose(b"x".to_vec(), ms(0)).unwrap();
    }
    r.step(append_ok(1, 0, term, 7), ms(0));
    assert_eq!(r.status().commit_index, 0);
    r.step(append_ok(3, 0, term, 3), ms(0));
    assert_eq!(r.status().commit_index, 3);
    r.step(append_ok(4, 0, term, 5), ms(0));
    assert_eq!(r.status().commit_index, 5);
    r.step(append_ok(2, 0, term, 9), ms(0));
    assert_eq!(r.status().commit_index, 7);
}

/// §5.4.2, Figure 8: a leader never commits an entry from an earlier term by counting replicas,
/// even when a majority holds it; it becomes committed only as the prefix of a current-term
/// entry that is.
#[test]
fn figure_8_old_term_entries_commit_only_indirectly() {
    // The leader of term 4 holds index 2 from term 2 (Figure 8's S1 in (c)).
    let (mut r, term) = leader(5, 3, &[1, 2]);
    assert_eq!(term, 4);
    r.step(append_ok(1, 0, term, 2), ms(0));
    r.step(append_ok(2, 0, term, 2), ms(0));
    r.step(append_ok(3, 0, term, 2), ms(0));
    assert_eq!(
        r.status().commit_index,
        0,
        "term-2 entry committed by counting"
    );
    assert!(r.take_ready().apply.is_empty());

    assert_eq!(r.propose(b"c".to_vec(), ms(0)), Ok((3, 4)));
    r.step(append_ok(1, 0, term, 3), ms(0));
    assert_eq!(r.status().commit_index, 0);
    r.step(append_ok(2, 0, term, 3), ms(0));
    assert_eq!(r.status().commit_index, 3);
    let applied: Vec<_> = r.take_ready().apply.iter().map(|e| e.index).collect();
    assert_eq!(applied, vec![1, 2, 3]);
}

/// §5.3: followers learn the commit index from the leader's next AppendEntries (here the
/// heartbeat), and apply.
#[test]
fn followers_learn_the_commit_index_from_the_next_append_entries() {
    let mut leader = node(0, 3, 0, &[]);
    let mut follower = node(1, 3, 0, &[]);
    let term = elect_and_sync(&mut leader);
    leader.propose(b"v".to_vec(), ms(0)).unwrap();
    let to_follower = leader
        .take_ready()
        .messages
        .into_iter()
        .find(|m| m.to == 1)
        .unwrap();
    follower.step(to_follower, ms(1));
    let replies = follower.take_ready().messages;
    assert_eq!(replies, vec![append_ok(1, 0, term, 1)]);
    leader.step(replies[0].clone(), ms(2));
    assert_eq!(leader.status().commit_index, 1);
    assert_eq!(follower.status().commit_index, 0);

    leader.tick(leader.next_deadline());
    let heartbeat = leader
        .take_ready()
        .messages
        .into_iter()
        .find(|m| m.to == 1)
        .unwrap();
    assert_eq!(heartbeat, append(0, 1, term, (1, term), vec![], 1));
    follower.step(heartbeat, ms(200));
    assert_eq!(follower.take_ready().apply.len(), 1);
    assert_eq!(follower.status().commit_index, 1);
}
