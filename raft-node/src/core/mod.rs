//! The IO-free Raft core (extended Raft paper, Figure 2; log compaction, §7 and Figure 13).
//!
//! Inputs: a received [`Message`] ([`Raft::step`]), the passage of time ([`Raft::tick`]), client
//! proposals ([`Raft::propose`]), reads ([`Raft::read_index`]), the service's snapshots
//! ([`Raft::snapshot`]) and the runtime's completed syncs ([`Raft::persisted`]). Every input
//! that can start a timer takes `now`, the caller's monotonic clock; the core never reads a
//! clock, a socket or a file. Output accumulates in a [`Ready`] that the runtime takes with
//! [`Raft::take_ready`] and carries out in the documented order:
//!
//! 1. send at once the messages that may precede the persist
//!    ([`Message::may_precede_persist`]: the leader's AppendEntries and InstallSnapshot);
//! 2. make `ready.persist` durable, after every earlier `Ready`'s (it may take a while, on
//!    another thread: the runtime goes on feeding inputs and taking `Ready`s meanwhile);
//! 3. once it is durable: report `ready.log_mark` with [`Raft::persisted`], send the other
//!    messages, hand `ready.apply` to the state machine in order, serve each of `ready.reads`
//!    once the state machine has applied through its index (this batch's `apply` may be what
//!    gets it there), and answer each of `ready.failed_reads` as refused (the client retries
//!    at the leader). Step 3 of one `Ready` comes after step 3 of every earlier one.
//!
//! Persist-before-send is what makes a granted vote or an acknowledged append survive a crash.
//! The leader alone may send before it syncs (Raft thesis §10.2.1): its AppendEntries promise
//! nothing about its own disk, and it counts itself toward a commit only for the entries
//! [`Raft::persisted`] reported durable, so its fdatasync overlaps the followers' instead of
//! preceding them. Applying waits for the local sync too, so no node's state machine is ever
//! ahead of its own disk. A runtime that syncs in line does steps 1–3 in one go.
//!
//! One event-loop iteration: feed every input that is ready (`step` each received message,
//! `propose` each client command, `read_index` each read, `persisted` each completed sync,
//! `tick` once), then call `take_ready`
//! once and carry out its effects, then sleep until [`Raft::next_deadline`] or the next input.
//! The leader builds its AppendEntries inside `take_ready`, from everything that accumulated,
//! so proposals made in the same iteration share one message per follower, and reads one
//! heartbeat round.
//!
//! Module map: `raft` (state, `step` dispatch, role transitions), `election` (RequestVote,
//! timers), `pre_vote` (Pre-Vote and leader stickiness, §9.6), `check_quorum` (a leader cut off
//! from its majority steps down, §6.2), `replication` (AppendEntries, commit, heartbeats),
//! `snapshot` (log compaction and InstallSnapshot, §7), `read_index` (linearizable reads without
//! log entries, §6.4), `transfer` (leadership transfer, §3.10), `membership` (the configuration
//! as data: voters, learners, majorities), `reconfigure` (configuration entries in the log and
//! single-server changes, thesis chapter 4), `progress` (per-follower flow control), `log` (the
//! in-memory log, offset by the snapshot, and its durable bookkeeping), `relay` (messages for
//! peers not reached directly go through one that reaches them too).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

mod check_quorum;
mod election;
mod log;
mod membership;
mod pre_vote;
pub(crate) mod progress;
mod raft;
mod read_index;
mod reconfigure;
mod relay;
mod replication;
mod snapshot;
mod trace;
mod transfer;

#[cfg(test)]
mod tests;

pub use log::ENTRY_OVERHEAD;
pub use membership::{Membership, MembershipChange, MembershipError, VoterSet, CATCH_UP_MAX_LAG};
pub use raft::Raft;
pub use relay::Hears;
pub use transfer::TransferError;

/// A peer's id: its position in the cluster's member list (0-based).
pub type NodeId = u32;
/// A Raft term. Term 0 means "never voted, no entries".
pub type Term = u64;
/// A log index. The first entry has index 1; index 0 is the empty prefix.
pub type Index = u64;
/// Monotonic time since an origin the caller picks (process start, or 0 in a simulation).
pub type Time = Duration;

