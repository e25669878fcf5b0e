//! ReadIndex (Raft thesis §6.4): reads confirmed without log entries, once the leader has
//! committed an entry of its term and a majority has acknowledged a heartbeat round begun after
//! the read was asked.

use super::helpers::*;
use crate::core::{Index, Message, MessageBody, ProposeError, Raft, ReadState, Ready, Role};
use crate::sim::{Cluster, Faults, Outcome, Violation};

/// The reply `m`'s receiver sends to AppendEntries `m` when its log matches: success through
/// its last entry, echoing its read round.
fn ack(m: &Message) -> Message {
    let MessageBody::AppendEntries {
        prev_log_index,
        entries,
        read_round,
        ..
    } = &m.body
    else {
        panic!("not an AppendEntries: {m:?}");
    };
    with_round(
        append_ok(
            m.to,
            m.from,
            m.term,
            prev_log_index + entries.len() as Index,
        ),
        *read_round,
    )
}

/// AppendEntries `m` carrying read round `round`.
fn carrying(mut m: Message, round: u64) -> Message {
    match &mut m.body {
        MessageBody::AppendEntries { read_round, .. } => *read_round = round,
        body => panic!("not an AppendEntries: {body:?}"),
    }
    m
}

/// `reply` echoing read round `round`.
fn with_round(mut reply: Message, round: u64) -> Message {
    match &mut reply.body {
        MessageBody::AppendEntriesReply { read_round, .. } => *read_round = round,
        body => panic!("not an AppendEntriesReply: {body:?}"),
    }
    reply
}

/// The read rounds of the AppendEntries in `ready`, as (to, round).
fn rounds(ready: &Ready) -> Vec<(u32, u64)> {
    ready
        .messages
        .iter()
        .map(|m| match &m.body {
            MessageBody::AppendEntries { read_round, .. } => (m.to, *read_round),
            body => panic!("not an AppendEntries: {body:?}"),
        })
        .collect()
}

fn read(id: u64, index: Index) -> ReadState {
    ReadState { id, index }
}

/// Peer 0 of `members`, leading term 1 with one entry of its own (index 1) committed and
/// known to every follower (all in Replicate).
fn leader(members: u32) -> Raft {
    let mut r = node(0, members, 0, &[]);
    elect_and_sync(&mut r);
    r.propose(b"no-op".to_vec(), ms(0)).unwrap();
    for m in take_synced(&mut r).messages {
        r.step(ack(&m), ms(0));
    }
    assert_eq!(r.status().commit_index, 1);
    take_synced(&mut r);
    r
}

/// §6.4: only the leader serves reads; another peer refuses at once, naming the leader it
/// knows.
#[test]
fn a_peer_that_does_not_lead_refuses_reads() {
    let mut r = node(1, 3, 1, &[1]);
    assert_eq!(
        r.read_index(1, ms(0)),
        Err(ProposeError::NotLeader { leader: None })
    );
    r.step(append(0, 1, 1, (1, 1), vec![], 1), ms(0));
    assert_eq!(
        r.read_index(2, ms(0)),
        Err(ProposeError::NotLeader { leader: Some(0) })
    );
    let ready = take_synced(&mut r);
    assert!(ready.reads.is_empty() && ready.failed_reads.is_empty());
}

