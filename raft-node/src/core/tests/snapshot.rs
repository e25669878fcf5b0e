//! Log compaction (§7) and InstallSnapshot (Figure 13): the service's snapshot trims the log,
//! a lagging follower gets the snapshot in chunks that survive loss, duplication and
//! reordering, the receiver keeps or discards its log as Figure 13 says, and a peer restarts
//! from its snapshot.

use super::helpers::*;
use crate::core::{
    Apply, Config, Entry, EntryKind, HardState, Message, Persist, Raft, Restored, Role, Snapshot,
    SnapshotError, Term,
};

/// The chunk size of these tests' leaders (`max_append_bytes`; a one-byte command fits).
const CHUNK: usize = 30;

fn to_peer(messages: Vec<Message>, peer: u32) -> Vec<Message> {
    messages.into_iter().filter(|m| m.to == peer).collect()
}

fn restored(term: Term, snapshot: Option<Snapshot>, entries: Vec<Entry>) -> Restored {
    Restored {
        hard_state: HardState {
            current_term: term,
            voted_for: None,
        },
        snapshot,
        entries,
    }
}

/// 75 bytes: three chunks of CHUNK.
fn data() -> Vec<u8> {
    (0..75).collect()
}

/// Node 0 of three, elected for term 2 with entries 1..=5 committed (n2 acknowledged them)
/// and compacted into a snapshot holding `data`; n1, whose log is empty, has just rejected the
/// initial probe. Returns the leader and what it sent n1 in answer: the first chunk.
fn leader_with_snapshot(data: &[u8]) -> (Raft, Vec<Message>) {
    let config = Config {
        max_append_bytes: CHUNK,
        ..config(0, 3)
    };
    let mut r = Raft::new(config, restored(1, None, log(&[1, 1, 1, 1])), ms(0));
    elect(&mut r);
    r.step(append_ok(2, 0, 2, 4), ms(1));
    r.propose(b"x".to_vec(), ms(1)).unwrap();
    take_synced(&mut r);
    r.step(append_ok(2, 0, 2, 5), ms(2));
    assert_eq!(take_synced(&mut r).apply.len(), 5);
    r.snapshot(5, data.to_vec()).unwrap();
    assert!(take_synced(&mut r).persist.unwrap().snapshot.is_some());
    r.step(append_reject(1, 0, 2, 4, (None, 1)), ms(3));
    let sent = to_peer(take_synced(&mut r).messages, 1);
    (r, sent)
}

/// §7: the service's snapshot replaces the log through its index; the snapshot is persisted
/// (which discards those entries on disk) and the entries after it stay.
#[test]
fn snapshot_trims_the_log_and_is_persisted() {
    let mut r = node(1, 3, 1, &[1, 1, 1, 1, 1]);
    r.step(append(0, 1, 1, (5, 1), vec![], 4), ms(0));
    assert_eq!(take_synced(&mut r).apply.len(), 4);
    assert_eq!(r.snapshot(3, b"state".to_vec()), Ok(()));
    let persist = take_synced(&mut r).persist.unwrap();
    assert_eq!(
        persist,
        Persist {
            snapshot: Some(snapshot(3, 1, b"state")),
            ..Persist::default()
        }
    );
    let status = r.status();
    assert_eq!((status.snapshot_index, status.last_log_index), (3, 5));
    assert_eq!(r.log.first_index(), 4);
    assert_eq!(r.log.term(3), Some(1));
    assert_eq!(r.log.term(2), None);
}

/// The lab's Snapshot(): an index the snapshot already covers is ignored; one past what was
/// applied is refused (the service cannot have that state).
#[test]
fn snapshot_of_a_covered_or_unapplied_index() {
    let mut r = node(1, 3, 1, &[1, 1, 1, 1, 1]);
    r.step(append(0, 1, 1, (5, 1), vec![], 4), ms(0));
    take_synced(&mut r);
    assert_eq!(
        r.snapshot(5, vec![]),
        Err(SnapshotError::NotApplied {
            index: 5,
            last_applied: 4
        })
    );
    r.snapshot(3, b"three".to_vec()).unwrap();
    take_synced(&mut r);
    assert_eq!(r.snapshot(3, b"again".to_vec()), Ok(()));
    assert_eq!(r.snapshot(2, b"older".to_vec()), Ok(()));
    assert_eq!(take_synced(&mut r).persist, None);
    assert_eq!(r.log.snapshot(), Some(&snapshot(3, 1, b"three")));
}

