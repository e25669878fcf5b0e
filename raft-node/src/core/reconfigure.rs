//! Configuration entries in the log and single-server membership changes (Raft thesis §4.1,
//! §4.2).
//!
//! A configuration takes effect on a peer as soon as its entry is in that peer's log, committed
//! or not, and a peer whose log loses the entry (a truncation, a snapshot installed over it)
//! goes back to the configuration before it. So `membership` is always a function of the log:
//! [`Raft::refresh_membership`] recomputes it whenever the log changes where it could matter.
//!
//! The leader's rules for proposing a change:
//! - one change at a time: the previous configuration entry must be committed, so the
//!   configurations in any two logs are at most one change apart and their majorities overlap;
//! - only after committing an entry of its own term (Ongaro's correction, raft-dev, 2015):
//!   otherwise a change proposed by an earlier leader, uncommitted and unknown to this one, and
//!   this leader's change could each be one step from a common configuration but two from each
//!   other, and the two could commit with disjoint majorities.
//!
//! A leader that removes itself keeps leading until the new configuration commits (not counting
//! itself in its majorities), then steps down (§4.2.2). A peer that is not a voter in its latest
//! configuration (a learner, a removed peer that knows it was removed) does not campaign, with
//! one exception ([`Raft::may_campaign`]); a removed peer that does not know it is refused by
//! Pre-Vote's leader stickiness (§4.2.3). Campaigning is about liveness only: a candidate wins
//! with a majority of the voters of its latest configuration, whether it is one of them or
//! not.

use super::membership::CATCH_UP_MAX_LAG;
use super::raft::Raft;
use super::trace::event;
use super::{
    Entry, EntryKind, Index, Membership, MembershipChange, MembershipError, NodeId, Role, Term,
    Time,
};

impl Raft {
    /// The configuration this peer uses: the latest in its log, committed or not.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The index of the entry that holds `membership` (the snapshot's index when the snapshot
    /// holds it; 0 for the bootstrap configuration).
    pub fn membership_index(&self) -> Index {
        self.membership_index
    }

    /// Proposes a single-server change of the configuration (§4.1). Ok((index, term)) of its
    /// entry, which takes effect on this leader at once.
    pub fn propose_membership(
        &mut self,
        change: MembershipChange,
        now: Time,
    ) -> Result<(Index, Term), MembershipError> {
        self.advance_clock(now);
        if self.role != Role::Leader {
            return Err(MembershipError::NotLeader {
                leader: self.leader_id,
            });
        }
        if let Some(transfer) = self.transfer {
            return Err(MembershipError::Transferring { to: transfer.to });
        }
        let ids = match change {
            MembershipChange::AddLearner(id)
            | MembershipChange::Promote(id)
            | MembershipChange::Remove(id) => [id].into(),
            MembershipChange::Joint(set) => set.ids(),
        };
        if let Some(&id) = ids.iter().find(|&&id| id >= self.config.members) {
            return Err(MembershipError::UnknownNode { id });
        }
        if self.membership_index > self.commit_index {
            return Err(MembershipError::ChangePending {
                index: self.membership_index,
            });
        }
        if self.membership.is_joint() {
            return Err(MembershipError::LeavingJoint {
                index: self.membership_index,
            });
        }
        if !self.committed_in_term() {
            return Err(MembershipError::TermNotCommitted);
        }
        let next = self.membership.apply(change)?;
        // Every learner that becomes a voter must have caught up (§4.2.1).
        for &id in ids.iter().filter(|&&id| self.membership.is_learner(id)) {
            if next.is_voter(id) {
                self.check_caught_up(id)?;
            }
        }
        let joining: Vec<NodeId> = (ids.iter().copied())
            .filter(|&id| !self.membership.contains(id))
            .collect();
        for id in joining {
            // A member (re)joining: replicate to it from scratch, probing from the end.
            self.reset_progress(id);
        }
        let (index, term) = self.append_membership(next, &format!("{change:?}"));
        self.debug_check_invariants();
        Ok((index, term))
    }

