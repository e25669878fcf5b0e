//! Membership changes (thesis chapter 4): the configuration as the latest one in the log,
//! quorums of voters only, the leader's rules for proposing a single-server change (§4.1 with
//! Ongaro's 2015 correction), learners (§4.2.1), removing the leader (§4.2.2), removed peers
//! (§4.2.3), and the configuration across snapshots and restarts.

use super::helpers::*;
use crate::core::{
    Entry, EntryKind, HardState, Index, LogMark, Membership, MembershipChange, MembershipError,
    MessageBody, NodeId, Raft, Restored, Role, Term, TransferError,
};
use crate::sim::{Cluster, Faults, Violation, MAX_APPEND_BYTES};

fn config_entry(index: Index, term: Term, membership: Membership) -> Entry {
    Entry {
        term,
        index,
        command: Vec::new(),
        kind: EntryKind::Membership(membership),
    }
}

fn with_learners(voters: &[NodeId], learners: &[NodeId]) -> Membership {
    let mut m = Membership::voters(voters.iter().copied());
    m.learners.extend(learners);
    m
}

/// Elects `r` (a voter of `voters`) with their votes and commits one entry of its term with
/// their acknowledgements; returns its term.
fn leader_with_commit(r: &mut Raft, voters: &[NodeId]) -> Term {
    campaign(r);
    let (id, term) = (r.status().id, r.status().term);
    for &v in voters.iter().filter(|&&v| v != id) {
        r.step(vote_reply(v, id, term, true), ms(1));
    }
    assert_eq!(r.status().role, Role::Leader);
    let (index, _) = r.propose(b"no-op".to_vec(), ms(1)).unwrap();
    take_synced(r);
    for &v in voters.iter().filter(|&&v| v != id) {
        r.step(append_ok(v, id, term, index), ms(2));
    }
    assert_eq!(r.status().commit_index, index);
    take_synced(r);
    term
}

/// §4.1: a configuration takes effect when its entry enters the log, before it commits, and a
/// truncation of that entry takes the peer back to the configuration before it.
#[test]
fn the_latest_configuration_in_the_log_counts_and_a_truncation_reverts_it() {
    let mut f = node_of(1, 4, &[0, 1, 2], 2, &[1]);
    let added = with_learners(&[0, 1, 2], &[3]);
    f.step(
        append(0, 1, 2, (1, 1), vec![config_entry(2, 2, added.clone())], 1),
        ms(1),
    );
    assert_eq!(f.status().commit_index, 1, "not committed");
    assert_eq!((f.membership(), f.membership_index()), (&added, 2));

    // The leader of term 3 never had it: its entry at index 2 replaces it.
    f.step(append(2, 1, 3, (1, 1), vec![entry(2, 3)], 1), ms(2));
    assert_eq!(
        (f.membership(), f.membership_index()),
        (&Membership::voters([0, 1, 2]), 0)
    );
}

/// Learners get the log but count in no majority; peers outside the configuration get nothing.
#[test]
fn a_learner_is_replicated_to_but_not_counted() {
    let mut r = node_of(0, 5, &[0, 1, 2], 0, &[]);
    let term = leader_with_commit(&mut r, &[0, 1, 2]);
    let (index, _) = r
        .propose_membership(MembershipChange::AddLearner(3), ms(3))
        .unwrap();
    let sent = take_synced(&mut r).messages;
    let receivers: Vec<NodeId> = sent.iter().map(|m| m.to).collect();
    assert!(receivers.contains(&3), "the learner is replicated to");
    assert!(!receivers.contains(&4), "n4 is not a member: {receivers:?}");

    r.step(append_ok(3, 0, term, index), ms(4));
    assert_eq!(
        r.status().commit_index,
        index - 1,
        "a learner's ack commits nothing"
    );
    r.step(append_ok(1, 0, term, index), ms(4));
    assert_eq!(r.status().commit_index, index);

    // Promoted, n3 counts: with four voters a majority is three.
    let (promoted, _) = r
        .propose_membership(MembershipChange::Promote(3), ms(5))
        .unwrap();
    take_synced(&mut r);
    r.step(append_ok(3, 0, term, promoted), ms(6));
    assert_eq!(r.status().commit_index, index, "two of four voters");
    r.step(append_ok(1, 0, term, promoted), ms(6));
    assert_eq!(r.status().commit_index, promoted);
}

