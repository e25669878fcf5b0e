//! Raft's safety properties (extended paper, Figure 3 and §5.4), checked by the cluster after
//! every step, plus the bookkeeping they need. Each check costs O(members) or O(what the step
//! wrote), never a rescan of whole logs, so that checking every step stays cheap.
//!
//! "Committed" means at or below some peer's commit index. The first peer whose commit index
//! covers an index fixes the committed entry there (and its *commit term*, that peer's term at
//! the time, and its *commit configuration*, the configuration that peer used then: the
//! configuration whose majority committed it, thesis chapter 4); every later commit, apply or
//! snapshot must agree with it.
//!
//! Logs are compared by digest: the disk keeps, next to each entry, the digest of the log through
//! it (`disk.rs`), so "two logs agree through index i" is one comparison.
//!
//! **Which log is checked.** The checks read each peer's [`Disk`], not the core's in-memory log.
//! After every step the two are equal: the cluster calls `take_ready` after each input and
//! applies its `persist` at once, and [`Checker::disk_matches_core`] asserts it (hard state,
//! snapshot, last index and term). The disk is the right one to check because it also covers
//! crashed peers, whose disks come back on restart, and because the stream of `Persist` effects
//! is the stream of log changes, which makes Log Matching incremental: every entry ever stored
//! is checked once, when written, against the first entry stored with the same index and term.
//! In Raft an (index, term) pair names one entry for all time (only term T's one leader creates
//! term-T entries, and it never rewrites them), so this history form implies the pairwise form
//! at every step.
//!
//! **Reads (§6.4).** The simulator asks peers that claim to lead for ReadIndex reads and keeps
//! each in a ledger (`reads.rs`) with what the cluster knew when it was asked. A read asked at
//! peer L while L led term T, at time t, and confirmed with read index r, must satisfy
//! ([`LINEARIZABLE_READS`]):
//!
//! 1. r >= the highest index known committed at t: covered by the commit index of some peer, in
//!    any incarnation up to t (the committed log above). A write completes for its client only
//!    once some peer's commit index covers it, so a state machine applied through r has every
//!    write that completed before the read began. (An entry on a majority that no peer yet
//!    knows committed completed for no one; a read may or may not see it.)
//! 2. The voters of L's configuration when it confirmed the read that had not entered a term
//!    above T at t (each peer's highest term, durable across crashes) are a majority of them:
//!    L must have had a majority of that configuration acknowledge, in T, a round it sent after
//!    t, and a peer in a newer term never answers in T again. This catches a leader
//!    confirming reads after being deposed even where no newer leader had committed anything
//!    yet.
//! 3. r <= the highest committed index: the read index names committed state.
//! 4. L confirms it, in term T (a term change fails it first).
//!
//! 1 and 3 are what linearizability asks of a read index: the state through r holds every write
//! that completed before the read began, and only writes committed before the read returns, so
//! the read takes effect between the write at r and the next one in the log. 2 is the part of
//! §6.4's argument the simulator can see from outside the core.
//!
//! And [`READ_ENDS_ONCE`]: every read accepted ends exactly once, at the peer that accepted it,
//! confirmed (`Ready::reads`) or failed (`Ready::failed_reads`), unless that peer crashes first;
//! after healing, none is left waiting (part of the liveness check).

use super::disk::{Disk, Written};
use super::service;
use crate::core::{Apply, Entry, Index, Membership, NodeId, Raft, Term};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

pub const ELECTION_SAFETY: &str = "election safety";
pub const ONE_VOTE_PER_TERM: &str = "one vote per term";
pub const LOG_MATCHING: &str = "log matching";
pub const LEADER_APPEND_ONLY: &str = "leader append-only";
pub const LEADER_COMPLETENESS: &str = "leader completeness";
pub const STATE_MACHINE_SAFETY: &str = "state machine safety";
pub const COMMIT_MONOTONIC: &str = "commit index never decreases";
pub const TERM_MONOTONIC: &str = "term never decreases";
pub const COMMITTED_ON_MAJORITY: &str = "committed entries on a majority";
pub const DURABLE: &str = "disk matches the core";
pub const APPLIED_DURABLE: &str = "applied entries are durable where applied";
pub const LINEARIZABLE_READS: &str = "linearizable reads";
pub const READ_ENDS_ONCE: &str = "every read ends once";
pub const LIVENESS: &str = "liveness";

