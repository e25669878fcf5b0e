//! Event logging with the prefix every core line carries: `t{term} {TOPIC}`, the term of the
//! very moment. Who wrote it (`n{id}`) is the process logger's to say (`runtime::logging`):
//! a process of a sharded system logs under its index in the system, not its Raft id.
//!
//! Topics: ELECT, VOTE, APPEND, COMMIT, SNAP, READ, APPLY, PERSIST (see `crate::logline`).
//! Levels: info for elections, leadership, term changes, commit index advances and snapshots
//! (what `just logs` and `just timeline` draw); debug for append/apply detail and reads (which
//! can be many); trace for per-message detail.

use super::MessageBody;

/// `event!(level, raft, topic, "format", args...)`.
macro_rules! event {
    ($level:ident, $raft:expr, $topic:expr, $($arg:tt)+) => {
        ::log::$level!(
            "t{} {} {}",
            $raft.hard_state.current_term,
            $topic,
            format_args!($($arg)+)
        )
    };
}

pub(crate) use event;

/// The topic a message belongs to, for per-message trace lines.
pub(crate) fn topic(body: &MessageBody) -> &'static str {
    match body {
        MessageBody::RequestVote { .. }
        | MessageBody::RequestVoteReply { .. }
        | MessageBody::PreVote { .. }
        | MessageBody::PreVoteReply { .. }
        | MessageBody::TimeoutNow => "VOTE",
        MessageBody::AppendEntries { .. }
        | MessageBody::AppendEntriesReply { .. }
        | MessageBody::CommitQuery { .. } => "APPEND",
        MessageBody::InstallSnapshot { .. } | MessageBody::InstallSnapshotReply { .. } => "SNAP",
    }
}
