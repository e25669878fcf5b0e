//! Leader election: §5.1 (terms), §5.2 (election, timers), §5.4.1 (election restriction).

use super::helpers::*;
use crate::core::{Config, HardState, MessageBody, Persist, Raft, Role};

fn hard_state(current_term: u64, voted_for: Option<u32>) -> Option<Persist> {
    Some(Persist {
        hard_state: Some(HardState {
            current_term,
            voted_for,
        }),
        ..Persist::default()
    })
}

/// §5.2: a follower that hears nothing for its election timeout (and then wins its pre-vote,
/// §9.6) becomes a candidate of the next term, votes for itself (persisted) and asks every peer
/// for its vote with its last log entry.
#[test]
fn follower_times_out_and_campaigns() {
    let mut r = node(0, 3, 2, &[1, 2]);
    let deadline = r.election_deadline;
    assert!(deadline >= HEARTBEAT && deadline < ELECTION_MIN);

    r.tick(deadline - ms(1));
    let ready = take_synced(&mut r);
    assert!(ready.persist.is_none() && ready.messages.is_empty());
    assert_eq!(r.status().role, Role::Follower);

    let ready = campaign(&mut r);
    assert_eq!(r.status().role, Role::Candidate);
    assert_eq!(r.status().term, 3);
    assert_eq!(ready.persist, hard_state(3, Some(0)));
    assert_eq!(
        ready.messages,
        vec![request_vote(0, 1, 3, (2, 2)), request_vote(0, 2, 3, (2, 2)),]
    );
}

/// §5.2: election timeouts are random in [min, max), per peer (seeded) and per election.
#[test]
fn election_timeouts_are_randomized() {
    let mut deadlines: Vec<_> = (0..10)
        .map(|id| node(id, 10, 0, &[]).election_deadline)
        .collect();
    let mut r = node(0, 3, 0, &[]);
    for _ in 0..10 {
        let start = r.election_deadline;
        time_out(&mut r);
        deadlines.push(r.election_deadline - start);
    }
    assert!(deadlines
        .iter()
        .all(|&d| d >= ELECTION_MIN && d < ELECTION_MAX));
    deadlines.sort();
    deadlines.dedup();
    assert!(deadlines.len() > 15, "timeouts repeat: {deadlines:?}");
}

/// A peer restarted from a persisted term stands after a timeout drawn from
/// [heartbeat interval, minimum election timeout): a leader would have reached it by then. A
/// peer with nothing persisted waits an ordinary timeout, and so does every later timer.
#[test]
fn a_restarted_peer_stands_after_a_heartbeat_interval_a_new_one_waits_the_ordinary_timeout() {
    let seeds = 0..20;
    let restarted: Vec<_> = (seeds.clone())
        .map(|seed| {
            let config = Config {
                seed,
                ..config(0, 3)
            };
            Raft::new(config, restored(2, &[1, 2]), ms(0)).election_deadline
        })
        .collect();
    assert!(
        restarted
            .iter()
            .all(|&d| d >= HEARTBEAT && d < ELECTION_MIN),
        "{restarted:?}"
    );
    let spread = *restarted.iter().max().unwrap() - *restarted.iter().min().unwrap();
    assert!(spread > (ELECTION_MIN - HEARTBEAT) / 2, "{restarted:?}");
    for seed in seeds {
        let config = Config {
            seed,
            ..config(0, 3)
        };
        let r = Raft::new(config, restored(0, &[]), ms(0));
        assert!(r.election_deadline >= ELECTION_MIN && r.election_deadline < ELECTION_MAX);
        let mut r = node(seed as u32 % 3, 3, 2, &[1, 2]);
        let start = r.election_deadline;
        time_out(&mut r);
        let next = r.election_deadline - start;
        assert!(next >= ELECTION_MIN && next < ELECTION_MAX, "{next:?}");
    }

    // One that hears the leader before its timer fires waits an ordinary timeout from then.
    let mut r = node(1, 3, 2, &[1, 2]);
    let heard = r.election_deadline - ms(1);
    r.step(append(0, 1, 2, (2, 2), vec![], 2), heard);
    take_synced(&mut r);
    assert!(r.election_deadline >= heard + ELECTION_MIN);
}

