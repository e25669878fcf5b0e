//! Pre-Vote with leader stickiness (Raft thesis §9.6; etcd's PreVote).
//!
//! Why: in plain Raft a peer that stops hearing the leader (cut off, or its heartbeats delayed
//! past its election timeout) starts an election in a higher term, and every peer that receives
//! its RequestVote adopts that term, the leader included, which steps down (§5.1). That happens
//! even when the candidate cannot win because its log is behind (§5.4.1). On the lab's
//! long-reordering network, peers with stale logs did this several times a second, and kept
//! deposing the only peers that could win.
//!
//! So when its election timer fires, a peer first becomes a pre-candidate: it asks every peer
//! whether it would get its vote in the next term, and changes neither its term nor its vote.
//! A peer grants the pre-vote iff that term is newer than its own, the sender's log is at least
//! as up-to-date as its own (§5.4.1), and it is not in a leader lease, meaning it has not heard
//! from a current leader within the minimum election timeout (nor, within it, granted its vote
//! to another candidate, which it expects to have won). This last condition is leader
//! stickiness: a leader that is still heard from has no need to be replaced. The lease does not
//! hold against the leader itself: a leader never pre-votes, so one that asks has stopped
//! leading (it restarted, or CheckQuorum deposed it), and its followers' leases, kept alive by
//! its AppendEntries still on their way, guard nothing. Only with a
//! majority of grants (its own included) does the pre-candidate start the real election (§5.2).
//! If its timer fires first, it asks again in a new round. Replies name the round they answer,
//! so a grant that arrives late from an earlier round is not counted. A peer still in term 0
//! skips the round (its election cannot depose anyone: [`Raft::pre_campaign`]).
//!
//! A pre-vote and a grant are not evidence that a newer term exists (their term is one that no
//! peer has entered), so Figure 2's rule "a higher term makes you a follower" does not apply to
//! them. It does apply to a refusal that carries a newer term: the pre-candidate is behind.
//!
//! A follower that hears no leader and refuses a pre-vote because the asker's log is behind its
//! own brings its own election timer forward ([`Raft::stand_soon`]): an election is due, the
//! asker cannot win it, and this peer might.
//!
//! Safety: a pre-vote changes no Raft state on either side. No term, vote or log changes,
//! nothing is persisted, and the receiver's election timer is left alone or brought forward
//! (timing, on which no safety argument rests). Pre-voting only decides whether, and at most
//! how soon, a peer starts an election. An election that is never started, or a pre-vote
//! that is refused or ignored, looks to the rest of the cluster exactly like messages that were
//! lost, and Raft tolerates lost messages. So Election Safety, Log Matching, Leader Completeness
//! and State Machine Safety hold as proven for Figure 2. Pre-Vote changes only liveness: a peer
//! that no majority would vote for can no longer force elections it cannot win.

use super::raft::Raft;
use super::trace::event;
use super::{Index, MessageBody, NodeId, Role, Term, Time};
use rand::Rng;

impl Raft {
    /// The election timer fired: a new pre-vote round, asking every peer about the term after
    /// this peer's own.
    pub(super) fn pre_campaign(&mut self) {
        if !self.may_campaign() {
            // A learner, or a peer that knows it was removed (§4.2.3).
            self.reset_election_timer();
            return;
        }
        if self.hard_state.current_term == 0 {
            // Nothing to protect: every leader leads a term of at least 1, and a RequestVote
            // for term 1 raises no peer past term 1, so it deposes no one (a term-1 leader's
            // voters refuse it, §5.2). The pre-vote round would cost a round trip and a message
            // per peer at every cluster's first election, and buy nothing.
            event!(info, self, "ELECT", "timeout in term 0: no pre-vote needed");
            return self.campaign();
        }
        self.become_pre_candidate();
        event!(
            info,
            self,
            "ELECT",
            "timeout, pre-vote round {}",
            self.pre_vote_round
        );
        if self.won_votes() {
            // A one-member cluster is its own majority.
            return self.campaign();
        }
        self.request_votes(self.other_voters());
    }

    /// A pre-vote for `term`: granted iff `term` is newer than this peer's, the sender's log is at
    /// least as up-to-date (§5.4.1) and no current leader is heard from. Granting changes
    /// nothing here.
    pub(super) fn handle_pre_vote(
        &mut self,
        from: NodeId,
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
        round: u64,
    ) {
        let current_term = self.hard_state.current_term;
        let newer = term > current_term;
        let up_to_date = self.is_up_to_date(last_log_index, last_log_term);
        let in_lease = (self.in_leader_lease() && self.leader_id != Some(from))
            || self.awaits_its_candidate(from, term);
        let vote_granted = newer && up_to_date && !in_lease;
        event!(
            debug,
            self,
            "VOTE",
            "pre-vote for t{term} {} to n{from}: newer={newer} up_to_date={up_to_date} \
             in_lease={in_lease}",
            if vote_granted { "granted" } else { "refused" }
        );
        if !up_to_date && !in_lease {
            self.stand_soon(from);
        }
        // A refusal carries this peer's term, so a pre-candidate that is behind catches up.
        let reply_term = if vote_granted { term } else { current_term };
        self.send_in(
            reply_term,
            from,
            MessageBody::PreVoteReply {
                vote_granted,
                round,
            },
        );
    }

