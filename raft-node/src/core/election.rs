//! Leader election (§5.2) and the election restriction (§5.4.1): RequestVote on both sides and
//! the randomized election timer.
//!
//! The election timer is reset only when (Figure 2 and the students' guide) this peer grants a
//! vote, hears from the current leader (AppendEntries, InstallSnapshot), or starts a pre-vote
//! round (`pre_vote.rs`). Resetting it on any other message (a denied RequestVote, a stale
//! AppendEntries, a pre-vote, granted or not) lets a peer with an out-of-date log keep the
//! cluster leaderless. A pre-vote from such a peer, to a peer that hears no leader, does the
//! opposite: it brings the timer forward (`pre_vote.rs`, `Raft::stand_soon`), never back.
//!
//! A (pre-)candidate asks again, every heartbeat interval, the voters that have not answered its
//! request (§5.1: servers retry RPCs that get no response in a timely manner). Without that a
//! request lost on the way costs a whole election timeout: under partial connectivity, a
//! leader that can only send keeps its followers' timers reset until CheckQuorum deposes it,
//! and two losses in the elections after it cost more than the four maximum election timeouts
//! the simulator allows (seed 13456). A repeated request also gets its relayed copy
//! (`relay.rs`) within the round: the first goes out direct, before the voter is known to be
//! out of reach. A voter that granted and is asked again grants again (its vote is already
//! for this candidate); one that refused has answered and is not asked again in the round.
//! Nor is a voter that has left this peer's requests unanswered for two heartbeat intervals
//! and that no relay reaches (`relay.rs`): another direct copy is most likely lost too (a
//! peer cut off asked all others every interval, the bulk of the lab's election traffic); the
//! next round asks it again.

use super::raft::Raft;
use super::trace::event;
use super::{Index, MessageBody, NodeId, Role, Term, Time};
use rand::Rng;

impl Raft {
    /// Arms the election timer with a fresh timeout drawn uniformly from
    /// `[election_timeout_min, election_timeout_max)` (§5.2: randomized to split votes rarely).
    pub(super) fn reset_election_timer(&mut self) {
        let (min, max) = (
            self.config.election_timeout_min,
            self.config.election_timeout_max,
        );
        let timeout = if max > min {
            self.rng.gen_range(min..max)
        } else {
            min
        };
        self.election_deadline = self.now + timeout;
    }

    /// Arms the election timer of a peer just started. One that restarted from a persisted
    /// term draws its first timeout from `[heartbeat_interval, election_timeout_min)` instead:
    /// a leader, if there is one, reaches it within a heartbeat interval (it sends every
    /// follower something at least that often), so waiting longer only prolongs an election
    /// that is due: when the whole cluster restarted, or the peer that restarted is the one
    /// that can win. An early stand is a pre-vote round, which a majority that hears a leader
    /// refuses (`pre_vote.rs`). The lab's crash tests spent most of their restarts waiting
    /// for the minimum of three ordinary timeouts (0.3–0.6 s) after every peer restarted.
    ///
    /// A peer with nothing persisted (term 0) keeps the ordinary timeout: its log is empty, so
    /// it cannot win against any peer that holds an entry (§5.4.1); a new member or a wiped
    /// disk standing early would only stir pre-votes, and a brand-new cluster elects once.
    pub(super) fn start_election_timer(&mut self) {
        let (first, min) = (
            self.config.heartbeat_interval,
            self.config.election_timeout_min,
        );
        if self.hard_state.current_term == 0 || first >= min {
            self.reset_election_timer();
        } else {
            self.election_deadline = self.now + self.rng.gen_range(first..min);
        }
    }

    /// The current leader is alive (it sent this term's AppendEntries or InstallSnapshot): no
    /// election (§5.2), and no pre-vote granted for a while (leader stickiness, §9.6).
    pub(super) fn heard_from_leader(&mut self, leader: NodeId) {
        self.leader_id = Some(leader);
        self.leader_contact = self.now;
        self.reset_election_timer();
    }

    /// §5.2: a majority would vote for this peer (`pre_vote.rs`): become a candidate of the next
    /// term and ask every peer for its vote.
    pub(super) fn campaign(&mut self) {
        self.become_candidate();
        event!(info, self, "ELECT", "starting election");
        // A sole voter has its majority already; it leads once its vote is durable.
        self.request_votes(self.other_voters());
    }

    /// Sends this (pre-)candidate's request to `voters`: a RequestVote in its term, or a
    /// PreVote of its round about the next term.
    pub(super) fn request_votes(&mut self, voters: Vec<NodeId>) {
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        let (term, body) = match self.role {
            Role::Candidate => (
                self.hard_state.current_term,
                MessageBody::RequestVote {
                    last_log_index,
                    last_log_term,
                },
            ),
            Role::PreCandidate => (
                self.hard_state.current_term + 1,
                MessageBody::PreVote {
                    last_log_index,
                    last_log_term,
                    round: self.pre_vote_round,
                },
            ),
            Role::Follower | Role::Leader => unreachable!("votes asked by a {:?}", self.role),
        };
        for peer in voters {
            self.send_in(term, peer, body.clone());
        }
    }

    /// A new round of requests: only this peer has answered it, the others are asked again in
    /// a heartbeat interval.
    pub(super) fn start_vote_retry(&mut self) {
        self.answered = vec![false; self.config.members as usize];
        self.answered[self.config.id as usize] = true;
        self.vote_retry_at = self.now + self.config.heartbeat_interval;
    }

