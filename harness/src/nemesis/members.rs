//! How the nemesis moves the cluster's configuration (Raft thesis chapter 4): from whatever the
//! leader reports towards a target set of voters, one committed change at a time. Every step is
//! chosen afresh from the leader's own report, so a step that a crash, a new leader or a refusal
//! interrupted is simply chosen again.

use raft_node::control::NodeState;
use raft_node::core::{MembershipChange, VoterSet};

/// What to do next to bring the configuration the leader reports to `target` voters and no
/// learners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The leader's configuration is not committed yet (or is joint, which the leader leaves
    /// on its own): wait.
    Wait,
    Propose(MembershipChange),
    /// The configuration is `target`, committed.
    Done,
}

/// The next step from `leader`'s configuration towards `target`: new members join as learners
/// first (the catch-up gate promotes none before it has the log); then one voter added or
/// removed is a single-server change (§4.1), anything more a joint change (§4.3); learners
/// left over are removed last.
pub fn next_step(leader: &NodeState, target: &[usize]) -> Step {
    if !leader.outgoing.is_empty() || leader.commit_index < leader.membership_index {
        return Step::Wait;
    }
    let target: Vec<u32> = target.iter().map(|&i| i as u32).collect();
    let voters = &leader.voters;
    let member = |id: &u32| voters.contains(id) || leader.learners.contains(id);
    if let Some(&new) = target.iter().find(|id| !member(id)) {
        return Step::Propose(MembershipChange::AddLearner(new));
    }
    let joining: Vec<u32> = (target.iter().copied())
        .filter(|id| !voters.contains(id))
        .collect();
    let leaving: Vec<u32> = (voters.iter().copied())
        .filter(|id| !target.contains(id))
        .collect();
    let change = match (joining.as_slice(), leaving.as_slice()) {
        ([], []) => match leader.learners.first() {
            Some(&learner) => MembershipChange::Remove(learner),
            None => return Step::Done,
        },
        ([id], []) => MembershipChange::Promote(*id),
        ([], [id]) => MembershipChange::Remove(*id),
        _ => MembershipChange::Joint(VoterSet::of(target).expect("ids below 64")),
    };
    Step::Propose(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::known::known;
    use raft_node::core::Role;

    fn leader(voters: &[u32], learners: &[u32], outgoing: &[u32]) -> NodeState {
        NodeState {
            voters: voters.to_vec(),
            learners: learners.to_vec(),
            outgoing: outgoing.to_vec(),
            membership_index: 10,
            commit_index: 10,
            ..known(0, Role::Leader, 3, Some(0))
        }
    }

    #[test]
    fn a_new_voter_joins_as_a_learner_then_is_promoted() {
        assert_eq!(
            next_step(&leader(&[0, 1, 2], &[], &[]), &[0, 1, 2, 5]),
            Step::Propose(MembershipChange::AddLearner(5))
        );
        assert_eq!(
            next_step(&leader(&[0, 1, 2], &[5], &[]), &[0, 1, 2, 5]),
            Step::Propose(MembershipChange::Promote(5))
        );
        assert_eq!(
            next_step(&leader(&[0, 1, 2, 5], &[], &[]), &[0, 1, 2, 5]),
            Step::Done
        );
    }

    #[test]
    fn one_voter_leaves_by_a_single_change_two_by_a_joint_one() {
        assert_eq!(
            next_step(&leader(&[0, 1, 2, 3], &[], &[]), &[0, 1, 2]),
            Step::Propose(MembershipChange::Remove(3))
        );
        assert_eq!(
            next_step(&leader(&[0, 1, 2, 3], &[5, 6], &[]), &[0, 1, 5, 6]),
            Step::Propose(MembershipChange::Joint(VoterSet::of([0, 1, 5, 6]).unwrap()))
        );
    }

    #[test]
    fn waits_for_an_uncommitted_or_joint_configuration_and_clears_learners() {
        let mut uncommitted = leader(&[0, 1, 2], &[], &[]);
        uncommitted.commit_index = 9;
        assert_eq!(next_step(&uncommitted, &[0, 1, 2]), Step::Wait);
        assert_eq!(
            next_step(&leader(&[0, 1, 5], &[], &[0, 1, 2]), &[0, 1, 5]),
            Step::Wait
        );
        assert_eq!(
            next_step(&leader(&[0, 1, 2], &[4], &[]), &[0, 1, 2]),
            Step::Propose(MembershipChange::Remove(4))
        );
    }
}