/// Ongaro's correction: no change before an entry of the leader's term commits; and one
/// change at a time.
#[test]
fn a_change_waits_for_the_leaders_term_and_for_the_previous_change() {
    let mut r = node_of(0, 4, &[0, 1, 2], 0, &[]);
    elect(&mut r);
    let term = r.status().term;
    assert_eq!(
        r.propose_membership(MembershipChange::AddLearner(3), ms(1)),
        Err(MembershipError::TermNotCommitted)
    );
    let (noop, _) = r.propose(b"no-op".to_vec(), ms(1)).unwrap();
    take_synced(&mut r);
    r.step(append_ok(1, 0, term, noop), ms(2));
    let (index, _) = r
        .propose_membership(MembershipChange::AddLearner(3), ms(3))
        .unwrap();
    assert_eq!(
        r.propose_membership(MembershipChange::Promote(3), ms(3)),
        Err(MembershipError::ChangePending { index })
    );
    take_synced(&mut r);
    r.step(append_ok(1, 0, term, index), ms(4));
    // §4.2.1: the learner has not answered yet, so it is not promoted.
    assert_eq!(
        r.propose_membership(MembershipChange::Promote(3), ms(5)),
        Err(MembershipError::NotCaughtUp {
            id: 3,
            match_index: 0,
            last_index: index
        })
    );
    r.step(append_ok(3, 0, term, index), ms(5));
    assert!(r
        .propose_membership(MembershipChange::Promote(3), ms(5))
        .is_ok());
}

/// §4.2.1: a learner is promoted only once its log is within `CATCH_UP_MAX_LAG` entries of the
/// leader's and it has answered lately.
#[test]
fn a_learner_is_promoted_only_once_caught_up() {
    let mut r = node_of(0, 4, &[0, 1, 2], 0, &[]);
    let term = leader_with_commit(&mut r, &[0, 1, 2]);
    let (added, _) = r
        .propose_membership(MembershipChange::AddLearner(3), ms(3))
        .unwrap();
    take_synced(&mut r);
    r.step(append_ok(1, 0, term, added), ms(3));
    let mut last = added;
    for x in 0..crate::core::CATCH_UP_MAX_LAG + 10 {
        last = r.propose(format!("x{x}").into_bytes(), ms(4)).unwrap().0;
    }
    take_synced(&mut r);
    r.step(append_ok(1, 0, term, last), ms(4));
    // Answered, but far behind.
    r.step(append_ok(3, 0, term, 2), ms(4));
    match r.propose_membership(MembershipChange::Promote(3), ms(5)) {
        Err(MembershipError::NotCaughtUp {
            id: 3,
            match_index: 2,
            last_index,
        }) => assert_eq!(last_index, last),
        other => panic!("promoted a lagging learner: {other:?}"),
    }
    // Within the bound.
    r.step(append_ok(3, 0, term, last - 5), ms(5));
    let (promoted, _) = r
        .propose_membership(MembershipChange::Promote(3), ms(5))
        .unwrap();
    assert!(r.membership().is_voter(3));
    assert!(promoted > last);
}

#[test]
fn changes_that_make_no_sense_are_refused_with_their_reason() {
    let mut f = node_of(1, 3, &[0, 1], 1, &[]);
    assert_eq!(
        f.propose_membership(MembershipChange::AddLearner(2), ms(0)),
        Err(MembershipError::NotLeader { leader: None })
    );
    let mut r = node_of(0, 3, &[0], 0, &[]);
    leader_with_commit(&mut r, &[0]);
    let refused = [
        (
            MembershipChange::Remove(0),
            MembershipError::LastVoter { id: 0 },
        ),
        (
            MembershipChange::AddLearner(0),
            MembershipError::AlreadyMember { id: 0 },
        ),
        (
            MembershipChange::Promote(1),
            MembershipError::NotALearner { id: 1 },
        ),
        (
            MembershipChange::Remove(2),
            MembershipError::NotAMember { id: 2 },
        ),
        (
            MembershipChange::AddLearner(7),
            MembershipError::UnknownNode { id: 7 },
        ),
    ];
    for (change, error) in refused {
        assert_eq!(r.propose_membership(change, ms(1)), Err(error));
    }
    // A one-voter cluster commits its own change at once.
    let (index, _) = r
        .propose_membership(MembershipChange::AddLearner(1), ms(1))
        .unwrap();
    take_synced(&mut r);
    assert_eq!(r.status().commit_index, index);
    assert_eq!(
        r.transfer_leadership(1, ms(2)),
        Err(TransferError::NotAVoter { to: 1 })
    );
    assert_eq!(
        r.transfer_leadership(2, ms(2)),
        Err(TransferError::NotAVoter { to: 2 })
    );
}

