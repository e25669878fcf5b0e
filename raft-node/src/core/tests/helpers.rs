//! Builders for single-core tests: configs, logs from term lists (etcd's `index(1).terms(..)`
//! idiom), messages, and shortcuts to drive a core into a role.

use crate::core::{
    Apply, Config, Entry, EntryKind, HardState, Index, Membership, Message, MessageBody, NodeId,
    Raft, Ready, Restored, Role, Snapshot, Term, Time,
};
use std::time::Duration;

pub use crate::sim::{
    ELECTION_TIMEOUT_MAX as ELECTION_MAX, ELECTION_TIMEOUT_MIN as ELECTION_MIN, HEARTBEAT,
};

pub fn ms(millis: u64) -> Time {
    Duration::from_millis(millis)
}

pub fn config(id: NodeId, members: u32) -> Config {
    Config {
        seed: 1000 + u64::from(id),
        ..crate::sim::config(id, members)
    }
}

/// The command stored at `index` by [`log`]: distinct per index and term.
pub fn command(index: Index, term: Term) -> Vec<u8> {
    format!("{index}@{term}").into_bytes()
}

pub fn entry(index: Index, term: Term) -> Entry {
    Entry {
        term,
        index,
        command: command(index, term),
        kind: EntryKind::Command,
    }
}

/// A log with entries at indices 1.. of the given terms.
pub fn log(terms: &[Term]) -> Vec<Entry> {
    entries(1, terms)
}

/// Entries at indices `first..` of the given terms.
pub fn entries(first: Index, terms: &[Term]) -> Vec<Entry> {
    terms
        .iter()
        .zip(first..)
        .map(|(&term, index)| entry(index, term))
        .collect()
}

/// `entries` as apply-stream items.
pub fn applies(entries: Vec<Entry>) -> Vec<Apply> {
    entries.into_iter().map(Apply::Entry).collect()
}

/// Peer `id` of `members`, restarted at time 0 in `term` with `log_terms` (no vote cast).
pub fn node(id: NodeId, members: u32, term: Term, log_terms: &[Term]) -> Raft {
    Raft::new(config(id, members), restored(term, log_terms), ms(0))
}

/// Peer `id` of `members` addressable peers whose bootstrap configuration is `voters`.
pub fn node_of(
    id: NodeId,
    members: u32,
    voters: &[NodeId],
    term: Term,
    log_terms: &[Term],
) -> Raft {
    let config = Config {
        bootstrap: crate::core::Membership::voters(voters.iter().copied()),
        ..config(id, members)
    };
    Raft::new(config, restored(term, log_terms), ms(0))
}

/// What a peer restarted in `term` with `log_terms` (no vote cast) finds on disk.
pub fn restored(term: Term, log_terms: &[Term]) -> Restored {
    Restored {
        hard_state: HardState {
            current_term: term,
            voted_for: None,
        },
        snapshot: None,
        entries: log(log_terms),
    }
}

pub fn msg(from: NodeId, to: NodeId, term: Term, body: MessageBody) -> Message {
    Message {
        from,
        to,
        term,
        body,
        via: None,
        hears: Default::default(),
    }
}

pub fn request_vote(from: NodeId, to: NodeId, term: Term, last: (Index, Term)) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::RequestVote {
            last_log_index: last.0,
            last_log_term: last.1,
        },
    )
}

pub fn vote_reply(from: NodeId, to: NodeId, term: Term, vote_granted: bool) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::RequestVoteReply { vote_granted },
    )
}

pub fn pre_vote(from: NodeId, to: NodeId, term: Term, last: (Index, Term), round: u64) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::PreVote {
            last_log_index: last.0,
            last_log_term: last.1,
            round,
        },
    )
}

pub fn pre_vote_reply(
    from: NodeId,
    to: NodeId,
    term: Term,
    vote_granted: bool,
    round: u64,
) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::PreVoteReply {
            vote_granted,
            round,
        },
    )
}

pub fn append(
    from: NodeId,
    to: NodeId,
    term: Term,
    prev: (Index, Term),
    entries: Vec<Entry>,
    leader_commit: Index,
) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::AppendEntries {
            prev_log_index: prev.0,
            prev_log_term: prev.1,
            entries,
            leader_commit,
            read_round: 0,
            flow_epoch: 1,
            wants_ack: true,
        },
    )
}

/// A commit announcement: an empty AppendEntries asking for no reply to a success.
pub fn announce(
    from: NodeId,
    to: NodeId,
    term: Term,
    prev: (Index, Term),
    commit: Index,
) -> Message {
    let mut m = append(from, to, term, prev, vec![], commit);
    if let MessageBody::AppendEntries { wants_ack, .. } = &mut m.body {
        *wants_ack = false;
    }
    m
}

pub fn append_ok(from: NodeId, to: NodeId, term: Term, match_index: Index) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::AppendEntriesReply {
            success: true,
            match_index,
            conflict_term: None,
            conflict_index: 0,
            read_round: 0,
            flow_epoch: 1,
        },
    )
}

