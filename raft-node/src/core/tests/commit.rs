//! Commitment (§5.3, §5.4.2): the leader commits the highest index a majority holds, counting
//! its own copy, but only by counting replicas of an entry from its current term (Figure 8).

use super::helpers::*;
use crate::core::replication::COMMIT_ANNOUNCE_DELAY;
use crate::core::{
    Apply, Entry, EntryKind, Index, LogMark, Message, MessageBody, Raft, Term, Time,
};

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
    take_synced(&mut r);
    assert_eq!(r.status().commit_index, 0);
    r.step(append_ok(2, 0, term, 1), ms(1));
    assert_eq!(r.status().commit_index, 1);
    assert_eq!(
        take_synced(&mut r).apply,
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
    take_synced(&mut r);
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
    assert!(take_synced(&mut r).apply.is_empty());

    assert_eq!(r.propose(b"c".to_vec(), ms(0)), Ok((3, 4)));
    take_synced(&mut r);
    r.step(append_ok(1, 0, term, 3), ms(0));
    assert_eq!(r.status().commit_index, 0);
    r.step(append_ok(2, 0, term, 3), ms(0));
    assert_eq!(r.status().commit_index, 3);
    let applied: Vec<_> = take_synced(&mut r).apply.iter().map(Apply::index).collect();
    assert_eq!(applied, vec![1, 2, 3]);
}

/// §5.3: followers learn the commit index from the leader's next AppendEntries; when none goes
/// out within COMMIT_ANNOUNCE_DELAY of the commit, an empty one announces it, and the follower
/// applies. A follower known to match answers no announcement (its success would tell the
/// leader nothing); one whose log does not match still rejects it.
#[test]
fn followers_learn_the_commit_index_within_the_announce_delay() {
    let (mut leader, mut follower, term, t0) = entry_acknowledged_by_n1();
    leader.step(append_ok(1, 0, term, 1), t0 + ms(2));
    assert_eq!(leader.status().commit_index, 1);
    assert_eq!(follower.status().commit_index, 0);
    assert!(take_synced(&mut leader).messages.is_empty());

    let announce_at = t0 + ms(2) + COMMIT_ANNOUNCE_DELAY;
    assert_eq!(leader.next_deadline(), announce_at);
    leader.tick(announce_at);
    let messages = take_synced(&mut leader).messages;
    // n2 has not acknowledged its batch yet: its announcement waits for that answer.
    assert_eq!(messages, vec![announce(0, 1, term, (1, term), 1)]);
    follower.step(messages[0].clone(), announce_at + ms(1));
    let ready = take_synced(&mut follower);
    assert_eq!(ready.apply.len(), 1);
    assert!(ready.messages.is_empty());
    assert_eq!(follower.status().commit_index, 1);

    leader.step(append_ok(2, 0, term, 1), announce_at + ms(1));
    assert_eq!(
        take_synced(&mut leader).messages,
        vec![announce(0, 2, term, (1, term), 1)]
    );

    // A follower that lacks the entry rejects the announcement all the same.
    let mut behind = node(2, 3, term, &[]);
    behind.step(announce(0, 2, term, (1, term), 1), announce_at + ms(2));
    assert_eq!(
        take_synced(&mut behind).messages,
        vec![append_reject(2, 0, term, 1, (None, 1))]
    );
}

/// Leader n0 of three, elected, proposes entry 1 at `t0`; follower n1 receives it 1 ms later
/// and acknowledges it (the acknowledgement is not delivered).
fn entry_acknowledged_by_n1() -> (Raft, Raft, Term, Time) {
    let mut leader = node(0, 3, 0, &[]);
    let mut follower = node(1, 3, 0, &[]);
    let term = elect_and_sync(&mut leader);
    let t0 = leader.now;
    leader.propose(b"v".to_vec(), t0).unwrap();
    let to_follower = take_synced(&mut leader)
        .messages
        .into_iter()
        .find(|m| m.to == 1)
        .unwrap();
    follower.step(to_follower, t0 + ms(1));
    assert_eq!(
        take_synced(&mut follower).messages,
        vec![append_ok(1, 0, term, 1)]
    );
    (leader, follower, term, t0)
}

/// The announcement coalesces with the AppendEntries that go out meanwhile: they carry the
/// commit index, so a follower sent one after the commit advanced gets nothing extra.
#[test]
fn no_announcement_when_an_append_carried_the_commit_index() {
    let mut leader = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut leader);
    let t0 = leader.now;
    leader.propose(b"a".to_vec(), t0).unwrap();
    take_synced(&mut leader);
    leader.step(append_ok(1, 0, term, 1), t0 + ms(1));
    leader.step(append_ok(2, 0, term, 1), t0 + ms(1));
    assert_eq!(leader.status().commit_index, 1);
    leader.propose(b"b".to_vec(), t0 + ms(2)).unwrap();
    assert_eq!(
        take_synced(&mut leader).messages,
        vec![
            append(0, 1, term, (1, term), vec![entry_with(2, term, b"b")], 1),
            append(0, 2, term, (1, term), vec![entry_with(2, term, b"b")], 1),
        ]
    );
    leader.tick(t0 + ms(1) + COMMIT_ANNOUNCE_DELAY);
    assert!(take_synced(&mut leader).messages.is_empty());
    // Nothing more until "b" is overdue (`Raft::stall_timeout`), or else the heartbeat.
    assert_eq!(leader.next_deadline(), t0 + ms(2) + HEARTBEAT / 3);
}

