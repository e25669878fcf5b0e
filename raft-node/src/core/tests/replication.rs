//! Log replication (§5.3): the AppendEntries consistency check, conflict truncation, the
//! follower's commit, fast backup on both sides, and robustness to stale, duplicated, reordered
//! and malformed messages.

use super::helpers::*;
use crate::core::{Entry, Index, Message, MessageBody, Persist, Raft, Role, Term};

fn follower_log(r: &Raft) -> Vec<(Index, Term)> {
    r.log
        .slice(1, r.log.last_index())
        .iter()
        .map(|e| (e.index, e.term))
        .collect()
}

fn appended(persist: Option<Persist>) -> (Option<Index>, Vec<Entry>) {
    persist.map_or((None, vec![]), |p| (p.truncate_from, p.append))
}

/// §5.3, Figure 2 steps 4–5: matching prev entry → append, persist, and reply success with the
/// index of the last entry this request covered.
#[test]
fn follower_appends_and_acknowledges() {
    let mut r = node(1, 3, 1, &[1]);
    r.step(append(0, 1, 1, (1, 1), entries(2, &[1, 1]), 1), ms(0));
    let ready = take_synced(&mut r);
    assert_eq!(appended(ready.persist), (None, entries(2, &[1, 1])));
    assert_eq!(ready.messages, vec![append_ok(1, 0, 1, 3)]);
    assert_eq!(ready.apply, applies(log(&[1])));
    assert_eq!(r.status().commit_index, 1);
    assert_eq!(r.status().leader, Some(0));
}

/// §5.3, Figure 2 step 2 (fast backup): a log too short to hold prev_log_index answers with no
/// conflict term and its length + 1.
#[test]
fn consistency_check_rejects_a_short_log() {
    let mut r = node(1, 3, 2, &[1, 1]);
    r.step(append(0, 1, 2, (5, 2), entries(6, &[2]), 5), ms(0));
    let ready = take_synced(&mut r);
    assert_eq!(ready.persist, None);
    assert_eq!(ready.messages, vec![append_reject(1, 0, 2, 5, (None, 3))]);
    assert_eq!(r.status().commit_index, 0);
}

/// §5.3, Figure 2 step 2 (fast backup): a term mismatch at prev_log_index answers with the
/// follower's term there and the first index it holds of that term.
#[test]
fn consistency_check_rejects_a_mismatched_term() {
    let mut r = node(1, 3, 3, &[1, 2, 2, 2]);
    r.step(append(0, 1, 3, (4, 3), vec![], 4), ms(0));
    let ready = take_synced(&mut r);
    assert_eq!(
        ready.messages,
        vec![append_reject(1, 0, 3, 4, (Some(2), 2))]
    );
    assert_eq!(follower_log(&r).len(), 4);
}

/// §5.3, Figure 2 step 3: a conflicting entry and everything after it are deleted (durably:
/// `truncate_from`) and replaced by the leader's.
#[test]
fn conflicting_suffix_is_replaced() {
    let mut r = node(1, 3, 2, &[1, 1, 2, 2, 2]);
    r.step(append(0, 1, 3, (2, 1), entries(3, &[3, 3]), 0), ms(0));
    let ready = take_synced(&mut r);
    assert_eq!(appended(ready.persist), (Some(3), entries(3, &[3, 3])));
    assert_eq!(follower_log(&r), vec![(1, 1), (2, 1), (3, 3), (4, 3)]);
    assert_eq!(ready.messages, vec![append_ok(1, 0, 3, 4)]);
}

/// §5.3: a conflict found after some matching entries truncates only from the conflict.
#[test]
fn truncation_starts_at_the_first_conflict() {
    let mut r = node(1, 3, 2, &[1, 1, 2, 2]);
    r.step(append(0, 1, 3, (1, 1), entries(2, &[1, 2, 3]), 0), ms(0));
    let ready = take_synced(&mut r);
    assert_eq!(appended(ready.persist), (Some(4), entries(4, &[3])));
    assert_eq!(follower_log(&r), vec![(1, 1), (2, 1), (3, 2), (4, 3)]);
}

