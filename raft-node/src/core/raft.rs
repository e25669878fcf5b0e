//! One Raft peer: its state (Figure 2), the inputs that drive it, and its role transitions.
//!
//! `step` applies Figure 2's rule for all servers first (a message from a higher term makes this
//! peer a follower of that term; one from a lower term is answered "no" or dropped), then
//! dispatches on the role. Pre-votes and their grants are exempt from that rule (`pre_vote.rs`).
//! The handlers live with their concern: `election.rs` (RequestVote, timers), `pre_vote.rs`
//! (Pre-Vote, §9.6), `replication.rs` (AppendEntries, flow control, commit), `snapshot.rs`
//! (the service's snapshots, InstallSnapshot) and `read_index.rs` (reads, §6.4).
//!
//! Outgoing AppendEntries are not built inside `step`/`propose`: those only update state, and
//! `take_ready` builds at most one batch per follower (plus pipelined batches) from whatever
//! accumulated, so a burst of proposals handled in one event-loop iteration goes out together.

use super::log::{RaftLog, ENTRY_OVERHEAD};
use super::progress::Progress;
use super::read_index::Reads;
use super::relay::Reach;
use super::snapshot::PendingSnapshot;
use super::trace::{event, topic};
use super::transfer::Transfer;
use super::{
    Apply, Config, Entry, HardState, Index, LogMark, Membership, Message, MessageBody, NodeId,
    Persist, ProposeError, Ready, Restored, Role, Status, Term, Time,
};
use rand::rngs::SmallRng;
use rand::SeedableRng;

/// One Raft peer, IO-free. See the module docs of `core` for how the runtime drives it.
pub struct Raft {
    pub(super) config: Config,
    /// Figure 2 persistent state: `current_term`, `voted_for`.
    pub(crate) hard_state: HardState,
    /// The hard state as last handed to the runtime in `Ready::persist`.
    persisted_hard_state: HardState,
    /// The highest current term the runtime reported durable (`Raft::persisted`): a
    /// candidate leads only once its term is (`maybe_become_leader`).
    pub(super) durable_term: Term,
    /// Figure 2 persistent state: `log[]`, and the snapshot that replaces its prefix (§7).
    pub(crate) log: RaftLog,
    /// The latest configuration in the log (committed or not) and the index of its entry
    /// (`reconfigure.rs`).
    pub(super) membership: Membership,
    pub(super) membership_index: Index,
    /// Figure 2: highest index known to be committed.
    /// Invariant: `log.snapshot_index() <= last_applied <= commit_index <= log.last_index()`.
    pub(super) commit_index: Index,
    /// Figure 2: highest index handed to the state machine (in `Ready::apply`), or about to be:
    /// an installed snapshot counts from the moment it is installed.
    pub(super) last_applied: Index,
    /// An installed snapshot goes to the state machine at the next `take_ready`, ahead of the
    /// entries after it.
    pub(super) apply_snapshot: bool,
    /// Follower: the snapshot being received in chunks (Figure 13).
    pub(super) pending_snapshot: Option<PendingSnapshot>,
    pub(super) role: Role,
    /// The leader of `current_term`, once known.
    pub(super) leader_id: Option<NodeId>,
    /// When `leader_id` was last heard from (its lease, §9.6).
    pub(super) leader_contact: Time,
    /// When this peer last granted its vote to another peer (volatile): until the candidate's
    /// first AppendEntries, it refuses other pre-candidates a while (`pre_vote.rs`).
    pub(super) granted_at: Option<Time>,
    /// Followers, pre-candidates and candidates start a pre-vote round when `now` reaches this.
    pub(super) election_deadline: Time,
    /// Draws election timeouts; seeded from `config.seed`, the core's only randomness.
    pub(super) rng: SmallRng,
    /// Candidate: `votes[i]` is whether peer `i` granted its vote in `current_term` (indexed
    /// by every addressable id; only the configuration's voters count).
    /// Pre-candidate: whether peer `i` granted its pre-vote in round `pre_vote_round`.
    pub(super) votes: Vec<bool>,
    /// Pre-candidate that stood as candidate in `current_term`: the votes it was granted there
    /// (empty otherwise). Still counted, so that votes delayed past its election timer can
    /// make it leader of that term (`election.rs`).
    pub(super) term_votes: Vec<bool>,
    /// Numbers this peer's pre-vote rounds (§9.6), to tell their replies apart.
    pub(super) pre_vote_round: u64,
    /// Pre-candidate and candidate: whether voter `i` answered this round's request, granting
    /// or not; the others are asked again at `vote_retry_at` (`election.rs`).
    pub(super) answered: Vec<bool>,
    pub(super) vote_retry_at: Time,
    /// Candidate: when it entered `current_term` (the earliest its voters granted a vote).
    pub(super) stood_at: Time,
    /// Leader: Figure 2's `next_index[]`/`match_index[]` with flow control, indexed by peer id
    /// (every addressable id; only the configuration's members are sent to).
    /// The leader's own entry tracks its durable log: `match_index == log.durable()`.
    pub(super) progress: Vec<Progress>,
    /// Leader: when to announce the commit index to followers not sent it since it advanced.
    pub(super) commit_announce_at: Option<Time>,
    /// Follower: the last entry it acknowledged that is not known to be committed, and when to
    /// ask the leader about it if no AppendEntries says (`replication.rs`).
    pub(super) commit_query: Option<(Index, Time)>,
    /// Leader: when CheckQuorum next counts the peers heard from (§6.2).
    pub(super) check_quorum_at: Time,
    /// Leader: reads waiting to be confirmed (§6.4); any peer: their outcomes not yet taken.
    pub(super) reads: Reads,
    /// Leader: the leadership transfer under way (§3.10).
    pub(super) transfer: Option<Transfer>,
    /// The latest time any input reported; effects built in `take_ready` happen at this time.
    pub(super) now: Time,
    /// Who reaches whom, for relaying (`relay.rs`).
    pub(super) reach: Reach,
    /// Messages produced since the last `take_ready`.
    messages: Vec<Message>,
}