fn entry_with(index: Index, term: Term, command: &[u8]) -> Entry {
    Entry {
        term,
        index,
        command: command.to_vec(),
        kind: EntryKind::Command,
    }
}

/// Thesis §10.2.1: the leader sends a new entry to its followers before its own copy is durable,
/// and counts that copy toward the majority only once `persisted` reports it.
#[test]
fn the_leader_replicates_before_its_sync_and_counts_itself_after() {
    let mut r = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut r);
    r.propose(b"a".to_vec(), ms(0)).unwrap();
    let ready = r.take_ready();
    assert_eq!(ready.persist.as_ref().map(|p| p.append.len()), Some(1));
    let mark = LogMark {
        index: 1,
        term,
        current_term: term,
    };
    assert_eq!(ready.log_mark, mark);
    assert_eq!(ready.messages.len(), 2);
    assert!(ready.messages.iter().all(Message::may_precede_persist));

    // One follower's copy and the leader's unsynced one are not a majority.
    r.step(append_ok(1, 0, term, 1), ms(1));
    assert_eq!(r.status().commit_index, 0);
    assert!(r.take_ready().apply.is_empty());
    r.persisted(ready.log_mark, ms(2));
    assert_eq!(r.status().commit_index, 1);
    assert_eq!(
        r.take_ready().apply,
        vec![Apply::Entry(entry_with(1, term, b"a"))]
    );
}

/// What a follower or a candidate sends promises what the same `Ready` persists (an
/// acknowledged entry, a vote, a term): none of it may leave before the persist.
#[test]
fn only_the_leaders_replication_may_precede_the_persist() {
    let mut f = node(1, 3, 1, &[]);
    f.step(append(0, 1, 1, (0, 0), log(&[1]), 0), ms(0));
    let ready = unreported(f.take_ready());
    assert!(ready.persist.is_some());
    assert_eq!(ready.messages, vec![append_ok(1, 0, 1, 1)]);
    assert!(!ready.messages[0].may_precede_persist());

    let mut c = node(2, 3, 1, &[]);
    let ready = campaign(&mut c);
    assert!(ready.persist.is_some_and(|p| p.hard_state.is_some()));
    assert!(!ready.messages.is_empty());
    assert!(ready.messages.iter().all(|m| !m.may_precede_persist()));
}

/// A report of a sync made stale by a later truncation names an (index, term) the log no longer
/// holds, so the leader it becomes does not count entries its disk may not have.
#[test]
fn a_stale_sync_report_after_a_truncation_counts_nothing() {
    let mut r = node(0, 3, 1, &[1]);
    r.step(
        append(1, 0, 1, (1, 1), log(&[1, 1])[1..].to_vec(), 0),
        ms(0),
    );
    let stale = r.take_ready().log_mark;
    let mark = LogMark {
        index: 2,
        term: 1,
        current_term: 1,
    };
    assert_eq!(stale, mark);
    // A leader of term 2 replaces index 2 before that sync completes.
    r.step(
        append(2, 0, 2, (1, 1), vec![entry_with(2, 2, b"y")], 0),
        ms(1),
    );
    let fresh = r.take_ready().log_mark;
    r.persisted(stale, ms(2));
    assert_eq!(r.log.durable(), 1);
    r.persisted(fresh, ms(3));
    assert_eq!(r.log.durable(), 2);
}

/// An announcement asks for no reply, so only the follower can tell it was lost: a stall
/// timeout after it acknowledged entries that no AppendEntries has said are committed, it asks
/// its leader, once; the leader announces again, and the follower applies. A leader whose
/// commit index is not ahead of the follower's answers nothing.
#[test]
fn a_follower_that_missed_the_announcement_asks_once_and_is_told() {
    let (mut leader, mut follower, term, t0) = entry_acknowledged_by_n1();
    let ask_at = t0 + ms(1) + HEARTBEAT / 3;
    assert_eq!(follower.next_deadline(), ask_at);
    leader.step(append_ok(1, 0, term, 1), t0 + ms(2));
    leader.step(append_ok(2, 0, term, 1), t0 + ms(2));
    leader.tick(t0 + ms(2) + COMMIT_ANNOUNCE_DELAY);
    let lost = announce(0, 1, term, (1, term), 1);
    assert!(take_synced(&mut leader).messages.contains(&lost));

    follower.tick(ask_at);
    let query = msg(1, 0, term, MessageBody::CommitQuery { commit: 0 });
    assert_eq!(take_synced(&mut follower).messages, vec![query.clone()]);
    assert!(
        follower.next_deadline() > ask_at + HEARTBEAT / 3,
        "asks once"
    );

    leader.step(query, ask_at + ms(1));
    assert_eq!(take_synced(&mut leader).messages, vec![lost.clone()]);
    follower.step(lost, ask_at + ms(2));
    let ready = take_synced(&mut follower);
    assert_eq!(ready.apply.len(), 1);
    assert!(ready.messages.is_empty());

    // A query the leader has nothing newer for (a duplicate, say) gets no answer.
    let stale = msg(1, 0, term, MessageBody::CommitQuery { commit: 1 });
    leader.step(stale, ask_at + ms(3));
    assert!(take_synced(&mut leader).messages.is_empty());
}
