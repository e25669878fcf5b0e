//! The event trace: one line per step, the last [`RING`] kept for the failure report, and a
//! digest of every step of the run, so two runs of one seed can be compared whole.
//!
//! Events hold small summaries, not messages (no entries, no snapshot bytes), and are formatted
//! only when a report is printed: recording one costs a few words and a hash.

use crate::core::{
    Index, MembershipChange, Message, MessageBody, NodeId, Role, Status, Term, Time,
};
use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::fmt;
use std::hash::{Hash, Hasher};

/// Events kept for the failure report.
pub const RING: usize = 30;

/// One step: what happened, and the state of the peer it happened to afterwards.
#[derive(Clone, Debug, Hash)]
pub struct Event {
    pub step: u64,
    pub at: Time,
    pub action: Action,
    pub after: Option<PeerState>,
}

#[derive(Clone, Debug, Hash)]
pub enum Action {
    Deliver(Summary),
    Tick(NodeId),
    /// A client's `Start` at a peer, and what it answered.
    Propose {
        to: NodeId,
        accepted: Option<(Index, Term)>,
    },
    /// `count` reads (ids from `first`) asked at a peer, and how many it accepted.
    Read {
        to: NodeId,
        first: u64,
        count: usize,
        accepted: usize,
    },
    /// A peer's storage thread completes the syncs due.
    Sync(NodeId),
    /// A leadership transfer asked of a peer (§3.10), and whether it started one.
    Transfer {
        from: NodeId,
        to: NodeId,
        accepted: bool,
    },
    /// A single-server configuration change asked of a peer (thesis §4.1), and the index of
    /// its entry if it accepted.
    Reconfigure {
        at: NodeId,
        change: MembershipChange,
        accepted: Option<Index>,
    },
    Crash(NodeId),
    Restart(NodeId),
    /// The service on a peer snapshots through `index`.
    Snapshot {
        id: NodeId,
        index: Index,
    },
    Disconnect(NodeId),
    Connect(NodeId),
    /// Links across groups down: `groups[id]` is peer id's group.
    Split(Vec<u8>),
    /// The directed link `from -> to` down.
    Cut {
        from: NodeId,
        to: NodeId,
    },
    /// Every directed link up again.
    RestoreLinks,
    /// Every link up, every peer connected and restarted, the network reliable.
    Heal,
}

/// A message without its payload.
#[derive(Clone, Debug, Hash)]
pub struct Summary {
    from: NodeId,
    to: NodeId,
    term: Term,
    body: Body,
}

#[derive(Clone, Debug, Hash)]
enum Body {
    RequestVote {
        last: (Index, Term),
    },
    RequestVoteReply {
        granted: bool,
    },
    PreVote {
        last: (Index, Term),
        round: u64,
    },
    PreVoteReply {
        granted: bool,
        round: u64,
    },
    AppendEntries {
        prev: (Index, Term),
        entries: usize,
        commit: Index,
        read_round: u64,
        flow_epoch: u64,
        wants_ack: bool,
    },
    AppendEntriesReply {
        success: bool,
        match_index: Index,
        conflict: (Option<Term>, Index),
        read_round: u64,
        flow_epoch: u64,
    },
    InstallSnapshot {
        last: (Index, Term),
        offset: u64,
        len: usize,
        done: bool,
    },
    InstallSnapshotReply {
        index: Index,
        done: bool,
        received: u64,
    },
    TimeoutNow,
    CommitQuery {
        commit: Index,
    },
}