/// Learners and peers outside the configuration never campaign, not even when told to.
#[test]
fn non_voters_never_campaign() {
    let mut outsider = node_of(3, 4, &[0, 1, 2], 1, &[1]);
    assert!(time_out(&mut outsider).messages.is_empty());
    assert_eq!(outsider.status().role, Role::Follower);

    let mut learner = node_of(3, 4, &[0, 1, 2], 1, &[1]);
    let learners = with_learners(&[0, 1, 2], &[3]);
    learner.step(
        append(0, 3, 1, (1, 1), vec![config_entry(2, 1, learners)], 1),
        ms(1),
    );
    take_synced(&mut learner);
    learner.step(msg(0, 3, 1, MessageBody::TimeoutNow), ms(2));
    assert_eq!(learner.status().role, Role::Follower);
    assert!(time_out(&mut learner).messages.is_empty());
    assert_eq!(learner.status().term, 1);
}

/// §4.2.2: a leader removing itself leads until the new configuration commits, counting only
/// the others, then steps down and does not campaign again.
#[test]
fn a_removed_leader_steps_down_once_the_new_configuration_commits() {
    let mut r = node_of(0, 3, &[0, 1, 2], 0, &[]);
    let term = leader_with_commit(&mut r, &[0, 1, 2]);
    let (index, _) = r
        .propose_membership(MembershipChange::Remove(0), ms(3))
        .unwrap();
    take_synced(&mut r);
    r.step(append_ok(1, 0, term, index), ms(4));
    take_synced(&mut r);
    assert_eq!(r.status().role, Role::Leader, "its own copy does not count");
    assert_eq!(r.status().commit_index, index - 1);
    r.step(append_ok(2, 0, term, index), ms(4));
    take_synced(&mut r);
    assert_eq!(r.status().commit_index, index);
    assert_eq!(r.status().role, Role::Follower);
    assert!(time_out(&mut r).messages.is_empty());
    assert_eq!(r.status().term, term);
}

/// The configuration is in the snapshot: compacting past a configuration entry keeps it, a
/// restart from the snapshot knows it, and a follower installing the snapshot adopts it.
#[test]
fn the_configuration_survives_compaction_restart_and_install_snapshot() {
    let mut r = node_of(0, 4, &[0, 1, 2], 0, &[]);
    let term = leader_with_commit(&mut r, &[0, 1, 2]);
    let (index, _) = r
        .propose_membership(MembershipChange::AddLearner(3), ms(3))
        .unwrap();
    let (after, _) = r.propose(b"x".to_vec(), ms(3)).unwrap();
    take_synced(&mut r);
    r.step(append_ok(1, 0, term, after), ms(4));
    take_synced(&mut r);
    r.snapshot(after, b"state".to_vec()).unwrap();
    let persist = take_synced(&mut r).persist.expect("the snapshot");
    let snapshot = persist.snapshot.expect("the snapshot");
    let added = with_learners(&[0, 1, 2], &[3]);
    assert_eq!(snapshot.membership, added);
    assert_eq!((r.membership(), r.membership_index()), (&added, index));

    let restarted = Raft::new(
        r.config.clone(),
        Restored {
            hard_state: r.hard_state,
            snapshot: Some(snapshot.clone()),
            entries: Vec::new(),
        },
        ms(5),
    );
    assert_eq!(restarted.membership(), &added);

    let mut f = node_of(3, 4, &[0, 1, 2], term, &[]);
    let len = snapshot.data.len();
    f.step(chunk(0, 3, term, &snapshot, 0, len), ms(6));
    assert_eq!(f.membership(), &added);
}