/// One log entry. `command` is opaque to Raft (empty in a configuration entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub index: Index,
    #[serde(with = "serde_bytes")]
    pub command: Vec<u8>,
    pub kind: EntryKind,
}

/// What an entry is for: the service's command, or Raft's own configuration (chapter 4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    Command,
    /// The cluster's configuration from this entry on (`membership.rs`).
    Membership(Membership),
}

impl Entry {
    /// A command entry.
    pub fn command(term: Term, index: Index, command: Vec<u8>) -> Entry {
        Entry {
            term,
            index,
            command,
            kind: EntryKind::Command,
        }
    }

    /// The configuration this entry holds, if it is a configuration entry.
    pub fn membership(&self) -> Option<&Membership> {
        match &self.kind {
            EntryKind::Command => None,
            EntryKind::Membership(m) => Some(m),
        }
    }
}

/// The part of Figure 2's "persistent state" that is not the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub current_term: Term,
    pub voted_for: Option<NodeId>,
}

/// A peer-to-peer message. `term` is the sender's current term, carried once for every kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
    pub body: MessageBody,
    /// `Some(r)`: this copy travels through peer `r`, which forwards it to `to` unchanged
    /// (`relay.rs`); `None`: sent directly.
    pub via: Option<NodeId>,
    /// Whom the sender heard directly lately, and how long before it sent this (`relay.rs`).
    pub hears: Hears,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    RequestVote {
        last_log_index: Index,
        last_log_term: Term,
    },
    RequestVoteReply {
        vote_granted: bool,
    },
    /// §9.6: would the receiver vote for the sender in `term` (the sender's current term + 1)?
    /// Changes no state on either side. `round` numbers the sender's pre-votes, so that a late
    /// answer to an earlier one cannot count in this one.
    PreVote {
        last_log_index: Index,
        last_log_term: Term,
        round: u64,
    },
    /// Stamped with the pre-vote's term when granted, with the receiver's term when refused.
    PreVoteReply {
        vote_granted: bool,
        round: u64,
    },
    AppendEntries {
        prev_log_index: Index,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: Index,
        /// The leader's latest ReadIndex round when it sent this (0 before its first), echoed
        /// in the reply: a reply to round r or later confirms the reads waiting for round r
        /// (§6.4, `read_index.rs`).
        read_round: u64,
        /// The leader's flow epoch for this follower (`progress.rs`), echoed in the reply: a
        /// rejection answering an earlier epoch is stale and does not move `next_index`.
        flow_epoch: u64,
        /// Whether a success is answered. False only on a commit announcement whose success
        /// would tell the leader nothing (`replication.rs`); a rejection is always answered.
        wants_ack: bool,
    },
    AppendEntriesReply {
        /// On success: the highest index known to match the leader's log
        /// (prev_log_index + entries.len()). On failure: the rejected request's prev_log_index
        /// (0 when a request of an older term is refused: it answers nothing current).
        /// Either way it identifies which request this answers.
        success: bool,
        match_index: Index,
        /// On failure (fast backup): the term of the conflicting entry at prev_log_index, if any,
        /// and the first index the follower holds with that term (or its log length + 1 when
        /// its log is too short).
        conflict_term: Option<Term>,
        conflict_index: Index,
        /// The request's `read_round` (0 when a request of an older term is refused).
        read_round: u64,
        /// The request's `flow_epoch` (0, which no epoch is, when a request of an older term is
        /// refused).
        flow_epoch: u64,
    },
    /// Figure 13: one chunk of the leader's snapshot, bytes `[offset, offset + data.len())` of
    /// `data`; `done` on the last. Sized like an AppendEntries, so it fits one datagram.
    InstallSnapshot {
        last_included_index: Index,
        last_included_term: Term,
        /// The configuration as of the snapshot's last included entry.
        membership: Membership,
        offset: u64,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        done: bool,
    },
    /// §3.10: the leader hands over leadership; the receiver, holding the leader's whole log,
    /// starts an election at once, skipping Pre-Vote.
    TimeoutNow,
    InstallSnapshotReply {
        /// Which snapshot this answers (0 when a chunk of an older term is refused).
        last_included_index: Index,
        /// The follower's log now starts after the snapshot: it installed it, or already held
        /// (committed) everything it covers. The leader goes on with AppendEntries.
        done: bool,
        /// When not done: the follower holds bytes `[0, received)` of the snapshot, and the
        /// leader sends from there.
        received: u64,
    },
    /// A follower holds entries it acknowledged a stall timeout ago and still does not know to
    /// be committed; it knows commits through `commit`. The leader, if its commit index is
    /// ahead, announces it again (`replication.rs`): the announcement asks for no reply, so
    /// only the follower can tell it was lost.
    CommitQuery {
        commit: Index,
    },
}