/// Figure 13 (§7): a follower whose next entry is compacted gets the snapshot, one chunk of at
/// most max_append_bytes at a time, each sent when the previous one is acknowledged; on the
/// last it installs it (its log was empty: nothing to keep), hands it to its service, and the
/// leader goes on with AppendEntries after it.
#[test]
fn a_lagging_follower_gets_the_snapshot_in_chunks() {
    let data = data();
    let snap = snapshot(5, 2, &data);
    let (mut leader, sent) = leader_with_snapshot(&data);
    assert_eq!(sent, vec![chunk(0, 1, 2, &snap, 0, 30)]);

    let mut f = node(1, 3, 1, &[]);
    f.step(sent[0].clone(), ms(4));
    let ready = take_synced(&mut f);
    assert_eq!(ready.messages, vec![snapshot_reply(1, 0, 2, 5, false, 30)]);
    assert_eq!(ready.persist.and_then(|p| p.snapshot), None);
    assert!(ready.apply.is_empty());

    leader.step(ready.messages[0].clone(), ms(5));
    let sent = to_peer(take_synced(&mut leader).messages, 1);
    assert_eq!(sent, vec![chunk(0, 1, 2, &snap, 30, 60)]);
    f.step(sent[0].clone(), ms(6));
    let reply = take_synced(&mut f).messages;
    assert_eq!(reply, vec![snapshot_reply(1, 0, 2, 5, false, 60)]);

    leader.step(reply[0].clone(), ms(7));
    let sent = to_peer(take_synced(&mut leader).messages, 1);
    assert_eq!(sent, vec![chunk(0, 1, 2, &snap, 60, 75)]);
    f.step(sent[0].clone(), ms(8));
    let ready = take_synced(&mut f);
    assert_eq!(ready.messages, vec![snapshot_reply(1, 0, 2, 5, true, 0)]);
    let persist = ready.persist.unwrap();
    assert_eq!(
        (persist.snapshot, persist.truncate_from),
        (Some(snap.clone()), None)
    );
    assert_eq!(ready.apply, vec![Apply::Snapshot(snap)]);
    let status = f.status();
    assert_eq!(
        (
            status.commit_index,
            status.last_applied,
            status.snapshot_index
        ),
        (5, 5, 5)
    );
    assert_eq!(status.last_log_index, 5);

    leader.step(ready.messages[0].clone(), ms(9));
    leader.propose(b"y".to_vec(), ms(9)).unwrap();
    let sent = to_peer(take_synced(&mut leader).messages, 1);
    let y = Entry {
        term: 2,
        index: 6,
        command: b"y".to_vec(),
        kind: EntryKind::Command,
    };
    // Epoch 3: the rejection began the second, the snapshot the third.
    assert_eq!(sent, vec![in_epoch(append(0, 1, 2, (5, 2), vec![y], 5), 3)]);
    f.step(sent[0].clone(), ms(10));
    assert_eq!(
        take_synced(&mut f).messages,
        vec![in_epoch(append_ok(1, 0, 2, 6), 3)]
    );
}

/// A lost chunk, or a lost acknowledgement, is resent from the last acknowledged offset a stall
/// timeout after the chunk, the follower having answered within the heartbeat interval (it is
/// up; else at the heartbeat); the follower discards what it already holds and says so.
#[test]
fn lost_chunks_and_acknowledgements_are_resent() {
    let data = data();
    let snap = snapshot(5, 2, &data);
    let (mut leader, first) = leader_with_snapshot(&data);
    let sent_at = leader.now;
    let resend = sent_at + HEARTBEAT / 3;
    leader.tick(resend - ms(1));
    assert!(to_peer(take_synced(&mut leader).messages, 1).is_empty());
    leader.tick(resend);
    assert_eq!(to_peer(take_synced(&mut leader).messages, 1), first);

    let mut f = node(1, 3, 1, &[]);
    f.step(first[0].clone(), resend);
    let t = resend + ms(1);
    leader.step(take_synced(&mut f).messages[0].clone(), t);
    let second = to_peer(take_synced(&mut leader).messages, 1);
    assert_eq!(second, vec![chunk(0, 1, 2, &snap, 30, 60)]);
    f.step(second[0].clone(), t);
    take_synced(&mut f); // The acknowledgement of 60 bytes is lost.

    leader.tick(t + HEARTBEAT / 3 - ms(1));
    assert!(to_peer(take_synced(&mut leader).messages, 1).is_empty());
    let t = t + HEARTBEAT / 3;
    leader.tick(t);
    assert_eq!(to_peer(take_synced(&mut leader).messages, 1), second);
    f.step(second[0].clone(), t);
    let reply = take_synced(&mut f).messages;
    assert_eq!(reply, vec![snapshot_reply(1, 0, 2, 5, false, 60)]);
    leader.step(reply[0].clone(), t);
    assert_eq!(
        to_peer(take_synced(&mut leader).messages, 1),
        vec![chunk(0, 1, 2, &snap, 60, 75)]
    );
}

