//! The leader's flow control: batching, pipelining, the in-flight window, probing, heartbeats
//! and retransmission; proposal errors. (Engineering around Figure 2: §5.3 leaves "retries
//! indefinitely" and the batch size to the implementation.)

use super::helpers::*;
use crate::core::progress::MAX_INFLIGHT;
use crate::core::replication::{COMMIT_ANNOUNCE_DELAY, REPEAT_UNACKNOWLEDGED_BYTES};
use crate::core::{Config, Index, Message, MessageBody, ProposeError, Raft, Term, Time};

/// (prev_log_index, entry indices) of an AppendEntries.
fn shape(m: &Message) -> (Index, Vec<Index>) {
    match &m.body {
        MessageBody::AppendEntries {
            prev_log_index,
            entries,
            ..
        } => (*prev_log_index, entries.iter().map(|e| e.index).collect()),
        body => panic!("not an AppendEntries: {body:?}"),
    }
}

fn to(messages: &[Message], peer: u32) -> Vec<(Index, Vec<Index>)> {
    messages
        .iter()
        .filter(|m| m.to == peer)
        .map(shape)
        .collect()
}

fn propose_n(r: &mut Raft, n: usize) {
    for _ in 0..n {
        r.propose(b"cmd".to_vec(), ms(0)).unwrap();
    }
}

/// Proposals handled in one event-loop iteration go out as one AppendEntries per follower.
#[test]
fn proposals_in_one_iteration_share_one_append_entries() {
    let mut r = node(0, 3, 0, &[]);
    elect_and_sync(&mut r);
    propose_n(&mut r, 5);
    let ready = take_synced(&mut r);
    assert_eq!(ready.persist.unwrap().append.len(), 5);
    assert_eq!(to(&ready.messages, 1), vec![(0, vec![1, 2, 3, 4, 5])]);
    assert_eq!(to(&ready.messages, 2), vec![(0, vec![1, 2, 3, 4, 5])]);
}

fn small_batches(max_append_bytes: usize) -> Raft {
    let config = Config {
        max_append_bytes,
        ..config(0, 2)
    };
    let mut r = Raft::new(config, Default::default(), ms(0));
    elect_and_sync(&mut r);
    r
}

/// A batch carries as many entries as fit `max_append_bytes` (command + ENTRY_OVERHEAD each);
/// a follower known to match receives the rest pipelined, without waiting for replies.
#[test]
fn batches_fit_max_append_bytes_and_pipeline() {
    let mut r = small_batches(3 * (10 + crate::core::ENTRY_OVERHEAD));
    for _ in 0..7 {
        r.propose(vec![7; 10], ms(0)).unwrap();
    }
    let messages = take_synced(&mut r).messages;
    assert_eq!(
        to(&messages, 1),
        vec![(0, vec![1, 2, 3]), (3, vec![4, 5, 6]), (6, vec![7])]
    );
}

/// `propose` refuses a command that cannot fit one AppendEntries, and on a non-leader names
/// the leader if known.
#[test]
fn propose_errors() {
    let mut r = small_batches(100);
    assert!(r.propose(vec![0; 76], ms(0)).is_ok());
    assert_eq!(
        r.propose(vec![0; 77], ms(0)),
        Err(ProposeError::TooLarge {
            size: 101,
            max: 100
        })
    );

    let mut f = node(1, 3, 0, &[]);
    assert_eq!(
        f.propose(vec![1], ms(0)),
        Err(ProposeError::NotLeader { leader: None })
    );
    f.step(append(2, 1, 1, (0, 0), vec![], 0), ms(0));
    assert_eq!(
        f.propose(vec![1], ms(0)),
        Err(ProposeError::NotLeader { leader: Some(2) })
    );
}

/// Commands too large for a batch to repeat them ([`REPEAT_UNACKNOWLEDGED_BYTES`]).
fn propose_large(r: &mut Raft, n: usize) {
    for _ in 0..n {
        r.propose(vec![7; REPEAT_UNACKNOWLEDGED_BYTES], ms(0))
            .unwrap();
    }
}