/// A property that does not hold, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    pub invariant: &'static str,
    pub details: String,
}

impl Broken {
    pub fn new(invariant: &'static str, details: impl Into<String>) -> Broken {
        Broken {
            invariant,
            details: details.into(),
        }
    }
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.details)
    }
}

type Check = Result<(), Broken>;

/// Indices that became committed in one observation, all with the same commit term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewlyCommitted {
    pub through: Index,
    pub term: Term,
}

/// What the checks remember between steps.
pub struct Checker {
    /// `committed[i - 1]`: the entry committed at index i.
    committed: Vec<Entry>,
    /// `digests[i - 1]`: the digest of the committed log through index i.
    digests: Vec<u64>,
    /// `commit_terms[i - 1]`: the term of the peer whose commit index first covered index i.
    commit_terms: Vec<Term>,
    /// The configurations that committed the log, in runs: `(last, m)` says `m` committed the
    /// indices after the previous run's `last` through `last`.
    commit_configs: Vec<(Index, Membership)>,
    /// Log Matching: for every (index, term) ever stored, the digests through the entry before
    /// it and through it. Only looked up, never iterated, so its order cannot leak into a run.
    stored: HashMap<(Index, Term), (u64, u64)>,
    /// The leader of every term so far.
    leaders: BTreeMap<Term, NodeId>,
    /// (voter, term) -> the candidate it granted its vote to.
    votes: HashMap<(NodeId, Term), NodeId>,
    /// The highest term each peer has been seen in, across restarts (the term is durable).
    /// The highest term each peer has been seen in, in its current incarnation.
    incarnation_term: Vec<Term>,
    /// The highest term each peer made durable or stamped on a message as its own (pre-votes
    /// are about a term not entered): it never goes back below it, restarts included. A term
    /// only held in memory is not here: a crash may take the peer back from it.
    settled_term: Vec<Term>,
    /// Each peer's commit index, in its current incarnation.
    commit: Vec<Index>,
}

impl Checker {
    pub fn new(members: usize) -> Checker {
        Checker {
            committed: Vec::new(),
            digests: Vec::new(),
            commit_terms: Vec::new(),
            commit_configs: Vec::new(),
            stored: HashMap::new(),
            leaders: BTreeMap::new(),
            votes: HashMap::new(),
            incarnation_term: vec![0; members],
            settled_term: vec![0; members],
            commit: vec![0; members],
        }
    }

    /// The committed entries, by index from 1.
    pub fn committed(&self) -> &[Entry] {
        &self.committed
    }

    /// The highest committed index.
    pub fn commit_index(&self) -> Index {
        self.committed.len() as Index
    }

    /// The peers settled in a term above `term` (they can never acknowledge its leader).
    pub fn peers_above(&self, term: Term) -> Vec<NodeId> {
        (0..self.settled_term.len() as NodeId)
            .filter(|&id| self.settled_term[id as usize] > term)
            .collect()
    }

    /// Terms that had a leader.
    pub fn terms_with_leader(&self) -> usize {
        self.leaders.len()
    }

    /// The digest of the committed log through `index` (the service's state after it).
    pub fn committed_digest(&self, index: Index) -> Option<u64> {
        match index {
            0 => Some(0),
            i => self.digests.get(i as usize - 1).copied(),
        }
    }