impl Message {
    /// Whether the runtime may send this before the persist of the `Ready` it came in is
    /// durable. Only a leader's replication requests may: they carry its log and a commit
    /// index that counts its own copy only where durable. Every other message promises what
    /// the persist makes durable (a vote, a term, an acknowledged entry) or answers a request
    /// that a crash could make this node forget it answered.
    pub fn may_precede_persist(&self) -> bool {
        matches!(
            self.body,
            MessageBody::AppendEntries { .. } | MessageBody::InstallSnapshot { .. }
        )
    }
}

impl MessageBody {
    /// Whether this is a request that its sender waits to see answered (`relay.rs` takes a
    /// peer that leaves such requests unanswered for out of reach).
    pub fn expects_reply(&self) -> bool {
        match self {
            MessageBody::AppendEntries { wants_ack, .. } => *wants_ack,
            // Answered only when the leader knows more.
            MessageBody::CommitQuery { .. } => false,
            body => body.is_request(),
        }
    }

    /// Whether this is a request (an RPC in the lab's sense), not a reply: what the lab's
    /// `rpcCount` counts on the receiving server.
    pub fn is_request(&self) -> bool {
        match self {
            MessageBody::RequestVote { .. }
            | MessageBody::PreVote { .. }
            | MessageBody::AppendEntries { .. }
            | MessageBody::InstallSnapshot { .. }
            | MessageBody::TimeoutNow
            | MessageBody::CommitQuery { .. } => true,
            MessageBody::RequestVoteReply { .. }
            | MessageBody::PreVoteReply { .. }
            | MessageBody::AppendEntriesReply { .. }
            | MessageBody::InstallSnapshotReply { .. } => false,
        }
    }
}

/// Timing and sizing knobs of one peer.
#[derive(Clone, Debug)]
pub struct Config {
    pub id: NodeId,
    /// Number of peers this one can address, itself included; ids are 0..members. Which of
    /// them are in the cluster is the configuration's business (`membership.rs`).
    pub members: u32,
    /// The configuration before any configuration entry: the same on every peer (the runtime
    /// makes every peer of `--peers` a voter).
    pub bootstrap: Membership,
    /// Election timeouts are drawn uniformly from [min, max).
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    pub heartbeat_interval: Duration,
    /// Encoded-size budget for one AppendEntries' entries (so a message fits one datagram).
    pub max_append_bytes: usize,
    /// Seed of the core's random number generator (election timeouts).
    pub seed: u64,
    /// Relay messages for peers not reached directly through a peer that reaches them
    /// (`relay.rs`). Off only to show what it changes.
    pub relay: bool,
}

/// The service's state up to and including `last_included_index` (Figure 13), which replaces
/// the log entries through that index (§7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub last_included_index: Index,
    pub last_included_term: Term,
    /// The configuration as of `last_included_index` (§4: a peer restarted from the snapshot
    /// knows it).
    pub membership: Membership,
    /// Opaque to Raft: whatever the service handed to `Raft::snapshot`.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// What the core restarts from: exactly what earlier `Ready::persist` effects made durable.
#[derive(Clone, Debug, Default)]
pub struct Restored {
    pub hard_state: HardState,
    /// The latest snapshot made durable, if any.
    pub snapshot: Option<Snapshot>,
    /// The log entries after the snapshot (from index 1 when there is none).
    pub entries: Vec<Entry>,
}

