//! Pre-Vote and leader stickiness (Raft thesis §9.6).

use super::helpers::*;
use crate::core::{Config, HardState, Persist, Raft, Restored, Role};
use crate::sim::{Cluster, Faults, Violation};

/// Peer `id` of `members` in `term`, having voted for `voted_for`, with an entry of each term
/// in `log_terms`.
fn voter(id: u32, members: u32, term: u64, voted_for: Option<u32>, log_terms: &[u64]) -> Raft {
    voter_of(config(id, members), term, voted_for, log_terms)
}

fn voter_of(config: Config, term: u64, voted_for: Option<u32>, log_terms: &[u64]) -> Raft {
    let restored = Restored {
        hard_state: HardState {
            current_term: term,
            voted_for,
        },
        snapshot: None,
        entries: log(log_terms),
    };
    Raft::new(config, restored, ms(0))
}

/// §9.6: an election timeout makes a follower a pre-candidate that asks every peer about the
/// next term, with its last log entry, and changes neither its term nor its vote: nothing to
/// persist.
#[test]
fn a_timed_out_follower_pre_votes_for_the_next_term_and_changes_nothing() {
    let mut r = voter(0, 3, 2, Some(1), &[1, 2]);
    let ready = time_out(&mut r);
    assert_eq!(r.status().role, Role::PreCandidate);
    assert_eq!(
        r.hard_state,
        HardState {
            current_term: 2,
            voted_for: Some(1)
        }
    );
    assert_eq!(ready.persist, None);
    assert_eq!(
        ready.messages,
        vec![pre_vote(0, 1, 3, (2, 2), 1), pre_vote(0, 2, 3, (2, 2), 1)]
    );
}

/// In term 0 there is nothing for a pre-vote to protect: every leader leads a term of at least 1,
/// and a RequestVote for term 1 raises no peer past it. The timer starts the election at once.
#[test]
fn a_peer_in_term_0_campaigns_without_a_pre_vote_round() {
    let mut r = voter(0, 3, 0, None, &[]);
    let ready = time_out(&mut r);
    assert_eq!(r.status().role, Role::Candidate);
    assert_eq!(
        r.hard_state,
        HardState {
            current_term: 1,
            voted_for: Some(0)
        }
    );
    assert_eq!(
        ready.messages,
        vec![request_vote(0, 1, 1, (0, 0)), request_vote(0, 2, 1, (0, 0))]
    );
}

/// §9.6: a pre-vote is granted iff its term is newer than the receiver's and the sender's log is
/// at least as up-to-date (§5.4.1). A grant carries the pre-vote's term, a refusal the
/// receiver's. Either way the receiver's term, vote and log stay as they were, and its election
/// timer too unless the sender's log is behind (then it may come forward: the next test).
#[test]
fn pre_votes_are_granted_on_term_and_log_and_change_nothing() {
    // The receiver is in term 2; its log ends at index 3, term 2.
    let cases = [
        (3, (3, 2), true),  // next term, identical log
        (5, (4, 2), true),  // later term, longer log
        (3, (1, 3), true),  // later last term, shorter log
        (2, (3, 2), false), // not a newer term
        (1, (9, 9), false), // an older term
        (3, (2, 2), false), // same last term, shorter
        (3, (5, 1), false), // longer but older last term
    ];
    for (term, last, granted) in cases {
        let mut r = voter(1, 3, 2, None, &[1, 1, 2]);
        let deadline = r.election_deadline;
        r.step(pre_vote(0, 1, term, last, 7), ms(100));
        let ready = take_synced(&mut r);
        let reply_term = if granted { term } else { 2 };
        assert_eq!(
            ready.messages,
            vec![pre_vote_reply(1, 0, reply_term, granted, 7)],
            "pre-vote for t{term} with last {last:?}"
        );
        assert_eq!(ready.persist, None);
        assert_eq!(
            r.hard_state,
            HardState {
                current_term: 2,
                voted_for: None
            }
        );
        if r.is_up_to_date(last.0, last.1) {
            assert_eq!(r.election_deadline, deadline);
        }
        assert!(r.election_deadline <= deadline);
        assert_eq!(r.status().role, Role::Follower);
    }
}

