//! Log compaction (§7) and InstallSnapshot (Figure 13).
//!
//! The service snapshots its state through an index it has applied ([`Raft::snapshot`]); the
//! log drops the entries the snapshot covers, and the snapshot goes out in the next
//! `Ready::persist`, which discards those entries on disk too.
//!
//! A leader whose follower needs a compacted entry sends its snapshot instead (Snapshot state in
//! `progress.rs`): in chunks of at most `max_append_bytes`, so that each fits one datagram, one
//! chunk at a time. The follower answers every chunk with how many bytes it holds, and the
//! leader sends the next chunk from there; when the heartbeat timer fires with a chunk
//! unanswered, it resends from the last acknowledged offset. The follower accepts only the chunk
//! that continues what it holds: lost, duplicated and reordered chunks are discarded, and its
//! answer puts the leader back on track. On the last chunk it installs the snapshot (receiver
//! steps 5–8) and hands it to the service in the apply stream, ahead of the entries after it.
//!
//! A snapshot no newer than the follower's commit index covers nothing the follower lacks: it
//! is ignored but answered as done, so the leader moves on to AppendEntries.

use super::raft::Raft;
use super::trace::event;
use super::{Index, Membership, MessageBody, NodeId, Role, Snapshot, SnapshotError, Term};

/// A snapshot a follower is receiving: the chunks so far, contiguous from offset 0.
#[derive(Debug)]
pub(crate) struct PendingSnapshot {
    /// The term it is received in. One leader sends it in that term, so every chunk is a piece
    /// of the same bytes; a chunk from another term never continues it.
    term: Term,
    last_included_index: Index,
    last_included_term: Term,
    data: Vec<u8>,
}

impl Raft {
    /// The lab's `Snapshot(index, snapshot)`: the service's state through `index`, which it has
    /// applied, replaces the log entries through `index` (§7). An index the current snapshot
    /// already covers is ignored: the service may lag behind a snapshot installed from the
    /// leader.
    pub fn snapshot(&mut self, index: Index, data: Vec<u8>) -> Result<(), SnapshotError> {
        if index <= self.log.snapshot_index() {
            event!(
                debug,
                self,
                "SNAP",
                "ignoring snapshot through {index}: have one through {}",
                self.log.snapshot_index()
            );
            return Ok(());
        }
        if index > self.last_applied {
            return Err(SnapshotError::NotApplied {
                index,
                last_applied: self.last_applied,
            });
        }
        let last_included_term = self
            .log
            .term(index)
            .expect("applied entries after the snapshot are in the log");
        let (_, membership) = self.membership_at(index);
        self.log.compact(Snapshot {
            last_included_index: index,
            last_included_term,
            membership,
            data,
        });
        event!(
            info,
            self,
            "SNAP",
            "snapshot through {index}: log holds {}..={}",
            self.log.first_index(),
            self.log.last_index()
        );
        self.debug_check_invariants();
        Ok(())
    }

    /// Leader: the next chunk of the snapshot to a follower whose next entry is compacted.
    pub(super) fn send_snapshot_chunk(&mut self, to: NodeId) {
        let snapshot = self
            .log
            .snapshot()
            .expect("entries are compacted only into a snapshot");
        let progress = &mut self.progress[to as usize];
        let len = snapshot.data.len();
        // An acknowledgement past the end is bogus; resending the last chunk settles it.
        let start = (progress.snapshot_offset(snapshot.last_included_index) as usize).min(len);
        let end = len.min(start + self.config.max_append_bytes);
        let body = MessageBody::InstallSnapshot {
            last_included_index: snapshot.last_included_index,
            last_included_term: snapshot.last_included_term,
            membership: snapshot.membership.clone(),
            offset: start as u64,
            data: snapshot.data[start..end].to_vec(),
            done: end == len,
        };
        progress.on_chunk_sent(self.now);
        self.send(to, body);
    }