/// §6.4 step 1: a new leader's commit index may lag what earlier leaders committed, so reads
/// wait until an entry of its own term commits (the service's no-op), and take the commit
/// index then, not the one when they were asked.
#[test]
fn reads_wait_for_an_entry_of_the_leaders_term_to_commit() {
    let mut r = node(0, 3, 1, &[1, 1]);
    elect_and_sync(&mut r);
    assert_eq!((r.status().term, r.status().commit_index), (2, 0));
    r.read_index(7, ms(0)).unwrap();
    r.tick(r.next_deadline());
    let ready = take_synced(&mut r);
    assert!(ready.reads.is_empty());
    // No round is begun for a read without an index.
    assert!(rounds(&ready).iter().all(|&(_, round)| round == 0));
    for m in &ready.messages {
        r.step(ack(m), ms(0));
    }
    assert!(take_synced(&mut r).reads.is_empty());

    r.propose(b"no-op".to_vec(), ms(0)).unwrap();
    let ready = take_synced(&mut r);
    assert_eq!(rounds(&ready), vec![(1, 0), (2, 0)]);
    // One follower's copy commits index 3 (term 2): the read takes index 3 and waits for the
    // round begun after that.
    r.step(ack(&ready.messages[0]), ms(0));
    assert_eq!(r.status().commit_index, 3);
    let ready = take_synced(&mut r);
    assert!(ready.reads.is_empty());
    assert_eq!(rounds(&ready), vec![(1, 1)]);
    r.step(ack(&ready.messages[0]), ms(0));
    assert_eq!(take_synced(&mut r).reads, vec![read(7, 3)]);
}

/// §6.4 step 3: the read is confirmed once a majority (the leader included) acknowledged a
/// round begun after it was asked; acknowledgements of earlier rounds do not count, however
/// many.
#[test]
fn a_read_is_confirmed_by_a_majority_acknowledging_a_later_round() {
    let mut r = leader(5);
    r.read_index(1, ms(0)).unwrap();
    let ready = take_synced(&mut r);
    assert!(ready.reads.is_empty());
    // The round begins at once, not at the next heartbeat, to every follower.
    assert_eq!(rounds(&ready), vec![(1, 1), (2, 1), (3, 1), (4, 1)]);
    for peer in 1..5 {
        r.step(append_ok(peer, 0, 1, 1), ms(0));
    }
    assert!(take_synced(&mut r).reads.is_empty());
    r.step(ack(&ready.messages[0]), ms(0));
    assert!(take_synced(&mut r).reads.is_empty());
    r.step(ack(&ready.messages[3]), ms(0));
    assert_eq!(take_synced(&mut r).reads, vec![read(1, 1)]);
    // Later acknowledgements of that round change nothing.
    r.step(ack(&ready.messages[1]), ms(0));
    assert!(take_synced(&mut r).reads.is_empty());
}

/// §6.4: the read index is the commit index when the read was asked, even if it advances while
/// the round is under way.
#[test]
fn the_read_index_is_the_commit_index_when_asked() {
    let mut r = leader(3);
    r.read_index(1, ms(0)).unwrap();
    r.propose(b"x".to_vec(), ms(0)).unwrap();
    let ready = take_synced(&mut r);
    r.step(ack(&ready.messages[0]), ms(0));
    assert_eq!(r.status().commit_index, 2);
    assert_eq!(take_synced(&mut r).reads, vec![read(1, 1)]);
}

/// Reads asked in one event-loop iteration share one round: one AppendEntries per follower,
/// confirmed together, in the order asked. A read asked after the round began waits for the
/// next one.
#[test]
fn reads_of_one_iteration_share_one_round() {
    let mut r = leader(3);
    for id in [10, 11, 12] {
        r.read_index(id, ms(0)).unwrap();
    }
    let first = take_synced(&mut r);
    assert_eq!(rounds(&first), vec![(1, 1), (2, 1)]);
    r.read_index(13, ms(0)).unwrap();
    let second = take_synced(&mut r);
    assert_eq!(rounds(&second), vec![(1, 2), (2, 2)]);

    r.step(ack(&first.messages[0]), ms(0));
    assert_eq!(
        take_synced(&mut r).reads,
        vec![read(10, 1), read(11, 1), read(12, 1)]
    );
    r.step(ack(&second.messages[1]), ms(0));
    assert_eq!(take_synced(&mut r).reads, vec![read(13, 1)]);
}