/// A follower that hears no leader and refuses a pre-vote because the asker's log is behind its
/// own stands itself within half the election timeout's spread, not at its own timeout: the
/// asker cannot win, and this peer might. The timer only ever comes forward.
#[test]
fn a_peer_hearing_no_leader_stands_soon_when_a_peer_behind_it_asks() {
    let soon = (ELECTION_MAX - ELECTION_MIN) / 2;
    for seed in 0..20 {
        let config = Config {
            seed,
            ..config(1, 3)
        };
        let mut r = voter_of(config, 2, None, &[1, 1, 2]);
        // Past its restart (whose first timeout is short already): an ordinary timer.
        r.reset_election_timer();
        let t = ms(10);
        let deadline = r.election_deadline;
        r.step(pre_vote(0, 1, 3, (2, 2), 1), t);
        take_synced(&mut r);
        assert!(
            r.election_deadline < t + soon,
            "seed {seed}: standing at {:?}, not before {:?}",
            r.election_deadline,
            t + soon
        );
        // A second asker may bring it forward again, but never puts it off.
        let brought = r.election_deadline;
        assert!(brought < deadline);
        r.step(pre_vote(2, 1, 3, (3, 1), 1), t + ms(1));
        take_synced(&mut r);
        assert!(r.election_deadline <= brought);
        let ready = time_out(&mut r);
        assert_eq!(r.status().role, Role::PreCandidate);
        assert_eq!(
            ready.messages,
            vec![pre_vote(1, 0, 3, (3, 2), 1), pre_vote(1, 2, 3, (3, 2), 1)]
        );
    }
}

/// A peer that hears a leader (leader stickiness, §9.6), or that stood already (a pre-candidate
/// or candidate: its rounds would otherwise come as often as those of every peer behind it),
/// leaves its timer alone when a peer behind it asks for an election; so does one whose asker
/// is as up-to-date as itself (refused only for its term or a lease).
#[test]
fn a_peer_in_a_lease_or_standing_or_asked_by_an_equal_keeps_its_timer() {
    // In the current leader's lease.
    let mut r = voter(1, 3, 2, None, &[1, 2]);
    r.step(append(0, 1, 2, (2, 2), vec![], 2), ms(1_000));
    take_synced(&mut r);
    let deadline = r.election_deadline;
    r.step(
        pre_vote(2, 1, 3, (1, 1), 1),
        ms(1_000) + ELECTION_MIN - ms(1),
    );
    assert_eq!(r.election_deadline, deadline);

    // A pre-candidate.
    let mut r = voter(1, 3, 2, None, &[1, 2]);
    time_out(&mut r);
    assert_eq!(r.status().role, Role::PreCandidate);
    let deadline = r.election_deadline;
    r.step(pre_vote(2, 1, 3, (1, 1), 1), r.now + ms(1));
    assert_eq!(r.election_deadline, deadline);

    // A candidate.
    let mut r = voter(1, 3, 2, None, &[1, 2]);
    campaign(&mut r);
    assert_eq!(r.status().role, Role::Candidate);
    let deadline = r.election_deadline;
    r.step(pre_vote(2, 1, 4, (1, 1), 1), r.stood_at);
    assert_eq!(r.election_deadline, deadline);

    // An asker as up-to-date, in a term that is not newer.
    let mut r = voter(1, 3, 2, None, &[1, 2]);
    let deadline = r.election_deadline;
    r.step(pre_vote(2, 1, 2, (2, 2), 1), ms(10));
    assert_eq!(r.election_deadline, deadline);
}