impl Raft {
    /// A peer restarting from `restored` (what earlier `Ready::persist` effects made durable),
    /// as a follower with nothing known to be committed beyond its snapshot (Figure 2: volatile
    /// state starts at 0; §7: a snapshot holds committed, applied state). The state machine
    /// starts from the snapshot: `applied(0)` replays it.
    pub fn new(config: Config, restored: Restored, now: Time) -> Raft {
        assert!(
            config.id < config.members,
            "config.id must be below config.members"
        );
        debug_assert!(restored
            .hard_state
            .voted_for
            .is_none_or(|v| v < config.members));
        let log = RaftLog::restore(restored.snapshot, restored.entries);
        debug_assert!(log.last_term() <= restored.hard_state.current_term);
        let snapshot_index = log.snapshot_index();
        let mut raft = Raft {
            rng: SmallRng::seed_from_u64(config.seed),
            hard_state: restored.hard_state,
            persisted_hard_state: restored.hard_state,
            durable_term: restored.hard_state.current_term,
            log,
            membership: Membership::default(),
            membership_index: 0,
            commit_index: snapshot_index,
            last_applied: snapshot_index,
            apply_snapshot: false,
            pending_snapshot: None,
            role: Role::Follower,
            leader_id: None,
            leader_contact: now,
            granted_at: None,
            election_deadline: now,
            votes: Vec::new(),
            term_votes: Vec::new(),
            pre_vote_round: 0,
            answered: Vec::new(),
            vote_retry_at: Time::MAX,
            stood_at: now,
            progress: Vec::new(),
            commit_announce_at: None,
            commit_query: None,
            check_quorum_at: now,
            reads: Reads::default(),
            transfer: None,
            now,
            reach: Reach::new(config.members),
            messages: Vec::new(),
            config,
        };
        raft.refresh_membership();
        raft.start_election_timer();
        event!(
            info,
            raft,
            "ELECT",
            "started as follower: voted_for={:?} snapshot_index={} last_log_index={} \
             last_log_term={} {}",
            raft.hard_state.voted_for,
            snapshot_index,
            raft.log.last_index(),
            raft.log.last_term(),
            raft.membership
        );
        raft
    }