/// Pipelining: in Replicate each iteration's new entries go out at once, up to MAX_INFLIGHT
/// unacknowledged batches; an acknowledgement reopens the window.
#[test]
fn in_flight_window_is_bounded() {
    let mut r = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut r);
    let mut sent = Vec::new();
    for _ in 0..MAX_INFLIGHT + 2 {
        propose_large(&mut r, 1);
        sent.extend(to(&take_synced(&mut r).messages, 1));
    }
    let expected: Vec<_> = (1..=MAX_INFLIGHT as Index)
        .map(|i| (i - 1, vec![i]))
        .collect();
    assert_eq!(sent, expected);

    r.step(append_ok(1, 0, term, 2), ms(1));
    let n = MAX_INFLIGHT as Index;
    assert_eq!(
        to(&take_synced(&mut r).messages, 1),
        vec![(n, vec![n + 1, n + 2])]
    );
}

/// While the unacknowledged entries are small, each pipelined batch carries them again: a
/// batch that overtakes the ones before it is accepted whole, and its acknowledgement covers
/// them.
#[test]
fn small_unacknowledged_entries_ride_again_with_new_ones() {
    let mut r = node(0, 3, 0, &[]);
    elect_and_sync(&mut r);
    let mut sent = Vec::new();
    for _ in 0..3 {
        propose_n(&mut r, 1);
        sent.extend(
            take_synced(&mut r)
                .messages
                .into_iter()
                .filter(|m| m.to == 1),
        );
    }
    let shapes: Vec<_> = sent.iter().map(shape).collect();
    assert_eq!(
        shapes,
        vec![(0, vec![1]), (0, vec![1, 2]), (0, vec![1, 2, 3])]
    );
    let mut f = node(1, 3, 0, &[]);
    f.step(sent[2].clone(), ms(1));
    r.step(take_synced(&mut f).messages[0].clone(), ms(2));
    assert_eq!(r.progress[1].match_index, 3);
    // Acknowledged through 3: the next batch starts after it.
    propose_n(&mut r, 1);
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![(3, vec![4])]);
}

/// Probe: until a follower is known to match, one AppendEntries at a time; new proposals wait
/// for the answer, and a rejection sends the next probe at once.
#[test]
fn probe_sends_one_at_a_time() {
    let mut r = node(0, 3, 1, &[1, 1]);
    let term = elect(&mut r).messages[0].term;
    propose_n(&mut r, 2);
    assert!(take_synced(&mut r).messages.is_empty());
    r.step(append_reject(1, 0, term, 2, (None, 2)), ms(1));
    assert_eq!(
        to(&take_synced(&mut r).messages, 1),
        vec![(1, vec![2, 3, 4])]
    );
    r.step(append_ok(1, 0, term, 4), ms(2));
    propose_n(&mut r, 1);
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![(4, vec![5])]);
}

/// A follower silent behind its probe (crashed, or cut off) gets the entries proposed since,
/// a stall timeout after it was last sent anything rather than at its next heartbeat: one
/// probe per batch of proposals, nothing more while none come.
#[test]
fn entries_held_behind_an_unanswered_probe_wait_a_stall_timeout_only() {
    let mut r = node(0, 3, 0, &[]);
    elect(&mut r);
    let term = r.status().term;
    let t0 = r.now;
    r.step(append_ok(2, 0, term, 0), t0 + ms(1));
    take_synced(&mut r);
    propose_n(&mut r, 1);
    let sent = take_synced(&mut r).messages;
    assert_eq!(to(&sent, 1), vec![]);
    let stall = r.progress[1].last_sent + HEARTBEAT / 3;
    assert_eq!(r.next_deadline(), stall);
    r.tick(stall);
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![(0, vec![1])]);
    // Nothing new since: no stall, its next message is its heartbeat.
    assert_eq!(
        r.progress[1].stall_deadline(1, HEARTBEAT / 3, HEARTBEAT),
        None
    );
    r.tick(stall + HEARTBEAT / 3);
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![]);
    // A proposal a stall timeout after that probe goes at once; the next waits for its own.
    propose_n(&mut r, 1);
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![(0, vec![1, 2])]);
    propose_n(&mut r, 1);
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![]);
    r.tick(stall + HEARTBEAT / 3 * 2 - ms(1));
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![]);
    r.tick(stall + HEARTBEAT / 3 * 2);
    assert_eq!(
        to(&take_synced(&mut r).messages, 1),
        vec![(0, vec![1, 2, 3])]
    );
}