/// §5.3 (Log Matching): an old AppendEntries whose entries the follower already holds must not
/// truncate the newer entries after them — only a *conflicting* entry is deleted.
#[test]
fn stale_append_entries_never_truncate() {
    let mut r = node(1, 3, 1, &[]);
    r.step(
        append(0, 1, 1, (0, 0), entries(1, &[1, 1, 1, 1, 1]), 0),
        ms(0),
    );
    take_synced(&mut r);
    r.step(append(0, 1, 1, (1, 1), entries(2, &[1, 1]), 2), ms(1));
    let ready = take_synced(&mut r);
    assert_eq!(ready.persist, None);
    assert_eq!(ready.messages, vec![append_ok(1, 0, 1, 3)]);
    assert_eq!(follower_log(&r).len(), 5);
    assert_eq!(r.status().commit_index, 2);
}

/// §5.3: reordered requests — the later one is refused (its prev is not there yet), the earlier
/// one appends, and a duplicate of either is harmless.
#[test]
fn reordered_and_duplicated_append_entries() {
    let first = append(0, 1, 1, (0, 0), entries(1, &[1, 1]), 0);
    let second = append(0, 1, 1, (2, 1), entries(3, &[1, 1]), 2);
    let mut r = node(1, 3, 1, &[]);
    r.step(second.clone(), ms(0));
    r.step(first.clone(), ms(0));
    r.step(second, ms(0));
    r.step(first, ms(0));
    let ready = take_synced(&mut r);
    assert_eq!(
        ready.messages,
        vec![
            append_reject(1, 0, 1, 2, (None, 1)),
            append_ok(1, 0, 1, 2),
            append_ok(1, 0, 1, 4),
            append_ok(1, 0, 1, 2),
        ]
    );
    assert_eq!(appended(ready.persist), (None, log(&[1, 1, 1, 1])));
    assert_eq!(r.status().commit_index, 2);
}

/// Figure 2 step 5: commit_index = min(leader_commit, index of last new entry); entries past
/// what this request matched may be stale and are not committed.
#[test]
fn follower_commits_only_what_the_request_matched() {
    let mut r = node(1, 3, 2, &[1, 1, 1, 1]);
    r.step(append(0, 1, 2, (1, 1), vec![], 4), ms(0));
    assert_eq!(r.status().commit_index, 1);
    r.step(append(0, 1, 2, (3, 1), vec![], 4), ms(0));
    assert_eq!(r.status().commit_index, 3);
    // A late request with a smaller leader_commit never lowers it.
    r.step(append(0, 1, 2, (1, 1), vec![], 1), ms(0));
    assert_eq!(r.status().commit_index, 3);
    assert_eq!(take_synced(&mut r).apply, applies(log(&[1, 1, 1])));
}

/// Figure 2, all servers: committed entries are applied in index order, each exactly once.
#[test]
fn apply_is_in_order_and_gap_free() {
    let mut r = node(1, 3, 1, &[]);
    r.step(append(0, 1, 1, (0, 0), entries(1, &[1, 1, 1]), 1), ms(0));
    assert_eq!(take_synced(&mut r).apply, applies(log(&[1])));
    r.step(append(0, 1, 1, (3, 1), vec![], 3), ms(1));
    assert_eq!(take_synced(&mut r).apply, applies(entries(2, &[1, 1])));
    r.step(append(0, 1, 1, (3, 1), vec![], 3), ms(2));
    assert!(take_synced(&mut r).apply.is_empty());
    assert_eq!(r.applied(2), applies(entries(2, &[1, 1])));
    assert_eq!(r.applied(0), applies(log(&[1, 1, 1])));
    assert!(r.applied(4).is_empty());
}