    /// Leader: appends a configuration entry, in effect at once.
    fn append_membership(&mut self, next: Membership, why: &str) -> (Index, Term) {
        let index = self.log.last_index() + 1;
        let term = self.hard_state.current_term;
        event!(
            info,
            self,
            "CONFIG",
            "proposing {why} at {index}: {} -> {next}",
            self.membership
        );
        self.log.append(Entry {
            term,
            index,
            command: Vec::new(),
            kind: EntryKind::Membership(next.clone()),
        });
        self.membership = next;
        self.membership_index = index;
        // Majorities are now counted in the new configuration: removing a voter that lagged or
        // went silent may commit entries, or confirm reads, that waited for it, and no reply
        // may come to count them (found by the simulator, seed 13011: reads left waiting on a
        // leader that had become the sole voter).
        self.maybe_commit();
        self.confirm_reads();
        (index, term)
    }

    /// Leader, in `take_ready`: once C_old,new is committed, C_new follows (§4.3), whichever
    /// leader finds it so (the one that proposed it, or a later one). Not while a transfer
    /// waits for the log to stop growing: the transfer ends within an election timeout.
    pub(super) fn leave_joint(&mut self) {
        if self.membership.is_joint()
            && self.commit_index >= self.membership_index
            && self.transfer.is_none()
        {
            let next = self.membership.leave_joint();
            self.append_membership(next, "leaving the joint configuration");
        }
    }

    /// Leader: whether learner `id` has caught up (§4.2.1): it answered within CheckQuorum's
    /// window and its match index is within [`CATCH_UP_MAX_LAG`] entries of the leader's
    /// last index. A learner promoted before that would count in majorities it cannot yet
    /// join, and could stall commits until it catches up.
    fn check_caught_up(&self, id: NodeId) -> Result<(), MembershipError> {
        let progress = &self.progress[id as usize];
        let last_index = self.log.last_index();
        if progress.answered_within(self.now, self.config.election_timeout_max)
            && progress.match_index + CATCH_UP_MAX_LAG >= last_index
        {
            return Ok(());
        }
        Err(MembershipError::NotCaughtUp {
            id,
            match_index: progress.match_index,
            last_index,
        })
    }

    /// Sets `membership` from the log: its latest configuration, else the bootstrap one. Call
    /// after any change to the log that may add or remove a configuration entry.
    pub(super) fn refresh_membership(&mut self) {
        let (index, membership) = self.membership_at(self.log.last_index());
        if index != self.membership_index || membership != self.membership {
            event!(
                info,
                self,
                "CONFIG",
                "configuration of index {index}: {membership} (was {} of index {})",
                self.membership,
                self.membership_index
            );
        }
        self.membership = membership;
        self.membership_index = index;
    }

    /// The configuration in effect at `index` (at most the last index) and the index of the
    /// entry holding it.
    pub(super) fn membership_at(&self, index: Index) -> (Index, Membership) {
        match self.log.latest_membership(index) {
            Some((at, m)) => (at, m.clone()),
            None => (0, self.config.bootstrap.clone()),
        }
    }

    /// Whether this peer may count itself in a majority.
    pub(super) fn is_voter(&self) -> bool {
        self.membership.is_voter(self.config.id)
    }

    /// Whether this peer may campaign: it votes in its latest configuration, or that
    /// configuration removed it but is not known committed while it voted in the one before.
    /// Then it may hold the only log that can finish the change: a leader that removed itself
    /// and lost its leadership before the removal committed has the newest log, refuses its
    /// vote to the others, and must lead the new configuration to its commit (found by the
    /// simulator, seed 75: a cluster that elected no one).
    pub(super) fn may_campaign(&self) -> bool {
        let id = self.config.id;
        self.is_voter()
            || (self.commit_index < self.membership_index
                && self.membership_at(self.membership_index - 1).1.is_voter(id))
    }

    /// Every other member of the configuration: whom a leader replicates to.
    pub(super) fn peers(&self) -> Vec<NodeId> {
        let id = self.config.id;
        self.membership.members().filter(|&p| p != id).collect()
    }

    /// Every other voter: whom a (pre-)candidate asks.
    pub(super) fn other_voters(&self) -> Vec<NodeId> {
        let id = self.config.id;
        self.membership.all_voters().filter(|&p| p != id).collect()
    }

    /// Leader, in `take_ready`: a leader that is not in the configuration it committed has
    /// handed the cluster over (§4.2.2); it steps down, and, no longer a voter, never
    /// campaigns again.
    pub(super) fn step_down_if_removed(&mut self) {
        debug_assert_eq!(self.role, Role::Leader);
        if !self.is_voter() && self.commit_index >= self.membership_index {
            event!(
                info,
                self,
                "CONFIG",
                "{} committed without me: stepping down",
                self.membership
            );
            self.become_follower(self.hard_state.current_term, None);
        }
    }
}
