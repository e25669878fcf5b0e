//! The ledger of ReadIndex reads (§6.4): every read the simulator asked for, what the cluster
//! knew when it was asked, and how it ended. The checks on reads (`invariants.rs` states them)
//! run as each outcome comes out of a `Ready`.
//!
//! Read ids are dense from 0, so the ledger is a vector indexed by id: no map to iterate.

use super::invariants::{Broken, LINEARIZABLE_READS, READ_ENDS_ONCE};
use crate::core::{Index, Membership, NodeId, ReadState, Term, Time};

/// How a read ended, so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Waiting,
    /// Confirmed at this read index (`Ready::reads`).
    Confirmed(Index),
    /// In `Ready::failed_reads`.
    Failed,
    /// Its peer crashed first.
    Lost,
}

/// One read, as asked.
#[derive(Clone, Debug)]
struct Read {
    peer: NodeId,
    /// The term its peer led when asked.
    term: Term,
    at: Time,
    /// The highest index any peer knew committed when it was asked.
    known_committed: Index,
    /// The peers that had been in a term above `term` when it was asked.
    peers_above: Vec<NodeId>,
    outcome: Outcome,
}

#[derive(Default)]
pub struct Reads {
    reads: Vec<Read>,
    waiting: usize,
    confirmed: usize,
    failed: usize,
}

impl Reads {
    /// The id the next read asked for gets.
    pub fn next_id(&self) -> u64 {
        self.reads.len() as u64
    }

    /// Peer `peer`, leading `term`, accepted read [`Reads::next_id`] at `at`, when the cluster
    /// had committed through `known_committed` and `peers_above` were in a newer term.
    pub fn asked(
        &mut self,
        peer: NodeId,
        term: Term,
        at: Time,
        known_committed: Index,
        peers_above: Vec<NodeId>,
    ) {
        self.reads.push(Read {
            peer,
            term,
            at,
            known_committed,
            peers_above,
            outcome: Outcome::Waiting,
        });
        self.waiting += 1;
    }

    /// Reads not ended yet.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Reads confirmed so far.
    pub fn confirmed(&self) -> usize {
        self.confirmed
    }

    /// Reads failed so far.
    pub fn failed(&self) -> usize {
        self.failed
    }

    pub fn outcome(&self, id: u64) -> Option<Outcome> {
        self.reads.get(id as usize).map(|r| r.outcome)
    }

    /// Peer `peer`, now in `term`, confirmed `read` with a majority of `membership` (its
    /// configuration when it confirmed). `committed` is the highest index committed in the
    /// cluster.
    pub fn confirm(
        &mut self,
        peer: NodeId,
        term: Term,
        read: ReadState,
        committed: Index,
        membership: &Membership,
    ) -> Result<(), Broken> {
        let asked = self.end(peer, read.id, Outcome::Confirmed(read.index))?;
        let broken = |details: String| Err(Broken::new(LINEARIZABLE_READS, details));
        let what = format!(
            "read {} asked at n{peer} in t{} at {:.3}s",
            read.id,
            asked.term,
            asked.at.as_secs_f64()
        );
        if term != asked.term {
            return broken(format!("{what} was confirmed in t{term}"));
        }
        if read.index < asked.known_committed {
            return broken(format!(
                "{what} was confirmed at index {}, but index {} was known committed when it \
                 was asked",
                read.index, asked.known_committed
            ));
        }
        // The voters that were in a newer term when it was asked can never acknowledge it in
        // its term: the others must be a majority.
        if !membership.has_quorum(|id| !asked.peers_above.contains(&id)) {
            return broken(format!(
                "{what} was confirmed, but {:?} were already in a newer term when it was asked: \
                 no majority of {membership} could acknowledge it in t{}",
                asked.peers_above, asked.term
            ));
        }
        if read.index > committed {
            return broken(format!(
                "{what} was confirmed at index {}, which is not committed (committed through \
                 {committed})",
                read.index
            ));
        }
        self.confirmed += 1;
        Ok(())
    }

    /// Peer `peer` failed read `id`.
    pub fn fail(&mut self, peer: NodeId, id: u64) -> Result<(), Broken> {
        self.end(peer, id, Outcome::Failed)?;
        self.failed += 1;
        Ok(())
    }

    /// Peer `peer` crashed: its waiting reads are lost with it.
    pub fn crashed(&mut self, peer: NodeId) {
        for read in &mut self.reads {
            if read.peer == peer && read.outcome == Outcome::Waiting {
                read.outcome = Outcome::Lost;
                self.waiting -= 1;
            }
        }
    }

    /// Read `id` ends at peer `peer` with `outcome`: it must be one that peer is still waiting
    /// on. Returns it as it was asked.
    fn end(&mut self, peer: NodeId, id: u64, outcome: Outcome) -> Result<Read, Broken> {
        let Some(read) = self.reads.get_mut(id as usize) else {
            return Err(Broken::new(
                READ_ENDS_ONCE,
                format!("n{peer} ended read {id} ({outcome:?}), which was never asked"),
            ));
        };
        if read.peer != peer || read.outcome != Outcome::Waiting {
            return Err(Broken::new(
                READ_ENDS_ONCE,
                format!(
                    "n{peer} ended read {id} ({outcome:?}), asked at n{} and already {:?}",
                    read.peer, read.outcome
                ),
            ));
        }
        read.outcome = outcome;
        self.waiting -= 1;
        Ok(read.clone())
    }
}