    /// Peer `id` wrote `written` to `disk`; `leader` says whether it leads after the step.
    ///
    /// Log Matching (§5.3) on every entry written; Leader Append-Only (Figure 3) on a leader's
    /// writes; a snapshot must be the committed state (State Machine Safety).
    pub fn wrote(&mut self, id: NodeId, disk: &Disk, written: &Written, leader: bool) -> Check {
        if let (true, Some(from)) = (leader, written.truncated_from) {
            return Err(Broken::new(
                LEADER_APPEND_ONLY,
                format!("leader n{id} removed its entries from index {from} on"),
            ));
        }
        if written.snapshot {
            let (index, term) = (disk.snapshot_index(), disk.snapshot_term());
            let digest = disk.digest_at(index).expect("the snapshot's own index");
            let committed = self.committed.get(index as usize - 1).map(|e| e.term);
            if committed != Some(term) || self.committed_digest(index) != Some(digest) {
                return Err(Broken::new(
                    STATE_MACHINE_SAFETY,
                    format!(
                        "n{id} stored a snapshot through {index}@t{term} that is not the \
                         committed state (committed through {}, term there {committed:?})",
                        self.commit_index()
                    ),
                ));
            }
        }
        let Some(from) = written.appended_from else {
            return Ok(());
        };
        let mut prev = disk
            .digest_at(from - 1)
            .expect("entries follow what is held");
        for (entry, digest) in disk.entries_from(from) {
            let first = *self
                .stored
                .entry((entry.index, entry.term))
                .or_insert((prev, digest));
            if first != (prev, digest) {
                let what = if first.0 == prev {
                    "a different entry"
                } else {
                    "the same entry after a different log prefix"
                };
                return Err(Broken::new(
                    LOG_MATCHING,
                    format!(
                        "n{id} stored index {}@t{} holding {what} than a peer that stored it \
                         before",
                        entry.index, entry.term
                    ),
                ));
            }
            prev = digest;
        }
        Ok(())
    }

    /// A new incarnation of peer `id` starts with no commit index of its own.
    pub fn restarted(&mut self, id: NodeId) {
        self.commit[id as usize] = 0;
        self.incarnation_term[id as usize] = 0;
    }

    /// Peer `id` sent a message stamped with `term` as its current term.
    pub fn announced(&mut self, id: NodeId, term: Term) {
        let settled = &mut self.settled_term[id as usize];
        *settled = (*settled).max(term);
    }

    /// Peer `id`, in `term` and configuration `membership`, has commit index `commit` over
    /// `disk`. The commit index never decreases within an incarnation; what it covers must be
    /// the committed log (an index no peer committed yet becomes committed here, with `term` as
    /// its commit term and `membership` as its commit configuration). Returns the newly
    /// committed indices.
    pub fn commit(
        &mut self,
        id: NodeId,
        term: Term,
        membership: &Membership,
        commit: Index,
        disk: &Disk,
    ) -> Result<Option<NewlyCommitted>, Broken> {
        let before = std::mem::replace(&mut self.commit[id as usize], commit);
        if commit < before {
            return Err(Broken::new(
                COMMIT_MONOTONIC,
                format!("n{id}'s commit index went from {before} to {commit}"),
            ));
        }
        let mut newly = None;
        if commit > self.commit_index() {
            for index in self.commit_index() + 1..=commit {
                let (Some(entry), Some(digest)) = (disk.entry(index), disk.digest_at(index)) else {
                    return Err(Broken::new(
                        STATE_MACHINE_SAFETY,
                        format!("n{id} commits index {index}, which its log does not hold"),
                    ));
                };
                self.committed.push(entry.clone());
                self.digests.push(digest);
                self.commit_terms.push(term);
            }
            match self.commit_configs.last_mut() {
                Some((last, m)) if m == membership => *last = commit,
                _ => self.commit_configs.push((commit, membership.clone())),
            }
            newly = Some(NewlyCommitted {
                through: commit,
                term,
            });
        }
        self.holds_committed(id, commit, disk, STATE_MACHINE_SAFETY)?;
        Ok(newly)
    }

    /// Peer `id`'s log agrees with the committed log through `index` (or its snapshot covers
    /// it: a stored snapshot was checked to be the committed state).
    fn holds_committed(
        &self,
        id: NodeId,
        index: Index,
        disk: &Disk,
        invariant: &'static str,
    ) -> Check {
        if index <= disk.snapshot_index() || disk.digest_at(index) == self.committed_digest(index) {
            return Ok(());
        }
        // Name the first index where the logs part.
        let first = (disk.snapshot_index() + 1..=index)
            .find(|&i| disk.digest_at(i) != self.committed_digest(i))
            .expect("they differ somewhere");
        let held = disk.entry(first).map(|e| e.term);
        let committed = &self.committed[first as usize - 1];
        Err(Broken::new(
            invariant,
            format!(
                "n{id} holds {held:?} at index {first} where t{} is committed (in t{}); \
                 its log ends at {}",
                committed.term,
                self.commit_terms[first as usize - 1],
                disk.last_index()
            ),
        ))
    }

