//! Log replication (§5.3) and commitment (§5.4.2): AppendEntries on both sides, the leader's
//! per-follower flow control, heartbeats, and the commit rule.
//!
//! Leader side, in one place:
//! - `take_ready` calls [`Raft::send_appends`], which sends each follower what its [`Progress`]
//!   allows: in Probe one AppendEntries at a time; in Replicate as many batches of at most
//!   `config.max_append_bytes` as the in-flight window admits.
//! - A heartbeat is an AppendEntries sent when a follower has been sent nothing for
//!   `heartbeat_interval`; it starts at `next_index` (so it never repeats acknowledged entries)
//!   and carries the commit index to followers. If batches are still unanswered when it falls
//!   due they are presumed lost: the follower goes back to Probe from `match_index + 1`.
//! - Followers learn a new commit index from the next AppendEntries (§5.3: "so that the other
//!   servers eventually find out"). To make "eventually" prompt rather than a heartbeat away,
//!   a commit index advance is announced [`COMMIT_ANNOUNCE_DELAY`] later to every follower not
//!   sent it in the meantime, with an empty AppendEntries. Under load the appends that go out
//!   within the delay carry it and nothing extra is sent; a lone command costs one more
//!   message per follower. The announcement asks for no reply (`wants_ack: false`) when the
//!   follower is known to match and has acknowledged the latest ReadIndex round: a success
//!   would tell the leader nothing (no entries, nothing in flight, no read to confirm), and
//!   CheckQuorum and the proposal test hear the follower through the heartbeats, which are
//!   always answered. A follower whose log does not match still rejects it. A follower that
//!   missed it asks ([`MessageBody::CommitQuery`]) a stall timeout after the entries came.
//! - Fast backup (§5.3, the paragraph on rejected AppendEntries): a rejection names the
//!   follower's term at `prev_log_index` and the first index of that term (or its log length if
//!   too short), so the leader skips a whole conflicting term per round trip.
//!
//! [`Progress`]: super::progress::Progress

use super::raft::Raft;
use super::trace::event;
use super::{Entry, Index, MessageBody, NodeId, Role, Term, Time};
use std::time::Duration;

/// How long a leader waits after its commit index advances before announcing it to followers
/// that no AppendEntries told in the meantime. Long enough to coalesce a burst: the
/// acknowledgements of pipelined batches, each advancing the commit index, arrive within a
/// loopback round trip (well under a millisecond through the proxy), and proposals arriving
/// meanwhile carry it for free. Short enough that followers apply within a few milliseconds of
/// the leader instead of a heartbeat interval (100 ms) later.
pub const COMMIT_ANNOUNCE_DELAY: Duration = Duration::from_millis(5);

/// While the entries a follower has not yet acknowledged fit in this many bytes, a pipelined
/// AppendEntries carries them again ahead of the new ones. Datagrams reorder: a batch that
/// overtakes the one before it no longer finds a gap (a rejection, a resend, a round trip),
/// and a lost batch is covered by the next. Under the lab's unreliable network, with one
/// proposal at a time, nearly every batch overtook or was overtaken, and commits waited a
/// round trip more than the network's delay. Under load the unacknowledged entries exceed the
/// bound and batches carry only new entries (the bytes stay bounded, the throughput too).
pub const REPEAT_UNACKNOWLEDGED_BYTES: usize = 4096;