/// A follower silent behind an unanswered chunk (it crashed or was cut off during the transfer)
/// gets the chunk again a stall timeout after its last message once entries are proposed, as
/// one silent behind a probe does, not at its next heartbeat: a restarted follower that had
/// been sent a snapshot otherwise waited a heartbeat interval (the lab's crash tests, 5 of 30
/// restarts in one run).
#[test]
fn a_silent_follower_behind_an_unanswered_chunk_gets_it_again_once_entries_wait() {
    let (mut leader, first) = leader_with_snapshot(&data());
    // n1 says nothing more: its chunk goes again at its heartbeats until it no longer counts
    // as up. n2 keeps answering, so the leader keeps its quorum.
    let mut t = leader.now;
    while t < leader.progress[1].heard_at + 2 * HEARTBEAT {
        t += ms(5);
        leader.tick(t);
        take_synced(&mut leader);
        leader.step(append_ok(2, 0, 2, 5), t);
        take_synced(&mut leader);
    }
    let last_sent = leader.progress[1].last_sent;
    leader.propose(b"y".to_vec(), t).unwrap();
    assert!(to_peer(take_synced(&mut leader).messages, 1).is_empty());
    let stall = last_sent + HEARTBEAT / 3;
    assert!(stall < last_sent + HEARTBEAT);
    leader.tick(stall - ms(1));
    assert!(to_peer(take_synced(&mut leader).messages, 1).is_empty());
    leader.tick(stall);
    assert_eq!(to_peer(take_synced(&mut leader).messages, 1), first);
}

/// The follower accepts only the chunk that continues what it holds: a chunk ahead of it
/// (reordered), behind it (duplicated) or of another snapshot is discarded, and the answer
/// tells the leader where to resume. A duplicate of the last chunk after installing is
/// answered as done.
#[test]
fn duplicated_and_reordered_chunks_are_discarded() {
    let snap = snapshot(5, 2, &data());
    let mut f = node(1, 3, 2, &[]);
    let answer = |f: &mut Raft, offset, end| {
        f.step(chunk(0, 1, 2, &snap, offset, end), ms(1));
        take_synced(f).messages
    };
    let reply = |done, received| vec![snapshot_reply(1, 0, 2, 5, done, received)];
    assert_eq!(answer(&mut f, 30, 60), reply(false, 0));
    assert_eq!(answer(&mut f, 0, 30), reply(false, 30));
    assert_eq!(answer(&mut f, 0, 30), reply(false, 30));
    assert_eq!(answer(&mut f, 60, 75), reply(false, 30));
    let other = snapshot(4, 2, &data());
    f.step(chunk(0, 1, 2, &other, 30, 60), ms(1));
    assert_eq!(
        take_synced(&mut f).messages,
        vec![snapshot_reply(1, 0, 2, 4, false, 0)]
    );
    assert_eq!(f.status().snapshot_index, 0);
    assert_eq!(answer(&mut f, 30, 60), reply(false, 60));
    assert_eq!(answer(&mut f, 60, 75), reply(true, 0));
    assert_eq!(f.log.snapshot(), Some(&snap));
    assert_eq!(answer(&mut f, 60, 75), reply(true, 0));
}

/// A duplicated acknowledgement does not send a chunk twice (each duplicate would otherwise
/// double the chunks in flight for good); a follower that lost its partial snapshot (it
/// restarted) answers that it holds nothing, and the leader starts over.
#[test]
fn the_leader_acts_on_an_acknowledgement_once() {
    let data = data();
    let snap = snapshot(5, 2, &data);
    let (mut leader, _) = leader_with_snapshot(&data);
    leader.step(snapshot_reply(1, 0, 2, 5, false, 30), ms(4));
    assert_eq!(
        to_peer(take_synced(&mut leader).messages, 1),
        vec![chunk(0, 1, 2, &snap, 30, 60)]
    );
    leader.step(snapshot_reply(1, 0, 2, 5, false, 30), ms(4));
    assert!(to_peer(take_synced(&mut leader).messages, 1).is_empty());
    leader.step(snapshot_reply(1, 0, 2, 5, false, 0), ms(4));
    assert_eq!(
        to_peer(take_synced(&mut leader).messages, 1),
        vec![chunk(0, 1, 2, &snap, 0, 30)]
    );
}

