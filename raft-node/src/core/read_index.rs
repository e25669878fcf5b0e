//! Linearizable reads without log entries: ReadIndex (Raft thesis §6.4; etcd's ReadOnlySafe).
//!
//! A read is linearizable if it sees every write that completed before it was requested. A
//! write completes when its entry commits, so a state machine that has applied through an index
//! the leader knew committed when the read arrived serves it correctly, provided that leader was
//! still the leader then: a newer one may have committed writes it has not heard of. §6.4's
//! steps, for a read requested at the leader:
//!
//! 1. The leader must have committed an entry of its own term. Until then its commit index may
//!    lag what earlier leaders committed; once it has, Leader Completeness (§5.4) puts every
//!    entry committed in an earlier term before that entry. This core appends no no-op entry on
//!    election (the lab checks exact indices), so a service that reads proposes its own no-op
//!    when its peer becomes leader; reads requested before an entry of the term commits wait,
//!    and take their index when one does.
//! 2. The read index is the leader's commit index then.
//! 3. The leader makes sure it has not been deposed: a heartbeat round sent after the request
//!    must be acknowledged by a majority, itself included. A newer leader that committed a
//!    write before the read was requested needed a majority in its newer term for that, which
//!    intersects this one; a peer in a newer term answers with it, and an answer of a newer
//!    term deposes the leader instead of acknowledging (`step` drops replies of older terms).
//! 4. The service serves the read once its state machine has applied through the read index
//!    (the runtime's side: `Ready::reads`).
//!
//! Rounds: an AppendEntries carries `read_round`, the latest round its leader began (rounds are
//! numbered from 1 in each term the peer leads), and its reply, success or rejection, echoes it.
//! A read waits for the round after the latest begun when it was requested (step 1 passed);
//! `take_ready` begins that round, so every read of one event-loop iteration shares one round,
//! and it begins at once rather than at the next heartbeat: every follower is due an
//! AppendEntries carrying it as soon as flow control admits one (`Progress::announce_read_round`:
//! at once when nothing is in flight, else after the replies to the batches in flight, whose
//! older rounds confirm nothing new). Replies are lost, duplicated and reordered, so the leader
//! keeps only the highest round each follower acknowledged; a majority at round r or higher
//! confirms every read waiting for r or an earlier round (reads wait in request order, their
//! rounds never decreasing). A one-member cluster is its own majority: its reads are confirmed
//! when asked (after step 1).
//!
//! Every read ends once: in `Ready::reads`, or in `Ready::failed_reads` if its peer stops
//! leading first (a newer term, CheckQuorum). A peer that crashes loses its reads with it.
//!
//! Not a lease (§6.4.1): no clock is trusted; each read costs a round trip to a majority,
//! shared by every read of its round.

use super::raft::Raft;
use super::trace::event;
use super::{Index, NodeId, ProposeError, ReadState, Role, Time};
use std::collections::VecDeque;

/// The leader's reads not yet confirmed, and the reads' outcomes not yet taken.
#[derive(Debug, Default)]
pub(crate) struct Reads {
    /// Leader: the latest round begun (0: none yet in this term), which its AppendEntries carry.
    round: u64,
    /// Leader: a read waits for `round + 1`, which the next `take_ready` begins.
    round_due: bool,
    /// Leader: `acked[p]`, the highest round peer p acknowledged in this term.
    acked: Vec<u64>,
    /// Leader: reads requested before an entry of its term committed (step 1), in request order.
    unindexed: Vec<u64>,
    /// Leader: reads with their index, waiting for a majority to acknowledge their round, in
    /// request order.
    pending: VecDeque<PendingRead>,
    /// For the next `Ready`.
    confirmed: Vec<ReadState>,
    failed: Vec<u64>,
}

#[derive(Debug)]
struct PendingRead {
    id: u64,
    index: Index,
    round: u64,
}

