//! The node's side of the clerk protocol (`kv::protocol`), for whichever service answers clerks
//! (`service::ClerkService`: the KV, the shard controller): a request is answered at once (not
//! the leader, an operation the service does not take, a retried write already applied); a
//! write (Put, Append, Join, Leave, Move) is proposed to the log and answered when its entry
//! applies; a read (Get, Query) is asked of ReadIndex (thesis §6.4) and answered from the state
//! once the read is confirmed and the service has applied through its index, so a read writes
//! nothing to the log. An operation whose entry is lost to a leader change, or a read its
//! leader could not confirm, is answered `WrongLeader`, and the clerk retries elsewhere: the
//! service's clerk table makes that safe for writes, and reads change nothing.
//!
//! Makes no protocol decision of its own: who leads, what commits and in what order is Raft's;
//! this only remembers who is waiting for which index.

use crate::core::{Index, ProposeError, Raft, ReadState, Role, Status, Term, Time};
use crate::kv::protocol::Command;
use crate::kv::store::Applied;
use crate::kv::{ClerkId, ClerkReply, ClerkRequest, Op, Outcome};
use crate::service::{Access, ClerkService};
use log::{debug, info};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

/// An answer to send: to the address the request came from.
pub type Answer = (SocketAddr, ClerkReply);

#[derive(Default)]
pub struct ClerkFront {
    /// Operations proposed for clerks, by the index they were proposed at.
    waiting: BTreeMap<Index, Waiting>,
    /// The term the waiting operations were proposed in, while this node leads it.
    leading: Option<Term>,
    /// Reads asked of ReadIndex, by read id, until the core confirms or fails them.
    reading: HashMap<u64, (Waiting, Op)>,
    /// Confirmed reads waiting for the service to apply through their index.
    confirmed: Vec<(Index, Waiting, Op)>,
    next_read: u64,
}

struct Waiting {
    clerk: ClerkId,
    seq: u64,
    source: SocketAddr,
}

impl ClerkFront {
    /// A clerk's request. Returns the answer if it can be given now; otherwise the operation was
    /// proposed and [`ClerkFront::applied`] answers it.
    pub fn request(
        &mut self,
        raft: &mut Raft,
        service: Option<&dyn ClerkService>,
        request: ClerkRequest,
        source: SocketAddr,
        now: Time,
    ) -> Option<Answer> {
        let ClerkRequest { clerk, seq, op } = request;
        let answer = |outcome| {
            Some((
                source,
                ClerkReply {
                    clerk,
                    seq,
                    outcome,
                },
            ))
        };
        let Some((service, access)) = service.and_then(|s| Some((s, s.access(&op)?))) else {
            return answer(Outcome::NoService);
        };
        if access == Access::Read {
            let id = self.next_read;
            self.next_read += 1;
            return match raft.read_index(id, now) {
                Ok(()) => {
                    debug!("clerk {clerk:x} seq {seq}: read {id} asked");
                    let waiting = Waiting { clerk, seq, source };
                    self.reading.insert(id, (waiting, op));
                    None
                }
                Err(ProposeError::NotLeader { leader }) => answer(Outcome::WrongLeader { leader }),
                Err(e) => unreachable!("read_index refuses only as NotLeader: {e:?}"),
            };
        }
        // Applied means committed: the answer is known, whoever leads. A refusal (a replica
        // group's WrongGroup) comes from the leader only: a follower behind would turn the
        // clerk away from a group that does serve the key.
        if let Some(outcome) = service.answer_now(clerk, seq, &op) {
            if matches!(outcome, Outcome::Ok { .. }) || raft.status().role == Role::Leader {
                return answer(outcome);
            }
        }
        let command = Command::Op { clerk, seq, op }.encode();
        match raft.propose(command, now) {
            Ok((index, term)) => {
                debug!("clerk {clerk:x} seq {seq}: proposed at index {index} in t{term}");
                self.leading = Some(term);
                if let Some(replaced) = self.waiting.insert(index, Waiting { clerk, seq, source }) {
                    // Proposed in an earlier term at the same index, and overwritten since.
                    return Some(wrong_leader(replaced, Some(raft.status().id)));
                }
                None
            }
            Err(ProposeError::NotLeader { leader }) => answer(Outcome::WrongLeader { leader }),
            // A newer leader may lead elsewhere: the clerk tries the next node.
            Err(ProposeError::OutOfTouch { .. }) => answer(Outcome::WrongLeader { leader: None }),
            // The clerk retries, at the target once it leads.
            Err(ProposeError::Transferring { to }) => {
                answer(Outcome::WrongLeader { leader: Some(to) })
            }
            Err(ProposeError::TooLarge { size, max }) => {
                info!("clerk {clerk:x} seq {seq}: {size}-byte operation over the {max}-byte limit");
                // Nobody can take it; an honest "not here" keeps the clerk trying until it
                // gives up, which is what an operation that cannot be done should get.
                answer(Outcome::WrongLeader { leader: None })
            }
        }
    }