impl Raft {
    /// Figure 2, AppendEntries receiver (step 1, the term check, is done by `step`).
    pub(super) fn handle_append_entries(
        &mut self,
        leader: NodeId,
        mut prev_log_index: Index,
        mut prev_log_term: Term,
        mut entries: Vec<Entry>,
        leader_commit: Index,
        (read_round, flow_epoch, wants_ack): (u64, u64, bool),
    ) {
        debug_assert_eq!(self.role, Role::Follower);
        self.heard_from_leader(leader);

        // Entries through the snapshot are committed, so the leader's match them (§5.4.3):
        // the check starts at the snapshot's last entry, the only one whose term is kept.
        let snapshot_index = self.log.snapshot_index();
        if prev_log_index < snapshot_index {
            let covered = (snapshot_index - prev_log_index).min(entries.len() as Index);
            entries.drain(..covered as usize);
            prev_log_index = snapshot_index;
            prev_log_term = self.log.snapshot_term();
        }

        // Step 2: reply false if the log has no entry at prev_log_index with prev_log_term,
        // telling the leader where to resume (fast backup).
        let echo = (read_round, flow_epoch);
        match self.log.term(prev_log_index) {
            None => {
                let conflict_index = self.log.last_index() + 1;
                let conflict = (None, conflict_index);
                return self.reject_append(leader, prev_log_index, conflict, echo);
            }
            Some(term) if term != prev_log_term => {
                let conflict_index = self.log.first_index_of_term(term).unwrap_or(prev_log_index);
                let conflict = (Some(term), conflict_index);
                return self.reject_append(leader, prev_log_index, conflict, echo);
            }
            Some(_) => {}
        }
        let term = self.hard_state.current_term;
        if !is_well_formed(prev_log_index, prev_log_term, &entries, term) {
            event!(
                warn,
                self,
                "APPEND",
                "ignoring malformed AppendEntries from n{leader}"
            );
            return;
        }
        let last_new = prev_log_index + entries.len() as Index;
        self.append_new_entries(leader, entries);

        // Step 5: commit_index = min(leader_commit, index of last new entry). Only this
        // request's entries are known to match the leader; anything beyond them may be stale.
        let commit = leader_commit.min(last_new);
        if commit > self.commit_index {
            self.commit_index = commit;
            event!(info, self, "COMMIT", "commit_index={commit}");
        }
        self.await_commit(last_new);
        if !wants_ack {
            return;
        }
        let reply = MessageBody::AppendEntriesReply {
            success: true,
            match_index: last_new,
            conflict_term: None,
            conflict_index: 0,
            read_round,
            flow_epoch,
        };
        self.send(leader, reply);
    }

    /// Follower: entries through `matched` match the leader's log. Until a commit index that
    /// covers them arrives, the leader is asked for it a stall timeout after the newest of them
    /// did ([`Raft::tick_commit_query`]).
    fn await_commit(&mut self, matched: Index) {
        if self
            .commit_query
            .is_some_and(|(through, _)| self.commit_index >= through)
        {
            self.commit_query = None;
        }
        if matched > self.commit_index
            && self
                .commit_query
                .is_none_or(|(through, _)| matched > through)
        {
            self.commit_query = Some((matched, self.now + self.stall_timeout()));
        }
    }

    /// Follower timer: entries it acknowledged a stall timeout ago are still not known to be
    /// committed. The announcement that would have said so asks for no reply, so if it was
    /// lost only this follower can tell: it asks its leader once, and the leader announces
    /// again if its commit index is ahead ([`Raft::answer_commit_query`]). Without it the
    /// follower learned the commit from the next heartbeat: under the lab's unreliable network
    /// one commit in about eleven reached a follower 120-170 ms after the leader, where the
    /// median took 13.5 ms.
    pub(super) fn tick_commit_query(&mut self) {
        let Some((through, at)) = self.commit_query else {
            return;
        };
        if self.now < at {
            return;
        }
        self.commit_query = None;
        if let (true, Some(leader)) = (self.commit_index < through, self.leader_id) {
            event!(
                debug,
                self,
                "APPEND",
                "entries through {through} not known committed (commit_index={}), asking n{leader}",
                self.commit_index
            );
            let commit = self.commit_index;
            self.send(leader, MessageBody::CommitQuery { commit });
        }
    }

    /// Leader: follower `from` knows commits through `commit` only, and holds entries past it.
    /// If the leader's commit index is ahead, an AppendEntries announces it at the next
    /// `take_ready`; if not, its next advance is announced anyway.
    pub(super) fn answer_commit_query(&mut self, from: NodeId, commit: Index) {
        if self.commit_index > commit {
            self.progress[from as usize].resend_commit(commit);
        }
    }

    /// Figure 2, AppendEntries steps 3 and 4, for entries that follow a matching prev entry:
    /// skip the entries already held; at the first one that is not, delete a conflicting entry
    /// and everything after it, then append the rest. A duplicated or reordered request whose
    /// entries all match truncates nothing (Log Matching, §5.3): truncating there would drop
    /// entries a newer request already appended.
    fn append_new_entries(&mut self, leader: NodeId, entries: Vec<Entry>) {
        let held = entries
            .iter()
            .take_while(|e| self.log.term(e.index) == Some(e.term))
            .count();
        let mut new = entries.into_iter().skip(held).peekable();
        let Some(first) = new.peek() else {
            return;
        };
        let (first_new, last_held) = (first.index, self.log.last_index());
        // A configuration takes effect when it enters the log, and is undone when it leaves.
        let mut reconfigured = first_new <= self.membership_index;
        if first_new <= last_held {
            // Leader Completeness (§5.4) guarantees committed entries never conflict.
            debug_assert!(
                first_new > self.commit_index,
                "conflict with committed entry"
            );
            event!(
                debug,
                self,
                "APPEND",
                "conflict: deleting {first_new}..={last_held}"
            );
            self.log.truncate_from(first_new);
        }
        for entry in new {
            reconfigured |= entry.membership().is_some();
            self.log.append(entry);
        }
        event!(
            debug,
            self,
            "APPEND",
            "appended {first_new}..={} from n{leader}",
            self.log.last_index()
        );
        if reconfigured {
            self.refresh_membership();
        }
    }

