//! The cluster's configuration as data (Raft thesis, chapter 4): which peers vote and which
//! only learn, and the majorities every quorum decision counts.
//!
//! A peer uses the latest configuration in its log, committed or not (§4.1): the last
//! configuration entry, else the one its snapshot records, else the bootstrap configuration it
//! was started with (`Config::bootstrap`). When an entry holding a configuration is truncated,
//! the peer falls back to the one before it (`Raft::refresh_membership`).
//!
//! Changes are single-server (§4.1): add a learner, promote a learner to voter, or remove a
//! member. Any two configurations one such change apart have overlapping majorities, which is
//! what lets the new configuration take effect as soon as it is in a log; the leader keeps at
//! most one change uncommitted, and proposes one only after committing an entry of its own
//! term (Ongaro's 2015 correction; `Raft::propose_membership`).
//!
//! Learners (§4.2.1) receive the log but are never counted in a quorum and never campaign.
//!
//! Several voters change at once through joint consensus (§4.3): the leader appends C_old,new
//! (`voters` the new voters, `outgoing` the old ones), in which every decision needs a majority
//! of each; once that entry commits it appends C_new (`outgoing` empty) on its own
//! (`Raft::leave_joint`). Any two configurations a step apart then have overlapping majorities
//! again: C_old and C_old,new share C_old's, C_old,new and C_new share C_new's.

use super::{Index, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// One configuration: voters and learners, disjoint; during a joint change (§4.3) also the
/// outgoing voters, whose majority counts as well.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
    /// C_old's voters while this is C_old,new; empty otherwise. Disjoint from `learners`.
    #[serde(default)]
    pub outgoing: BTreeSet<NodeId>,
}

/// A set of voters for a joint change, as a bit set of ids below 64: small and `Copy`, so a
/// change stays a value every layer can pass around and log.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VoterSet(pub u64);

impl VoterSet {
    /// The set of `ids`; `None` if one is 64 or above.
    pub fn of(ids: impl IntoIterator<Item = NodeId>) -> Option<VoterSet> {
        let mut bits = 0u64;
        for id in ids {
            bits |= 1u64.checked_shl(id)?;
        }
        Some(VoterSet(bits))
    }

    pub fn ids(self) -> BTreeSet<NodeId> {
        (0..64).filter(|&id| self.0 & (1 << id) != 0).collect()
    }
}

impl fmt::Debug for VoterSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.ids()).finish()
    }
}

/// A single-server change (§4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MembershipChange {
    /// A new member that receives the log but does not vote (§4.2.1).
    AddLearner(NodeId),
    /// A learner becomes a voter.
    Promote(NodeId),
    /// A voter or a learner leaves the configuration.
    Remove(NodeId),
    /// Joint consensus (§4.3): these become the voters, any number changing at once; each must
    /// be a member already (a new server joins as a learner first). The voters that leave
    /// leave the configuration; the learners that stay stay.
    Joint(VoterSet),
}

/// Why a membership change was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipError {
    NotLeader {
        leader: Option<NodeId>,
    },
    /// The leader is handing over leadership (§3.10) and accepts nothing meanwhile.
    Transferring {
        to: NodeId,
    },
    /// The leader has not yet committed an entry of its term: until it has, a change
    /// proposed by an earlier leader may still be uncommitted in some log (Ongaro, 2015).
    TermNotCommitted,
    /// The change at `index` is not committed yet: one change at a time.
    ChangePending {
        index: Index,
    },
    /// The id is not one of the peers this node can address.
    UnknownNode {
        id: NodeId,
    },
    AlreadyMember {
        id: NodeId,
    },
    NotALearner {
        id: NodeId,
    },
    NotAMember {
        id: NodeId,
    },
    /// Removing the last voter would leave no one to elect a leader.
    LastVoter {
        id: NodeId,
    },
    /// A joint change to no voters at all.
    NoVoters,
    /// A joint change to the voters there are already.
    NoChange,
    /// The joint configuration of `index` is committed and its C_new about to be appended:
    /// one change at a time.
    LeavingJoint {
        index: Index,
    },
    /// The learner has not caught up (§4.2.1): its log is more than [`CATCH_UP_MAX_LAG`]
    /// entries behind the leader's, or it has not answered the leader lately. Promoting it now
    /// could stall commits while it catches up; try again once it has.
    NotCaughtUp {
        id: NodeId,
        match_index: Index,
        last_index: Index,
    },
}

