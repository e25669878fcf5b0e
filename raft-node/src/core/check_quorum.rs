//! CheckQuorum (Raft thesis §6.2; etcd's CheckQuorum): a leader that has not heard from a
//! majority of the cluster (itself included) within an election timeout steps down to follower,
//! in the same term.
//!
//! Why: with Pre-Vote's leader stickiness (`pre_vote.rs`), followers that hear from a leader
//! refuse to replace it. If that leader could not hear them (its replies lost one way), it could
//! commit nothing, yet its heartbeats would hold off every election. When it steps down because
//! the followers went silent, its heartbeats stop, the followers' leases run out, and the cluster
//! can elect a leader that a majority can reach. Stepping down also stops a leader cut off from
//! the majority from accepting commands it can never commit (the lab's `one()` waits 2 s on each
//! one it submits there).
//!
//! The check runs every quarter of a maximum election timeout, counting the followers that
//! answered anything (AppendEntries, snapshot chunks) within the last maximum election timeout
//! (a new leader counts every follower as having answered when it was elected). A connected
//! leader steps down by mistake only if most followers' replies for a whole timeout are lost or
//! delayed, which is rare even on the lab's lossy network. A leader that is cut off steps down
//! one to one and a quarter timeouts after it loses its majority (it was one to two with
//! windows counted apart, which is most of the time a partial partition leaves without a
//! leader, issue 16).
//!
//! Proposals meet a tighter test. A leader that has heard from no majority within the *minimum*
//! election timeout refuses them (`ProposeError::OutOfTouch`) while it waits for the window to
//! end: from then on the followers' leader leases may have run out and they may have elected a
//! newer leader, so an entry it accepted would most likely be overwritten, and its client would
//! wait out a timeout (the lab's `one()` 2 s) instead of trying the next peer. A leader just
//! reconnected after a partition used to accept one such command before it heard the new term.
//!
//! Safety: stepping down in the same term changes no persistent state (term, vote, log). It
//! leaves the peer as it would be after a crash and restart, a follower in that term that
//! voted for itself, which Raft handles anyway. Figure 2's properties are untouched.

use super::raft::Raft;
use super::trace::event;
use super::{NodeId, Role};

impl Raft {
    /// Whether a majority (this leader included, when it votes) answered within the minimum
    /// election timeout: the proposal test above.
    pub(super) fn heard_from_majority_lately(&self) -> bool {
        let id = self.config.id;
        let lately = |p: NodeId| {
            self.now.saturating_sub(self.progress[p as usize].heard_at)
                < self.config.election_timeout_min
        };
        self.membership.has_quorum(|p| p == id || lately(p))
    }

    /// Leader timer, every quarter of a maximum election timeout: step down unless a majority
    /// answered within the last maximum election timeout.
    pub(super) fn tick_check_quorum(&mut self) {
        debug_assert_eq!(self.role, Role::Leader);
        if self.now < self.check_quorum_at {
            return;
        }
        let window = self.config.election_timeout_max;
        self.check_quorum_at = self.now + window / 4;
        // The leader never answers itself: count it apart (when it is a voter: a leader
        // removing itself counts only the others, §4.2.2).
        let (id, now) = (self.config.id, self.now);
        let progress = &self.progress;
        if !self
            .membership
            .has_quorum(|p| p == id || progress[p as usize].active_within(now, window))
        {
            event!(
                info,
                self,
                "ELECT",
                "CheckQuorum: heard from no majority of {} in {:?}, stepping down",
                self.membership,
                window
            );
            self.become_follower(self.hard_state.current_term, None);
        }
    }
}