/// A leader that removed itself and lost its leadership before the removal committed may hold
/// the only log that can finish it: it campaigns, asking the voters of the new configuration,
/// which alone make its majority (found by the simulator, seed 75).
#[test]
fn a_peer_whose_removal_is_not_known_committed_still_campaigns() {
    let mut r = node_of(0, 3, &[0, 2], 1, &[1]);
    r.step(
        append(
            2,
            0,
            1,
            (1, 1),
            vec![config_entry(2, 1, Membership::voters([2]))],
            1,
        ),
        ms(1),
    );
    take_synced(&mut r);
    let asked: Vec<NodeId> = time_out(&mut r).messages.iter().map(|m| m.to).collect();
    assert_eq!(asked, vec![2]);
    // Once the removal is known committed it stops.
    let mut done = node_of(0, 3, &[0, 2], 1, &[1]);
    done.step(
        append(
            2,
            0,
            1,
            (1, 1),
            vec![config_entry(2, 1, Membership::voters([2]))],
            2,
        ),
        ms(1),
    );
    take_synced(&mut done);
    assert!(time_out(&mut done).messages.is_empty());
}

/// The sole voter has its majority at once but leads only once its new term and vote are
/// durable: leading before, it could crash, restart in the older term and lead the same term
/// again with another log, sending both to its learners (found by the simulator, seeds 201 and
/// 3015).
#[test]
fn a_sole_voter_leads_only_once_its_term_is_durable() {
    let restored = Restored {
        hard_state: HardState::default(),
        snapshot: None,
        entries: Vec::new(),
    };
    let config = crate::core::Config {
        bootstrap: with_learners(&[0], &[1]),
        ..config(0, 2)
    };
    let mut r = Raft::new(config, restored, ms(0));
    r.tick(r.next_deadline());
    assert_eq!((r.status().role, r.status().term), (Role::Candidate, 1));
    let ready = r.take_ready();
    assert_eq!(
        ready
            .persist
            .and_then(|p| p.hard_state)
            .map(|h| h.current_term),
        Some(1)
    );
    assert!(ready.messages.is_empty(), "{:?}", ready.messages);
    // The report of an earlier persist (before its term changed) does not make it lead.
    r.persisted(LogMark::default(), ms(1));
    assert_eq!(r.status().role, Role::Candidate);
    r.persisted(ready.log_mark, ms(1));
    assert_eq!(r.status().role, Role::Leader);
    let sent = r.take_ready().messages;
    assert!(matches!(
        sent.as_slice(),
        [m] if m.to == 1 && m.term == 1 && matches!(m.body, MessageBody::AppendEntries { .. })
    ));
}