    /// Peer `id` leads `term`. Election Safety (§5.2): no other peer led it. Leader
    /// Completeness (§5.4), when it is first seen leading: its log holds every entry committed
    /// in an earlier term.
    pub fn leader(&mut self, id: NodeId, term: Term, disk: &Disk) -> Check {
        match self.leaders.get(&term) {
            Some(&first) if first == id => return Ok(()),
            Some(&first) => {
                return Err(Broken::new(
                    ELECTION_SAFETY,
                    format!("n{id} and n{first} both lead t{term}"),
                ))
            }
            None => {
                self.leaders.insert(term, id);
            }
        }
        // The committed prefix it must hold ends at the last index committed in a term before
        // this one (anything committed before that is in the prefix too).
        let through = (1..=self.commit_index())
            .rev()
            .find(|&i| self.commit_terms[i as usize - 1] < term)
            .unwrap_or(0);
        self.holds_committed(id, through, disk, LEADER_COMPLETENESS)
    }

    /// Indices became committed: every peer leading a later term than the one they were
    /// committed in must hold them (Leader Completeness, for leaders elected before the commit
    /// was observed). `leaders` yields (id, term, disk) of the peers leading now.
    pub fn leaders_hold<'a>(
        &self,
        newly: NewlyCommitted,
        leaders: impl Iterator<Item = (NodeId, Term, &'a Disk)>,
    ) -> Check {
        for (id, _, disk) in leaders.filter(|&(_, term, _)| term > newly.term) {
            self.holds_committed(id, newly.through, disk, LEADER_COMPLETENESS)?;
        }
        Ok(())
    }

    /// Peer `id` is in `term`, with `durable` on its disk: terms never decrease within an
    /// incarnation, and across a restart never below what the peer made durable or stamped on
    /// a message (Figure 2: `currentTerm` is persistent state). A term adopted and lost in a
    /// crash before its sync, and never sent, told no one anything.
    pub fn term(&mut self, id: NodeId, term: Term, durable: Term) -> Check {
        let i = id as usize;
        self.settled_term[i] = self.settled_term[i].max(durable);
        if term < self.incarnation_term[i].max(self.settled_term[i]) {
            return Err(Broken::new(
                TERM_MONOTONIC,
                format!(
                    "n{id} is in t{term} after t{} (t{} durable or announced)",
                    self.incarnation_term[i], self.settled_term[i]
                ),
            ));
        }
        self.incarnation_term[i] = term;
        Ok(())
    }

    /// `voter` granted its vote in `term` to `candidate`: at most one candidate per term
    /// (Figure 2, RequestVote receiver; votedFor is durable).
    pub fn vote(&mut self, voter: NodeId, term: Term, candidate: NodeId) -> Check {
        let first = *self.votes.entry((voter, term)).or_insert(candidate);
        if first != candidate {
            return Err(Broken::new(
                ONE_VOTE_PER_TERM,
                format!("n{voter} voted for n{first} and for n{candidate} in t{term}"),
            ));
        }
        Ok(())
    }

    /// Peer `id`'s service, at `applied` with state `digest`, applies `item`: the committed entry
    /// that follows, or a snapshot of the committed state past `applied` (State Machine Safety,
    /// §5.4.3). Returns the service's new index and state.
    pub fn apply(
        &self,
        id: NodeId,
        applied: Index,
        digest: u64,
        item: &Apply,
    ) -> Result<(Index, u64), Broken> {
        let broken = |details: String| Err(Broken::new(STATE_MACHINE_SAFETY, details));
        let (index, digest) = match item {
            Apply::Entry(entry) => {
                if entry.index != applied + 1 {
                    return broken(format!(
                        "n{id} applied index {} after {applied}",
                        entry.index
                    ));
                }
                if self.committed.get(entry.index as usize - 1) != Some(entry) {
                    return broken(format!(
                        "n{id} applied {}@t{}, which is not the committed entry there",
                        entry.index, entry.term
                    ));
                }
                (entry.index, service::chain(digest, entry))
            }
            Apply::Snapshot(snapshot) => {
                let index = snapshot.last_included_index;
                let parsed = service::parse_snapshot(&snapshot.data);
                let committed = self.committed.get(index as usize - 1).map(|e| e.term);
                let state = self.committed_digest(index);
                if index <= applied
                    || committed != Some(snapshot.last_included_term)
                    || parsed.map(|(_, digest)| digest) != state
                {
                    return broken(format!(
                        "n{id} (applied through {applied}) applied a snapshot through \
                         {index}@t{} that is not the committed state",
                        snapshot.last_included_term
                    ));
                }
                (index, state.expect("committed"))
            }
        };
        if Some(digest) != self.committed_digest(index) {
            return broken(format!("n{id}'s state diverged at index {index}"));
        }
        Ok((index, digest))
    }