/// A round reaches a follower with batches in flight once they are answered (an empty
/// AppendEntries overtaking them would be rejected); their answers, of an earlier round,
/// confirm nothing.
#[test]
fn a_round_waits_for_the_batches_in_flight() {
    let mut r = leader(3);
    r.propose(b"x".to_vec(), ms(0)).unwrap();
    let batch = take_synced(&mut r);
    assert_eq!(rounds(&batch), vec![(1, 0), (2, 0)]);
    r.read_index(1, ms(0)).unwrap();
    assert!(take_synced(&mut r).messages.is_empty());
    r.step(ack(&batch.messages[0]), ms(0));
    let ready = take_synced(&mut r);
    assert!(ready.reads.is_empty());
    assert_eq!(rounds(&ready), vec![(1, 1)]);
    r.step(ack(&ready.messages[0]), ms(0));
    assert_eq!(take_synced(&mut r).reads, vec![read(1, 1)]);
}

/// Replies arrive duplicated and reordered: a follower counts once however often it answers,
/// and an older round answered late does not undo a newer one.
#[test]
fn duplicated_and_reordered_acknowledgements_count_once() {
    let mut r = leader(5);
    r.read_index(1, ms(0)).unwrap();
    let first = take_synced(&mut r);
    r.read_index(2, ms(0)).unwrap();
    let second = take_synced(&mut r);
    for _ in 0..3 {
        r.step(ack(&second.messages[0]), ms(0));
    }
    r.step(ack(&first.messages[0]), ms(0));
    assert!(take_synced(&mut r).reads.is_empty());
    r.step(ack(&second.messages[1]), ms(0));
    assert_eq!(take_synced(&mut r).reads, vec![read(1, 1), read(2, 1)]);
}

/// A rejection in the leader's term acknowledges the round too: the follower was in that term
/// after the round began, which is all §6.4 asks.
#[test]
fn a_rejection_in_the_term_acknowledges_the_round() {
    let mut r = leader(3);
    r.read_index(1, ms(0)).unwrap();
    take_synced(&mut r);
    r.step(with_round(append_reject(1, 0, 1, 1, (None, 1)), 1), ms(0));
    assert_eq!(take_synced(&mut r).reads, vec![read(1, 1)]);
}

/// Figure 2's term rule: a reply of an older term answers nothing current, and an
/// acknowledgement of a round never begun is bogus; neither confirms a read.
#[test]
fn stale_and_bogus_acknowledgements_do_not_count() {
    let mut r = node(0, 3, 1, &[1]);
    elect_and_sync(&mut r);
    r.propose(b"no-op".to_vec(), ms(0)).unwrap();
    for m in take_synced(&mut r).messages {
        r.step(ack(&m), ms(0));
    }
    assert_eq!(r.status().term, 2);
    r.read_index(1, ms(0)).unwrap();
    take_synced(&mut r);
    r.step(with_round(append_ok(1, 0, 1, 2), 1), ms(0));
    r.step(with_round(append_ok(2, 0, 2, 2), 5), ms(0));
    let ready = take_synced(&mut r);
    assert!(ready.reads.is_empty() && ready.failed_reads.is_empty());
    assert_eq!(r.status().role, Role::Leader);
}

/// A follower echoes the request's round in every answer in its term, success or rejection;
/// a request of an older term is answered with round 0, which acknowledges nothing.
#[test]
fn followers_echo_the_round() {
    let mut f = node(1, 3, 2, &[1]);
    let round_of = |ready: Ready| match &ready.messages[..] {
        [Message {
            body: MessageBody::AppendEntriesReply { read_round, .. },
            ..
        }] => *read_round,
        messages => panic!("not one AppendEntriesReply: {messages:?}"),
    };
    f.step(carrying(append(0, 1, 2, (1, 1), vec![], 0), 4), ms(0));
    assert_eq!(round_of(take_synced(&mut f)), 4);
    f.step(carrying(append(0, 1, 2, (5, 2), vec![], 0), 5), ms(0));
    assert_eq!(round_of(take_synced(&mut f)), 5);
    f.step(carrying(append(2, 1, 1, (1, 1), vec![], 0), 6), ms(0));
    assert_eq!(round_of(take_synced(&mut f)), 0);
}