/// The leader on the first AppendEntries sent to `to` after electing `leader`.
fn first_probe(leader: &mut Raft, to: u32) -> Message {
    let ready = elect(leader);
    ready.messages.into_iter().find(|m| m.to == to).unwrap()
}

fn prev_of(m: &Message) -> (Index, usize) {
    match &m.body {
        MessageBody::AppendEntries {
            prev_log_index,
            entries,
            ..
        } => (*prev_log_index, entries.len()),
        body => panic!("not an AppendEntries: {body:?}"),
    }
}

/// §5.3 fast backup, leader side: the follower's conflicting term is one the leader also has →
/// resume just after the leader's last entry of that term.
#[test]
fn fast_backup_to_the_leaders_last_entry_of_the_conflict_term() {
    let mut r = node(0, 3, 5, &[1, 1, 4, 4, 4, 5, 5]);
    let probe = first_probe(&mut r, 1);
    assert_eq!(prev_of(&probe), (7, 0));
    r.step(append_reject(1, 0, 6, 7, (Some(4), 3)), ms(0));
    let ready = take_synced(&mut r);
    assert_eq!(
        ready.messages,
        vec![in_epoch(append(0, 1, 6, (5, 4), entries(6, &[5, 5]), 0), 2)]
    );
}

/// §5.3 fast backup: the leader lacks the follower's conflicting term → resume at the
/// follower's first index of that term, skipping the whole term in one round trip.
#[test]
fn fast_backup_skips_a_term_the_leader_lacks() {
    let mut r = node(0, 3, 5, &[1, 1, 3, 3, 3, 3]);
    first_probe(&mut r, 1);
    r.step(append_reject(1, 0, 6, 6, (Some(2), 3)), ms(0));
    let ready = take_synced(&mut r);
    assert_eq!(
        ready.messages,
        vec![in_epoch(append(0, 1, 6, (2, 1), entries(3, &[3; 4]), 0), 2)]
    );
}

/// §5.3 fast backup: a short follower log → resume just past its end.
#[test]
fn fast_backup_to_the_end_of_a_short_log() {
    let mut r = node(0, 3, 5, &[1, 2, 3, 4, 5]);
    first_probe(&mut r, 2);
    r.step(append_reject(2, 0, 6, 5, (None, 2)), ms(0));
    let ready = take_synced(&mut r);
    assert_eq!(
        ready.messages,
        vec![in_epoch(
            append(0, 2, 6, (1, 1), entries(2, &[2, 3, 4, 5]), 0),
            2
        )]
    );
}

/// Fast backup is bounded: a hint beyond the rejected point still backs up by at least one
/// entry, and a hint of 0 stops at index 1.
#[test]
fn fast_backup_always_moves_back_and_stays_in_range() {
    let mut r = node(0, 3, 5, &[1, 1, 1]);
    first_probe(&mut r, 1);
    r.step(append_reject(1, 0, 6, 3, (None, 9)), ms(0));
    assert_eq!(prev_of(&take_synced(&mut r).messages[0]), (2, 1));
    r.step(in_epoch(append_reject(1, 0, 6, 2, (None, 0)), 2), ms(0));
    assert_eq!(prev_of(&take_synced(&mut r).messages[0]), (0, 3));
}