    /// Handle one message from a peer. Messages not addressed to this node or from unknown ids
    /// are ignored.
    pub fn step(&mut self, msg: Message, now: Time) {
        self.advance_clock(now);
        let (id, members) = (self.config.id, self.config.members);
        // Term::MAX is refused too: no election could follow it (terms must grow).
        let bad_via = msg
            .via
            .is_some_and(|via| via >= members || via == id || via == msg.from);
        if msg.to != id || msg.from >= members || msg.from == id || msg.term == Term::MAX || bad_via
        {
            event!(trace, self, topic(&msg.body), "ignoring {msg:?}");
            return;
        }
        event!(trace, self, topic(&msg.body), "recv {msg:?}");
        self.note_received(&msg);
        self.note_vote_answer(msg.from, msg.term, &msg.body);
        match msg.body {
            // A pre-vote and a grant are about a term no peer has entered: Figure 2's term rule
            // does not apply to them (`pre_vote.rs`).
            MessageBody::PreVote {
                last_log_index,
                last_log_term,
                round,
            } => self.handle_pre_vote(msg.from, msg.term, last_log_index, last_log_term, round),
            MessageBody::PreVoteReply {
                vote_granted: true,
                round,
            } => self.handle_pre_vote_grant(msg.from, msg.term, round),
            body => self.step_in_term(msg.from, msg.term, body),
        }
        self.debug_check_invariants();
    }

    /// Figure 2, all servers: a higher term means this peer is out of date (§5.1); a lower one
    /// means the sender is. Then the role's handler.
    fn step_in_term(&mut self, from: NodeId, term: Term, body: MessageBody) {
        if term > self.hard_state.current_term {
            // Only a leader sends AppendEntries and InstallSnapshot; anything else leaves it
            // unknown.
            let leader = matches!(
                body,
                MessageBody::AppendEntries { .. } | MessageBody::InstallSnapshot { .. }
            )
            .then_some(from);
            self.become_follower(term, leader);
        }
        if term < self.hard_state.current_term {
            return self.answer_stale(from, term, body);
        }
        match self.role {
            Role::Follower => self.step_follower(from, body),
            Role::PreCandidate | Role::Candidate => self.step_candidate(from, body),
            Role::Leader => self.step_leader(from, body),
        }
    }

    /// Fire every timer due at `now` (election timeout; heartbeat, commit announcement).
    pub fn tick(&mut self, now: Time) {
        self.advance_clock(now);
        match self.role {
            Role::Leader => {
                self.tick_heartbeats();
                self.tick_commit_announce();
                self.tick_transfer();
                // Last: stepping down drops whatever the others made due.
                self.tick_check_quorum();
            }
            Role::Follower | Role::PreCandidate | Role::Candidate => {
                if self.now >= self.election_deadline {
                    self.pre_campaign();
                } else {
                    self.tick_vote_retry();
                    self.tick_commit_query();
                }
            }
        }
        self.debug_check_invariants();
    }