    /// No round under way (a follower or a leader).
    pub(super) fn stop_vote_retry(&mut self) {
        self.answered.clear();
        self.vote_retry_at = Time::MAX;
    }

    /// Records that `from` answered this round's request (a grant or a refusal): a pre-vote
    /// reply naming the current round, or a vote reply in the candidate's term.
    pub(super) fn note_vote_answer(&mut self, from: NodeId, term: Term, body: &MessageBody) {
        let answers = match (self.role, body) {
            (Role::PreCandidate, MessageBody::PreVoteReply { round, .. }) => {
                *round == self.pre_vote_round
            }
            (Role::Candidate, MessageBody::RequestVoteReply { .. }) => {
                term == self.hard_state.current_term
            }
            _ => false,
        };
        if answers {
            self.answered[from as usize] = true;
        }
    }

    /// (Pre-)candidate timer: the voters that have not answered are asked again.
    pub(super) fn tick_vote_retry(&mut self) {
        if self.now < self.vote_retry_at {
            return;
        }
        self.vote_retry_at = self.now + self.config.heartbeat_interval;
        let silent: Vec<NodeId> = self
            .other_voters()
            .into_iter()
            .filter(|&p| !self.answered[p as usize] && self.worth_asking_again(p))
            .collect();
        if !silent.is_empty() {
            event!(debug, self, "ELECT", "asking {silent:?} again");
            self.request_votes(silent);
        }
    }

    /// Figure 2, RequestVote receiver (the term checks are done by `step`): grant if this peer
    /// has not voted for someone else in this term and the candidate's log is at least as
    /// up-to-date as its own. The vote is durable before the reply leaves (same `Ready`).
    pub(super) fn handle_request_vote(
        &mut self,
        candidate: NodeId,
        last_log_index: Index,
        last_log_term: Term,
    ) {
        let free = self
            .hard_state
            .voted_for
            .is_none_or(|voted| voted == candidate);
        let up_to_date = self.is_up_to_date(last_log_index, last_log_term);
        let vote_granted = free && up_to_date;
        if vote_granted {
            self.hard_state.voted_for = Some(candidate);
            self.granted_at = Some(self.now);
            self.reset_election_timer();
            event!(info, self, "VOTE", "granted to n{candidate}");
        } else {
            event!(
                info,
                self,
                "VOTE",
                "denied to n{candidate}: voted_for={:?}, candidate log ({last_log_term}, \
                 {last_log_index}) vs mine ({}, {})",
                self.hard_state.voted_for,
                self.log.last_term(),
                self.log.last_index()
            );
        }
        self.send(candidate, MessageBody::RequestVoteReply { vote_granted });
    }

    /// §5.4.1: a log ending in a later term is more up-to-date; with equal last terms, the
    /// longer log is.
    pub(super) fn is_up_to_date(&self, last_log_index: Index, last_log_term: Term) -> bool {
        (last_log_term, last_log_index) >= (self.log.last_term(), self.log.last_index())
    }

    /// A vote reply in this peer's own term: a majority of grants wins the election (§5.2).
    /// Duplicated grants are counted once (votes are kept per peer).
    ///
    /// The reply may reach a pre-candidate whose election timer fired while it stood as
    /// candidate in this same term (on the lab's long-reordering network a third of round trips
    /// take 200 ms to 2.2 s, longer than an election timeout). It still counts: this peer is in
    /// the term it stood in, voted for itself there and changed no log entry since, and each
    /// voter grants one vote per term, so a majority for it is a majority for no one else and
    /// it is that term's only leader (Election Safety, §5.2). Ignoring such votes left five
    /// peers on that network without a leader for over 10 s in about 1 % of the simulator's runs.
    pub(super) fn handle_vote_reply(&mut self, from: NodeId, vote_granted: bool) {
        if !vote_granted {
            return;
        }
        match self.role {
            Role::Candidate => self.votes[from as usize] = true,
            Role::PreCandidate => self.term_votes[from as usize] = true,
            Role::Follower | Role::Leader => unreachable!("a vote counted by a {:?}", self.role),
        }
        event!(debug, self, "VOTE", "n{from} voted for me");
        self.maybe_become_leader();
    }

    /// A candidate with a majority of votes leads (§5.2), once its own term and vote are
    /// durable. With other voters that is always so by the time their votes arrive (its
    /// RequestVotes left after the persist), but the sole voter of a configuration has its
    /// majority at once: leading before its sync, it could crash, restart in the older term and
    /// lead the same term again with another log (found by the simulator, seeds 201 and 3015).
    /// A pre-candidate leads the term it stood in once its late votes make a majority.
    pub(super) fn maybe_become_leader(&mut self) {
        if self.durable_term != self.hard_state.current_term {
            return;
        }
        match self.role {
            Role::Candidate if self.won_votes() => self.become_leader(),
            Role::PreCandidate
                if !self.term_votes.is_empty()
                    && self
                        .membership
                        .has_quorum(|id| self.term_votes[id as usize]) =>
            {
                event!(
                    info,
                    self,
                    "ELECT",
                    "won t{} with votes that came after my election timer fired",
                    self.hard_state.current_term
                );
                self.votes = std::mem::take(&mut self.term_votes);
                self.role = Role::Candidate;
                self.become_leader();
            }
            _ => {}
        }
    }

    /// Whether the (pre-)votes granted are a majority of the configuration's voters.
    pub(super) fn won_votes(&self) -> bool {
        self.membership.has_quorum(|id| self.votes[id as usize])
    }
}