/// §9.6, leader stickiness: a follower that heard from the current leader less than the
/// minimum election timeout ago refuses every pre-vote; after that, it grants again.
#[test]
fn a_follower_in_a_leader_lease_refuses_pre_votes() {
    let mut r = voter(1, 3, 2, None, &[1, 2]);
    r.step(append(0, 1, 2, (2, 2), vec![], 2), ms(1_000));
    take_synced(&mut r);
    r.step(
        pre_vote(2, 1, 3, (2, 2), 1),
        ms(1_000) + ELECTION_MIN - ms(1),
    );
    assert_eq!(
        take_synced(&mut r).messages,
        vec![pre_vote_reply(1, 2, 2, false, 1)]
    );
    r.step(pre_vote(2, 1, 3, (2, 2), 2), ms(1_000) + ELECTION_MIN);
    assert_eq!(
        take_synced(&mut r).messages,
        vec![pre_vote_reply(1, 2, 3, true, 2)]
    );
    assert_eq!(r.status().term, 2);
}

/// The lease is not held against the leader itself: one that asks for pre-votes has stopped
/// leading (restarted, or deposed by CheckQuorum), even if its AppendEntries, delayed on the
/// way, still reach its followers (found on simulator seed 9030: a restarted leader, the only
/// peer that could win, refused by a follower its old AppendEntries kept in the lease for 1 s).
#[test]
fn a_follower_grants_the_pre_vote_of_the_leader_it_follows() {
    let mut r = voter(1, 3, 2, None, &[1, 2]);
    r.step(append(0, 1, 2, (2, 2), vec![], 2), ms(1_000));
    take_synced(&mut r);
    r.step(pre_vote(0, 1, 3, (2, 2), 1), ms(1_010));
    assert_eq!(
        take_synced(&mut r).messages,
        vec![pre_vote_reply(1, 0, 3, true, 1)]
    );
    r.step(pre_vote(2, 1, 3, (2, 2), 1), ms(1_010));
    assert_eq!(
        take_synced(&mut r).messages,
        vec![pre_vote_reply(1, 2, 2, false, 1)],
        "the lease still holds against the others"
    );
}

/// A peer that has just granted its vote, and heard from no leader since (a quick election's
/// voters wait a heartbeat for the first AppendEntries), refuses another pre-candidate for the
/// minimum election timeout, but not the candidate it voted for.
#[test]
fn a_peer_that_just_voted_refuses_other_pre_candidates_a_while() {
    let mut r = voter(1, 3, 1, None, &[1]);
    // Every peer hears every other (else the replies would go through a relay as well).
    let heard = |mut m: crate::core::Message| {
        m.hears = crate::core::Hears::of([0, 1, 2]);
        m
    };
    let t = ms(1_000);
    r.step(heard(request_vote(0, 1, 2, (1, 1))), t);
    assert_eq!(
        take_synced(&mut r).messages,
        vec![vote_reply(1, 0, 2, true)]
    );
    r.step(
        heard(pre_vote(2, 1, 3, (1, 1), 1)),
        t + ELECTION_MIN - ms(1),
    );
    assert_eq!(
        take_synced(&mut r).messages,
        vec![pre_vote_reply(1, 2, 2, false, 1)]
    );
    r.step(
        heard(pre_vote(0, 1, 3, (1, 1), 1)),
        t + ELECTION_MIN - ms(1),
    );
    assert_eq!(
        take_synced(&mut r).messages,
        vec![pre_vote_reply(1, 0, 3, true, 1)]
    );
    r.step(heard(pre_vote(2, 1, 3, (1, 1), 2)), t + ELECTION_MIN);
    assert_eq!(
        take_synced(&mut r).messages,
        vec![pre_vote_reply(1, 2, 3, true, 2)]
    );
    assert_eq!(r.status().term, 2);
}

/// §9.6: a leader is in its own lease: it refuses pre-votes and keeps leading.
#[test]
fn a_leader_refuses_pre_votes() {
    let mut r = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut r);
    r.step(pre_vote(1, 0, term + 1, (0, 0), 1), ms(0));
    let ready = take_synced(&mut r);
    assert!(ready
        .messages
        .contains(&pre_vote_reply(0, 1, term, false, 1)));
    assert_eq!((r.status().role, r.status().term), (Role::Leader, term));
}

