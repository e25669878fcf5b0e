//! The Raft state machine of one peer: its state (Figure 2) and the inputs that drive it.

use super::{
    Config, Entry, HardState, Index, Message, ProposeError, Ready, Restored, Role, Status, Term,
    Time,
};

/// One Raft peer, IO-free.
pub struct Raft {
    config: Config,
    hard_state: HardState,
    entries: Vec<Entry>,
    role: Role,
    commit_index: Index,
    last_applied: Index,
    ready: Ready,
    election_deadline: Time,
}

impl Raft {
    pub fn new(config: Config, restored: Restored, now: Time) -> Raft {
        let election_deadline = now + config.election_timeout_max;
        Raft {
            config,
            hard_state: restored.hard_state,
            entries: restored.entries,
            role: Role::Follower,
            commit_index: 0,
            last_applied: 0,
            ready: Ready::default(),
            election_deadline,
        }
    }

    /// Handle one message from a peer. Messages not addressed to this node or from unknown ids
    /// are ignored.
    pub fn step(&mut self, _msg: Message, _now: Time) {}

    /// Fire every timer due at `now` (election timeout, heartbeat).
    pub fn tick(&mut self, _now: Time) {}

    /// The lab's Start(): append to the leader's log. Ok((index, term)).
    pub fn propose(
        &mut self,
        _command: Vec<u8>,
        _now: Time,
    ) -> Result<(Index, Term), ProposeError> {
        Err(ProposeError::NotLeader { leader: None })
    }

    /// The earliest time `tick` must be called again (the runtime's poll timeout).
    pub fn next_deadline(&self) -> Time {
        self.election_deadline
    }

    /// Take the accumulated effects (see the module docs for the order the runtime obeys).
    pub fn take_ready(&mut self) -> Ready {
        std::mem::take(&mut self.ready)
    }

    pub fn status(&self) -> Status {
        Status {
            id: self.config.id,
            term: self.hard_state.current_term,
            role: self.role,
            leader: None,
            commit_index: self.commit_index,
            last_applied: self.last_applied,
            last_log_index: self.entries.last().map_or(0, |e| e.index),
        }
    }

    /// Applied entries with index in [from, last_applied] still held in the log (replay for a
    /// new apply subscriber).
    pub fn applied_entries(&self, from: Index) -> &[Entry] {
        let end = self.last_applied as usize;
        let start = (from.max(1) as usize - 1).min(end);
        &self.entries[start..end]
    }
}