impl Summary {
    pub fn of(msg: &Message) -> Summary {
        let body = match &msg.body {
            MessageBody::TimeoutNow => Body::TimeoutNow,
            MessageBody::CommitQuery { commit } => Body::CommitQuery { commit: *commit },
            MessageBody::RequestVote {
                last_log_index,
                last_log_term,
            } => Body::RequestVote {
                last: (*last_log_index, *last_log_term),
            },
            MessageBody::RequestVoteReply { vote_granted } => Body::RequestVoteReply {
                granted: *vote_granted,
            },
            MessageBody::PreVote {
                last_log_index,
                last_log_term,
                round,
            } => Body::PreVote {
                last: (*last_log_index, *last_log_term),
                round: *round,
            },
            MessageBody::PreVoteReply {
                vote_granted,
                round,
            } => Body::PreVoteReply {
                granted: *vote_granted,
                round: *round,
            },
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                read_round,
                flow_epoch,
                wants_ack,
            } => Body::AppendEntries {
                prev: (*prev_log_index, *prev_log_term),
                entries: entries.len(),
                commit: *leader_commit,
                read_round: *read_round,
                flow_epoch: *flow_epoch,
                wants_ack: *wants_ack,
            },
            MessageBody::AppendEntriesReply {
                success,
                match_index,
                conflict_term,
                conflict_index,
                read_round,
                flow_epoch,
            } => Body::AppendEntriesReply {
                success: *success,
                match_index: *match_index,
                conflict: (*conflict_term, *conflict_index),
                read_round: *read_round,
                flow_epoch: *flow_epoch,
            },
            MessageBody::InstallSnapshot {
                last_included_index,
                last_included_term,
                offset,
                data,
                done,
                ..
            } => Body::InstallSnapshot {
                last: (*last_included_index, *last_included_term),
                offset: *offset,
                len: data.len(),
                done: *done,
            },
            MessageBody::InstallSnapshotReply {
                last_included_index,
                done,
                received,
            } => Body::InstallSnapshotReply {
                index: *last_included_index,
                done: *done,
                received: *received,
            },
        };
        Summary {
            from: msg.from,
            to: msg.to,
            term: msg.term,
            body,
        }
    }
}

/// A peer's state after a step, as the trace shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerState {
    id: NodeId,
    /// `None`: crashed.
    up: Option<(Role, Term, Index, Index)>,
}

impl PeerState {
    pub fn up(status: &Status) -> PeerState {
        PeerState {
            id: status.id,
            up: Some((
                status.role,
                status.term,
                status.commit_index,
                status.last_log_index,
            )),
        }
    }

    pub fn down(id: NodeId) -> PeerState {
        PeerState { id, up: None }
    }
}

/// The last [`RING`] events and the digest of all of them.
#[derive(Default)]
pub struct Trace {
    ring: VecDeque<Event>,
    digest: u64,
}

impl Trace {
    /// A step starts.
    pub fn begin(&mut self, step: u64, at: Time, action: Action) {
        if self.ring.len() == RING {
            self.ring.pop_front();
        }
        self.ring.push_back(Event {
            step,
            at,
            action,
            after: None,
        });
    }

    /// The step that began last ended, leaving its peer in `after` (if it concerns one peer).
    pub fn end(&mut self, after: Option<PeerState>) {
        let event = self.ring.back_mut().expect("a step began");
        event.after = after;
        let mut hasher = DefaultHasher::new();
        (self.digest, &*event).hash(&mut hasher);
        self.digest = hasher.finish();
    }

    /// Records what a `Start` answered, on the step that made it.
    pub fn set_accepted(&mut self, result: Option<(Index, Term)>) {
        if let Some(Event {
            action: Action::Propose { accepted, .. },
            ..
        }) = self.ring.back_mut()
        {
            *accepted = result;
        }
    }

    /// Records how many reads a peer accepted, on the step that asked them.
    pub fn set_reads_accepted(&mut self, n: usize) {
        if let Some(Event {
            action: Action::Read { accepted, .. },
            ..
        }) = self.ring.back_mut()
        {
            *accepted = n;
        }
    }