pub fn append_reject(
    from: NodeId,
    to: NodeId,
    term: Term,
    prev_log_index: Index,
    conflict: (Option<Term>, Index),
) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::AppendEntriesReply {
            success: false,
            match_index: prev_log_index,
            conflict_term: conflict.0,
            conflict_index: conflict.1,
            read_round: 0,
            flow_epoch: 1,
        },
    )
}

/// `m`, an AppendEntries or its reply, in flow epoch `epoch` (the builders' is 1, a new
/// leader's first).
pub fn in_epoch(mut m: Message, epoch: u64) -> Message {
    match &mut m.body {
        MessageBody::AppendEntries { flow_epoch, .. }
        | MessageBody::AppendEntriesReply { flow_epoch, .. } => *flow_epoch = epoch,
        body => panic!("not an AppendEntries or its reply: {body:?}"),
    }
    m
}

/// Takes `raft`'s effects as a runtime that syncs in line does: the persist is durable at once
/// and reported (`Raft::persisted`), so a leader counts its own copy of what it appended.
pub fn take_synced(raft: &mut Raft) -> Ready {
    let ready = unreported(raft.take_ready());
    raft.persisted(ready.log_mark, ms(0));
    ready
}

/// `ready` with every message's `hears` report cleared, so that messages compare equal to the
/// builders' (which report nothing); the relay tests look at the reports themselves.
pub fn unreported(mut ready: Ready) -> Ready {
    for m in &mut ready.messages {
        m.hears = Default::default();
    }
    ready
}

/// Fires `raft`'s election timer (the latest it can be due) and returns the resulting effects.
pub fn time_out(raft: &mut Raft) -> Ready {
    let deadline = raft.election_deadline;
    raft.tick(deadline);
    take_synced(raft)
}

/// Fires `raft`'s election timer and grants its pre-votes from every peer (§9.6), so that it
/// starts a real election; returns the effects (its RequestVotes). In term 0 there is no
/// pre-vote round: the timer starts the election.
pub fn campaign(raft: &mut Raft) -> Ready {
    let now = raft.election_deadline;
    let ready = time_out(raft);
    if raft.status().role == Role::Candidate {
        return ready;
    }
    for m in ready.messages {
        let MessageBody::PreVote { round, .. } = m.body else {
            panic!("not a pre-vote: {m:?}");
        };
        raft.step(pre_vote_reply(m.to, m.from, m.term, true, round), now);
    }
    take_synced(raft)
}

/// Makes `raft` the leader of the next term with the votes of every peer; returns the effects of
/// winning (the initial heartbeats). The votes arrive just before the voters' timers could
/// fire, so every peer gets its initial AppendEntries at once (a quick election defers the
/// voters' to the heartbeat timer: `election::quick_election_defers_the_voters_first_heartbeat`).
pub fn elect(raft: &mut Raft) -> Ready {
    campaign(raft);
    let status = raft.status();
    let now = raft.stood_at + ELECTION_MIN - ms(1);
    let members = raft.config.members;
    for peer in (0..members).filter(|&p| p != status.id) {
        raft.step(vote_reply(peer, status.id, status.term, true), now);
    }
    assert_eq!(raft.status().role, Role::Leader);
    take_synced(raft)
}

/// Elects `raft` and acknowledges the initial heartbeat from every peer, so every follower is
/// known to match (Replicate state). Returns the leader's term.
pub fn elect_and_sync(raft: &mut Raft) -> Term {
    let ready = elect(raft);
    let status = raft.status();
    for m in ready.messages {
        raft.step(
            append_ok(m.to, status.id, status.term, status.last_log_index),
            ms(0),
        );
    }
    take_synced(raft);
    status.term
}

/// A snapshot through `index` (of `term`) holding `data`, of a 3-voter cluster (the tests'
/// snapshots are all of one).
pub fn snapshot(index: Index, term: Term, data: &[u8]) -> Snapshot {
    Snapshot {
        last_included_index: index,
        last_included_term: term,
        membership: Membership::voters(0..3),
        data: data.to_vec(),
    }
}

/// The InstallSnapshot chunk of `snapshot` at `[offset, end)`, `done` when `end` is its length.
pub fn chunk(
    from: NodeId,
    to: NodeId,
    term: Term,
    snapshot: &Snapshot,
    offset: usize,
    end: usize,
) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::InstallSnapshot {
            last_included_index: snapshot.last_included_index,
            last_included_term: snapshot.last_included_term,
            membership: snapshot.membership.clone(),
            offset: offset as u64,
            data: snapshot.data[offset..end].to_vec(),
            done: end == snapshot.data.len(),
        },
    )
}

pub fn snapshot_reply(
    from: NodeId,
    to: NodeId,
    term: Term,
    last_included_index: Index,
    done: bool,
    received: u64,
) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::InstallSnapshotReply {
            last_included_index,
            done,
            received,
        },
    )
}