/// A follower that answers, but not the latest batch (lost on the way, or its answer), gets
/// the entries again a stall timeout after it, from its match, not at the heartbeat; one that
/// has answered nothing for a heartbeat interval gets no such probe.
#[test]
fn a_batch_an_answering_follower_leaves_unanswered_goes_again_after_a_stall_timeout() {
    let mut r = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut r);
    let t0 = r.now;
    propose_n(&mut r, 1);
    take_synced(&mut r);
    r.step(append_ok(2, 0, term, 1), t0 + ms(1));
    take_synced(&mut r);
    let overdue = r.progress[1].last_sent + HEARTBEAT / 3;
    assert!(r.next_deadline() <= overdue);
    r.tick(overdue - ms(1));
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![]);
    r.tick(overdue);
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![(0, vec![1])]);
    // Still unanswered: again a timeout later, then no more once 1 has been silent for an
    // interval (its heartbeat probes it from then on).
    let mut probes = 1;
    let mut t = overdue;
    while t < t0 + 3 * HEARTBEAT {
        t += ms(5);
        r.tick(t);
        probes += to(&take_synced(&mut r).messages, 1).len();
    }
    assert_eq!(probes, 4, "two timeouts, then heartbeats only");
    let quiet_from = t0 + HEARTBEAT;
    assert!(
        r.progress[1].last_sent >= quiet_from,
        "the heartbeat still goes"
    );
}

/// Heartbeats: a follower sent nothing for `heartbeat_interval` gets an AppendEntries from
/// next_index — never repeating acknowledged entries — carrying the commit index.
#[test]
fn heartbeat_after_an_idle_interval_repeats_nothing() {
    let mut r = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut r);
    let t0 = r.now + ms(10);
    propose_n(&mut r, 1);
    r.tick(t0);
    take_synced(&mut r);
    r.step(append_ok(1, 0, term, 1), t0 + ms(2));
    r.step(append_ok(2, 0, term, 1), t0 + ms(2));
    take_synced(&mut r);
    // The announcement of commit index 1 is the last AppendEntries before the idle interval.
    let announce_at = t0 + ms(2) + COMMIT_ANNOUNCE_DELAY;
    assert_eq!(r.next_deadline(), announce_at);
    r.tick(announce_at);
    assert_eq!(take_synced(&mut r).messages.len(), 2);
    let t0 = announce_at;
    assert_eq!(r.next_deadline(), t0 + HEARTBEAT);

    r.tick(t0 + HEARTBEAT - ms(1));
    assert!(take_synced(&mut r).messages.is_empty());
    r.tick(t0 + HEARTBEAT);
    assert_eq!(
        take_synced(&mut r).messages,
        vec![
            append(0, 1, term, (1, term), vec![], 1),
            append(0, 2, term, (1, term), vec![], 1),
        ]
    );
    assert_eq!(r.next_deadline(), t0 + HEARTBEAT * 2);
}