    /// Step 2's refusal, with the fast-backup hint `(conflict_term, conflict_index)`.
    fn reject_append(
        &mut self,
        leader: NodeId,
        prev_log_index: Index,
        (conflict_term, conflict_index): (Option<Term>, Index),
        (read_round, flow_epoch): (u64, u64),
    ) {
        event!(
            debug,
            self,
            "APPEND",
            "reject prev_log_index={prev_log_index} from n{leader}: conflict_term={conflict_term:?} \
             conflict_index={conflict_index}"
        );
        self.send(
            leader,
            MessageBody::AppendEntriesReply {
                success: false,
                match_index: prev_log_index,
                conflict_term,
                conflict_index,
                read_round,
                flow_epoch,
            },
        );
    }

    /// The leader's side of an AppendEntries reply in its own term.
    pub(super) fn handle_append_reply(
        &mut self,
        from: NodeId,
        success: bool,
        match_index: Index,
        (conflict_term, conflict_index): (Option<Term>, Index),
        flow_epoch: u64,
    ) {
        debug_assert_eq!(self.role, Role::Leader);
        if match_index > self.log.last_index() {
            event!(
                warn,
                self,
                "APPEND",
                "n{from} answered index {match_index}, never sent"
            );
            return;
        }
        if success {
            // Figure 2: update next_index and match_index for the follower.
            if self.progress[from as usize].on_success(match_index, self.now) {
                event!(trace, self, "APPEND", "n{from} match_index={match_index}");
                self.maybe_commit();
            }
            return;
        }
        // Figure 2: decrement next_index and retry, skipping whole terms (fast backup): past
        // the leader's last entry of the follower's conflicting term if it has that term
        // (everything up to it matches, by Log Matching), else to the follower's first entry
        // of that term, or just past the follower's log when it was too short.
        let hint = conflict_term
            .and_then(|term| self.log.last_index_of_term(term))
            .map_or(conflict_index, |last| last + 1);
        let progress = &mut self.progress[from as usize];
        if progress.on_reject(match_index, hint, conflict_term.is_none(), flow_epoch) {
            event!(
                debug,
                self,
                "APPEND",
                "n{from} rejected prev_log_index={match_index}, next_index={}",
                self.progress[from as usize].next_index
            );
        }
    }

    /// Figure 2, leaders: commit the largest N > commit_index that a majority holds, provided
    /// `log[N]` is of the current term (§5.4.2: an old-term entry is never committed by counting
    /// replicas, only indirectly, as a prefix of a current-term entry; Figure 8).
    pub(super) fn maybe_commit(&mut self) {
        let majority_index = self
            .membership
            .majority_value(|id| self.progress[id as usize].match_index);
        if majority_index > self.commit_index
            && self.log.term(majority_index) == Some(self.hard_state.current_term)
        {
            self.commit_index = majority_index;
            event!(info, self, "COMMIT", "commit_index={majority_index}");
            self.commit_announce_at
                .get_or_insert(self.now + COMMIT_ANNOUNCE_DELAY);
            self.index_waiting_reads();
        }
    }

    /// Leader timer: the commit index advanced [`COMMIT_ANNOUNCE_DELAY`] ago; every follower
    /// not sent it since gets an AppendEntries at the next `take_ready`.
    pub(super) fn tick_commit_announce(&mut self) {
        if self.commit_announce_at.is_none_or(|at| self.now < at) {
            return;
        }
        self.commit_announce_at = None;
        let commit = self.commit_index;
        for peer in self.peers() {
            self.progress[peer as usize].announce_commit(commit);
        }
    }