/// A leader that snapshots again mid-transfer sends the new snapshot from its start.
#[test]
fn a_newer_snapshot_restarts_the_transfer() {
    let (mut leader, _) = leader_with_snapshot(&data());
    leader.step(snapshot_reply(1, 0, 2, 5, false, 30), ms(4));
    take_synced(&mut leader);
    leader.propose(b"z".to_vec(), ms(5)).unwrap();
    take_synced(&mut leader);
    leader.step(append_ok(2, 0, 2, 6), ms(6));
    take_synced(&mut leader);
    leader.snapshot(6, b"newer".to_vec()).unwrap();
    leader.step(snapshot_reply(1, 0, 2, 5, false, 60), ms(7));
    let newer = snapshot(6, 2, b"newer");
    assert_eq!(
        to_peer(take_synced(&mut leader).messages, 1),
        vec![chunk(0, 1, 2, &newer, 0, 5)]
    );
}

/// Figure 13 step 5 and §7: a snapshot the follower's commit index already covers brings
/// nothing new; it is ignored, but answered as done so the leader moves on.
#[test]
fn an_older_snapshot_is_ignored_but_acknowledged() {
    let mut f = node(1, 3, 2, &[1, 1, 2, 2, 2]);
    f.step(append(0, 1, 2, (5, 2), vec![], 5), ms(0));
    take_synced(&mut f);
    let old = snapshot(3, 1, b"old");
    f.step(chunk(0, 1, 2, &old, 0, 3), ms(1));
    let ready = take_synced(&mut f);
    assert_eq!(ready.messages, vec![snapshot_reply(1, 0, 2, 3, true, 0)]);
    assert_eq!(ready.persist, None);
    assert!(ready.apply.is_empty());
    assert_eq!((f.status().snapshot_index, f.log.last_index()), (0, 5));
}

/// Figure 13 step 6: when the follower's log holds the snapshot's last included entry (same
/// index and term), the entries after it are kept.
#[test]
fn a_snapshot_of_a_matching_prefix_keeps_the_suffix() {
    let mut f = node(1, 3, 2, &[1, 1, 2, 2, 2]);
    let snap = snapshot(3, 2, b"abc");
    f.step(chunk(0, 1, 2, &snap, 0, 3), ms(0));
    let ready = take_synced(&mut f);
    assert_eq!(
        ready.persist.unwrap(),
        Persist {
            snapshot: Some(snap.clone()),
            ..Persist::default()
        }
    );
    assert_eq!(ready.apply, vec![Apply::Snapshot(snap)]);
    assert_eq!(f.log.first_index(), 4);
    assert_eq!(f.log.term(5), Some(2));
    f.step(append(0, 1, 2, (5, 2), vec![], 5), ms(1));
    assert_eq!(take_synced(&mut f).apply, applies(entries(4, &[2, 2])));
}

/// Figure 13 step 7: when it does not, the whole log is discarded, on disk too.
#[test]
fn a_snapshot_that_conflicts_discards_the_log() {
    let mut f = node(1, 3, 2, &[1, 1, 1, 1, 1]);
    let snap = snapshot(3, 2, b"abc");
    f.step(chunk(0, 1, 2, &snap, 0, 3), ms(0));
    let persist = take_synced(&mut f).persist.unwrap();
    assert_eq!(persist.snapshot, Some(snap));
    assert_eq!(persist.truncate_from, Some(4));
    assert_eq!(f.log.last_index(), 3);
    assert_eq!(f.log.term(3), Some(2));
}

/// The apply stream is one ordered sequence: an installed snapshot comes first, then the
/// entries after it committed in the same iteration.
#[test]
fn an_installed_snapshot_precedes_the_entries_after_it() {
    let mut f = node(1, 3, 2, &[]);
    let snap = snapshot(3, 2, b"abc");
    f.step(chunk(0, 1, 2, &snap, 0, 3), ms(0));
    f.step(append(0, 1, 2, (3, 2), entries(4, &[2]), 4), ms(0));
    let mut expected = vec![Apply::Snapshot(snap)];
    expected.extend(applies(entries(4, &[2])));
    assert_eq!(take_synced(&mut f).apply, expected);
}

/// Figure 13 step 1: an InstallSnapshot from an older term is answered at once with the
/// current term, and changes nothing.
#[test]
fn a_stale_install_snapshot_is_refused() {
    let mut f = node(1, 3, 3, &[]);
    f.step(chunk(0, 1, 2, &snapshot(5, 2, b"abc"), 0, 3), ms(0));
    let ready = take_synced(&mut f);
    assert_eq!(ready.messages, vec![snapshot_reply(1, 0, 3, 0, false, 0)]);
    assert_eq!(ready.persist, None);
    assert_eq!((f.status().snapshot_index, f.status().leader), (0, None));
}