    /// A peer whose log is behind this one's asked for an election while this peer hears no
    /// leader: an election is due, the asker cannot win it (§5.4.1 refuses it the votes of every
    /// peer as up-to-date as this one), and this peer might. Waiting out its own timer would
    /// leave the cluster leaderless for up to a maximum election timeout more (the lab's
    /// TestPersist22C: a restarted peer, the only one holding the last entry, waited 0.4–0.6 s
    /// for its timer while the two behind it asked in vain). So it brings its timer forward to
    /// a random point within half the timeout's spread: the peers that the same request woke
    /// seldom stand at the same moment. Only ever earlier, never later, so a peer with an
    /// out-of-date log can hasten an election but never put one off (`election.rs`); and what
    /// it starts is a pre-vote round, which a majority that hears a leader refuses.
    ///
    /// Only a follower: a peer that stood already, and failed, waits for its timer. Otherwise
    /// every round of a peer behind it hastens its next, and the most up-to-date peer of a
    /// cluster that cannot elect (TestFigure8Unreliable2C's long reordering, a majority cut
    /// off) asks as often as all the others together: 30–40% more pre-vote rounds there.
    fn stand_soon(&mut self, asker: NodeId) {
        if self.role != Role::Follower || !self.may_campaign() {
            return;
        }
        let spread = (self.config.election_timeout_max - self.config.election_timeout_min) / 2;
        let delay = if spread.is_zero() {
            spread
        } else {
            self.rng.gen_range(Time::ZERO..spread)
        };
        if self.now + delay < self.election_deadline {
            self.election_deadline = self.now + delay;
            event!(
                info,
                self,
                "ELECT",
                "n{asker} asks for an election with a log behind mine and I hear no leader: \
                 standing in {}ms",
                delay.as_millis()
            );
        }
    }

    /// A pre-vote granted for `term`. It counts only if it answers this pre-candidate's current
    /// round. A round is asked about the term after the current one, so a grant for another
    /// term comes from an earlier round, and the round number also tells apart earlier rounds
    /// that asked about the same term. A majority starts the real election (§5.2).
    pub(super) fn handle_pre_vote_grant(&mut self, from: NodeId, term: Term, round: u64) {
        let current = self.role == Role::PreCandidate
            && term == self.hard_state.current_term + 1
            && round == self.pre_vote_round;
        if !current {
            event!(
                trace,
                self,
                "VOTE",
                "ignoring pre-vote grant for t{term} round {round} from n{from}"
            );
            return;
        }
        self.votes[from as usize] = true;
        event!(debug, self, "VOTE", "n{from} granted my pre-vote");
        if self.won_votes() {
            self.campaign();
        }
    }

    /// The same stickiness for a leader not heard from yet: a peer that granted its vote in
    /// the current term to another candidate within the minimum election timeout refuses a
    /// pre-vote for the next term from anyone else, expecting its candidate to have won. A
    /// quick election's voters get the new leader's first AppendEntries only at its first
    /// heartbeat (`Raft::voters_wait_a_heartbeat`), and meanwhile, knowing no leader, they
    /// granted a pre-candidate that stood just then the next term (the constrained election
    /// on real processes: the new leader deposed 56 ms after it won). Its own candidate is not
    /// refused: if it lost, its next round needs the vote.
    fn awaits_its_candidate(&self, from: NodeId, term: Term) -> bool {
        let current = self.hard_state.current_term;
        self.hard_state
            .voted_for
            .is_some_and(|c| c != from && c != self.config.id)
            && term == current + 1
            && self
                .granted_at
                .is_some_and(|at| self.now < at + self.config.election_timeout_min)
    }

    /// Leader stickiness (§9.6): a peer that heard from the current leader less than the
    /// minimum election timeout ago knows that leader is alive, and that a peer wanting to
    /// replace it is more likely cut off than right. A leader is in its own lease.
    fn in_leader_lease(&self) -> bool {
        match self.role {
            Role::Leader => true,
            Role::Follower | Role::PreCandidate | Role::Candidate => {
                self.leader_id.is_some()
                    && self.now < self.leader_contact + self.config.election_timeout_min
            }
        }
    }
}
