//! The leader's view of one follower: Figure 2's `next_index`/`match_index` plus flow control.
//!
//! A follower is in one of three states (the shape etcd/raft uses):
//!
//! - **Probe**: the leader does not know where the follower's log matches its own. It sends one
//!   AppendEntries at a time, starting at `next_index`, and waits for the answer (or for the
//!   heartbeat timer, in case it was lost) before sending another. Rejections move `next_index`
//!   back (fast backup, see `replication.rs`).
//! - **Replicate**: the follower acknowledged a match, so the leader streams: after sending a
//!   batch it advances `next_index` past it without waiting (pipelining), keeping at most
//!   [`MAX_INFLIGHT`] unacknowledged batches. A rejection for a conflicting term, or a heartbeat
//!   interval with batches still unacknowledged (presumed lost), drops back to Probe from
//!   `match_index + 1`; a follower that is only short streams again from where its log ends.
//! - **Snapshot**: `next_index` fell behind the leader's snapshot, so the entries it needs are
//!   gone (§7). The leader sends its snapshot one chunk at a time (Figure 13), each from the
//!   offset the follower last acknowledged, and resends when the heartbeat timer fires with the
//!   chunk unanswered. Once the follower's log covers the snapshot it is in Replicate after it.
//!
//! Besides entries, an AppendEntries carries the leader's commit index and its latest ReadIndex
//! round. `commit_sent` remembers the commit index last sent, so the leader can tell which
//! followers have not heard of a newer one (see `replication.rs` for when it announces it, and
//! `read_index.rs` for rounds).
//!
//! `heard_at` records when the follower last answered anything (`check_quorum.rs`), and
//! `answered` whether it ever answered this leader (a learner catching up, `reconfigure.rs`).
//!
//! Replies arrive lost, duplicated and reordered, so every update is monotone or guarded:
//! `match_index` never decreases, a success never moves `next_index` backwards, a rejection
//! is acted on only when it answers a request of the current *flow epoch*, and a snapshot
//! acknowledgement only when it moves the offset (so a duplicated one cannot double the chunks
//! in flight).
//!
//! Flow epochs: each time the leader gives up on what it sent a follower and starts over from
//! another point (it backs up to Probe, or switches to the snapshot) it begins a new epoch.
//! Every AppendEntries carries the epoch it was sent in and the reply echoes it. A rejection's
//! `prev_log_index` alone cannot tell a stale answer from a current one: after backing up, the
//! new pipeline sends requests with the same `prev_log_index` values as the old one, so a late
//! duplicate of an old rejection above `match_index` would reset a pipeline that is working.
//! Within an epoch at most one rejection is acted on, since acting on it starts the next.

use super::{Index, Time};
use std::collections::VecDeque;

/// Unacknowledged AppendEntries batches a leader keeps in flight to one follower.
pub const MAX_INFLIGHT: usize = 8;