/// How far (in entries) a learner's log may trail the leader's for it to be promoted: about
/// one round of replication under load (§4.2.1).
pub const CATCH_UP_MAX_LAG: Index = 64;

impl fmt::Display for MembershipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MembershipError::NotLeader { leader: Some(l) } => {
                write!(f, "not the leader (n{l} leads): ask it")
            }
            MembershipError::NotLeader { leader: None } => {
                write!(f, "not the leader (none known)")
            }
            MembershipError::Transferring { to } => {
                write!(f, "handing leadership to n{to}: try again after")
            }
            MembershipError::TermNotCommitted => write!(
                f,
                "the leader has not committed an entry of its term yet: try again shortly"
            ),
            MembershipError::ChangePending { index } => write!(
                f,
                "the configuration change at index {index} is not committed yet: one change at \
                 a time"
            ),
            MembershipError::UnknownNode { id } => write!(f, "n{id} is not a known peer"),
            MembershipError::AlreadyMember { id } => {
                write!(f, "n{id} is already a member")
            }
            MembershipError::NotALearner { id } => {
                write!(f, "n{id} is not a learner: add it as one first")
            }
            MembershipError::NotAMember { id } => write!(f, "n{id} is not a member"),
            MembershipError::LastVoter { id } => {
                write!(f, "n{id} is the last voter: the cluster would have none")
            }
            MembershipError::NoVoters => {
                write!(f, "a configuration needs a voter: name at least one")
            }
            MembershipError::NoChange => write!(f, "those are the voters already"),
            MembershipError::LeavingJoint { index } => write!(
                f,
                "leaving the joint configuration of index {index}: try again shortly"
            ),
            MembershipError::NotCaughtUp {
                id,
                match_index,
                last_index,
            } => write!(
                f,
                "n{id} has not caught up (it holds the log through {match_index} of \
                 {last_index}, or has not answered lately): promote it once it has"
            ),
        }
    }
}

impl Membership {
    /// Every id in `voters` votes; no learners.
    pub fn voters(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        Membership {
            voters: voters.into_iter().collect(),
            learners: BTreeSet::new(),
            outgoing: BTreeSet::new(),
        }
    }