    /// A digest of every completed step so far (same seed, same digest).
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// The kept events, one line each, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.ring.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {:>9.3}s {}",
            self.step,
            self.at.as_secs_f64(),
            self.action
        )?;
        if let Some(after) = &self.after {
            write!(f, "  => {after}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Deliver(summary) => write!(f, "deliver {summary}"),
            Action::Tick(id) => write!(f, "tick n{id}"),
            Action::Propose { to, accepted } => match accepted {
                Some((index, term)) => write!(f, "start at n{to}: accepted at {index}@t{term}"),
                None => write!(f, "start at n{to}: refused"),
            },
            Action::Read {
                to,
                first,
                count,
                accepted,
            } => write!(
                f,
                "{count} reads at n{to} (ids from {first}): {accepted} accepted"
            ),
            Action::Sync(id) => write!(f, "sync n{id}"),
            Action::Transfer { from, to, accepted } => {
                let answer = if *accepted { "started" } else { "refused" };
                write!(f, "transfer n{from} -> n{to}: {answer}")
            }
            Action::Reconfigure {
                at,
                change,
                accepted,
            } => match accepted {
                Some(index) => write!(f, "{change:?} at n{at}: entry {index}"),
                None => write!(f, "{change:?} at n{at}: refused"),
            },
            Action::Crash(id) => write!(f, "crash n{id}"),
            Action::Restart(id) => write!(f, "restart n{id}"),
            Action::Snapshot { id, index } => {
                write!(f, "n{id}'s service snapshots through {index}")
            }
            Action::Disconnect(id) => write!(f, "disconnect n{id}"),
            Action::Connect(id) => write!(f, "connect n{id}"),
            Action::Split(groups) => write!(f, "partition by group {groups:?}"),
            Action::Cut { from, to } => write!(f, "cut link n{from}->n{to}"),
            Action::RestoreLinks => write!(f, "every link up"),
            Action::Heal => write!(f, "heal: all up, all connected, reliable network"),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}->n{} t{} ", self.from, self.to, self.term)?;
        match self.body {
            Body::RequestVote { last } => write!(f, "RequestVote last {}@t{}", last.0, last.1),
            Body::RequestVoteReply { granted } => write!(f, "RequestVoteReply granted={granted}"),
            Body::TimeoutNow => write!(f, "TimeoutNow"),
            Body::CommitQuery { commit } => write!(f, "CommitQuery commit {commit}"),
            Body::PreVote { last, round } => {
                write!(f, "PreVote last {}@t{} round {round}", last.0, last.1)
            }
            Body::PreVoteReply { granted, round } => {
                write!(f, "PreVoteReply granted={granted} round {round}")
            }
            Body::AppendEntries {
                prev,
                entries,
                commit,
                read_round,
                flow_epoch,
                wants_ack,
            } => write!(
                f,
                "AppendEntries prev {}@t{} +{entries} commit {commit} round {read_round} epoch \
                 {flow_epoch}{}",
                prev.0,
                prev.1,
                if wants_ack { "" } else { " no-ack" }
            ),
            Body::AppendEntriesReply {
                success,
                match_index,
                conflict,
                read_round,
                flow_epoch,
            } => write!(
                f,
                "AppendEntriesReply success={success} match {match_index} conflict {:?}@{} round \
                 {read_round} epoch {flow_epoch}",
                conflict.0, conflict.1
            ),
            Body::InstallSnapshot {
                last,
                offset,
                len,
                done,
            } => write!(
                f,
                "InstallSnapshot through {}@t{} bytes {offset}+{len} done={done}",
                last.0, last.1
            ),
            Body::InstallSnapshotReply {
                index,
                done,
                received,
            } => write!(
                f,
                "InstallSnapshotReply through {index} done={done} received {received}"
            ),
        }
    }
}

impl fmt::Display for PeerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.up {
            None => write!(f, "n{} down", self.id),
            Some((role, term, commit, last)) => write!(
                f,
                "n{} {role:?} t{term} commit {commit} last {last}",
                self.id
            ),
        }
    }
}