/// The shortest interval between pings to a silent follower ([`Progress::ping_deadline`]).
pub const MIN_PING_INTERVAL: Time = Time::from_millis(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlowState {
    Probe,
    Replicate,
    /// Sending the snapshot whose last included index is `index`; the follower holds its bytes
    /// before `offset`. Meanwhile `next_index <= index`: the entries it needs are compacted.
    Snapshot {
        index: Index,
        offset: u64,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// Figure 2: index of the next log entry to send to this follower.
    /// Invariant: `match_index < next_index <= leader's last index + 1`.
    pub next_index: Index,
    /// Figure 2: highest index known to be replicated on this follower. Never decreases.
    pub match_index: Index,
    state: FlowState,
    /// Probe and Snapshot: a message (the probe, a chunk) is outstanding and no other is sent
    /// until it is answered or the heartbeat timer fires.
    awaiting_reply: bool,
    /// Replicate: the last index of each unacknowledged batch and when it went, oldest first.
    inflight: VecDeque<(Index, Time)>,
    /// The smoothed round trip of this follower's batches (RFC 6298's SRTT, gain 1/8): from
    /// a batch's sending to the success that acknowledges it. `None` before the first.
    srtt: Option<Time>,
    /// When the last ping went ([`Progress::ping_deadline`]), the leader's last index then, and
    /// how many went since the follower last answered.
    pinged_at: Time,
    pinged_through: Index,
    pings_unanswered: u32,
    /// When an AppendEntries or a chunk was last sent; the next heartbeat is due one interval
    /// later.
    pub last_sent: Time,
    /// The last entry the latest AppendEntries carried (or would have: its `prev_log_index`).
    sent_through: Index,
    /// Send an AppendEntries at the next flush even if it carries no entries.
    heartbeat_due: bool,
    /// The `leader_commit` of the last AppendEntries sent.
    commit_sent: Index,
    /// Send an AppendEntries, even an empty one, once no batch is in flight: to announce a
    /// commit index above `commit_sent`, or a new ReadIndex round (`read_index.rs`); every
    /// AppendEntries carries both. (An empty AppendEntries overtaking a batch on the network
    /// would be rejected, and the rejection would drop the follower back to Probe.)
    announce_due: bool,
    /// When the follower last answered (the leader's election for a new leader): CheckQuorum
    /// counts the followers that answered within the last maximum election timeout.
    pub heard_at: Time,
    /// The follower answered this leader at least once.
    answered: bool,
    /// The current flow epoch (above). Starts at 1: 0 marks the refusal of a request of an
    /// older term, which answers no epoch.
    epoch: u64,
}

impl Progress {
    /// A follower's progress as a new leader first sees it (Figure 2, "reinitialized after
    /// election"): `next_index` just past the leader's log, nothing known to match. The initial
    /// empty AppendEntries (§5.2) is due at once.
    pub fn new(next_index: Index, now: Time) -> Progress {
        Progress {
            next_index,
            match_index: 0,
            state: FlowState::Probe,
            awaiting_reply: false,
            inflight: VecDeque::new(),
            srtt: None,
            pinged_at: now,
            pinged_through: 0,
            pings_unanswered: 0,
            last_sent: now,
            sent_through: 0,
            heartbeat_due: true,
            commit_sent: 0,
            announce_due: false,
            heard_at: now,
            answered: false,
            epoch: 1,
        }
    }

    /// Replication to this follower starts afresh within the leader's term (a member joining):
    /// as [`Progress::new`], in a later epoch than anything sent it before.
    pub fn restart(&mut self, next_index: Index, now: Time) {
        let epoch = self.epoch + 1;
        *self = Progress {
            epoch,
            ..Progress::new(next_index, now)
        };
    }

    /// The flow epoch an AppendEntries sent now belongs to.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Probe, Replicate or Snapshot (above).
    pub fn state(&self) -> FlowState {
        self.state
    }

    /// The follower answered the leader (an AppendEntries or a snapshot chunk).
    pub fn mark_active(&mut self, now: Time) {
        self.heard_at = self.heard_at.max(now);
        self.answered = true;
        self.pings_unanswered = 0;
    }

    /// Whether the follower answered this leader, last within `window` of `now`.
    pub fn answered_within(&self, now: Time, window: Time) -> bool {
        self.answered && self.active_within(now, window)
    }

    /// Whether the follower answered within `window` of `now`, its election counting as an
    /// answer (CheckQuorum, §6.2).
    pub fn active_within(&self, now: Time, window: Time) -> bool {
        now < self.heard_at + window
    }

    /// Whether a message should go to this follower now, given the leader's last index.
    pub fn wants_send(&self, last_index: Index) -> bool {
        let has_entries = self.next_index <= last_index;
        match self.state {
            FlowState::Probe => {
                !self.awaiting_reply && (has_entries || self.heartbeat_due || self.announce_due)
            }
            FlowState::Replicate => {
                let announce_due = self.announce_due && self.inflight.is_empty();
                self.inflight.len() < MAX_INFLIGHT
                    && (has_entries || self.heartbeat_due || announce_due)
            }
            FlowState::Snapshot { .. } => !self.awaiting_reply,
        }
    }

    /// Records an AppendEntries sent at `now` whose last entry is `last` (`next_index - 1` when
    /// it carried none) and whose `leader_commit` is `commit`.
    pub fn on_sent(&mut self, last: Index, commit: Index, now: Time) {
        debug_assert!(!matches!(self.state, FlowState::Snapshot { .. }));
        self.last_sent = now;
        self.sent_through = last;
        self.heartbeat_due = false;
        self.commit_sent = commit;
        self.announce_due = false;
        match self.state {
            FlowState::Probe => self.awaiting_reply = true,
            FlowState::Replicate if last >= self.next_index => {
                self.inflight.push_back((last, now));
                self.next_index = last + 1;
            }
            FlowState::Replicate | FlowState::Snapshot { .. } => {}
        }
    }

    /// The offset to send the snapshot ending at `index` from: where the follower stands if
    /// that snapshot is the one being sent, else 0, starting to send it (Snapshot state).
    pub fn snapshot_offset(&mut self, index: Index) -> u64 {
        match self.state {
            FlowState::Snapshot {
                index: sending,
                offset,
            } if sending == index => offset,
            _ => {
                self.state = FlowState::Snapshot { index, offset: 0 };
                self.awaiting_reply = false;
                self.inflight.clear();
                self.epoch += 1;
                0
            }
        }
    }

    /// Records a snapshot chunk sent at `now`.
    pub fn on_chunk_sent(&mut self, now: Time) {
        debug_assert!(matches!(self.state, FlowState::Snapshot { .. }));
        self.last_sent = now;
        self.heartbeat_due = false;
        self.awaiting_reply = true;
    }

    /// The follower holds bytes `[0, received)` of the snapshot ending at `index`. Returns
    /// whether that moved the offset the next chunk starts at. An answer equal to the current
    /// offset is a duplicate of the one that set it and changes nothing.
    pub fn on_snapshot_received(&mut self, index: Index, received: u64) -> bool {
        match self.state {
            FlowState::Snapshot {
                index: sending,
                offset,
            } if sending == index && received != offset => {
                self.state = FlowState::Snapshot {
                    index,
                    offset: received,
                };
                self.awaiting_reply = false;
                true
            }
            _ => false,
        }
    }

    /// A new leader's first AppendEntries to this follower waits for the heartbeat timer
    /// (a voter that has just granted its vote, `Raft::become_leader`).
    pub fn defer_first_heartbeat(&mut self) {
        self.heartbeat_due = false;
    }

    /// The leader's commit index is `commit`: if this follower was last sent an older one, an
    /// AppendEntries is due to announce it.
    pub fn announce_commit(&mut self, commit: Index) {
        if self.commit_sent < commit {
            self.announce_due = true;
        }
    }

    /// The follower says it knows commits through `commit` only (its announcement was lost):
    /// announce the leader's again, as if only `commit` had been sent.
    pub fn resend_commit(&mut self, commit: Index) {
        self.commit_sent = self.commit_sent.min(commit);
        self.announce_due = true;
    }

    /// The leader began a ReadIndex round: an AppendEntries is due to carry it (§6.4). A
    /// follower being sent the snapshot gets none; the round is confirmed without it, or when
    /// it has caught up.
    pub fn announce_read_round(&mut self) {
        self.announce_due = true;
    }

    /// Whether the AppendEntries about to be sent, if it carries no entries, only announces a
    /// commit index or read round to a follower known to match: no heartbeat is due, and
    /// nothing is in flight whose loss a reply would reveal.
    pub fn only_announcing(&self) -> bool {
        self.state == FlowState::Replicate && !self.heartbeat_due && self.inflight.is_empty()
    }

    /// Where the entries sent and not yet acknowledged begin, while pipelining some.
    pub fn unacknowledged_from(&self) -> Option<Index> {
        (self.state == FlowState::Replicate && !self.inflight.is_empty())
            .then_some(self.match_index + 1)
    }

    /// Whether this follower now needs a heartbeat.
    pub fn heartbeat_expired(&self, now: Time, interval: Time) -> bool {
        now >= self.last_sent + interval
    }

    /// Whether nothing more may go to this follower until it answers: its probe or snapshot
    /// chunk is outstanding, or its window of batches is full.
    fn blocked(&self) -> bool {
        match self.state {
            FlowState::Replicate => self.inflight.len() >= MAX_INFLIGHT,
            FlowState::Probe | FlowState::Snapshot { .. } => self.awaiting_reply,
        }
    }

    /// When what this follower was sent is presumed lost before its heartbeat falls due
    /// (`replication.rs`, `send_appends`), given the leader's last index, `timeout`
    /// and the heartbeat `interval`; `None` while nothing is owed or the follower is not heard:
    /// - entries proposed since it was last sent anything are held back behind what it was
    ///   sent (the probe, a full window of batches, a snapshot chunk): `timeout` after the last
    ///   message to it or from it;
    /// - it answered within the last interval, so it is up, but has left the latest message
    ///   to it (a batch, the probe, a snapshot chunk) unanswered: `timeout` after that
    ///   message, while it still counts as up.
    pub fn stall_deadline(&self, last_index: Index, timeout: Time, interval: Time) -> Option<Time> {
        let unanswered = match self.state {
            FlowState::Replicate => !self.inflight.is_empty(),
            FlowState::Probe | FlowState::Snapshot { .. } => self.awaiting_reply,
        };
        let held_back = (self.blocked() && last_index > self.sent_through)
            .then(|| self.last_sent.max(self.heard_at) + timeout);
        let lost = Some(self.last_sent + timeout)
            .filter(|&at| unanswered && self.answered && at < self.heard_at + interval);
        held_back.into_iter().chain(lost).min()
    }

    /// When this follower is due a ping (`replication.rs`, `Raft::maybe_ping`): it is owed
    /// entries proposed since it was last sent or pinged, held back behind what it was sent
    /// (the probe, a full window of batches), and it has been silent for `silence`; one
    /// round-trip timeout after the last message to it: four smoothed round trips (at least
    /// [`MIN_PING_INTERVAL`]), doubled for every ping it left unanswered (RFC 6298's backoff:
    /// a follower that stays down is pinged ever less often), at most `silence`. `srtt`: its
    /// own, else the leader's smallest. `None` while it is sent the snapshot, or without any
    /// round trip to go by.
    pub fn ping_deadline(
        &self,
        last_index: Index,
        silence: Time,
        srtt: Option<Time>,
    ) -> Option<Time> {
        let sending_snapshot = matches!(self.state, FlowState::Snapshot { .. });
        if sending_snapshot
            || !self.blocked()
            || last_index <= self.sent_through.max(self.pinged_through)
        {
            return None;
        }
        let backoff = 1 << self.pings_unanswered.min(16);
        let rto = (self.srtt.or(srtt)? * 4 * backoff).clamp(MIN_PING_INTERVAL, silence);
        Some((self.heard_at + silence).max(self.last_sent.max(self.pinged_at) + rto))
    }

    /// Where a ping asks the follower to match: the end of what it was sent.
    pub fn ping_point(&self) -> Index {
        self.sent_through
    }

    /// Records a ping sent at `now`, when the leader's last index was `last_index`.
    pub fn on_ping(&mut self, last_index: Index, now: Time) {
        self.pinged_at = now;
        self.pinged_through = last_index;
        self.pings_unanswered += 1;
    }

    /// The smoothed round trip of this follower's batches, once measured.
    pub fn srtt(&self) -> Option<Time> {
        self.srtt
    }

    /// The heartbeat timer fired: nothing was sent for a whole interval. A probe or snapshot
    /// chunk still unanswered is repeated; batches still unacknowledged are presumed lost, so
    /// the leader no longer knows where the follower's log ends and probes again from the last
    /// known match (one batch per interval while replies stay away, instead of a window's
    /// worth). Returns whether in-flight batches were abandoned.
    pub fn on_heartbeat_timeout(&mut self) -> bool {
        self.heartbeat_due = true;
        self.awaiting_reply = false;
        if self.inflight.is_empty() {
            return false;
        }
        self.inflight.clear();
        self.state = FlowState::Probe;
        self.next_index = self.match_index + 1;
        self.epoch += 1;
        true
    }

    /// A success reply (or an installed snapshot) says the follower's log matches through
    /// `index`. Returns whether `match_index` advanced. Old or duplicated successes carry
    /// smaller indices and change nothing (both indices only grow). `now`: when it arrived;
    /// the newest batch it acknowledges gives a round-trip sample (its own acknowledgement or
    /// a later one's that covers it, so a lost acknowledgement does not inflate it).
    pub fn on_success(&mut self, index: Index, now: Time) -> bool {
        let advanced = index > self.match_index;
        self.match_index = self.match_index.max(index);
        let mut acknowledged = None;
        while let Some(&(last, sent)) = self.inflight.front() {
            if last > index {
                break;
            }
            acknowledged = Some(sent);
            self.inflight.pop_front();
        }
        if let Some(sent) = acknowledged {
            let sample = now.saturating_sub(sent);
            self.srtt = Some(self.srtt.map_or(sample, |srtt| (srtt * 7 + sample) / 8));
        }
        match self.state {
            FlowState::Snapshot { index: sending, .. } if self.match_index < sending => {
                // Still short of the snapshot: the entries it needs next are compacted.
                self.next_index = self.next_index.max(self.match_index + 1);
            }
            FlowState::Probe | FlowState::Snapshot { .. } => {
                self.state = FlowState::Replicate;
                self.awaiting_reply = false;
                self.next_index = self.match_index + 1;
            }
            FlowState::Replicate => self.next_index = self.next_index.max(self.match_index + 1),
        }
        advanced
    }

    /// A rejection of the AppendEntries whose `prev_log_index` was `rejected`, sent in flow
    /// epoch `epoch`, with `hint` the leader's fast-backup guess for the new `next_index`;
    /// `short`: the follower's log ends before `rejected` (no conflicting term). Returns
    /// whether it was acted on.
    ///
    /// Stale rejections are ignored: one of an earlier epoch answers a request the leader has
    /// already given up on (while probing, an older probe; while sending the snapshot, an
    /// AppendEntries from before it), and one at or below `match_index` predates a success
    /// (within a term a follower's matching prefix only grows).
    ///
    /// A follower that is only short while pipelining most often received a batch before the
    /// one in front of it (datagrams reorder), and matches through its last entry: the leader
    /// streams again from there, staying in Replicate (if it does not match there, the next
    /// rejection names a conflicting term). Backing up to Probe instead, one
    /// request per round trip, made every reordering cost round trips, and a lost probe a
    /// heartbeat interval (under the lab's unreliable network, a follower's rejections came
    /// every few milliseconds). A conflicting term means the leader does not know where the
    /// logs match: it probes.
    pub fn on_reject(&mut self, rejected: Index, hint: Index, short: bool, epoch: u64) -> bool {
        if epoch != self.epoch || rejected <= self.match_index {
            return false;
        }
        // Back up strictly below the rejected point, never to or below a known match.
        self.next_index = hint.clamp(self.match_index + 1, rejected);
        if !(short && self.state == FlowState::Replicate) {
            self.state = FlowState::Probe;
        }
        self.awaiting_reply = false;
        self.inflight.clear();
        self.epoch += 1;
        true
    }
}