/// §9.6: a grant is no evidence of a newer term: it does not raise anyone's term (here a
/// follower's, which did not ask, so it does not count either).
#[test]
fn a_granted_reply_does_not_raise_the_term() {
    let mut r = voter(0, 3, 2, None, &[]);
    r.step(pre_vote_reply(1, 0, 3, true, 1), ms(10));
    let ready = take_synced(&mut r);
    assert_eq!((ready.persist, ready.messages), (None, vec![]));
    assert_eq!((r.status().role, r.status().term), (Role::Follower, 2));
}

/// §9.6 (as etcd): a refusal from a newer term means the pre-candidate is behind: it follows
/// that term (Figure 2's rule for all servers). A refusal from its own term changes nothing.
#[test]
fn a_refusal_from_a_newer_term_makes_the_pre_candidate_follow() {
    let mut r = voter(0, 3, 2, None, &[]);
    time_out(&mut r);
    r.step(pre_vote_reply(1, 0, 2, false, 1), ms(700));
    assert_eq!(r.status().role, Role::PreCandidate);
    assert_eq!(take_synced(&mut r).persist, None);

    r.step(pre_vote_reply(2, 0, 5, false, 1), ms(700));
    assert_eq!((r.status().role, r.status().term), (Role::Follower, 5));
    assert_eq!(
        take_synced(&mut r).persist,
        Some(Persist {
            hard_state: Some(HardState {
                current_term: 5,
                voted_for: None
            }),
            ..Persist::default()
        })
    );
}

/// §9.6 then §5.2: with pre-votes from a majority of distinct peers (its own included) the
/// pre-candidate starts the real election: next term, vote for itself, persisted, RequestVote
/// to every peer.
#[test]
fn a_majority_of_pre_votes_starts_the_election() {
    let mut r = voter(0, 5, 2, None, &[1, 2]);
    time_out(&mut r);
    r.step(pre_vote_reply(1, 0, 3, true, 1), ms(700));
    r.step(pre_vote_reply(1, 0, 3, true, 1), ms(700));
    r.step(pre_vote_reply(2, 0, 2, false, 1), ms(700));
    assert_eq!(r.status().role, Role::PreCandidate);
    assert_eq!(take_synced(&mut r).persist, None);

    r.step(pre_vote_reply(3, 0, 3, true, 1), ms(700));
    assert_eq!((r.status().role, r.status().term), (Role::Candidate, 3));
    let ready = take_synced(&mut r);
    assert_eq!(
        ready.persist.and_then(|p| p.hard_state),
        Some(HardState {
            current_term: 3,
            voted_for: Some(0)
        })
    );
    assert_eq!(
        ready.messages,
        (1..5)
            .map(|to| request_vote(0, to, 3, (2, 2)))
            .collect::<Vec<_>>()
    );
}

/// §9.6: grants answering an earlier round do not count, whether that round asked about the
/// same term (told apart by the round number) or an earlier one.
#[test]
fn grants_from_an_earlier_round_do_not_count() {
    let mut r = voter(0, 3, 2, None, &[]);
    time_out(&mut r);
    time_out(&mut r);
    r.step(pre_vote_reply(1, 0, 3, true, 1), ms(2_000));
    assert_eq!(r.status().role, Role::PreCandidate);

    // Round 3 asks about term 4.
    r.step(pre_vote_reply(2, 0, 3, false, 2), ms(2_000));
    assert_eq!((r.status().role, r.status().term), (Role::Follower, 3));
    let ready = time_out(&mut r);
    assert_eq!(ready.messages[0], pre_vote(0, 1, 4, (0, 0), 3));
    let now = r.election_deadline - ELECTION_MIN;
    r.step(pre_vote_reply(1, 0, 3, true, 2), now);
    r.step(pre_vote_reply(1, 0, 4, true, 2), now);
    assert_eq!(r.status().role, Role::PreCandidate);

    r.step(pre_vote_reply(1, 0, 4, true, 3), now);
    assert_eq!((r.status().role, r.status().term), (Role::Candidate, 4));
}