/// Retransmission: batches still unanswered when the heartbeat falls due are presumed lost;
/// the follower is probed again from match_index + 1 (one batch), and streaming resumes once it
/// answers.
#[test]
fn unanswered_batches_are_resent_from_match_index() {
    let mut r = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut r);
    for _ in 0..3 {
        propose_n(&mut r, 1);
        take_synced(&mut r);
    }
    let t0 = r.now;
    r.step(append_ok(1, 0, term, 1), t0 + ms(5));
    r.tick(t0 + HEARTBEAT);
    let messages = take_synced(&mut r).messages;
    assert_eq!(to(&messages, 1), vec![(1, vec![2, 3])]);
    assert_eq!(to(&messages, 2), vec![(0, vec![1, 2, 3])]);

    // Probing: nothing more until an answer (or the next interval).
    propose_n(&mut r, 1);
    assert!(to(&take_synced(&mut r).messages, 1).is_empty());
    r.step(append_ok(1, 0, term, 3), t0 + HEARTBEAT + ms(5));
    propose_n(&mut r, 1);
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![(3, vec![4, 5])]);
    // Streaming again: 4 and 5 are unacknowledged and ride along with 6.
    propose_n(&mut r, 1);
    assert_eq!(
        to(&take_synced(&mut r).messages, 1),
        vec![(3, vec![4, 5, 6])]
    );
}

/// An unanswered probe is repeated once per heartbeat interval.
#[test]
fn unanswered_probe_is_repeated_each_heartbeat() {
    let mut r = node(0, 3, 1, &[1]);
    let first = to(&elect(&mut r).messages, 1);
    let start = r.now;
    r.tick(start + HEARTBEAT / 2);
    assert!(take_synced(&mut r).messages.is_empty());
    r.tick(start + HEARTBEAT);
    assert_eq!(to(&take_synced(&mut r).messages, 1), first);
}

/// A rejection for a conflicting term while pipelining drops the follower back to Probe: one
/// AppendEntries from the backed-up next_index, and the later in-flight batches' rejections
/// are recognised as stale.
#[test]
fn conflicting_rejection_while_pipelining_falls_back_to_probe() {
    let mut r = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut r);
    for _ in 0..3 {
        propose_n(&mut r, 1);
        take_synced(&mut r);
    }
    // The follower holds an entry 1 of another term: it refuses the second and third.
    let other = Some(term - 1);
    r.step(append_reject(1, 0, term, 1, (other, 1)), ms(1));
    assert_eq!(
        to(&take_synced(&mut r).messages, 1),
        vec![(0, vec![1, 2, 3])]
    );
    r.step(append_reject(1, 0, term, 2, (other, 1)), ms(1));
    propose_n(&mut r, 1);
    assert!(to(&take_synced(&mut r).messages, 1).is_empty());
    r.step(append_ok(1, 0, term, 3), ms(2));
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![(3, vec![4])]);
}

/// A follower that is only short while pipelining (the first batch lost or overtaken) gets
/// the entries from where its log ends, and the pipeline goes on without waiting for that
/// answer; the refusals of the other batches in flight are stale.
#[test]
fn short_rejection_while_pipelining_streams_again() {
    let mut r = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut r);
    for _ in 0..3 {
        propose_n(&mut r, 1);
        take_synced(&mut r);
    }
    r.step(append_reject(1, 0, term, 1, (None, 1)), ms(1));
    assert_eq!(
        to(&take_synced(&mut r).messages, 1),
        vec![(0, vec![1, 2, 3])]
    );
    r.step(append_reject(1, 0, term, 2, (None, 1)), ms(1));
    propose_n(&mut r, 1);
    assert_eq!(
        to(&take_synced(&mut r).messages, 1),
        vec![(0, vec![1, 2, 3, 4])]
    );
    r.step(append_ok(1, 0, term, 4), ms(2));
    assert_eq!(r.progress[1].match_index, 4);
}