/// Changes to durable state, to be applied in this order:
/// 1. `hard_state`;
/// 2. `snapshot`: make it durable, replacing the previous one, and discard every entry with
///    index <= `snapshot.last_included_index` (the entries after it stay);
/// 3. remove every entry with index >= `truncate_from`;
/// 4. append `append`.
///
/// An InstallSnapshot that replaces the whole log is `snapshot: Some(s)` with
/// `truncate_from: Some(s.last_included_index + 1)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Persist {
    pub hard_state: Option<HardState>,
    pub snapshot: Option<Snapshot>,
    pub truncate_from: Option<Index>,
    pub append: Vec<Entry>,
}

/// One item of the stream a peer hands its state machine (the lab's ApplyMsg).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Apply {
    /// A committed entry, the one after the previous item.
    Entry(Entry),
    /// A snapshot installed from the leader (Figure 13, receiver step 8): the state machine
    /// resets to it; the entries after its last included index follow.
    Snapshot(Snapshot),
}

impl Apply {
    /// The index the state machine reaches by applying this item.
    pub fn index(&self) -> Index {
        match self {
            Apply::Entry(e) => e.index,
            Apply::Snapshot(s) => s.last_included_index,
        }
    }
}

/// Effects accumulated since the last `take_ready`.
#[derive(Debug, Default)]
pub struct Ready {
    pub persist: Option<Persist>,
    /// The log's last (index, term) once `persist` is applied: hand it to [`Raft::persisted`]
    /// when this and every earlier persist are durable.
    pub log_mark: LogMark,
    /// To send: those that [`Message::may_precede_persist`] at once, the others once
    /// `persist` is durable.
    pub messages: Vec<Message>,
    /// What to hand the state machine, in order; continues the previous batch without gaps
    /// (a snapshot jumps past the entries it covers).
    pub apply: Vec<Apply>,
    /// Reads confirmed (§6.4): each may be served once the state machine has applied through
    /// its index.
    pub reads: Vec<ReadState>,
    /// Reads that will never be confirmed (this peer stopped leading, or its term changed):
    /// the client asks again, at the leader.
    pub failed_reads: Vec<u64>,
}

/// A position in the log: the entry at `index` has `term` (index 0 with term 0: the empty log);
/// and the peer's current term when it was taken, durable with it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogMark {
    pub index: Index,
    pub term: Term,
    pub current_term: Term,
}

/// A read confirmed by [`Raft::read_index`]: serving it from a state machine that has applied
/// through `index` is linearizable (§6.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadState {
    /// The caller's id for the read.
    pub id: u64,
    /// The leader's commit index when the read was requested (or, if it had not yet committed
    /// an entry of its term then, when it first did).
    pub index: Index,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Follower,
    /// A follower whose election timer fired, asking whether it could win before it starts an
    /// election (§9.6).
    PreCandidate,
    Candidate,
    Leader,
}

/// A snapshot of a peer's volatile state, for status displays and the harness.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub id: NodeId,
    pub term: Term,
    pub role: Role,
    pub leader: Option<NodeId>,
    pub commit_index: Index,
    pub last_applied: Index,
    pub last_log_index: Index,
    /// The last index the snapshot covers (0 without one); the log holds the entries after it.
    pub snapshot_index: Index,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposeError {
    NotLeader {
        leader: Option<NodeId>,
    },
    /// The leader is handing leadership to `to` (§3.10) and accepts nothing meanwhile.
    Transferring {
        to: NodeId,
    },
    /// The leader has heard from no majority `within` the minimum election timeout, so a newer
    /// leader may already lead (`check_quorum.rs`): try another peer.
    OutOfTouch {
        within: Duration,
    },
    TooLarge {
        size: usize,
        max: usize,
    },
}

/// Why `Raft::snapshot` refused a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    /// The snapshot would cover entries not yet handed to the state machine.
    NotApplied { index: Index, last_applied: Index },
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::NotApplied {
                index,
                last_applied,
            } => write!(
                f,
                "cannot snapshot through index {index}: only {last_applied} applied"
            ),
        }
    }
}