/// §9.6, §5.2: a pre-candidate that hears from a leader of its term (or a newer one) has a
/// leader again: it follows it and accepts the AppendEntries.
#[test]
fn a_pre_candidate_follows_a_leader() {
    let mut r = voter(0, 3, 2, None, &[]);
    time_out(&mut r);
    r.step(append(1, 0, 2, (0, 0), vec![entry(1, 2)], 0), ms(700));
    assert_eq!(
        (r.status().role, r.status().leader),
        (Role::Follower, Some(1))
    );
    assert_eq!(take_synced(&mut r).messages, vec![append_ok(0, 1, 2, 1)]);
}

/// §9.6: a follower with a stale log that stops hearing the leader cannot disrupt it. The
/// leader, and the follower it keeps in lease, refuse its pre-votes, so however often its timer
/// fires it never raises its own term or anyone else's.
#[test]
fn a_stale_log_cannot_disrupt_a_healthy_leader() {
    let mut leader = voter(0, 3, 1, None, &[1]);
    let term = elect_and_sync(&mut leader);
    let mut follower = voter(1, 3, term, None, &[1]);
    let mut stale = voter(2, 3, term, None, &[]);
    let mut rounds = 0;
    for t in (0..10_000).step_by(10).map(ms) {
        // The leader and the follower hear each other; the stale peer hears neither.
        leader.tick(t);
        for m in leader
            .take_ready()
            .messages
            .into_iter()
            .filter(|m| m.to == 1)
        {
            follower.step(m, t);
            for reply in take_synced(&mut follower).messages {
                leader.step(reply, t);
            }
        }
        if stale.election_deadline > t {
            continue;
        }
        stale.tick(t);
        rounds += 1;
        for m in stale.take_ready().messages {
            let peer = if m.to == 0 {
                &mut leader
            } else {
                &mut follower
            };
            peer.step(m, t);
            let ready = unreported(peer.take_ready());
            let reply = ready
                .messages
                .into_iter()
                .find(|r| r.to == 2)
                .expect("a reply");
            assert_eq!(reply, pre_vote_reply(reply.from, 2, term, false, rounds));
            stale.step(reply, t);
        }
    }
    assert!(rounds >= 10, "{rounds} pre-vote rounds");
    assert_eq!(
        (leader.status().role, leader.status().term),
        (Role::Leader, term)
    );
    assert_eq!((follower.status().term, stale.status().term), (term, term));
    // Out of lease too, the follower refuses a log behind its own.
    follower.step(pre_vote(2, 1, term + 1, (0, 0), 99), ms(20_000));
    assert_eq!(
        take_synced(&mut follower).messages,
        vec![pre_vote_reply(1, 2, term, false, 99)]
    );
}

/// §9.6, whole cluster: a follower cut off for many election timeouts does not raise its term,
/// so when it rejoins, the leader keeps its leadership and its term, and the follower catches
/// up.
#[test]
fn a_rejoining_follower_does_not_depose_the_leader() -> Result<(), Violation> {
    for seed in 0..20 {
        let mut c = Cluster::new(3, seed, Faults::reliable());
        c.run_for(ms(1_000))?;
        let leader = c.leader().expect("a leader");
        let term = c.raft(leader).status().term;
        let cut = (leader + 1) % 3;
        c.set_connected(cut, false)?;
        for i in 0..20u8 {
            c.propose(leader, vec![i])?;
            c.run_for(ms(250))?;
        }
        assert_eq!(c.raft(cut).status().term, term, "seed {seed}");
        c.set_connected(cut, true)?;
        c.run_for(ms(3_000))?;
        assert_eq!(c.leader(), Some(leader), "seed {seed}");
        assert_eq!(c.raft(leader).status().term, term, "seed {seed}");
        assert_eq!(c.peers[cut as usize].applied, 20, "seed {seed}");
    }
    Ok(())
}