/// A chunk its leader sent in an older term, delayed until that node leads again, is refused
/// with an answer the new transfer does not take for its progress: the transfer goes on from
/// the acknowledged offset instead of restarting at 0.
#[test]
fn a_refused_older_chunk_does_not_rewind_a_transfer() {
    let data = data();
    let snap = snapshot(5, 2, &data);
    let (mut leader, first) = leader_with_snapshot(&data);
    let t = leader.now;
    let mut f = node(1, 3, 1, &[]);
    f.step(first[0].clone(), t);
    leader.step(take_synced(&mut f).messages[0].clone(), t);
    let second = to_peer(take_synced(&mut leader).messages, 1);
    assert_eq!(second, vec![chunk(0, 1, 2, &snap, 30, 60)]);

    f.step(chunk(0, 1, 1, &snapshot(5, 1, &data), 0, 30), t);
    let refusal = take_synced(&mut f).messages;
    assert_eq!(refusal, vec![snapshot_reply(1, 0, 2, 0, false, 0)]);
    leader.step(refusal[0].clone(), t + ms(1));
    assert!(to_peer(take_synced(&mut leader).messages, 1).is_empty());
    leader.tick(t + HEARTBEAT);
    assert_eq!(to_peer(take_synced(&mut leader).messages, 1), second);
}

/// §5.2: a candidate that hears a leader of its own term, by InstallSnapshot too, has lost.
#[test]
fn a_candidate_receiving_a_snapshot_becomes_a_follower() {
    let mut c = node(1, 3, 1, &[]);
    campaign(&mut c);
    assert_eq!(c.status().role, Role::Candidate);
    c.step(chunk(0, 1, 2, &snapshot(3, 2, b"abc"), 0, 3), ms(700));
    let status = c.status();
    assert_eq!((status.role, status.leader), (Role::Follower, Some(0)));
    assert_eq!(status.snapshot_index, 3);
}

fn restarted_with_snapshot() -> Raft {
    let restored = restored(2, Some(snapshot(5, 2, b"five")), entries(6, &[2, 2]));
    Raft::new(config(1, 3), restored, ms(0))
}

/// §7: a restarted peer starts from its snapshot: commit_index and last_applied at its index
/// (committed, applied state), the replay for its service begins with it, and the entries
/// after it are applied once a leader says they are committed.
#[test]
fn a_peer_restarts_from_its_snapshot() {
    let mut r = restarted_with_snapshot();
    let status = r.status();
    assert_eq!(
        (
            status.commit_index,
            status.last_applied,
            status.snapshot_index,
            status.last_log_index
        ),
        (5, 5, 5, 7)
    );
    let snap = Apply::Snapshot(snapshot(5, 2, b"five"));
    assert_eq!(r.applied(0), vec![snap.clone()]);
    let ready = take_synced(&mut r);
    assert_eq!((ready.persist, ready.apply), (None, vec![]));

    r.step(append(0, 1, 2, (7, 2), vec![], 7), ms(1));
    let after = applies(entries(6, &[2, 2]));
    assert_eq!(take_synced(&mut r).apply, after);
    assert_eq!(r.applied(5), [vec![snap], after.clone()].concat());
    assert_eq!(r.applied(6), after);
}

/// §5.4.3, §7: entries at or below the snapshot are committed, so an AppendEntries that starts
/// below it matches there: the covered entries are skipped and the rest appended, and one
/// covered entirely is acknowledged through the snapshot.
#[test]
fn append_entries_below_the_snapshot_match_it() {
    let mut r = restarted_with_snapshot();
    r.step(
        append(0, 1, 2, (3, 1), entries(4, &[1, 2, 2, 2, 2]), 8),
        ms(0),
    );
    let ready = take_synced(&mut r);
    assert_eq!(ready.messages, vec![append_ok(1, 0, 2, 8)]);
    assert_eq!(ready.persist.unwrap().append, entries(8, &[2]));
    assert_eq!(r.status().commit_index, 8);

    r.step(append(0, 1, 2, (2, 1), entries(3, &[1, 1]), 8), ms(1));
    assert_eq!(take_synced(&mut r).messages, vec![append_ok(1, 0, 2, 5)]);
}

/// A leader whose follower answers an InstallSnapshot it never sent ignores it.
#[test]
fn an_answer_to_an_unsent_snapshot_is_ignored() {
    let (mut leader, _) = leader_with_snapshot(&data());
    leader.step(snapshot_reply(1, 0, 2, 9, true, 0), ms(4));
    assert_eq!(leader.progress[1].match_index, 0);
    assert!(to_peer(take_synced(&mut leader).messages, 1).is_empty());
}
