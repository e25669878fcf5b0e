//! Leadership transfer (Raft thesis §3.10): the leader hands its role to a chosen follower, for
//! maintenance or to move leadership nearer the clients, without waiting out an election
//! timeout.
//!
//! 1. The leader stops accepting proposals, so its log stops growing.
//! 2. It brings the target up to date with ordinary AppendEntries (the target's progress).
//! 3. Once the target's match index is the leader's last index, it sends `TimeoutNow`; the
//!    target starts an election at once, skipping Pre-Vote (its log is as up-to-date as the
//!    leader's, so every peer that takes its RequestVote can vote for it; a vote is not subject
//!    to leader stickiness, only a pre-vote is). Its higher term deposes the old leader.
//! 4. If no new term has begun within an election timeout (the target is down, cut off, or
//!    lost its election), the transfer is abandoned and proposals resume.
//!
//! Safety: nothing here changes a rule of Figure 2. The target campaigns as any candidate does;
//! `TimeoutNow` only decides when. Refusing proposals for a while is an availability choice.

use super::raft::Raft;
use super::trace::event;
use super::{MessageBody, NodeId, Role, Time};

/// A transfer under way at the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Transfer {
    pub to: NodeId,
    /// Abandoned when `now` reaches this.
    pub deadline: Time,
    /// When `TimeoutNow` last went to the target (resent each heartbeat interval while the
    /// transfer lasts, in case it was lost).
    pub sent_at: Option<Time>,
}

/// Why [`Raft::transfer_leadership`] refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferError {
    NotLeader {
        leader: Option<NodeId>,
    },
    /// The target is not another peer this node can address.
    NotAPeer {
        to: NodeId,
    },
    /// The target is a learner or not in the configuration: it could not win an election.
    NotAVoter {
        to: NodeId,
    },
    /// A transfer is under way already.
    InProgress {
        to: NodeId,
    },
}

impl std::fmt::Display for TransferError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransferError::NotLeader { leader: Some(l) } => {
                write!(f, "not the leader (n{l} leads): ask it")
            }
            TransferError::NotLeader { leader: None } => write!(f, "not the leader (none known)"),
            TransferError::NotAPeer { to } => {
                write!(f, "n{to} is not another member of this cluster")
            }
            TransferError::NotAVoter { to } => {
                write!(f, "n{to} is not a voter (a learner, or removed)")
            }
            TransferError::InProgress { to } => {
                write!(f, "a transfer to n{to} is under way already")
            }
        }
    }
}

impl Raft {
    /// Starts handing leadership to `to` (§3.10). Proposals are refused until the transfer
    /// ends: `to` wins an election, or an election timeout passes.
    pub fn transfer_leadership(&mut self, to: NodeId, now: Time) -> Result<(), TransferError> {
        self.advance_clock(now);
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader {
                leader: self.leader_id,
            });
        }
        if to >= self.config.members || to == self.config.id {
            return Err(TransferError::NotAPeer { to });
        }
        if !self.membership.is_voter(to) {
            return Err(TransferError::NotAVoter { to });
        }
        if let Some(transfer) = self.transfer {
            return Err(TransferError::InProgress { to: transfer.to });
        }
        self.transfer = Some(Transfer {
            to,
            deadline: self.now + self.config.election_timeout_max,
            sent_at: None,
        });
        event!(info, self, "ELECT", "transferring leadership to n{to}");
        self.debug_check_invariants();
        Ok(())
    }

    /// The target of the transfer under way, if any.
    pub fn transferring_to(&self) -> Option<NodeId> {
        self.transfer.map(|t| t.to)
    }

    /// Leader, in `take_ready`: once the target holds the whole log, tells it to campaign (again
    /// each heartbeat interval while the transfer lasts).
    pub(super) fn send_timeout_now(&mut self) {
        let Some(transfer) = self.transfer else {
            return;
        };
        let caught_up = self.progress[transfer.to as usize].match_index == self.log.last_index();
        let due = transfer
            .sent_at
            .is_none_or(|at| self.now >= at + self.config.heartbeat_interval);
        if caught_up && due {
            event!(
                info,
                self,
                "ELECT",
                "n{} caught up: TimeoutNow",
                transfer.to
            );
            self.transfer = Some(Transfer {
                sent_at: Some(self.now),
                ..transfer
            });
            self.send(transfer.to, MessageBody::TimeoutNow);
        }
    }

    /// Leader timer: a transfer that has not ended within an election timeout is abandoned.
    pub(super) fn tick_transfer(&mut self) {
        if let Some(transfer) = self.transfer {
            if self.now >= transfer.deadline {
                event!(
                    info,
                    self,
                    "ELECT",
                    "transfer to n{} abandoned after {:?}: accepting proposals again",
                    transfer.to,
                    self.config.election_timeout_max
                );
                self.transfer = None;
            }
        }
    }

    /// Follower: the leader of this term tells it to campaign now (§3.10), skipping Pre-Vote.
    pub(super) fn handle_timeout_now(&mut self, from: NodeId) {
        debug_assert_eq!(self.role, Role::Follower);
        if !self.may_campaign() {
            event!(
                warn,
                self,
                "ELECT",
                "TimeoutNow from n{from}, but I am not a voter: ignored"
            );
            return;
        }
        if self.leader_id != Some(from) {
            event!(
                warn,
                self,
                "ELECT",
                "TimeoutNow from n{from}, not the leader I follow: ignored"
            );
            return;
        }
        event!(info, self, "ELECT", "TimeoutNow from n{from}: campaigning");
        self.campaign();
    }
}
