//! Commitment (§5.3, §5.4.2): the leader commits the highest index a majority holds, counting
//! its own copy, but only by counting replicas of an entry from its current term (Figure 8).

use super::helpers::*;
use crate::core::replication::COMMIT_ANNOUNCE_DELAY;
use crate::core::{Apply, Entry, Index, Raft, Term};

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
    assert_eq!(
        r.take_ready().apply,
        vec![Apply::Entry(entry_with(1, term, b"a"))]
    );
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
    let applied: Vec<_> = r.take_ready().apply.iter().map(Apply::index).collect();
    assert_eq!(applied, vec![1, 2, 3]);
}

/// §5.3: followers learn the commit index from the leader's next AppendEntries; when none goes
/// out within COMMIT_ANNOUNCE_DELAY of the commit, an empty one announces it, and the follower
/// applies.
#[test]
fn followers_learn_the_commit_index_within_the_announce_delay() {
    let mut leader = node(0, 3, 0, &[]);
    let mut follower = node(1, 3, 0, &[]);
    let term = elect_and_sync(&mut leader);
    let t0 = leader.now;
    leader.propose(b"v".to_vec(), t0).unwrap();
    let to_follower = leader
        .take_ready()
        .messages
        .into_iter()
        .find(|m| m.to == 1)
        .unwrap();
    follower.step(to_follower, t0 + ms(1));
    let replies = follower.take_ready().messages;
    assert_eq!(replies, vec![append_ok(1, 0, term, 1)]);
    leader.step(replies[0].clone(), t0 + ms(2));
    assert_eq!(leader.status().commit_index, 1);
    assert_eq!(follower.status().commit_index, 0);
    assert!(leader.take_ready().messages.is_empty());

    let announce_at = t0 + ms(2) + COMMIT_ANNOUNCE_DELAY;
    assert_eq!(leader.next_deadline(), announce_at);
    leader.tick(announce_at);
    let messages = leader.take_ready().messages;
    // n2 has not acknowledged its batch yet: its announcement waits for that answer.
    assert_eq!(messages, vec![append(0, 1, term, (1, term), vec![], 1)]);
    follower.step(messages[0].clone(), announce_at + ms(1));
    assert_eq!(follower.take_ready().apply.len(), 1);
    assert_eq!(follower.status().commit_index, 1);

    leader.step(append_ok(2, 0, term, 1), announce_at + ms(1));
    assert_eq!(
        leader.take_ready().messages,
        vec![append(0, 2, term, (1, term), vec![], 1)]
    );
}

/// The announcement coalesces with the AppendEntries that go out meanwhile: they carry the
/// commit index, so a follower sent one after the commit advanced gets nothing extra.
#[test]
fn no_announcement_when_an_append_carried_the_commit_index() {
    let mut leader = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut leader);
    let t0 = leader.now;
    leader.propose(b"a".to_vec(), t0).unwrap();
    leader.take_ready();
    leader.step(append_ok(1, 0, term, 1), t0 + ms(1));
    leader.step(append_ok(2, 0, term, 1), t0 + ms(1));
    assert_eq!(leader.status().commit_index, 1);
    leader.propose(b"b".to_vec(), t0 + ms(2)).unwrap();
    assert_eq!(
        leader.take_ready().messages,
        vec![
            append(0, 1, term, (1, term), vec![entry_with(2, term, b"b")], 1),
            append(0, 2, term, (1, term), vec![entry_with(2, term, b"b")], 1),
        ]
    );
    leader.tick(t0 + ms(1) + COMMIT_ANNOUNCE_DELAY);
    assert!(leader.take_ready().messages.is_empty());
    // Nothing more until the heartbeat.
    assert_eq!(leader.next_deadline(), t0 + ms(2) + HEARTBEAT);
}

fn entry_with(index: Index, term: Term, command: &[u8]) -> Entry {
    Entry {
        term,
        index,
        command: command.to_vec(),
    }
}