    /// The lab's Start(): append to the leader's log. Ok((index, term)).
    ///
    /// The entry goes out to followers when effects are next taken (`take_ready`).
    pub fn propose(&mut self, command: Vec<u8>, now: Time) -> Result<(Index, Term), ProposeError> {
        self.advance_clock(now);
        let size = command.len() + ENTRY_OVERHEAD;
        if size > self.config.max_append_bytes {
            return Err(ProposeError::TooLarge {
                size,
                max: self.config.max_append_bytes,
            });
        }
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader_id,
            });
        }
        if let Some(transfer) = self.transfer {
            return Err(ProposeError::Transferring { to: transfer.to });
        }
        if !self.heard_from_majority_lately() {
            return Err(ProposeError::OutOfTouch {
                within: self.config.election_timeout_min,
            });
        }
        let entry = Entry::command(
            self.hard_state.current_term,
            self.log.last_index() + 1,
            command,
        );
        let (index, term) = (entry.index, entry.term);
        self.log.append(entry);
        // The leader's own copy counts toward the majority (§5.3) once it is durable
        // (`persisted`), like a follower's.
        event!(debug, self, "APPEND", "proposed index={index}");
        self.debug_check_invariants();
        Ok((index, term))
    }

    /// The runtime made durable every `Ready::persist` up to the one whose `log_mark` is
    /// `mark`. A leader counts its own copy of those entries toward the majority from now on.
    pub fn persisted(&mut self, mark: LogMark, now: Time) {
        self.advance_clock(now);
        self.durable_term = self.durable_term.max(mark.current_term);
        if self.log.persisted(mark.index, mark.term) && self.role == Role::Leader {
            self.progress[self.config.id as usize].on_success(self.log.durable(), self.now);
            self.maybe_commit();
        }
        self.maybe_become_leader();
        self.debug_check_invariants();
    }

    /// The earliest time `tick` must be called again (the runtime's poll timeout).
    pub fn next_deadline(&self) -> Time {
        match self.role {
            Role::Leader => self
                .next_leader_deadline()
                .min(self.check_quorum_at)
                .min(self.transfer.map_or(Time::MAX, |t| t.deadline)),
            Role::Follower | Role::PreCandidate | Role::Candidate => (self.election_deadline)
                .min(self.vote_retry_at)
                .min(self.commit_query.map_or(Time::MAX, |(_, at)| at)),
        }
    }

    /// Take the accumulated effects (see the `core` module docs for the order the runtime
    /// obeys). Builds the leader's AppendEntries for everything proposed or acknowledged since
    /// the last call; call it once per event-loop iteration, after feeding in all inputs.
    pub fn take_ready(&mut self) -> Ready {
        if self.role == Role::Leader {
            self.begin_read_round();
            self.send_appends();
            self.send_timeout_now();
            self.leave_joint();
            self.step_down_if_removed();
        }
        let mut persist = self.log.take_unpersisted();
        if self.hard_state != self.persisted_hard_state {
            persist.hard_state = Some(self.hard_state);
            self.persisted_hard_state = self.hard_state;
        }
        let persist = (persist != Persist::default()).then(|| {
            event!(
                trace,
                self,
                "PERSIST",
                "hard_state={:?} snapshot={:?} truncate_from={:?} append={}",
                persist.hard_state,
                persist.snapshot.as_ref().map(|s| s.last_included_index),
                persist.truncate_from,
                persist.append.len()
            );
            persist
        });
        let mut apply = Vec::new();
        if std::mem::take(&mut self.apply_snapshot) {
            let snapshot = self.log.snapshot().expect("an installed snapshot");
            apply.push(Apply::Snapshot(snapshot.clone()));
        }
        let entries = self.log.slice(self.last_applied + 1, self.commit_index);
        if let Some(last) = entries.last() {
            debug_assert_eq!(entries[0].index, self.last_applied + 1);
            event!(
                debug,
                self,
                "APPLY",
                "applying {}..={}",
                self.last_applied + 1,
                last.index
            );
            self.last_applied = last.index;
            apply.extend(entries.iter().cloned().map(Apply::Entry));
        }
        let (reads, failed_reads) = self.take_read_outcomes();
        self.debug_check_invariants();
        Ready {
            persist,
            log_mark: LogMark {
                index: self.log.last_index(),
                term: self.log.last_term(),
                current_term: self.hard_state.current_term,
            },
            messages: std::mem::take(&mut self.messages),
            apply,
            reads,
            failed_reads,
        }
    }

    pub fn status(&self) -> Status {
        Status {
            id: self.config.id,
            term: self.hard_state.current_term,
            role: self.role,
            leader: self.leader_id,
            commit_index: self.commit_index,
            last_applied: self.last_applied,
            last_log_index: self.log.last_index(),
            snapshot_index: self.log.snapshot_index(),
        }
    }

    /// A leader's flow control towards `peer` (`progress.rs`), for the simulator's counters.
    /// `None` unless this peer leads.
    pub(crate) fn progress_of(&self, peer: NodeId) -> Option<&Progress> {
        let progress = self.progress.get(peer as usize)?;
        (self.role == Role::Leader).then_some(progress)
    }

    /// Figure 2's `votedFor` in the current term.
    pub fn voted_for(&self) -> Option<NodeId> {
        self.hard_state.voted_for
    }

    /// The term of the entry at `index`, if the log holds it (of the snapshot's entries, only
    /// its last).
    pub fn term_of(&self, index: Index) -> Option<Term> {
        self.log.term(index)
    }

    /// What a state machine starting now needs to reach `last_applied` from index `from` on (the
    /// replay for a new apply subscriber): the snapshot first if it covers `from`, then the
    /// applied entries after it.
    pub fn applied(&self, from: Index) -> Vec<Apply> {
        let snapshot = self
            .log
            .snapshot()
            .filter(|s| from <= s.last_included_index)
            .map(|s| Apply::Snapshot(s.clone()));
        let entries = self.log.slice(from, self.last_applied);
        snapshot
            .into_iter()
            .chain(entries.iter().cloned().map(Apply::Entry))
            .collect()
    }

    fn step_follower(&mut self, from: NodeId, body: MessageBody) {
        match body {
            MessageBody::RequestVote {
                last_log_index,
                last_log_term,
            } => self.handle_request_vote(from, last_log_index, last_log_term),
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                read_round,
                flow_epoch,
                wants_ack,
            } => self.handle_append_entries(
                from,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                (read_round, flow_epoch, wants_ack),
            ),
            MessageBody::InstallSnapshot {
                last_included_index,
                last_included_term,
                membership,
                offset,
                data,
                done,
            } => self.handle_install_snapshot(
                from,
                (last_included_index, last_included_term, membership),
                offset,
                data,
                done,
            ),
            MessageBody::TimeoutNow => self.handle_timeout_now(from),
            // Answers to this term's requests from an earlier role or incarnation (a candidate
            // that lost, a leader that restarted).
            body => self.ignore_late(from, body),
        }
    }

    /// A candidate, or a pre-candidate (§9.6). A pre-candidate counts pre-votes (in
    /// `handle_pre_vote_grant`) and, if it stood as candidate in its term, the votes of that
    /// election that arrive late (`handle_vote_reply`).
    fn step_candidate(&mut self, from: NodeId, body: MessageBody) {
        match body {
            MessageBody::RequestVote {
                last_log_index,
                last_log_term,
            } => self.handle_request_vote(from, last_log_index, last_log_term),
            MessageBody::RequestVoteReply { vote_granted }
                if self.role == Role::Candidate || !self.term_votes.is_empty() =>
            {
                self.handle_vote_reply(from, vote_granted)
            }
            body @ (MessageBody::AppendEntries { .. } | MessageBody::InstallSnapshot { .. }) => {
                // §5.2: a candidate that hears from a leader of its own term has lost; a
                // pre-candidate has a leader again.
                self.become_follower(self.hard_state.current_term, Some(from));
                self.step_follower(from, body);
            }
            body => self.ignore_late(from, body),
        }
    }

    fn step_leader(&mut self, from: NodeId, body: MessageBody) {
        match body {
            MessageBody::RequestVote {
                last_log_index,
                last_log_term,
            } => self.handle_request_vote(from, last_log_index, last_log_term),
            MessageBody::AppendEntriesReply {
                success,
                match_index,
                conflict_term,
                conflict_index,
                read_round,
                flow_epoch,
            } => {
                self.progress[from as usize].mark_active(self.now);
                let conflict = (conflict_term, conflict_index);
                self.handle_append_reply(from, success, match_index, conflict, flow_epoch);
                self.handle_read_ack(from, read_round);
            }
            MessageBody::InstallSnapshotReply {
                last_included_index,
                done,
                received,
            } => {
                self.progress[from as usize].mark_active(self.now);
                self.handle_snapshot_reply(from, last_included_index, done, received)
            }
            MessageBody::CommitQuery { commit } => self.answer_commit_query(from, commit),
            MessageBody::AppendEntries { .. } | MessageBody::InstallSnapshot { .. } => {
                // Election Safety (§5.2) rules out two leaders in one term.
                event!(
                    error,
                    self,
                    "ELECT",
                    "leader's message from n{from} in my own term"
                );
            }
            // Votes that arrive after the election was won.
            body => self.ignore_late(from, body),
        }
    }

    fn ignore_late(&self, from: NodeId, body: MessageBody) {
        event!(
            trace,
            self,
            "APPEND",
            "{:?} ignoring {body:?} from n{from}",
            self.role
        );
    }

    /// Figure 2, all servers: convert to follower, adopting `term` if it is newer (which clears
    /// the vote: a new term has no vote cast yet).
    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        debug_assert!(term >= self.hard_state.current_term);
        let old = (self.role, self.hard_state.current_term);
        if term > self.hard_state.current_term {
            self.hard_state = HardState {
                current_term: term,
                voted_for: None,
            };
        }
        self.role = Role::Follower;
        self.leader_id = leader;
        self.votes.clear();
        self.term_votes.clear();
        self.stop_vote_retry();
        if old.0 == Role::Leader {
            // A leader runs no election timer; a deposed one starts it afresh instead of
            // inheriting a long-expired deadline (which would start a gratuitous election).
            self.progress.clear();
            self.commit_announce_at = None;
            self.transfer = None;
            self.reset_election_timer();
            self.fail_reads();
        }
        match old {
            (Role::Follower, old_term) if old_term == term => {}
            (Role::Follower, old_term) => {
                event!(
                    info,
                    self,
                    "ELECT",
                    "new term (was t{old_term}), leader={leader:?}"
                )
            }
            (role, old_term) => event!(
                info,
                self,
                "ELECT",
                "became follower (was {role:?} in t{old_term}), leader={leader:?}"
            ),
        }
    }

    /// §9.6: a pre-vote round. No new term, no vote cast, nothing to persist: only this peer's
    /// own pre-vote counts so far, and a fresh election timeout bounds the round.
    pub(super) fn become_pre_candidate(&mut self) {
        debug_assert_ne!(self.role, Role::Leader);
        self.term_votes = match self.role {
            Role::Candidate => std::mem::take(&mut self.votes),
            Role::PreCandidate => std::mem::take(&mut self.term_votes),
            Role::Follower | Role::Leader => Vec::new(),
        };
        self.role = Role::PreCandidate;
        self.leader_id = None;
        self.commit_query = None;
        self.pre_vote_round += 1;
        self.votes = vec![false; self.config.members as usize];
        self.votes[self.config.id as usize] = true;
        self.reset_election_timer();
        self.start_vote_retry();
    }

    /// §5.2: start an election — new term, vote for self (persisted before any RequestVote
    /// leaves, since both go out in the same `Ready`).
    pub(super) fn become_candidate(&mut self) {
        debug_assert_ne!(self.role, Role::Leader);
        self.hard_state = HardState {
            current_term: self.hard_state.current_term + 1,
            voted_for: Some(self.config.id),
        };
        self.role = Role::Candidate;
        self.leader_id = None;
        self.commit_query = None;
        self.term_votes.clear();
        self.votes = vec![false; self.config.members as usize];
        self.votes[self.config.id as usize] = true;
        self.stood_at = self.now;
        self.reset_election_timer();
        self.start_vote_retry();
    }

    /// §5.2: won the election. No no-op entry is appended (the lab asserts exact indices); the
    /// initial empty AppendEntries go out at the next `take_ready`, except to the voters that
    /// granted this term's vote if the election was quick (see [`Raft::voters_wait_a_heartbeat`]).
    pub(super) fn become_leader(&mut self) {
        debug_assert_eq!(self.role, Role::Candidate);
        debug_assert_eq!(self.durable_term, self.hard_state.current_term);
        self.role = Role::Leader;
        self.leader_id = Some(self.config.id);
        let next_index = self.log.last_index() + 1;
        let (now, quick) = (self.now, self.voters_wait_a_heartbeat());
        let votes = std::mem::take(&mut self.votes);
        self.progress = (0..self.config.members as usize)
            .map(|p| {
                let mut progress = Progress::new(next_index, now);
                if quick && votes[p] {
                    progress.defer_first_heartbeat();
                }
                progress
            })
            .collect();
        self.term_votes.clear();
        self.stop_vote_retry();
        self.progress[self.config.id as usize].on_success(self.log.durable(), now);
        self.check_quorum_at = self.now + self.config.election_timeout_max;
        self.reset_reads();
        event!(
            info,
            self,
            "ELECT",
            "became leader (last_log_index={} commit_index={})",
            self.log.last_index(),
            self.commit_index
        );
    }

    /// Whether the voters that granted this term's vote can wait a heartbeat interval for the
    /// leader's first AppendEntries: each reset its election timer when it granted, no earlier
    /// than this candidacy began, so it cannot time out before `stood_at + election_timeout_min`;
    /// a heartbeat due one interval from now arrives well before that if the election took at
    /// most half an interval (a round trip, on any working network). Those voters then cost one
    /// message fewer per election; the peers that did not vote for this leader (or not yet)
    /// are told at once, as §5.2 asks, so that they do not start an election.
    fn voters_wait_a_heartbeat(&self) -> bool {
        let interval = self.config.heartbeat_interval;
        self.now + interval + interval / 2 <= self.stood_at + self.config.election_timeout_min
    }

    /// Queues a message to `to`, stamped with this peer's current term.
    pub(super) fn send(&mut self, to: NodeId, body: MessageBody) {
        self.send_in(self.hard_state.current_term, to, body);
    }

    /// Queues a message to `to` stamped with `term` (pre-votes are about a term not entered).
    pub(super) fn send_in(&mut self, term: Term, to: NodeId, body: MessageBody) {
        event!(trace, self, topic(&body), "send t{term} to n{to}: {body:?}");
        let msg = Message {
            from: self.config.id,
            to,
            term,
            body,
            via: None,
            hears: self.hears(),
        };
        let relayed = self.relay_copy(&msg);
        self.messages.push(msg);
        self.messages.extend(relayed);
    }

    /// Replication to `id` starts afresh: a member joining, probing from the end of the log.
    pub(super) fn reset_progress(&mut self, id: NodeId) {
        let next_index = self.log.last_index() + 1;
        self.progress[id as usize].restart(next_index, self.now);
    }

    /// Figure 2: a request from an older term is answered "false" with this peer's term, so its
    /// sender catches up; a reply from an older term answers nothing current and is dropped.
    ///
    /// The answer names no index: its sender may meanwhile lead again in the term it carries
    /// (a request delayed across a re-election), and must not take it for an answer to what
    /// it sent in that term (a rejection would drop its pipeline to this peer; "received 0"
    /// would restart a snapshot transfer).
    fn answer_stale(&mut self, from: NodeId, term: Term, body: MessageBody) {
        let body = match body {
            MessageBody::RequestVote { .. } => MessageBody::RequestVoteReply {
                vote_granted: false,
            },
            // Rejects index 0, which always matches: a leader acts on no such rejection.
            MessageBody::AppendEntries { .. } => MessageBody::AppendEntriesReply {
                success: false,
                match_index: 0,
                conflict_term: None,
                conflict_index: 0,
                read_round: 0,
                flow_epoch: 0,
            },
            // Figure 13 step 1: reply immediately. No snapshot ends at index 0, so no transfer
            // takes this for its progress.
            MessageBody::InstallSnapshot { .. } => MessageBody::InstallSnapshotReply {
                last_included_index: 0,
                done: false,
                received: 0,
            },
            body => {
                event!(trace, self, topic(&body), "dropping t{term} {body:?}");
                return;
            }
        };
        self.send(from, body);
    }

    /// Inputs may report times out of order; the core's clock never goes backwards.
    pub(super) fn advance_clock(&mut self, now: Time) {
        self.now = self.now.max(now);
    }

    pub(super) fn debug_check_invariants(&self) {
        self.debug_check_reads();
        debug_assert!(self.log.snapshot_index() <= self.last_applied);
        debug_assert!(self.last_applied <= self.commit_index);
        debug_assert!(self.commit_index <= self.log.last_index());
        debug_assert!(self.log.durable() <= self.log.last_index());
        debug_assert!(self.log.last_term() <= self.hard_state.current_term);
        debug_assert!(self
            .hard_state
            .voted_for
            .is_none_or(|v| v < self.config.members));
        match self.role {
            Role::Leader => {
                debug_assert_eq!(self.hard_state.voted_for, Some(self.config.id));
                debug_assert_eq!(
                    self.progress[self.config.id as usize].match_index,
                    self.log.durable()
                );
                debug_assert!(self
                    .progress
                    .iter()
                    .all(|p| p.match_index < p.next_index
                        && p.next_index <= self.log.last_index() + 1));
            }
            Role::PreCandidate => {
                debug_assert!(self.transfer.is_none());
                debug_assert!(self.progress.is_empty() && self.commit_announce_at.is_none());
                debug_assert!(self.votes[self.config.id as usize]);
            }
            Role::Candidate => {
                debug_assert_eq!(self.hard_state.voted_for, Some(self.config.id));
                debug_assert!(self.progress.is_empty() && self.commit_announce_at.is_none());
            }
            Role::Follower => debug_assert!(
                self.progress.is_empty()
                    && self.votes.is_empty()
                    && self.term_votes.is_empty()
                    && self.commit_announce_at.is_none()
            ),
        }
    }
}