/// Ongaro's counterexample (raft-dev, 2015), on a whole simulated cluster whose every step is
/// checked: voters {L, a, b, c}, n4 a learner. L, cut off with n4 alone, promotes n4: C1 = {L,
/// a, b, c, n4}, on L and n4 only. {a, b, c} elect B, which removes R (one of a, b, c): C2 =
/// {L, B, other}, committed by B and `other`. Then L, n4 and R are cut off together: R never
/// got B's entries (B stopped replicating to it), so L's log is as up-to-date as R's and L wins
/// C1's majority {L, n4, R}, overwriting C2. Ongaro's rule stops it: B may change nothing
/// before an entry of its term commits, and that entry reaches R, which then refuses L. With
/// the rule broken on purpose (the `TermNotCommitted` check gone), every seed here fails
/// (state machine safety: L commits over C2).
#[test]
fn a_new_leader_changes_the_configuration_only_after_committing_in_its_term(
) -> Result<(), Violation> {
    for seed in 0..10 {
        let mut c = Cluster::with_voters(5, 4, seed, Faults::reliable(), MAX_APPEND_BYTES);
        c.run_for(ms(1_000))?;
        let l = c.leader().expect("a leader");
        c.agree(b"first".to_vec(), c.now + ms(3_000))?
            .expect("committed");
        assert!(c.reconfigure(l, MembershipChange::AddLearner(4))?.is_some());
        c.agree(b"learner".to_vec(), c.now + ms(3_000))?
            .expect("committed");

        let mut groups = vec![1; 5];
        (groups[l as usize], groups[4]) = (0, 0);
        c.split(groups)?;
        let promoted = c.reconfigure(l, MembershipChange::Promote(4))?;
        assert!(promoted.is_some(), "seed {seed}: L promotes n4");
        let others: Vec<NodeId> = (0..4).filter(|&id| id != l).collect();
        let term_l = c.raft(l).status().term;
        let b_leads = |c: &Cluster| {
            others.iter().any(|&id| {
                c.peers[id as usize]
                    .raft
                    .as_ref()
                    .is_some_and(|r| r.status().role == Role::Leader && r.status().term > term_l)
            })
        };
        assert!(c.run_until(c.now + ms(5_000), b_leads)?, "seed {seed}");
        let b = c.leader().expect("B leads the highest term");
        let (r, other) = match others.iter().filter(|&&id| id != b).collect::<Vec<_>>()[..] {
            [&r, &other] => (r, other),
            _ => unreachable!("three others"),
        };
        if c.reconfigure(b, MembershipChange::Remove(r))?.is_none() {
            // Ongaro's rule: an entry of B's term first.
            // (Not `agree`: L and n4, cut off, apply nothing.)
            let (index, _) = c.propose(b, b"b's term".to_vec())?.expect("B leads");
            let committed = |c: &Cluster| c.raft(b).status().commit_index >= index;
            assert!(c.run_until(c.now + ms(1_000), committed)?, "seed {seed}");
            assert!(c.reconfigure(b, MembershipChange::Remove(r))?.is_some());
        }
        c.run_for(ms(500))?;
        let c2 = with_learners(&[l, b, other], &[4]);
        assert_eq!(c.raft(other).membership(), &c2, "seed {seed}");
        assert!(c.raft(other).status().commit_index >= c.raft(other).membership_index());

        let mut groups = vec![1; 5];
        for id in [l, 4, r] {
            groups[id as usize] = 0;
        }
        c.split(groups)?;
        // L campaigns; should it win, a command of its commits over C2.
        for _ in 0..50 {
            c.run_for(ms(100))?;
            c.propose(l, b"l's command".to_vec())?;
        }
    }
    Ok(())
}

/// §4.2.3: a peer removed while cut off never learns of it and keeps running, its election
/// timer firing; Pre-Vote's leader stickiness refuses it, so no term changes and the leader
/// stays.
#[test]
fn a_removed_peer_that_keeps_running_does_not_disturb_the_cluster() -> Result<(), Violation> {
    for seed in 0..10 {
        let mut c = Cluster::new(3, seed, Faults::reliable());
        c.run_for(ms(1_000))?;
        let l = c.leader().expect("a leader");
        c.agree(b"first".to_vec(), c.now + ms(3_000))?
            .expect("committed");
        let r = (l + 1) % 3;
        c.set_connected(r, false)?;
        let index = c
            .reconfigure(l, MembershipChange::Remove(r))?
            .expect("the leader removes r");
        let committed = |c: &Cluster| c.raft(l).status().commit_index >= index;
        assert!(c.run_until(c.now + ms(1_000), committed)?, "seed {seed}");
        c.set_connected(r, true)?;
        let term = c.raft(l).status().term;
        c.run_for(ms(10_000))?;
        assert!(
            c.raft(r).membership().is_voter(r),
            "r never learns of its removal"
        );
        assert_eq!(c.leader(), Some(l), "seed {seed}");
        assert_eq!(
            c.raft(l).status().term,
            term,
            "seed {seed}: the term changed"
        );
        assert!(c.raft(r).status().term <= term, "seed {seed}");
        c.agree(b"after".to_vec(), c.now + ms(3_000))?
            .expect("committed without r");
    }
    Ok(())
}

/// Majorities are counted in the new configuration from the moment its entry is appended: a
/// read that waited for a voter's acknowledgement is confirmed once that voter is removed, with
/// no reply to count (found by the simulator, seed 13011: reads left waiting forever).
#[test]
fn removing_a_silent_voter_confirms_the_reads_that_waited_for_it() {
    let mut r = node_of(0, 2, &[0, 1], 0, &[]);
    leader_with_commit(&mut r, &[0, 1]);
    r.read_index(7, ms(3)).unwrap();
    assert!(
        take_synced(&mut r).reads.is_empty(),
        "n1 has not acknowledged"
    );
    r.propose_membership(MembershipChange::Remove(1), ms(4))
        .unwrap();
    let confirmed: Vec<u64> = take_synced(&mut r).reads.iter().map(|r| r.id).collect();
    assert_eq!(confirmed, vec![7]);
}