    /// Leader heartbeat timer: every follower sent nothing for `heartbeat_interval` gets an
    /// AppendEntries at the next `take_ready`.
    pub(super) fn tick_heartbeats(&mut self) {
        let (now, interval) = (self.now, self.config.heartbeat_interval);
        for peer in self.peers() {
            let progress = &mut self.progress[peer as usize];
            if progress.heartbeat_expired(now, interval) && progress.on_heartbeat_timeout() {
                event!(
                    debug,
                    self,
                    "APPEND",
                    "n{peer}: batches unacknowledged for a heartbeat interval, probing from {}",
                    self.progress[peer as usize].next_index
                );
            }
        }
    }

    /// How long a follower that is owed new entries may leave everything it was sent
    /// unanswered before that is presumed lost: a third of a heartbeat interval, far above a
    /// round trip and short of the heartbeat timer that otherwise decides it.
    pub(super) fn stall_timeout(&self) -> Time {
        self.config.heartbeat_interval / 3
    }

    /// The smallest smoothed round trip to any follower: a follower not yet measured is
    /// pinged by it (`maybe_ping`).
    fn fastest_round_trip(&self) -> Option<Time> {
        let id = self.config.id;
        (self.membership.members())
            .filter(|&p| p != id)
            .filter_map(|p| self.progress[p as usize].srtt())
            .min()
    }

    /// When the leader's next timer falls due: a heartbeat, a stalled follower's probe, a
    /// silent follower's ping or the commit announcement.
    pub(super) fn next_leader_deadline(&self) -> Time {
        let interval = self.config.heartbeat_interval;
        let (last_index, timeout) = (self.log.last_index(), self.stall_timeout());
        let srtt = self.fastest_round_trip();
        self.peers()
            .into_iter()
            .flat_map(|p| {
                let progress = &self.progress[p as usize];
                [
                    Some(progress.last_sent + interval),
                    progress.stall_deadline(last_index, timeout, interval),
                    progress.ping_deadline(last_index, timeout, srtt),
                ]
            })
            .flatten()
            .chain(self.commit_announce_at)
            .min()
            .unwrap_or(self.now + interval)
    }

    /// Sends every follower what its flow control allows: AppendEntries, or chunks of the
    /// snapshot to one whose next entry is compacted (§7).
    ///
    /// What a follower was sent is presumed lost, and it is probed again from its match, before
    /// its heartbeat falls due ([`Progress::stall_deadline`]), [`Raft::stall_timeout`] after:
    /// - entries proposed since it was last sent anything are held back behind its unanswered
    ///   probe, snapshot chunk or full window, and it has answered nothing since. A follower
    ///   that crashed and restarted, or was cut off and reconnected, got its first message up
    ///   to a heartbeat interval after the next command (the lab's crash tests spent a tenth
    ///   of their time so); one that is still gone costs one datagram more per batch of
    ///   proposals, at most one per timeout (one silent for a stall timeout is pinged sooner,
    ///   `maybe_ping`);
    /// - it answers (it did within the last heartbeat interval) but not the latest message:
    ///   under the lab's unreliable network, a lost batch to the one follower left up held
    ///   the commit a whole heartbeat interval. One that stops answering costs at most the
    ///   probes of one interval.
    ///
    /// [`Progress::stall_deadline`]: super::progress::Progress::stall_deadline
    pub(super) fn send_appends(&mut self) {
        let (now, last_index) = (self.now, self.log.last_index());
        let srtt = self.fastest_round_trip();
        let (timeout, interval) = (self.stall_timeout(), self.config.heartbeat_interval);
        for peer in self.peers() {
            let progress = &mut self.progress[peer as usize];
            let stalled = progress
                .stall_deadline(last_index, timeout, interval)
                .is_some_and(|at| now >= at);
            if stalled && progress.on_heartbeat_timeout() {
                event!(
                    debug,
                    self,
                    "APPEND",
                    "n{peer}: batches unacknowledged for {timeout:?}, probing from {}",
                    self.progress[peer as usize].next_index
                );
            } else if !stalled {
                self.maybe_ping(peer, srtt);
            }
            while self.progress[peer as usize].wants_send(self.log.last_index()) {
                if self.progress[peer as usize].next_index <= self.log.snapshot_index() {
                    self.send_snapshot_chunk(peer);
                } else {
                    self.send_append(peer);
                }
            }
        }
    }