/// Stale replies: a rejection of an earlier flow epoch (its request was given up on when the
/// leader backed up), and one at or below match_index (older than a later success), change
/// nothing.
#[test]
fn stale_rejections_are_ignored() {
    let mut r = node(0, 3, 1, &[1, 1, 1, 1, 1, 1]);
    first_probe(&mut r, 1);
    r.step(append_reject(1, 0, 2, 6, (None, 5)), ms(0));
    assert_eq!(prev_of(&take_synced(&mut r).messages[0]), (4, 2));
    // A duplicate of that rejection, or any answer of the first epoch, is stale.
    r.step(append_reject(1, 0, 2, 6, (None, 5)), ms(0));
    r.step(append_reject(1, 0, 2, 6, (None, 1)), ms(0));
    assert!(take_synced(&mut r).messages.is_empty());
    assert_eq!(r.progress[1].next_index, 5);

    r.step(append_ok(1, 0, 2, 6), ms(0));
    r.step(in_epoch(append_reject(1, 0, 2, 5, (None, 1)), 2), ms(0));
    r.step(in_epoch(append_reject(1, 0, 2, 6, (None, 1)), 2), ms(0));
    assert_eq!(r.progress[1].match_index, 6);
    assert_eq!(r.progress[1].next_index, 7);
    assert!(take_synced(&mut r).messages.is_empty());
}

/// Stale or duplicated successes never lower match_index or next_index.
#[test]
fn stale_successes_do_not_undo_progress() {
    let mut r = node(0, 3, 1, &[1, 1, 1, 1]);
    first_probe(&mut r, 1);
    r.step(append_ok(1, 0, 2, 4), ms(0));
    r.step(append_ok(1, 0, 2, 2), ms(0));
    r.step(append_ok(1, 0, 2, 4), ms(0));
    assert_eq!(
        (r.progress[1].match_index, r.progress[1].next_index),
        (4, 5)
    );
    // A claimed match beyond the leader's log was never sent: ignored.
    r.step(append_ok(1, 0, 2, 99), ms(0));
    assert_eq!(
        (r.progress[1].match_index, r.progress[1].next_index),
        (4, 5)
    );
}

/// Replies from an older term (a previous leadership) are dropped.
#[test]
fn replies_from_older_terms_are_dropped() {
    let mut r = node(0, 3, 1, &[1, 1]);
    first_probe(&mut r, 1);
    r.step(append_ok(1, 0, 1, 2), ms(0));
    assert_eq!(r.progress[1].match_index, 0);
    assert!(take_synced(&mut r).messages.is_empty());
}

/// Never panic on message content: unknown or own ids, misaddressed messages, indices far past
/// the log, and malformed entry lists are ignored or refused.
#[test]
fn hostile_messages_are_ignored() {
    let mut r = node(1, 3, 1, &[1]);
    r.step(append(7, 1, 1, (0, 0), entries(1, &[1]), 1), ms(0));
    r.step(append(1, 1, 1, (0, 0), entries(1, &[1]), 1), ms(0));
    r.step(append(0, 2, 1, (0, 0), entries(1, &[1]), 1), ms(0));
    r.step(request_vote(9, 1, 1, (9, 9)), ms(0));
    r.step(request_vote(0, 1, u64::MAX, (9, 9)), ms(0));
    assert!(take_synced(&mut r).messages.is_empty());

    r.step(append(0, 1, 1, (u64::MAX, 1), vec![], u64::MAX), ms(0));
    assert_eq!(
        take_synced(&mut r).messages,
        vec![append_reject(1, 0, 1, u64::MAX, (None, 2))]
    );

    // Indices that skip, and a term above the leader's: no reply, no change.
    let gap = vec![entry(2, 1), entry(4, 1)];
    r.step(append(0, 1, 1, (1, 1), gap, 1), ms(0));
    r.step(append(0, 1, 1, (1, 1), entries(2, &[2]), 1), ms(0));
    let ready = take_synced(&mut r);
    assert!(ready.messages.is_empty() && ready.persist.is_none());
    assert_eq!(r.status().last_log_index, 1);
    assert_eq!(r.status().role, Role::Follower);

    let mut leader = node(0, 3, 1, &[1]);
    elect(&mut leader);
    leader.step(
        append_reject(1, 0, 2, u64::MAX, (Some(u64::MAX), u64::MAX)),
        ms(0),
    );
    leader.step(append_reject(1, 0, 2, 0, (None, 0)), ms(0));
    assert!(take_synced(&mut leader).messages.is_empty());
}