/// Joint consensus (§4.3): 3 -> 5 voters at once. While C_old,new is the configuration, an
/// entry commits only with a majority of C_old and a majority of C_new; once C_old,new
/// commits, the leader appends C_new on its own, and C_new's majorities alone count after it.
#[test]
fn a_joint_change_needs_both_majorities_then_leaves_for_c_new() {
    let mut r = node_of(0, 5, &[0, 1, 2], 0, &[]);
    let term = leader_with_commit(&mut r, &[0, 1, 2]);
    let mut index = r.status().commit_index;
    for learner in [3, 4] {
        let (added, _) = r
            .propose_membership(MembershipChange::AddLearner(learner), ms(3))
            .unwrap();
        take_synced(&mut r);
        for p in [1, 3, 4] {
            r.step(append_ok(p, 0, term, added), ms(3));
        }
        assert_eq!(r.status().commit_index, added);
        index = added;
    }
    take_synced(&mut r);
    let five = crate::core::VoterSet::of(0..5).unwrap();
    let (joint, _) = r
        .propose_membership(MembershipChange::Joint(five), ms(4))
        .unwrap();
    assert!(r.membership().is_joint());
    assert_eq!(r.membership().outgoing, [0, 1, 2].into());
    take_synced(&mut r);
    // C_new's majority (0, 3, 4) without C_old's (only 0 of 0, 1, 2): not committed.
    r.step(append_ok(3, 0, term, joint), ms(5));
    r.step(append_ok(4, 0, term, joint), ms(5));
    assert_eq!(
        r.status().commit_index,
        index,
        "C_old's majority is missing"
    );
    // n1 completes C_old's majority.
    r.step(append_ok(1, 0, term, joint), ms(5));
    assert_eq!(r.status().commit_index, joint);
    // The leader leaves the joint configuration by itself.
    take_synced(&mut r);
    assert_eq!(r.membership(), &Membership::voters(0..5));
    let c_new = r.membership_index();
    assert_eq!(c_new, joint + 1);
    // C_new's majority alone commits it: 0, 3, 4.
    r.step(append_ok(3, 0, term, c_new), ms(6));
    r.step(append_ok(4, 0, term, c_new), ms(6));
    assert_eq!(r.status().commit_index, c_new);
}

/// A joint change is refused with its reason: to no voters, to the same voters, naming a
/// server outside the configuration, or while the previous one is not yet left.
#[test]
fn joint_changes_that_make_no_sense_are_refused() {
    use crate::core::VoterSet;
    let mut r = node_of(0, 5, &[0, 1, 2], 0, &[]);
    let term = leader_with_commit(&mut r, &[0, 1, 2]);
    let joint =
        |ids: &[NodeId]| MembershipChange::Joint(VoterSet::of(ids.iter().copied()).unwrap());
    assert_eq!(
        r.propose_membership(joint(&[]), ms(3)),
        Err(MembershipError::NoVoters)
    );
    assert_eq!(
        r.propose_membership(joint(&[0, 1, 2]), ms(3)),
        Err(MembershipError::NoChange)
    );
    assert_eq!(
        r.propose_membership(joint(&[0, 3]), ms(3)),
        Err(MembershipError::NotALearner { id: 3 })
    );
    // Two voters replaced by... one fewer: 0, 1, 2 -> 0. Fine; then nothing until it is left.
    let (index, _) = r.propose_membership(joint(&[0]), ms(3)).unwrap();
    assert_eq!(
        r.propose_membership(MembershipChange::Remove(1), ms(3)),
        Err(MembershipError::ChangePending { index })
    );
    take_synced(&mut r);
    r.step(append_ok(1, 0, term, index), ms(4));
    assert_eq!(r.status().commit_index, index);
    // Committed, C_new not yet appended (that happens in take_ready): still refused.
    assert_eq!(
        r.propose_membership(MembershipChange::Remove(1), ms(4)),
        Err(MembershipError::LeavingJoint { index })
    );
    take_synced(&mut r);
    assert_eq!(r.membership(), &Membership::voters([0]));
}