    /// Whether `id` votes: in C_new, or in C_old during a joint change.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.outgoing.contains(&id)
    }

    /// Whether this is C_old,new (§4.3).
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Every voter, of C_new and C_old alike: whom a candidate asks.
    pub fn all_voters(&self) -> impl Iterator<Item = NodeId> + '_ {
        (self.voters.iter())
            .chain(self.outgoing.iter().filter(|id| !self.voters.contains(id)))
            .copied()
    }

    /// C_new of this C_old,new: the outgoing voters gone.
    pub fn leave_joint(&self) -> Membership {
        Membership {
            outgoing: BTreeSet::new(),
            ..self.clone()
        }
    }

    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id)
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Voters (both sets) and learners: everyone the leader replicates to.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.all_voters().chain(self.learners.iter().copied())
    }

    /// The largest `v` such that a majority of the voters have `value(voter) >= v`: the index a
    /// majority holds, the read round a majority acknowledged. During a joint change, a
    /// majority of each of C_old and C_new (§4.3).
    pub fn majority_value(&self, value: impl Fn(NodeId) -> u64) -> u64 {
        let of = |set: &BTreeSet<NodeId>| {
            let mut values: Vec<u64> = set.iter().map(|&id| value(id)).collect();
            values.sort_unstable_by(|a, b| b.cmp(a));
            values.get(set.len() / 2).copied().unwrap_or(0)
        };
        match self.is_joint() {
            true => of(&self.voters).min(of(&self.outgoing)),
            false => of(&self.voters),
        }
    }

    /// Whether the voters for which `granted` holds are a majority.
    pub fn has_quorum(&self, granted: impl Fn(NodeId) -> bool) -> bool {
        self.majority_value(|id| u64::from(granted(id))) == 1
    }

    /// The configuration after `change`, or why it is not a valid single-server change of this
    /// one.
    pub fn apply(&self, change: MembershipChange) -> Result<Membership, MembershipError> {
        let mut next = self.clone();
        match change {
            MembershipChange::Joint(set) => {
                let voters = set.ids();
                if voters.is_empty() {
                    return Err(MembershipError::NoVoters);
                }
                if voters == self.voters {
                    return Err(MembershipError::NoChange);
                }
                if let Some(&id) = voters.iter().find(|&&id| !self.contains(id)) {
                    return Err(MembershipError::NotALearner { id });
                }
                next.learners.retain(|id| !voters.contains(id));
                next.outgoing = std::mem::replace(&mut next.voters, voters);
            }
            MembershipChange::AddLearner(id) if self.contains(id) => {
                return Err(MembershipError::AlreadyMember { id })
            }
            MembershipChange::AddLearner(id) => {
                next.learners.insert(id);
            }
            MembershipChange::Promote(id) if !self.is_learner(id) => {
                return Err(MembershipError::NotALearner { id })
            }
            MembershipChange::Promote(id) => {
                next.learners.remove(&id);
                next.voters.insert(id);
            }
            MembershipChange::Remove(id) if !self.contains(id) => {
                return Err(MembershipError::NotAMember { id })
            }
            MembershipChange::Remove(id) if self.voters.len() == 1 && self.is_voter(id) => {
                return Err(MembershipError::LastVoter { id })
            }
            MembershipChange::Remove(id) => {
                next.voters.remove(&id);
                next.learners.remove(&id);
            }
        }
        Ok(next)
    }
}

impl fmt::Display for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = |set: &BTreeSet<NodeId>| {
            set.iter()
                .map(|id| format!("n{id}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        write!(f, "voters {{{}}}", ids(&self.voters))?;
        if self.is_joint() {
            write!(f, " joint with {{{}}}", ids(&self.outgoing))?;
        }
        if !self.learners.is_empty() {
            write!(f, " learners {{{}}}", ids(&self.learners))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majorities_count_voters_only() {
        let mut m = Membership::voters([0, 1, 2]);
        m.learners.insert(3);
        // Three voters: the second-highest value is held by a majority.
        assert_eq!(m.majority_value(|id| [5, 9, 7, 100][id as usize]), 7);
        assert!(m.has_quorum(|id| id == 0 || id == 2));
        // The learner's acknowledgement never makes a majority.
        assert!(!m.has_quorum(|id| id == 0 || id == 3));
        let four = Membership::voters([0, 1, 2, 3]);
        assert!(!four.has_quorum(|id| id < 2));
        assert!(four.has_quorum(|id| id < 3));
    }

    #[test]
    fn single_server_changes_and_their_errors() {
        let m = Membership::voters([0, 1]);
        let added = m.apply(MembershipChange::AddLearner(2)).unwrap();
        assert!(added.is_learner(2) && !added.is_voter(2));
        assert_eq!(
            added.apply(MembershipChange::AddLearner(2)),
            Err(MembershipError::AlreadyMember { id: 2 })
        );
        assert_eq!(
            m.apply(MembershipChange::Promote(1)),
            Err(MembershipError::NotALearner { id: 1 })
        );
        let promoted = added.apply(MembershipChange::Promote(2)).unwrap();
        assert_eq!(promoted, Membership::voters([0, 1, 2]));
        assert_eq!(
            m.apply(MembershipChange::Remove(5)),
            Err(MembershipError::NotAMember { id: 5 })
        );
        let one = m.apply(MembershipChange::Remove(0)).unwrap();
        assert_eq!(
            one.apply(MembershipChange::Remove(1)),
            Err(MembershipError::LastVoter { id: 1 })
        );
    }
}