/// An AppendEntries its leader sent in an older term, delayed until that node leads again, is
/// refused with an answer the new pipeline does not take for a rejection of its own: the
/// batches in flight stay in flight.
#[test]
fn a_refused_older_append_does_not_reset_a_pipeline() {
    let twelve = [1; 12];
    let mut f = node(1, 3, 3, &twelve);
    f.step(append(0, 1, 2, (10, 1), entries(11, &[1, 1]), 0), ms(0));
    let refusal = take_synced(&mut f).messages;
    assert_eq!(
        refusal,
        vec![in_epoch(append_reject(1, 0, 3, 0, (None, 0)), 0)]
    );

    let mut r = node(0, 3, 2, &twelve);
    elect(&mut r);
    assert_eq!(r.status().term, 3);
    r.step(append_reject(1, 0, 3, 12, (None, 5)), ms(0));
    take_synced(&mut r);
    r.step(append_ok(1, 0, 3, 4), ms(0));
    assert_eq!(
        to(&take_synced(&mut r).messages, 1),
        vec![(4, (5..=12).collect())]
    );
    r.step(refusal[0].clone(), ms(1));
    assert!(to(&take_synced(&mut r).messages, 1).is_empty());
    assert_eq!(r.progress[1].next_index, 13);
}

/// An idle leader sends one heartbeat per follower per interval: 20 AppendEntries a second for
/// three members (the lab's idle budget is 60 RPCs a second).
#[test]
fn idle_leader_sends_one_heartbeat_per_interval() {
    let mut r = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut r);
    let start = r.now;
    let mut sent = 0;
    let mut t = start;
    while t < start + ms(1000) {
        t += ms(10);
        r.tick(t);
        let messages = take_synced(&mut r).messages;
        sent += messages.len();
        for m in messages {
            r.step(append_ok(m.to, 0, term, 0), t);
        }
    }
    assert_eq!(sent, 20);
}

/// A late duplicate of an old rejection does not reset the pipeline that replaced it: the
/// rejection answers a request sent before the leader started over, even though it names a
/// `prev_log_index` above `match_index` that the new pipeline has also sent.
#[test]
fn a_late_duplicate_of_an_old_rejection_does_not_reset_the_pipeline() {
    let mut r = small_batches(10 + crate::core::ENTRY_OVERHEAD);
    let mut f = node(1, 2, 0, &[]);
    let mut sent = Vec::new();
    for _ in 0..3 {
        r.propose(vec![7; 10], ms(0)).unwrap();
        sent.extend(take_synced(&mut r).messages);
    }
    assert_eq!(to(&sent, 1), vec![(0, vec![1]), (1, vec![2]), (2, vec![3])]);
    // The first batch is lost: the follower refuses the other two.
    let mut refusals = Vec::new();
    for m in &sent[1..] {
        f.step(m.clone(), ms(1));
        refusals.extend(take_synced(&mut f).messages);
    }
    assert_eq!(refusals.len(), 2);
    // The follower is only short: the leader streams the three again in a new epoch.
    r.step(refusals[0].clone(), ms(2));
    let pipeline = take_synced(&mut r).messages;
    assert_eq!(
        to(&pipeline, 1),
        vec![(0, vec![1]), (1, vec![2]), (2, vec![3])]
    );

    // The refusal of the old (2, [3]) arrives now, after the new one was sent: it answers
    // nothing in flight, so nothing is resent and next_index stays past the pipeline.
    r.step(refusals[1].clone(), ms(5));
    assert!(to(&take_synced(&mut r).messages, 1).is_empty());
    assert_eq!(r.progress[1].next_index, 4);
    for m in pipeline {
        f.step(m, ms(6));
        for reply in take_synced(&mut f).messages {
            r.step(reply, ms(6));
        }
    }
    assert_eq!(r.progress[1].match_index, 3);
    // A duplicate of the first refusal, the one that made the leader probe, changes nothing.
    r.step(refusals[0].clone(), ms(7));
    r.propose(vec![7; 10], ms(7)).unwrap();
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![(3, vec![4])]);
}