    /// Pings `peer` if it is due one ([`Progress::ping_deadline`]; `srtt` is the leader's
    /// fastest round trip): it has been silent for a stall timeout while entries proposed
    /// since were held back behind what it was sent. An empty AppendEntries at the end of what
    /// it was sent, one round-trip timeout after the last message to it, asks where it stands:
    /// a follower that crashed and restarted lost whatever was in flight and rejects it (too
    /// short), so the leader streams again from where its log ends; one that received
    /// everything and whose answers were lost acknowledges it all. Without it a restarted
    /// follower waited for the stall timeout after the leader's last message: in one run of the
    /// lab's TestSnapshotInstallCrash2D, 25 of 30 restarts took `one()` a second look, 20 ms
    /// later. A follower that stays down costs small datagrams ever further apart (up to a
    /// stall timeout) while commands arrive, and none while none do.
    ///
    /// [`Progress::ping_deadline`]: super::progress::Progress::ping_deadline
    fn maybe_ping(&mut self, peer: NodeId, srtt: Option<Time>) {
        let (now, last_index, silence) = (self.now, self.log.last_index(), self.stall_timeout());
        let progress = &self.progress[peer as usize];
        if progress
            .ping_deadline(last_index, silence, srtt)
            .is_none_or(|at| now < at)
        {
            return;
        }
        let prev_log_index = progress.ping_point().max(self.log.snapshot_index());
        let prev_log_term = self
            .log
            .term(prev_log_index)
            .expect("a ping point is within the leader's log or at its snapshot");
        let body = MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries: Vec::new(),
            leader_commit: self.commit_index,
            read_round: self.read_round(),
            flow_epoch: progress.epoch(),
            wants_ack: true,
        };
        self.progress[peer as usize].on_ping(last_index, now);
        event!(
            debug,
            self,
            "APPEND",
            "n{peer}: silent for {silence:?} with entries held back, pinging at {prev_log_index}"
        );
        self.send(peer, body);
    }

    /// One AppendEntries from the follower's `next_index`, which is past the snapshot, or from
    /// where its unacknowledged entries begin ([`REPEAT_UNACKNOWLEDGED_BYTES`]).
    fn send_append(&mut self, to: NodeId) {
        let next_index = self.progress[to as usize].next_index;
        let max = self.config.max_append_bytes;
        let entries = match self.repeat_from(to) {
            Some(from) => {
                let entries = self.log.entries_from(from, max);
                // Only if the new entries start within it: else the pipeline would not move.
                (from + entries.len() as Index > next_index).then(|| (from, entries.to_vec()))
            }
            None => None,
        };
        let (start, entries) = entries
            .unwrap_or_else(|| (next_index, self.log.entries_from(next_index, max).to_vec()));
        let prev_log_index = start - 1;
        let prev_log_term = self
            .log
            .term(prev_log_index)
            .expect("next_index is within the leader's log");
        let last = prev_log_index + entries.len() as Index;
        let read_round = self.read_round();
        let wants_ack = !entries.is_empty()
            || !self.progress[to as usize].only_announcing()
            || !self.read_round_acked(to);
        let progress = &mut self.progress[to as usize];
        progress.on_sent(last, self.commit_index, self.now);
        let body = MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: self.commit_index,
            read_round,
            flow_epoch: progress.epoch(),
            wants_ack,
        };
        self.send(to, body);
    }

    /// Where a pipelined AppendEntries with new entries for `to` starts if it repeats the
    /// entries still unacknowledged: when they fit [`REPEAT_UNACKNOWLEDGED_BYTES`].
    fn repeat_from(&self, to: NodeId) -> Option<Index> {
        let progress = &self.progress[to as usize];
        let from = progress.unacknowledged_from()?;
        let next_index = progress.next_index;
        let unacknowledged = next_index - from;
        let repeat = self.log.entries_from(from, REPEAT_UNACKNOWLEDGED_BYTES);
        (from > self.log.snapshot_index()
            && next_index <= self.log.last_index()
            && repeat.len() as Index > unacknowledged)
            .then_some(from)
    }
}

/// Whether an AppendEntries' entries can be a leader's log suffix after `prev_log_index`:
/// consecutive indices, terms non-decreasing from `prev_log_term` and at most the leader's term.
fn is_well_formed(
    prev_log_index: Index,
    prev_log_term: Term,
    entries: &[Entry],
    term: Term,
) -> bool {
    let mut prev = (prev_log_index, prev_log_term);
    prev_log_term <= term
        && entries.iter().all(|e| {
            let ok = Some(e.index) == prev.0.checked_add(1) && e.term >= prev.1 && e.term <= term;
            prev = (e.index, e.term);
            ok
        })
}