impl Raft {
    /// §6.4 ReadIndex: asks to serve read `id` (any number the caller picks) without writing the
    /// log. `Err(NotLeader)` at once unless this peer leads. Otherwise the outcome comes in a
    /// later `Ready`:
    ///
    /// - `Ready::reads` holds `ReadState { id, index }` once the read is confirmed: the caller
    ///   serves it when its state machine has applied through `index`. `index` is the commit
    ///   index when the read was requested; the read is confirmed once (1) this leader has
    ///   committed an entry of its own term and (2) a majority, itself included, acknowledged a
    ///   heartbeat round sent after the request.
    /// - `Ready::failed_reads` holds `id` if this peer stops leading, or its term changes,
    ///   first.
    ///
    /// Every id accepted ends in exactly one of the two (unless the peer crashes).
    ///
    /// The core appends no no-op entry when it becomes leader: until an entry of the leader's
    /// term commits, reads wait, and then take the commit index as their index. A service that
    /// reads should propose a no-op of its own when its peer becomes leader.
    pub fn read_index(&mut self, id: u64, now: Time) -> Result<(), ProposeError> {
        self.advance_clock(now);
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader_id,
            });
        }
        if self.committed_in_term() {
            self.index_read(id);
            self.confirm_reads();
        } else {
            event!(
                debug,
                self,
                "READ",
                "read {id} waits for an entry of this term to commit"
            );
            self.reads.unindexed.push(id);
        }
        Ok(())
    }

    /// Step 1: the entry at the commit index is of the current term.
    pub(super) fn committed_in_term(&self) -> bool {
        self.log.term(self.commit_index) == Some(self.hard_state.current_term)
    }

    /// Steps 2–3: read `id` takes the commit index and waits for the next round.
    fn index_read(&mut self, id: u64) {
        let (index, round) = (self.commit_index, self.reads.round + 1);
        event!(
            debug,
            self,
            "READ",
            "read {id} at index {index}, round {round}"
        );
        self.reads
            .pending
            .push_back(PendingRead { id, index, round });
        self.reads.round_due = true;
    }

    /// Leader, its commit index advanced: if that committed its term's first entry, the reads
    /// waiting for it take their index.
    pub(super) fn index_waiting_reads(&mut self) {
        if self.reads.unindexed.is_empty() || !self.committed_in_term() {
            return;
        }
        for id in std::mem::take(&mut self.reads.unindexed) {
            self.index_read(id);
        }
        self.confirm_reads();
    }

    /// Leader, in `take_ready` before any AppendEntries is built: begins the round that reads
    /// wait for, due to every follower.
    pub(super) fn begin_read_round(&mut self) {
        if !std::mem::take(&mut self.reads.round_due) || self.reads.pending.is_empty() {
            return;
        }
        self.reads.round += 1;
        for peer in self.peers() {
            self.progress[peer as usize].announce_read_round();
        }
        event!(
            debug,
            self,
            "READ",
            "round {} begun for {} reads",
            self.reads.round,
            self.reads.pending.len()
        );
    }

    /// The round an AppendEntries carries.
    pub(super) fn read_round(&self) -> u64 {
        self.reads.round
    }

    /// Leader: whether `peer` acknowledged the latest round begun (so a reply to it
    /// confirms no read).
    pub(super) fn read_round_acked(&self, peer: NodeId) -> bool {
        self.reads.acked[peer as usize] >= self.reads.round
    }

    /// Leader: `from` answered, in this term, an AppendEntries of round `round`.
    pub(super) fn handle_read_ack(&mut self, from: NodeId, round: u64) {
        debug_assert_eq!(self.role, Role::Leader);
        if round > self.reads.round {
            event!(
                warn,
                self,
                "READ",
                "n{from} acknowledged round {round}, never begun"
            );
            return;
        }
        let acked = &mut self.reads.acked[from as usize];
        if round > *acked {
            *acked = round;
            self.confirm_reads();
        }
    }

    /// Confirms the reads whose round a majority acknowledged (the leader acknowledges every
    /// round itself).
    pub(super) fn confirm_reads(&mut self) {
        if self.reads.pending.is_empty() {
            return;
        }
        let id = self.config.id;
        let majority_round = self.membership.majority_value(|p| match p == id {
            true => u64::MAX,
            false => self.reads.acked[p as usize],
        });
        let reads = &mut self.reads;
        let ready = reads
            .pending
            .iter()
            .take_while(|read| read.round <= majority_round)
            .count();
        if ready == 0 {
            return;
        }
        let confirmed = reads.pending.drain(..ready).map(|read| ReadState {
            id: read.id,
            index: read.index,
        });
        reads.confirmed.extend(confirmed);
        let last = reads.confirmed.last().expect("just confirmed");
        event!(
            debug,
            self,
            "READ",
            "{ready} reads confirmed, the last {} at index {}",
            last.id,
            last.index
        );
    }

    /// A new leader starts without reads and without rounds.
    pub(super) fn reset_reads(&mut self) {
        debug_assert!(self.reads.unindexed.is_empty() && self.reads.pending.is_empty());
        self.reads.round = 0;
        self.reads.round_due = false;
        self.reads.acked = vec![0; self.config.members as usize];
    }

    /// The peer stops leading (or its term changes): no read it holds can be confirmed.
    pub(super) fn fail_reads(&mut self) {
        let failed = self.reads.unindexed.len() + self.reads.pending.len();
        let reads = &mut self.reads;
        reads.failed.append(&mut reads.unindexed);
        reads
            .failed
            .extend(reads.pending.drain(..).map(|read| read.id));
        reads.round_due = false;
        reads.acked.clear();
        if failed > 0 {
            event!(
                debug,
                self,
                "READ",
                "{failed} reads failed: no longer leader"
            );
        }
    }

    /// The reads confirmed and failed since the last call (for `take_ready`).
    pub(super) fn take_read_outcomes(&mut self) -> (Vec<ReadState>, Vec<u64>) {
        (
            std::mem::take(&mut self.reads.confirmed),
            std::mem::take(&mut self.reads.failed),
        )
    }

    pub(super) fn debug_check_reads(&self) {
        let reads = &self.reads;
        if self.role != Role::Leader {
            debug_assert!(reads.unindexed.is_empty() && reads.pending.is_empty());
            debug_assert!(!reads.round_due && reads.acked.is_empty());
            return;
        }
        debug_assert_eq!(reads.acked.len(), self.config.members as usize);
        debug_assert!(reads.acked.iter().all(|&r| r <= reads.round));
        debug_assert!(reads.unindexed.is_empty() || !self.committed_in_term());
        debug_assert!(reads
            .pending
            .iter()
            .zip(reads.pending.iter().skip(1))
            .all(|(a, b)| a.round <= b.round && a.index <= b.index));
        debug_assert!(reads
            .pending
            .back()
            .is_none_or(|r| r.round <= reads.round + 1));
    }
}