    /// Every committed entry is on the disks (in the log, or covered by the snapshot) of a
    /// majority of the voters of the configuration that committed it. A majority holding the
    /// last index of a run of one configuration holds every one before it; the last run is
    /// checked after every step, each earlier one was when it was last (durable disks never
    /// lose a committed entry: the other checks see to that). `disk(id)` is peer id's durable
    /// disk.
    pub fn on_majority<'a>(&self, disk: impl Fn(NodeId) -> &'a Disk) -> Check {
        let Some((index, membership)) = self.commit_configs.last() else {
            return Ok(());
        };
        let index = *index;
        let want = self.committed_digest(index);
        let holds = |id: NodeId| {
            let d = disk(id);
            index <= d.snapshot_index() || d.digest_at(index) == want
        };
        if !membership.has_quorum(holds) {
            let holding: Vec<NodeId> = membership
                .voters
                .iter()
                .copied()
                .filter(|&v| holds(v))
                .collect();
            return Err(Broken::new(
                COMMITTED_ON_MAJORITY,
                format!(
                    "committed index {index} is on the disks of {holding:?}, no majority of \
                     the {membership} that committed it"
                ),
            ));
        }
        Ok(())
    }

    /// Peer `id`'s service reached `index`: its own disk holds the committed log through it
    /// (or a snapshot past it), so a crash cannot leave its state machine ahead of its log.
    pub fn applied_durable(&self, id: NodeId, index: Index, disk: &Disk) -> Check {
        if index <= disk.snapshot_index() || disk.digest_at(index) == self.committed_digest(index) {
            return Ok(());
        }
        Err(Broken::new(
            APPLIED_DURABLE,
            format!(
                "n{id} applied through {index}, but its disk holds the log through {} \
                 (snapshot through {})",
                disk.last_index(),
                disk.snapshot_index()
            ),
        ))
    }

    /// After a step, the core's durable state is on its disk: `take_ready` reported every
    /// change (hard state, snapshot, log bounds).
    pub fn disk_matches_core(id: NodeId, raft: &Raft, disk: &Disk) -> Check {
        let core = (
            raft.hard_state,
            raft.log.snapshot_index(),
            raft.log.snapshot_term(),
            raft.log.last_index(),
            raft.log.last_term(),
        );
        let durable = (
            disk.hard_state,
            disk.snapshot_index(),
            disk.snapshot_term(),
            disk.last_index(),
            disk.last_term(),
        );
        if core != durable {
            return Err(Broken::new(
                DURABLE,
                format!(
                    "n{id}: core (hard state, snapshot index, term, last index, term) {core:?}, \
                     disk {durable:?}"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Each check fails on the state it forbids (the cluster runs show that they pass on a
    //! correct core).
    use super::*;
    use crate::core::{EntryKind, HardState, Membership, Persist, Restored, Snapshot};

    fn entry(index: Index, term: Term) -> Entry {
        Entry {
            term,
            index,
            command: vec![index as u8],
            kind: EntryKind::Command,
        }
    }

    fn disk(terms: &[Term]) -> Disk {
        let entries = terms.iter().zip(1..).map(|(&t, i)| entry(i, t)).collect();
        Disk::new(Restored {
            hard_state: HardState::default(),
            snapshot: None,
            entries,
        })
        .unwrap()
    }

    fn written_all(disk: &Disk) -> Written {
        Written {
            appended_from: (disk.last_index() > 0).then_some(1),
            ..Written::default()
        }
    }

    #[test]
    fn two_leaders_in_one_term_break_election_safety() {
        let mut c = Checker::new(3);
        let d = disk(&[]);
        c.leader(0, 1, &d).unwrap();
        c.leader(0, 1, &d).unwrap();
        c.leader(1, 2, &d).unwrap();
        assert_eq!(c.leader(2, 1, &d).unwrap_err().invariant, ELECTION_SAFETY);
    }

    #[test]
    fn a_second_vote_in_one_term_is_caught() {
        let mut c = Checker::new(3);
        c.vote(0, 3, 1).unwrap();
        c.vote(0, 3, 1).unwrap();
        c.vote(0, 4, 2).unwrap();
        assert_eq!(c.vote(0, 3, 2).unwrap_err().invariant, ONE_VOTE_PER_TERM);
    }

    #[test]
    fn the_same_index_and_term_with_another_entry_or_prefix_breaks_log_matching() {
        let mut c = Checker::new(3);
        let a = disk(&[1, 1, 2]);
        c.wrote(0, &a, &written_all(&a), false).unwrap();
        // Same entries: fine.
        c.wrote(1, &a, &written_all(&a), false).unwrap();
        // Index 2 of term 1 with another command.
        let mut b = disk(&[1]);
        let other = Entry {
            command: b"other".to_vec(),
            ..entry(2, 1)
        };
        let w = b
            .apply(Persist {
                append: vec![other],
                ..Persist::default()
            })
            .unwrap();
        let broken = c.wrote(2, &b, &w, false).unwrap_err();
        assert_eq!(broken.invariant, LOG_MATCHING);
        assert!(broken.details.contains("a different entry"), "{broken}");
        // Index 3@t2 after a prefix that differs at index 1.
        let mut d = Disk::default();
        let w = d
            .apply(Persist {
                append: vec![
                    Entry {
                        command: b"x".to_vec(),
                        ..entry(1, 1)
                    },
                    entry(2, 1),
                    entry(3, 2),
                ],
                ..Persist::default()
            })
            .unwrap();
        let broken = c.wrote(2, &d, &w, false).unwrap_err();
        assert_eq!(broken.invariant, LOG_MATCHING);
    }

    #[test]
    fn a_leader_that_truncates_breaks_append_only() {
        let mut c = Checker::new(3);
        let mut d = disk(&[1, 1]);
        let w = d
            .apply(Persist {
                truncate_from: Some(2),
                ..Persist::default()
            })
            .unwrap();
        assert_eq!(
            c.wrote(0, &d, &w, true).unwrap_err().invariant,
            LEADER_APPEND_ONLY
        );
        c.wrote(0, &d, &w, false).unwrap();
    }

    #[test]
    fn commits_must_agree_and_never_go_back() {
        let mut c = Checker::new(3);
        let a = disk(&[1, 1, 2]);
        let newly = c.commit(0, 2, &three(), 2, &a).unwrap();
        assert_eq!(
            newly,
            Some(NewlyCommitted {
                through: 2,
                term: 2
            })
        );
        assert_eq!(c.commit(0, 2, &three(), 2, &a).unwrap(), None);
        assert_eq!(
            c.commit(0, 2, &three(), 1, &a).unwrap_err().invariant,
            COMMIT_MONOTONIC
        );
        c.restarted(0);
        c.commit(0, 2, &three(), 1, &a).unwrap();
        let b = disk(&[1, 3]);
        let broken = c.commit(1, 3, &three(), 2, &b).unwrap_err();
        assert_eq!(broken.invariant, STATE_MACHINE_SAFETY);
        assert!(broken.details.contains("index 2"), "{broken}");
        assert_eq!(
            c.commit(2, 3, &three(), 4, &a).unwrap_err().invariant,
            STATE_MACHINE_SAFETY
        );
    }

    #[test]
    fn a_leader_without_an_entry_committed_earlier_breaks_leader_completeness() {
        let (full, short) = (disk(&[1, 1]), disk(&[1]));
        let mut c = Checker::new(3);
        c.commit(0, 2, &three(), 2, &full).unwrap();
        // A leader of the committing term or an earlier one (a late election) need not hold it.
        c.leader(1, 1, &short).unwrap();
        assert_eq!(
            c.leader(2, 3, &short).unwrap_err().invariant,
            LEADER_COMPLETENESS
        );
        c.leader(0, 4, &full).unwrap();

        // A leader elected before a commit is observed must hold it too, if it leads a later
        // term than the one it was committed in.
        let mut c = Checker::new(3);
        c.leader(1, 5, &short).unwrap();
        let newly = c.commit(0, 4, &three(), 2, &full).unwrap().unwrap();
        let broken = c.leaders_hold(newly, [(1, 5, &short)].into_iter());
        assert_eq!(broken.unwrap_err().invariant, LEADER_COMPLETENESS);
        c.leaders_hold(newly, [(1, 4, &short)].into_iter()).unwrap();
    }

    #[test]
    fn applying_anything_but_the_committed_sequence_is_caught() {
        let mut c = Checker::new(3);
        let d = disk(&[1, 1]);
        c.commit(0, 1, &three(), 2, &d).unwrap();
        let (i, digest) = c.apply(0, 0, 0, &Apply::Entry(entry(1, 1))).unwrap();
        assert_eq!(i, 1);
        let skip = c.apply(0, 0, 0, &Apply::Entry(entry(2, 1)));
        assert_eq!(skip.unwrap_err().invariant, STATE_MACHINE_SAFETY);
        let other = c.apply(0, 1, digest, &Apply::Entry(entry(2, 2)));
        assert_eq!(other.unwrap_err().invariant, STATE_MACHINE_SAFETY);
        let good = Snapshot {
            last_included_index: 2,
            last_included_term: 1,
            data: service::snapshot_data(2, d.digest_at(2).unwrap(), 20),
            membership: Membership::voters([0]),
        };
        c.apply(0, 1, digest, &Apply::Snapshot(good.clone()))
            .unwrap();
        let bad = Snapshot {
            data: service::snapshot_data(2, 99, 20),
            ..good
        };
        let bad = c.apply(0, 1, digest, &Apply::Snapshot(bad));
        assert_eq!(bad.unwrap_err().invariant, STATE_MACHINE_SAFETY);
    }

    #[test]
    fn a_committed_entry_on_a_minority_is_caught() {
        let mut c = Checker::new(3);
        let (full, empty) = (disk(&[1, 1]), disk(&[]));
        c.commit(0, 1, &three(), 2, &full).unwrap();
        c.on_majority(|id| [&full, &full, &empty][id as usize])
            .unwrap();
        let broken = c.on_majority(|id| [&full, &empty, &empty][id as usize]);
        assert_eq!(broken.unwrap_err().invariant, COMMITTED_ON_MAJORITY);
    }

    /// A majority of the configuration that committed the entry, not of every peer: n2 left
    /// it, and n0 with n1 are its majority; later another configuration commits, and the check
    /// counts by it.
    #[test]
    fn the_majority_is_of_the_configuration_that_committed() {
        let mut c = Checker::new(3);
        let (full, empty) = (disk(&[1, 1]), disk(&[]));
        let two = Membership::voters([0, 1]);
        c.commit(0, 1, &two, 2, &full).unwrap();
        c.on_majority(|id| [&full, &full, &empty][id as usize])
            .unwrap();
        let broken = c.on_majority(|id| [&full, &empty, &full][id as usize]);
        assert_eq!(broken.unwrap_err().invariant, COMMITTED_ON_MAJORITY);
        let longer = disk(&[1, 1, 1]);
        let learner_out = Membership::voters([0, 2]);
        c.commit(0, 1, &learner_out, 3, &longer).unwrap();
        c.on_majority(|id| [&longer, &full, &longer][id as usize])
            .unwrap();
    }

    fn three() -> Membership {
        Membership::voters(0..3)
    }

    #[test]
    fn terms_never_go_back() {
        let mut c = Checker::new(3);
        c.term(0, 3, 2).unwrap();
        assert_eq!(c.term(0, 2, 2).unwrap_err().invariant, TERM_MONOTONIC);
        // t3 was never durable nor sent: a restart may come back in t2, not below.
        c.restarted(0);
        c.term(0, 2, 2).unwrap();
        assert_eq!(c.term(0, 1, 2).unwrap_err().invariant, TERM_MONOTONIC);
        c.announced(0, 3);
        c.restarted(0);
        assert_eq!(c.term(0, 2, 2).unwrap_err().invariant, TERM_MONOTONIC);
    }
}