/// §5.2: a candidate of the same seed draws the same timeouts (the core's only randomness).
#[test]
fn election_timeouts_are_deterministic_per_seed() {
    let run = || {
        let mut r = node(1, 3, 0, &[]);
        (0..5)
            .map(|_| {
                time_out(&mut r);
                r.election_deadline
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

/// §5.2: a candidate wins with votes from a majority of the full cluster (itself included);
/// a duplicated grant is one vote and a denial is none.
#[test]
fn candidate_needs_a_majority_of_distinct_grants() {
    let mut r = node(0, 5, 0, &[]);
    campaign(&mut r);
    r.step(vote_reply(1, 0, 1, true), ms(0));
    r.step(vote_reply(1, 0, 1, true), ms(0));
    r.step(vote_reply(2, 0, 1, false), ms(0));
    assert_eq!(r.status().role, Role::Candidate);
    r.step(vote_reply(3, 0, 1, true), ms(0));
    assert_eq!(r.status().role, Role::Leader);
    assert_eq!(r.status().leader, Some(0));
}

/// §5.2 with delayed replies: a candidate whose election timer fired is a pre-candidate again in
/// the same term (§9.6), and the votes of the election it held in that term still count. A
/// majority of them makes it leader of that term, not of the next.
#[test]
fn votes_that_arrive_after_the_election_timer_still_win_the_term() {
    let mut r = node(0, 5, 0, &[]);
    campaign(&mut r);
    r.step(vote_reply(1, 0, 1, true), ms(0));
    let ready = time_out(&mut r);
    assert_eq!((r.status().role, r.status().term), (Role::PreCandidate, 1));
    assert!(ready
        .messages
        .iter()
        .all(|m| matches!(m.body, MessageBody::PreVote { .. })));
    let late = r.election_deadline - ELECTION_MIN;
    r.step(vote_reply(2, 0, 1, true), late);
    assert_eq!(r.status().role, Role::Leader);
    assert_eq!((r.status().term, r.status().leader), (1, Some(0)));
}

/// Late votes count only in the term they were cast for: once the pre-candidate stands again
/// (a new term), or hears the term's leader, the old election's votes are gone.
#[test]
fn late_votes_of_an_earlier_election_do_not_count_in_the_next_or_after_a_leader() {
    let mut r = node(0, 5, 0, &[]);
    campaign(&mut r);
    r.step(vote_reply(1, 0, 1, true), ms(0));
    r.step(vote_reply(2, 0, 1, true), ms(0));
    assert_eq!(r.status().role, Role::Leader);

    // Stood in term 2 with one vote, timed out, then stood in term 3: term 2's votes are late
    // and from an older term, and term 3 starts from its own vote alone.
    let mut r = node(0, 5, 1, &[]);
    campaign(&mut r);
    r.step(vote_reply(1, 0, 2, true), ms(0));
    campaign(&mut r);
    assert_eq!((r.status().role, r.status().term), (Role::Candidate, 3));
    r.step(vote_reply(2, 0, 2, true), ms(0));
    r.step(vote_reply(3, 0, 3, true), ms(0));
    assert_eq!(r.status().role, Role::Candidate);

    // Stood in term 2, then heard term 2's leader: a follower counts no votes.
    let mut r = node(0, 5, 1, &[]);
    campaign(&mut r);
    r.step(vote_reply(1, 0, 2, true), ms(0));
    time_out(&mut r);
    r.step(append(4, 0, 2, (0, 0), vec![], 0), ms(0));
    assert_eq!(r.status().role, Role::Follower);
    r.step(vote_reply(2, 0, 2, true), ms(0));
    r.step(vote_reply(3, 0, 2, true), ms(0));
    assert_eq!(
        (r.status().role, r.status().leader),
        (Role::Follower, Some(4))
    );
}

/// §5.2: a new leader sends an initial empty AppendEntries to every peer. It appends no no-op
/// entry (the lab asserts exact indices), so its log is unchanged.
#[test]
fn new_leader_sends_empty_append_entries_and_no_noop() {
    let mut r = node(0, 3, 1, &[1, 1]);
    let ready = elect(&mut r);
    assert_eq!(ready.persist, None);
    assert_eq!(
        ready.messages,
        vec![
            append(0, 1, 2, (2, 1), vec![], 0),
            append(0, 2, 2, (2, 1), vec![], 0),
        ]
    );
    assert_eq!(r.status().last_log_index, 2);
}

/// A quick election (won within half a heartbeat interval of standing): the voters that granted
/// reset their election timers when they did, so their first AppendEntries waits for the
/// heartbeat timer, one message fewer per election; a peer that has not voted for the leader
/// is told at once. A slow one (`new_leader_sends_empty_append_entries_and_no_noop`) tells
/// everyone at once.
#[test]
fn quick_election_defers_the_voters_first_heartbeat() {
    let mut r = node(0, 5, 1, &[1, 1]);
    campaign(&mut r);
    let stood = r.stood_at;
    let won = stood + ms(10);
    r.step(vote_reply(1, 0, 2, true), won);
    r.step(vote_reply(2, 0, 2, true), won);
    assert_eq!(r.status().role, Role::Leader);
    assert_eq!(
        take_synced(&mut r).messages,
        vec![
            append(0, 3, 2, (2, 1), vec![], 0),
            append(0, 4, 2, (2, 1), vec![], 0),
        ]
    );
    r.tick(won + HEARTBEAT - ms(1));
    assert!(take_synced(&mut r).messages.is_empty());
    // Due one interval after winning: well before the voters' timers, armed at `stood` or
    // later, can fire.
    assert!(won + HEARTBEAT < stood + ELECTION_MIN);
    r.tick(won + HEARTBEAT);
    assert_eq!(
        take_synced(&mut r).messages,
        (1..5)
            .map(|p| append(0, p, 2, (2, 1), vec![], 0))
            .collect::<Vec<_>>()
    );
}

/// §5.2: at most one vote per term, first come first served; the vote is persisted in the same
/// `Ready` as the reply (so before it is sent). A repeated request from the same candidate is
/// granted again.
#[test]
fn one_vote_per_term_persisted_before_the_reply() {
    let mut r = node(0, 3, 1, &[]);
    r.step(request_vote(1, 0, 2, (0, 0)), ms(10));
    let ready = take_synced(&mut r);
    assert_eq!(ready.persist, hard_state(2, Some(1)));
    assert_eq!(ready.messages, vec![vote_reply(0, 1, 2, true)]);

    r.step(request_vote(2, 0, 2, (0, 0)), ms(20));
    let ready = take_synced(&mut r);
    assert_eq!(ready.persist, None);
    assert_eq!(ready.messages, vec![vote_reply(0, 2, 2, false)]);

    r.step(request_vote(1, 0, 2, (0, 0)), ms(30));
    let ready = take_synced(&mut r);
    assert_eq!(ready.persist, None);
    assert_eq!(ready.messages, vec![vote_reply(0, 1, 2, true)]);
}

/// §5.4.1: a vote goes only to a candidate whose log is at least as up-to-date: a later last
/// term wins; with equal last terms the longer log wins.
#[test]
fn vote_only_for_an_up_to_date_log() {
    // The voter's log ends at index 3, term 2.
    let cases = [
        ((5, 1), false), // longer but older last term
        ((2, 2), false), // same last term, shorter
        ((3, 2), true),  // identical
        ((4, 2), true),  // same last term, longer
        ((1, 3), true),  // later last term, shorter
        ((0, 0), false), // empty
    ];
    for (last, granted) in cases {
        let mut r = node(0, 3, 2, &[1, 1, 2]);
        r.step(request_vote(1, 0, 3, last), ms(0));
        let ready = take_synced(&mut r);
        assert_eq!(
            ready.messages,
            vec![vote_reply(0, 1, 3, granted)],
            "candidate last {last:?}"
        );
        let voted_for = granted.then_some(1);
        assert_eq!(
            ready.persist,
            hard_state(3, voted_for),
            "candidate {last:?}"
        );
    }
}

/// §5.1, Figure 2: a request from an older term is answered "false" with the current term
/// and changes nothing (not even the election timer).
#[test]
fn stale_term_requests_are_refused() {
    let mut r = node(0, 3, 3, &[1]);
    let deadline = r.election_deadline;
    r.step(request_vote(1, 0, 2, (9, 2)), ms(5));
    r.step(append(2, 0, 2, (1, 1), vec![entry(2, 2)], 2), ms(5));
    let ready = take_synced(&mut r);
    assert_eq!(ready.persist, None);
    assert_eq!(
        ready.messages,
        vec![
            vote_reply(0, 1, 3, false),
            in_epoch(append_reject(0, 2, 3, 0, (None, 0)), 0),
        ]
    );
    assert_eq!(r.election_deadline, deadline);
    assert_eq!(r.status().last_log_index, 1);
    assert_eq!(r.status().leader, None);
}

/// §5.1: any message from a higher term makes a leader or candidate a follower of that term,
/// with no vote cast in it.
#[test]
fn higher_term_makes_leaders_and_candidates_followers() {
    let mut leader = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut leader);
    leader.step(append_ok(1, 0, term + 1, 0), ms(0));
    assert_eq!(leader.status().role, Role::Follower);
    assert_eq!(leader.status().term, term + 1);
    assert_eq!(take_synced(&mut leader).persist, hard_state(term + 1, None));

    let mut candidate = node(0, 3, 0, &[]);
    campaign(&mut candidate);
    candidate.step(vote_reply(1, 0, 5, false), ms(0));
    assert_eq!(candidate.status().role, Role::Follower);
    assert_eq!(candidate.take_ready().persist, hard_state(5, None));
}

/// §5.2: a candidate that receives AppendEntries from a leader of its own term steps down and
/// accepts it.
#[test]
fn candidate_yields_to_a_leader_of_its_term() {
    let mut r = node(0, 3, 0, &[]);
    campaign(&mut r);
    r.step(append(1, 0, 1, (0, 0), vec![entry(1, 1)], 0), ms(0));
    assert_eq!(r.status().role, Role::Follower);
    assert_eq!(r.status().leader, Some(1));
    assert_eq!(take_synced(&mut r).messages, vec![append_ok(0, 1, 1, 1)]);
}

/// §5.2 and the students' guide: the election timer restarts when a vote is granted or the
/// current leader is heard from — not on a denied vote, nor on a stale AppendEntries.
#[test]
fn election_timer_resets_only_on_grant_or_leader_contact() {
    let mut r = node(0, 3, 2, &[1, 2]);
    let deadline = r.election_deadline;

    // A denied vote (the candidate's log is behind) in a newer term: the term is adopted,
    // the timer keeps running.
    r.step(request_vote(1, 0, 3, (1, 1)), ms(100));
    assert_eq!(r.status().term, 3);
    assert_eq!(r.election_deadline, deadline);

    r.step(append(2, 0, 2, (2, 2), vec![], 2), ms(150));
    assert_eq!(r.election_deadline, deadline);

    r.step(request_vote(2, 0, 3, (2, 2)), ms(200));
    assert!(r.election_deadline >= ms(200) + ELECTION_MIN);

    let now = r.election_deadline - ms(1);
    r.step(append(2, 0, 3, (2, 2), vec![], 2), now);
    assert!(r.election_deadline >= now + ELECTION_MIN);
    assert_eq!(r.status().role, Role::Follower);
}

/// §5.2: a candidate whose election times out (split vote) starts a new one in the next term,
/// after a new pre-vote (§9.6).
#[test]
fn candidate_restarts_election_on_timeout() {
    let mut r = node(2, 3, 4, &[]);
    campaign(&mut r);
    let ready = time_out(&mut r);
    assert_eq!(r.status().role, Role::PreCandidate);
    assert_eq!(
        ready.messages,
        vec![pre_vote(2, 0, 6, (0, 0), 2), pre_vote(2, 1, 6, (0, 0), 2)]
    );
    r.step(
        pre_vote_reply(0, 2, 6, true, 2),
        r.election_deadline - ELECTION_MIN,
    );
    let ready = take_synced(&mut r);
    assert_eq!(r.status().role, Role::Candidate);
    assert_eq!(r.status().term, 6);
    assert_eq!(ready.persist, hard_state(6, Some(2)));
    assert_eq!(
        ready.messages,
        vec![request_vote(2, 0, 6, (0, 0)), request_vote(2, 1, 6, (0, 0))]
    );
}

/// §5.2: leaders do not time out; their timer sends heartbeats instead.
#[test]
fn leader_heartbeats_instead_of_campaigning() {
    let mut r = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut r);
    // Past any follower's election timeout (CheckQuorum has not yet missed the followers).
    r.tick(r.now + ELECTION_MAX - ms(1));
    let ready = take_synced(&mut r);
    assert_eq!(r.status().role, Role::Leader);
    assert_eq!(r.status().term, term);
    assert!(ready
        .messages
        .iter()
        .all(|m| matches!(m.body, MessageBody::AppendEntries { .. })));
    assert_eq!(ready.messages.len(), 2);
}

/// A deposed leader arms a fresh election timer rather than campaigning at once on a deadline
/// that expired while it led (which would disrupt the new leader).
#[test]
fn deposed_leader_restarts_its_election_timer() {
    let mut r = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut r);
    r.step(append_ok(2, 0, term + 1, 0), ms(5_000));
    assert_eq!(r.status().role, Role::Follower);
    assert!(r.election_deadline >= ms(5_000) + ELECTION_MIN);
    r.tick(ms(5_000) + ELECTION_MIN - ms(1));
    assert_eq!(r.status().role, Role::Follower);
}

/// §5.2: a one-member cluster is its own majority: it elects itself and commits alone.
#[test]
fn single_member_cluster_leads_and_commits_alone() {
    let mut r = Raft::new(config(0, 1), Default::default(), ms(0));
    time_out(&mut r);
    assert_eq!(r.status().role, Role::Leader);
    assert_eq!(r.propose(b"x".to_vec(), ms(700)), Ok((1, 1)));
    let ready = take_synced(&mut r);
    assert!(ready.messages.is_empty());
    assert_eq!(ready.persist.map(|p| p.append.len()), Some(1));
    // Committed once its own copy is durable (the sync `take_synced` reports), not before.
    assert!(ready.apply.is_empty());
    assert_eq!(r.status().commit_index, 1);
    assert_eq!(take_synced(&mut r).apply.len(), 1);
}

/// §5.1: a pre-candidate, then a candidate, asks again every heartbeat interval the voters that
/// have not answered its request (a lost request would otherwise cost a whole election
/// timeout); a voter that answered, granting or refusing, is not asked again in that round, nor
/// is one silent for two heartbeat intervals that no relay reaches.
#[test]
fn unanswered_voters_are_asked_again_every_heartbeat() {
    let mut r = node(0, 5, 2, &[1, 2]);
    let t0 = r.election_deadline;
    time_out(&mut r);
    assert_eq!(r.status().role, Role::PreCandidate);
    r.step(pre_vote_reply(1, 0, 2, false, 1), t0 + ms(5));
    r.step(pre_vote_reply(2, 0, 3, true, 1), t0 + ms(6));
    r.tick(t0 + HEARTBEAT - ms(1));
    assert!(take_synced(&mut r).messages.is_empty());
    assert_eq!(r.next_deadline(), t0 + HEARTBEAT);
    r.tick(t0 + HEARTBEAT);
    assert_eq!(
        unreported(take_synced(&mut r)).messages,
        vec![pre_vote(0, 3, 3, (2, 2), 1), pre_vote(0, 4, 3, (2, 2), 1)]
    );
    // A grant from the repeated request completes the majority: a real election.
    let t1 = t0 + HEARTBEAT + ms(3);
    r.step(pre_vote_reply(3, 0, 3, true, 1), t1);
    assert_eq!(r.status().role, Role::Candidate);
    take_synced(&mut r);
    r.step(vote_reply(1, 0, 3, false), t1 + ms(2));
    r.tick(t1 + HEARTBEAT);
    // n4 has not answered since the pre-vote at t0, two heartbeat intervals ago, and no peer
    // reports hearing it: another direct copy would most likely be lost too.
    assert_eq!(
        unreported(take_synced(&mut r)).messages,
        vec![request_vote(0, 2, 3, (2, 2)), request_vote(0, 3, 3, (2, 2))]
    );
    // Elected: no more requests.
    r.step(vote_reply(2, 0, 3, true), t1 + HEARTBEAT + ms(1));
    r.step(vote_reply(4, 0, 3, true), t1 + HEARTBEAT + ms(1));
    assert_eq!(r.status().role, Role::Leader);
    let ready = take_synced(&mut r);
    assert!(ready
        .messages
        .iter()
        .all(|m| matches!(m.body, MessageBody::AppendEntries { .. })));
}