/// A leader of 3 whose followers answered entry 1 after 2 ms (the smoothed round trip), then
/// follower 1 went silent: a full window of batches (entries 2..=9, one each 3 ms) went
/// unanswered, and entry 10 is held back. Returns the leader, its term and when 1 last answered.
fn leader_with_a_silent_follower() -> (Raft, Term, Time) {
    let mut r = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut r);
    let t0 = r.now;
    propose_n(&mut r, 1);
    take_synced(&mut r);
    r.step(append_ok(1, 0, term, 1), t0 + ms(2));
    r.step(append_ok(2, 0, term, 1), t0 + ms(2));
    take_synced(&mut r);
    assert_eq!(r.progress[1].srtt(), Some(ms(2)));
    for i in 1..=MAX_INFLIGHT as u64 {
        r.tick(t0 + ms(2 + 3 * i));
        propose_n(&mut r, 1);
        // Each carries the small unacknowledged entries again.
        let batch = (1, (2..=i + 1).collect());
        assert_eq!(to(&take_synced(&mut r).messages, 1), vec![batch]);
        r.step(append_ok(2, 0, term, i + 1), t0 + ms(2 + 3 * i));
        take_synced(&mut r);
    }
    propose_n(&mut r, 1);
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![]);
    (r, term, t0 + ms(2))
}

/// A follower silent for a stall timeout, owed entries held back behind its full window, is
/// pinged: an empty AppendEntries at the end of what it was sent, a round-trip timeout (four
/// smoothed round trips, doubled for each ping unanswered) after the last message to it, and
/// not before it has been silent for a stall timeout. Restarted, it rejects the ping as too short, and the leader streams again
/// at once from where its log ends. No new proposal, no further ping.
#[test]
fn a_silent_follower_owed_entries_is_pinged_and_a_restarted_one_is_caught_up_at_once() {
    let (mut r, term, heard) = leader_with_a_silent_follower();
    let silence = HEARTBEAT / 3;
    let ping = heard + silence;
    assert!(r.next_deadline() <= ping);
    r.tick(ping - ms(1));
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![]);
    r.tick(ping);
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![(9, vec![])]);
    r.tick(ping + ms(16));
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![]);
    // A proposal: pinged again, a round-trip timeout after the last ping, doubled for the
    // one unanswered (16 ms).
    propose_n(&mut r, 1);
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![(9, vec![])]);
    assert!(
        r.progress[1].last_sent + silence > ping + ms(17),
        "before any stall probe"
    );

    // It restarted with entry 1 only.
    r.step(append_reject(1, 0, term, 9, (None, 2)), ping + ms(17));
    assert_eq!(
        to(&take_synced(&mut r).messages, 1),
        vec![(1, (2..=11).collect())]
    );
}

/// A follower that received everything but whose answers were lost acknowledges the ping, and
/// the entries held back go at once.
#[test]
fn a_pinged_follower_that_has_everything_reopens_its_window() {
    let (mut r, term, heard) = leader_with_a_silent_follower();
    r.tick(heard + HEARTBEAT / 3);
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![(9, vec![])]);
    r.step(append_ok(1, 0, term, 9), heard + HEARTBEAT / 3 + ms(1));
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![(9, vec![10])]);
}

/// A follower no round trip was measured to (down since before this leader's election) is
/// pinged by the leader's fastest round trip.
#[test]
fn a_follower_never_heard_is_pinged_by_the_fastest_round_trip() {
    let mut r = node(0, 3, 0, &[]);
    elect(&mut r);
    let (term, elected) = (r.status().term, r.now);
    r.step(append_ok(2, 0, term, 0), elected);
    take_synced(&mut r);
    propose_n(&mut r, 1);
    take_synced(&mut r);
    r.step(append_ok(2, 0, term, 1), elected + ms(2));
    take_synced(&mut r);
    // Its probe goes again a stall timeout after the first, carrying entry 1; entry 2 is held
    // back behind it. The stall timeout after that, it would be probed again; it is pinged
    // a round-trip timeout (8 ms) after the probe.
    let stall = elected + HEARTBEAT / 3;
    r.tick(stall);
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![(0, vec![1])]);
    propose_n(&mut r, 1);
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![]);
    r.tick(stall + ms(8) - ms(1));
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![]);
    r.tick(stall + ms(8));
    assert_eq!(to(&take_synced(&mut r).messages, 1), vec![(1, vec![])]);
}