    /// Figure 13, InstallSnapshot receiver (step 1, the term check, is done by `step`). The
    /// snapshot is named by its last included index and term, and carries the configuration
    /// as of that index.
    pub(super) fn handle_install_snapshot(
        &mut self,
        leader: NodeId,
        (last_included_index, last_included_term, membership): (Index, Term, Membership),
        offset: u64,
        data: Vec<u8>,
        done: bool,
    ) {
        debug_assert_eq!(self.role, Role::Follower);
        self.heard_from_leader(leader);

        if last_included_index <= self.commit_index {
            event!(
                debug,
                self,
                "SNAP",
                "ignoring snapshot through {last_included_index} from n{leader}: committed \
                 through {}",
                self.commit_index
            );
            return self.reply_snapshot(leader, last_included_index, true, 0);
        }
        let term = self.hard_state.current_term;
        let received = match &self.pending_snapshot {
            Some(p)
                if (p.term, p.last_included_index, p.last_included_term)
                    == (term, last_included_index, last_included_term) =>
            {
                p.data.len() as u64
            }
            _ => 0,
        };
        if offset != received {
            event!(
                debug,
                self,
                "SNAP",
                "discarding chunk at {offset} of snapshot through {last_included_index}: \
                 holding {received} bytes"
            );
            return self.reply_snapshot(leader, last_included_index, false, received);
        }
        // Steps 2–3: a first chunk starts a new snapshot, replacing a partial one; the others
        // continue it.
        let pending = match &mut self.pending_snapshot {
            Some(pending) if offset > 0 => {
                pending.data.extend_from_slice(&data);
                pending
            }
            slot => slot.insert(PendingSnapshot {
                term,
                last_included_index,
                last_included_term,
                data,
            }),
        };
        if !done {
            // Step 4.
            let received = pending.data.len() as u64;
            return self.reply_snapshot(leader, last_included_index, false, received);
        }
        let pending = self.pending_snapshot.take().expect("filled above");
        self.install_snapshot(Snapshot {
            last_included_index,
            last_included_term,
            membership,
            data: pending.data,
        });
        self.reply_snapshot(leader, last_included_index, true, 0);
    }

    /// Figure 13 steps 5–8, for a snapshot past the commit index: the log keeps the entries
    /// after the snapshot if it holds its last included entry, else it is discarded; the
    /// service gets the snapshot at the next `take_ready`.
    fn install_snapshot(&mut self, snapshot: Snapshot) {
        let index = snapshot.last_included_index;
        debug_assert!(index > self.commit_index);
        event!(
            info,
            self,
            "SNAP",
            "installing snapshot through {index} (term {}, {} bytes)",
            snapshot.last_included_term,
            snapshot.data.len()
        );
        self.log.install(snapshot);
        self.refresh_membership();
        self.commit_index = index;
        self.last_applied = index;
        self.apply_snapshot = true;
    }

    fn reply_snapshot(&mut self, leader: NodeId, index: Index, done: bool, received: u64) {
        let body = MessageBody::InstallSnapshotReply {
            last_included_index: index,
            done,
            received,
        };
        self.send(leader, body);
    }

    /// The leader's side of an InstallSnapshot reply in its own term.
    pub(super) fn handle_snapshot_reply(
        &mut self,
        from: NodeId,
        last_included_index: Index,
        done: bool,
        received: u64,
    ) {
        debug_assert_eq!(self.role, Role::Leader);
        if last_included_index > self.log.snapshot_index() {
            event!(
                warn,
                self,
                "SNAP",
                "n{from} answered snapshot through {last_included_index}, never sent"
            );
            return;
        }
        let progress = &mut self.progress[from as usize];
        if done {
            // The follower's log now matches through the snapshot. That is at most the commit
            // index (a snapshot covers applied entries only), so nothing new commits.
            if progress.on_success(last_included_index, self.now) {
                event!(
                    debug,
                    self,
                    "SNAP",
                    "n{from} holds snapshot through {last_included_index}"
                );
            }
        } else if progress.on_snapshot_received(last_included_index, received) {
            event!(
                trace,
                self,
                "SNAP",
                "n{from} holds {received} bytes of snapshot through {last_included_index}"
            );
        }
    }
}