/// §6.4: a leader that learns of a newer term has been deposed and can confirm nothing: every
/// read it holds, with an index or still waiting for one, fails, once.
#[test]
fn a_newer_term_fails_every_read() {
    let mut r = node(0, 3, 1, &[1]);
    elect_and_sync(&mut r);
    r.read_index(1, ms(0)).unwrap();
    r.propose(b"no-op".to_vec(), ms(0)).unwrap();
    let ready = take_synced(&mut r);
    r.step(ack(&ready.messages[0]), ms(0));
    r.read_index(2, ms(0)).unwrap();
    let ready = take_synced(&mut r);
    assert!(ready.reads.is_empty());
    r.step(append_ok(1, 0, 5, 2), ms(0));
    assert_eq!((r.status().role, r.status().term), (Role::Follower, 5));
    let ready = take_synced(&mut r);
    assert_eq!((ready.reads, ready.failed_reads), (vec![], vec![1, 2]));
}

/// §6.2 and §6.4: a leader that steps down by CheckQuorum, in its own term, fails its reads.
#[test]
fn stepping_down_fails_every_read() {
    let mut r = leader(3);
    r.read_index(1, ms(0)).unwrap();
    take_synced(&mut r);
    let mut failed = vec![];
    while r.status().role == Role::Leader {
        r.tick(r.next_deadline());
        let ready = take_synced(&mut r);
        assert!(ready.reads.is_empty());
        failed.extend(ready.failed_reads);
    }
    assert_eq!((r.status().term, failed), (1, vec![1]));
}

/// §6.4, the case it exists for: a leader cut off in a minority while the majority elects a
/// new leader and commits writes never confirms a read; the read fails when it steps down, and
/// the new leader's reads see the new writes.
#[test]
fn a_deposed_leader_in_a_minority_never_confirms() -> Result<(), Violation> {
    let mut c = Cluster::new(5, 11, Faults::reliable());
    let deadline = ms(3_000);
    let first = c.agree(b"first".to_vec(), deadline)?.expect("committed");
    let old = c.leader().expect("a leader");
    c.set_connected(old, false)?;
    let ids = c.read(old, 2)?;
    assert_eq!(ids.len(), 2);
    c.run_until(ms(10_000), |c| c.leader().is_some())?;
    let new = c.leader().expect("a new leader");
    let (second, _) = c.propose(new, b"second".to_vec())?.expect("accepted");
    c.run_until(ms(10_000), |c| c.committed().len() as Index >= second)?;
    assert_eq!(c.committed().len() as Index, second);
    c.run_until(ms(20_000), |c| c.raft(old).status().role != Role::Leader)?;
    for &id in &ids {
        assert_eq!(c.read_outcome(id), Some(Outcome::Failed));
    }
    let new_read = c.read(new, 1)?;
    c.run_for(ms(50))?;
    assert!(first < second);
    assert_eq!(
        c.read_outcome(new_read[0]),
        Some(Outcome::Confirmed(second))
    );
    Ok(())
}

/// §6.4: a one-member cluster is its own majority: once it has committed an entry of its
/// term, its reads are confirmed at once, with no message sent.
#[test]
fn a_single_member_confirms_at_once() {
    let mut r = node(0, 1, 3, &[3]);
    time_out(&mut r);
    assert_eq!((r.status().role, r.status().term), (Role::Leader, 4));
    r.read_index(1, ms(0)).unwrap();
    assert!(take_synced(&mut r).reads.is_empty());
    r.propose(b"no-op".to_vec(), ms(0)).unwrap();
    // The no-op commits when its sync is reported; the read is confirmed in the next Ready.
    assert!(take_synced(&mut r).reads.is_empty());
    assert_eq!(take_synced(&mut r).reads, vec![read(1, 2)]);
    r.read_index(2, ms(0)).unwrap();
    let ready = take_synced(&mut r);
    assert_eq!(ready.reads, vec![read(2, 2)]);
    assert!(ready.messages.is_empty());
}