    /// The entry at `index` applied, and was the clerk operation `applied` (or a no-op, or not
    /// a KV command: `None`). Answers whoever waits for that index.
    pub fn applied(&mut self, index: Index, applied: Option<&Applied>) -> Option<Answer> {
        let waiting = self.waiting.remove(&index)?;
        match applied {
            Some(a) if a.clerk == waiting.clerk && a.seq == waiting.seq => Some((
                waiting.source,
                ClerkReply {
                    clerk: a.clerk,
                    seq: a.seq,
                    outcome: if a.wrong_group {
                        Outcome::WrongGroup
                    } else {
                        Outcome::Ok {
                            value: String::new(),
                        }
                    },
                },
            )),
            // Another leader's entry took the index.
            _ => Some(wrong_leader(waiting, None)),
        }
    }

    /// What the core made of the reads this iteration: confirmed ones wait for the store,
    /// failed ones are answered `WrongLeader`.
    pub fn reads(
        &mut self,
        confirmed: &[ReadState],
        failed: &[u64],
        leader: Option<u32>,
    ) -> Vec<Answer> {
        for read in confirmed {
            if let Some((waiting, key)) = self.reading.remove(&read.id) {
                self.confirmed.push((read.index, waiting, key));
            }
        }
        failed
            .iter()
            .filter_map(|id| self.reading.remove(id))
            .map(|(waiting, _)| wrong_leader(waiting, leader))
            .collect()
    }

    /// Answers every confirmed read whose index the service has applied through.
    pub fn serve_reads(&mut self, service: &dyn ClerkService, last_applied: Index) -> Vec<Answer> {
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.confirmed)
            .into_iter()
            .partition(|(index, _, _)| *index <= last_applied);
        self.confirmed = waiting;
        ready
            .into_iter()
            .map(|(_, w, op)| {
                (
                    w.source,
                    ClerkReply {
                        clerk: w.clerk,
                        seq: w.seq,
                        outcome: service.read(&op),
                    },
                )
            })
            .collect()
    }

    /// A snapshot installed through `index`: whatever waited at or below it is unknowable here
    /// (the clerk's retry finds it applied, or applies it).
    pub fn skipped_to(&mut self, index: Index) -> Vec<Answer> {
        let rest = self.waiting.split_off(&(index + 1));
        let skipped = std::mem::replace(&mut self.waiting, rest);
        skipped
            .into_values()
            .map(|w| wrong_leader(w, None))
            .collect()
    }

    /// After each loop iteration: a node that no longer leads the term it proposed in answers
    /// every waiting clerk `WrongLeader` (their entries may still commit; the retry is safe).
    pub fn check_leadership(&mut self, status: &Status) -> Vec<Answer> {
        let still = status.role == Role::Leader && Some(status.term) == self.leading;
        if still || self.waiting.is_empty() {
            return Vec::new();
        }
        self.leading = None;
        std::mem::take(&mut self.waiting)
            .into_values()
            .map(|w| wrong_leader(w, status.leader))
            .collect()
    }
}

fn wrong_leader(waiting: Waiting, leader: Option<u32>) -> Answer {
    (
        waiting.source,
        ClerkReply {
            clerk: waiting.clerk,
            seq: waiting.seq,
            outcome: Outcome::WrongLeader { leader },
        },
    )
}
