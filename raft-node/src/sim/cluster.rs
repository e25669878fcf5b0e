//! A deterministic in-memory cluster of cores: a virtual clock, the simulated network
//! (`network.rs`), a disk per peer that holds exactly what the core asked to persist
//! (`disk.rs`), a service on every peer that can snapshot it every N applied entries (§7, the
//! lab's applierSnap; `service.rs`), and the safety checks (`invariants.rs`) run after every
//! step.
//!
//! A step is one input to one core, or one change to the world: a datagram delivered, a peer's
//! timer firing, a client's `Start`, a batch of reads asked (§6.4, kept in `reads.rs`), a
//! peer's sync completing, a crash, a restart, a service's snapshot, a link or a peer going
//! down or up. After each input the cluster takes the core's `Ready` and carries it out in the
//! documented order: the leader's replication at once, the persist to the peer's simulated
//! storage thread (`unsynced.rs`), and everything else once that sync completes, which with
//! [`SyncLatency::Inline`] is within the same step. It checks what each effect shows, then the
//! whole cluster's state.
//!
//! Each peer has two disks: `disk`, what is durable (what a crash keeps, and what "committed on
//! a majority" counts), and `written`, that plus every persist still syncing (what the core's
//! log must match).
//!
//! The first property found broken stops the cluster: that call and every later one return the
//! [`Violation`], which names the step, the property and the last events.

use super::disk::Disk;
use super::invariants::{self, Broken, Checker};
use super::network::{Faults, Network};
use super::reads::{Outcome, Reads};
use super::service;
use super::trace::{Action, PeerState, Summary, Trace};
use super::unsynced::{SyncLatency, Unsynced, Waiting};
use crate::core::progress::FlowState;
use crate::core::{
    Apply, Config, Entry, Index, Membership, MembershipChange, Message, MessageBody, NodeId, Raft,
    Restored, Role, Term, Time,
};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

/// The lab's timers, as `raft-node run` defaults them.
pub const ELECTION_TIMEOUT_MIN: Duration = Duration::from_millis(300);
pub const ELECTION_TIMEOUT_MAX: Duration = Duration::from_millis(600);
pub const HEARTBEAT: Duration = Duration::from_millis(100);
/// Room for large commands (the lab's 5000-byte ones) in one AppendEntries.
pub const MAX_APPEND_BYTES: usize = 64_000;
/// How long [`Cluster::agree`] waits for a command it offered before offering it again (the
/// lab's `one()`).
pub const AGREE_RETRY: Duration = Duration::from_secs(2);

/// Peer `id`'s config with the lab's timers (and seed 0), every member a voter.
pub fn config(id: NodeId, members: u32) -> Config {
    Config {
        id,
        members,
        bootstrap: Membership::voters(0..members),
        election_timeout_min: ELECTION_TIMEOUT_MIN,
        election_timeout_max: ELECTION_TIMEOUT_MAX,
        heartbeat_interval: HEARTBEAT,
        max_append_bytes: MAX_APPEND_BYTES,
        seed: 0,
        relay: true,
    }
}

/// A broken property: where, which, how, and what led to it.
#[derive(Clone, PartialEq, Eq)]
pub struct Violation {
    pub step: u64,
    pub at: Time,
    pub invariant: &'static str,
    pub details: String,
    /// The last steps, oldest first, one line each.
    pub events: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "step {} at {:.3}s: {}: {}",
            self.step,
            self.at.as_secs_f64(),
            self.invariant,
            self.details
        )?;
        writeln!(f, "last {} events:", self.events.len())?;
        for line in &self.events {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// The report itself, so a test that returns `Err(violation)` prints it readably.
impl fmt::Debug for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\n{self}")
    }
}

pub struct Peer {
    /// `None` while crashed.
    pub raft: Option<Raft>,
    config: Config,
    /// What is durable: what a crash keeps.
    pub disk: Disk,
    /// `disk` with every persist still syncing applied: what the core handed its storage.
    pub written: Disk,
    unsynced: Unsynced,
    /// The last index this incarnation's service applied (a restart starts over from the
    /// snapshot, or from 1).
    pub applied: Index,
    /// The service's state: the digest of what it applied.
    digest: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Datagrams handed to the network (lost ones included), as the proxy counts them.
    pub datagrams: usize,
    /// Datagrams delivered to a live peer (duplicates included).
    pub delivered: usize,
    /// AppendEntries sent to each peer.
    pub appends_to: Vec<usize>,
    /// Command bytes carried by AppendEntries.
    pub command_bytes: usize,
    /// InstallSnapshot chunks sent.
    pub snapshot_chunks: usize,
    /// Crashes of a peer with persists still syncing (all or part of them lost).
    pub crashes_unsynced: usize,
    /// Leadership transfers started (§3.10).
    pub transfers: usize,
    /// Configuration changes accepted by a leader (thesis §4.1).
    pub reconfigurations: usize,
    /// Snapshots that services received in their apply stream (installs and restarts).
    pub snapshots_applied: usize,
    pub crashes: usize,
    /// Relayed copies sent (to their relay) and forwarded by a live relay (`core::relay`).
    pub relayed: usize,
    pub forwarded: usize,
    /// Rejections delivered to their leader from an earlier flow epoch (`core::progress`) that
    /// the rejected index alone would have taken for current, resetting the pipeline: late or
    /// duplicated answers the leader now ignores as stale.
    pub stale_rejections: usize,
    /// Commit queries delivered (`MessageBody::CommitQuery`), and of them those that reached
    /// the leader of their term with a commit index ahead of the asker's (it announces again).
    pub commit_queries: usize,
    pub commit_queries_told: usize,
}

pub struct Cluster {
    pub peers: Vec<Peer>,
    pub now: Time,
    pub net: Network,
    pub stats: Stats,
    /// Services snapshot their peer at every multiple of this index (never when `None`).
    pub snapshot_every: Option<Index>,
    /// The length of a service snapshot.
    pub snapshot_len: usize,
    /// How long every peer's syncs take.
    pub sync_latency: SyncLatency,
    /// Draws sync durations and what a crash leaves of a sync under way.
    disk_rng: SmallRng,
    check: Checker,
    reads: Reads,
    trace: Trace,
    /// Steps taken so far.
    step: u64,
    /// Service snapshots due, taken as the next steps.
    due_snapshots: VecDeque<(NodeId, Index)>,
    violation: Option<Violation>,
}

impl Cluster {
    /// `members` empty peers with the lab's timers; `seed` drives everything.
    pub fn new(members: u32, seed: u64, faults: Faults) -> Cluster {
        Cluster::with_batches(members, seed, faults, MAX_APPEND_BYTES)
    }

    /// As [`Cluster::new`], with AppendEntries limited to `max_append_bytes` of entries.
    pub fn with_batches(
        members: u32,
        seed: u64,
        faults: Faults,
        max_append_bytes: usize,
    ) -> Cluster {
        Cluster::with_voters(members, members, seed, faults, max_append_bytes)
    }

    /// As [`Cluster::with_batches`], with only peers `0..voters` in the bootstrap
    /// configuration: the others run outside the cluster until a leader adds them.
    pub fn with_voters(
        members: u32,
        voters: u32,
        seed: u64,
        faults: Faults,
        max_append_bytes: usize,
    ) -> Cluster {
        Cluster::with_relay(members, voters, seed, faults, max_append_bytes, true)
    }

    /// As [`Cluster::with_voters`], relaying (`core::relay`) on or off.
    pub fn with_relay(
        members: u32,
        voters: u32,
        seed: u64,
        faults: Faults,
        max_append_bytes: usize,
        relay: bool,
    ) -> Cluster {
        let configs = (0..members)
            .map(|id| Config {
                seed: seed.wrapping_mul(31).wrapping_add(u64::from(id)),
                max_append_bytes,
                bootstrap: Membership::voters(0..voters),
                relay,
                ..config(id, members)
            })
            .collect();
        Cluster::with_state(
            configs,
            vec![Restored::default(); members as usize],
            seed,
            faults,
        )
    }

    /// Peers restarting from the given configs and durable states. A state that is not a log
    /// (a gap, a snapshot that is not this service's) panics: the caller built it wrong.
    pub fn with_state(
        configs: Vec<Config>,
        restored: Vec<Restored>,
        seed: u64,
        faults: Faults,
    ) -> Cluster {
        let members = configs.len();
        let peers = configs
            .into_iter()
            .zip(restored)
            .map(|(config, restored)| {
                let disk = Disk::new(restored.clone()).expect("a restored state is a log");
                Peer {
                    raft: Some(Raft::new(config.clone(), restored, Time::ZERO)),
                    config,
                    written: disk.clone(),
                    disk,
                    unsynced: Unsynced::default(),
                    applied: 0,
                    digest: 0,
                }
            })
            .collect();
        let mut cluster = Cluster {
            peers,
            now: Time::ZERO,
            net: Network::new(members, faults, seed),
            stats: Stats {
                appends_to: vec![0; members],
                ..Stats::default()
            },
            snapshot_every: None,
            snapshot_len: 16,
            sync_latency: SyncLatency::Inline,
            disk_rng: SmallRng::seed_from_u64(seed ^ 0xd15c_0000_0000_0000),
            check: Checker::new(members),
            reads: Reads::default(),
            trace: Trace::default(),
            step: 0,
            due_snapshots: VecDeque::new(),
            violation: None,
        };
        // The restored logs must agree with each other too.
        for id in 0..members as NodeId {
            let disk = &cluster.peers[id as usize].disk;
            let written = super::disk::Written {
                appended_from: Some(disk.snapshot_index() + 1).filter(|&i| i <= disk.last_index()),
                ..Default::default()
            };
            if let Err(broken) = cluster.check.wrote(id, disk, &written, false) {
                cluster.fail(broken);
            }
        }
        cluster
    }

    pub fn raft(&self, id: NodeId) -> &Raft {
        self.peers[id as usize].raft.as_ref().expect("peer is up")
    }

    pub fn members(&self) -> u32 {
        self.peers.len() as u32
    }

    /// The entries committed so far (at or below some peer's commit index), by index from 1.
    pub fn committed(&self) -> &[Entry] {
        self.check.committed()
    }

    /// Terms that had a leader so far.
    pub fn terms_with_leader(&self) -> usize {
        self.check.terms_with_leader()
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// A digest of every step taken so far: equal for equal runs.
    pub fn trace_digest(&self) -> u64 {
        self.trace.digest()
    }

    pub fn is_connected(&self, id: NodeId) -> bool {
        self.net.links.is_connected(id)
    }

    /// The live peers with a sync under way.
    pub fn syncing(&self) -> Vec<NodeId> {
        (0..self.members())
            .filter(|&id| {
                let peer = &self.peers[id as usize];
                peer.raft.is_some() && !peer.unsynced.is_empty()
            })
            .collect()
    }

    /// The live, connected peer claiming leadership in the highest term.
    pub fn leader(&self) -> Option<NodeId> {
        self.statuses()
            .filter(|s| self.is_connected(s.id))
            .filter(|s| s.role == Role::Leader)
            .max_by_key(|s| s.term)
            .map(|s| s.id)
    }

    /// The members (voters and learners) of the leader's configuration, or every peer when
    /// there is no leader: the peers that must keep up with the log.
    pub fn in_configuration(&self) -> Vec<NodeId> {
        match self.leader() {
            Some(leader) => self.raft(leader).membership().members().collect(),
            None => (0..self.members()).collect(),
        }
    }

    /// The statuses of the live peers.
    pub fn statuses(&self) -> impl Iterator<Item = crate::core::Status> + '_ {
        self.peers
            .iter()
            .filter_map(|p| p.raft.as_ref())
            .map(Raft::status)
    }

    /// Runs the cluster for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) -> Result<(), Violation> {
        let end = self.now + duration;
        self.run_until(end, |_| false).map(|_| ())
    }

    /// Runs until `done` holds (checked after every step) or `limit`; returns whether it held.
    pub fn run_until(
        &mut self,
        limit: Time,
        done: impl Fn(&Cluster) -> bool,
    ) -> Result<bool, Violation> {
        self.healthy()?;
        loop {
            if done(self) {
                return Ok(true);
            }
            let next_message = self.net.next_arrival();
            let next_timer = self
                .peers
                .iter()
                .filter_map(|p| p.raft.as_ref())
                .map(Raft::next_deadline)
                .min();
            let next_sync = self
                .peers
                .iter()
                .filter_map(|p| p.unsynced.next_due())
                .min();
            let Some(at) = [next_message, next_timer, next_sync]
                .into_iter()
                .flatten()
                .min()
            else {
                self.now = limit;
                return Ok(false);
            };
            if at > limit {
                self.now = limit;
                return Ok(false);
            }
            self.now = self.now.max(at);
            if next_sync == Some(at) {
                for id in 0..self.members() {
                    if self.peers[id as usize].unsynced.next_due() <= Some(self.now)
                        && self.peers[id as usize].unsynced.next_due().is_some()
                    {
                        self.sync_step(id)?;
                    }
                }
            } else if next_message == Some(at) {
                match self.net.arrive() {
                    Some(Some((msg, at))) if at != msg.to => self.forward(at, msg),
                    Some(Some((msg, _))) => self.deliver(msg)?,
                    _ => {}
                }
            } else {
                for id in 0..self.members() {
                    let due = self.peers[id as usize]
                        .raft
                        .as_ref()
                        .is_some_and(|r| r.next_deadline() <= self.now);
                    if due {
                        self.tick(id)?;
                    }
                }
            }
        }
    }

    /// The lab's Start() on peer `id`: what it answered, `None` if it refused (or is down).
    pub fn propose(
        &mut self,
        id: NodeId,
        command: Vec<u8>,
    ) -> Result<Option<(Index, Term)>, Violation> {
        self.healthy()?;
        if self.peers[id as usize].raft.is_none() {
            return Ok(None);
        }
        self.begin(Action::Propose {
            to: id,
            accepted: None,
        });
        let now = self.now;
        let raft = self.peers[id as usize].raft.as_mut().expect("up");
        let accepted = raft.propose(command, now).ok();
        self.trace.set_accepted(accepted);
        self.collect(id)?;
        self.end(Some(id))?;
        Ok(accepted)
    }

    /// Asks peer `id` for `count` reads in one step (one event-loop iteration, so they share a
    /// round); returns the ids it accepted (none unless it claims to lead).
    pub fn read(&mut self, id: NodeId, count: usize) -> Result<Vec<u64>, Violation> {
        self.healthy()?;
        let Some(raft) = self.peers[id as usize].raft.as_ref() else {
            return Ok(Vec::new());
        };
        let term = raft.status().term;
        let first = self.reads.next_id();
        self.begin(Action::Read {
            to: id,
            first,
            count,
            accepted: 0,
        });
        let (now, known_committed) = (self.now, self.check.commit_index());
        let peers_above = self.check.peers_above(term);
        let mut accepted = Vec::new();
        for _ in 0..count {
            let read = self.reads.next_id();
            let raft = self.peers[id as usize].raft.as_mut().expect("up");
            if raft.read_index(read, now).is_ok() {
                self.reads
                    .asked(id, term, now, known_committed, peers_above.clone());
                accepted.push(read);
            }
        }
        self.trace.set_reads_accepted(accepted.len());
        self.collect(id)?;
        self.end(Some(id))?;
        Ok(accepted)
    }

    /// How read `id` has ended so far (`None`: never asked).
    pub fn read_outcome(&self, id: u64) -> Option<Outcome> {
        self.reads.outcome(id)
    }

    /// Reads asked and not yet ended.
    pub fn reads_waiting(&self) -> usize {
        self.reads.waiting()
    }

    /// Reads (confirmed, failed) so far.
    pub fn reads_ended(&self) -> (usize, usize) {
        (self.reads.confirmed(), self.reads.failed())
    }

    /// Offers `command` to the leader until one accepts it and every peer of its configuration
    /// applies it at the index it was accepted at, or `deadline` passes: the lab's `one()`.
    /// Returns that index.
    pub fn agree(&mut self, command: Vec<u8>, deadline: Time) -> Result<Option<Index>, Violation> {
        while self.now < deadline {
            let accepted = match self.leader() {
                Some(leader) => self.propose(leader, command.clone())?,
                None => None,
            };
            let Some((index, term)) = accepted else {
                self.run_until((self.now + Duration::from_millis(50)).min(deadline), |_| {
                    false
                })?;
                continue;
            };
            let applied_everywhere = |c: &Cluster| {
                c.committed()
                    .get(index as usize - 1)
                    .is_some_and(|e| e.term == term)
                    && c.in_configuration()
                        .iter()
                        .all(|&id| c.peers[id as usize].applied >= index)
            };
            let limit = (self.now + AGREE_RETRY).min(deadline);
            if self.run_until(limit, applied_everywhere)? {
                return Ok(Some(index));
            }
        }
        Ok(None)
    }

    /// Asks peer `from` to hand leadership to `to` (§3.10); returns whether it started.
    pub fn transfer(&mut self, from: NodeId, to: NodeId) -> Result<bool, Violation> {
        self.healthy()?;
        let now = self.now;
        let Some(raft) = self.peers[from as usize].raft.as_mut() else {
            return Ok(false);
        };
        let accepted = raft.transfer_leadership(to, now).is_ok();
        self.stats.transfers += usize::from(accepted);
        self.begin(Action::Transfer { from, to, accepted });
        self.collect(from)?;
        self.end(Some(from))?;
        Ok(accepted)
    }

    /// Asks peer `at` for a single-server configuration change (thesis §4.1); returns the
    /// index of its entry if it accepted.
    pub fn reconfigure(
        &mut self,
        at: NodeId,
        change: MembershipChange,
    ) -> Result<Option<Index>, Violation> {
        self.healthy()?;
        let now = self.now;
        let Some(raft) = self.peers[at as usize].raft.as_mut() else {
            return Ok(None);
        };
        let accepted = raft.propose_membership(change, now).ok().map(|(i, _)| i);
        self.stats.reconfigurations += usize::from(accepted.is_some());
        self.begin(Action::Reconfigure {
            at,
            change,
            accepted,
        });
        self.collect(at)?;
        self.end(Some(at))?;
        Ok(accepted)
    }

    /// Kills peer `id`: its volatile state is gone, its disk stays, with whatever part of a
    /// sync under way landed (`Unsynced::crash_landing`).
    pub fn crash(&mut self, id: NodeId) -> Result<(), Violation> {
        self.healthy()?;
        if self.peers[id as usize].raft.is_none() {
            return Ok(());
        }
        self.begin(Action::Crash(id));
        let peer = &mut self.peers[id as usize];
        peer.raft = None;
        if !peer.unsynced.is_empty() {
            self.stats.crashes_unsynced += 1;
        }
        let landed = peer.unsynced.crash_landing(&mut self.disk_rng);
        for persist in landed {
            let checked = self.peers[id as usize]
                .disk
                .apply(persist)
                .map_err(|e| Broken::new(invariants::DURABLE, format!("n{id}: {e}")));
            self.guard(checked)?;
        }
        let peer = &mut self.peers[id as usize];
        peer.written = peer.disk.clone();
        self.reads.crashed(id);
        self.stats.crashes += 1;
        self.end(Some(id))
    }

    /// Restarts a crashed peer from exactly what it persisted; its service starts over from
    /// the replay (the snapshot, if any).
    pub fn restart(&mut self, id: NodeId) -> Result<(), Violation> {
        self.healthy()?;
        let peer = &mut self.peers[id as usize];
        if peer.raft.is_some() {
            return Ok(());
        }
        self.begin(Action::Restart(id));
        let peer = &mut self.peers[id as usize];
        let raft = Raft::new(peer.config.clone(), peer.disk.restored(), self.now);
        let replay = raft.applied(0);
        let status = raft.status();
        peer.raft = Some(raft);
        peer.applied = 0;
        peer.digest = 0;
        self.check.restarted(id);
        let peer = &self.peers[id as usize];
        let membership = peer.raft.as_ref().expect("up").membership();
        let checked =
            self.check
                .commit(id, status.term, membership, status.commit_index, &peer.disk);
        self.guard(checked)?;
        for item in &replay {
            self.service_apply(id, item)?;
        }
        self.end(Some(id))
    }

    /// The lab's `connect(id)` (true) or `disconnect(id)` (false).
    pub fn set_connected(&mut self, id: NodeId, connected: bool) -> Result<(), Violation> {
        self.healthy()?;
        self.begin(if connected {
            Action::Connect(id)
        } else {
            Action::Disconnect(id)
        });
        self.net.links.set_connected(id, connected);
        self.end(None)
    }

    /// Cuts every link between peers of different groups (`groups[id]` is peer id's group).
    pub fn split(&mut self, groups: Vec<u8>) -> Result<(), Violation> {
        self.healthy()?;
        self.net.links.split(&groups);
        self.begin(Action::Split(groups));
        self.end(None)
    }

    /// Cuts the link from `from` to `to`, one way.
    pub fn cut(&mut self, from: NodeId, to: NodeId) -> Result<(), Violation> {
        self.healthy()?;
        self.begin(Action::Cut { from, to });
        self.net.links.cut(from, to);
        self.end(None)
    }

    /// Every directed link up again (peers' connectivity unchanged).
    pub fn restore_links(&mut self) -> Result<(), Violation> {
        self.healthy()?;
        self.begin(Action::RestoreLinks);
        self.net.links.restore_links();
        self.end(None)
    }

    /// Connects every peer, brings every link up, makes the network reliable (for datagrams
    /// sent from now on) and restarts crashed peers.
    pub fn heal(&mut self) -> Result<(), Violation> {
        self.healthy()?;
        self.begin(Action::Heal);
        self.net.links.heal();
        self.net.faults = Faults::reliable();
        self.end(None)?;
        for id in 0..self.members() {
            self.restart(id)?;
        }
        Ok(())
    }

    fn healthy(&self) -> Result<(), Violation> {
        match &self.violation {
            Some(violation) => Err(violation.clone()),
            None => Ok(()),
        }
    }

    fn begin(&mut self, action: Action) {
        self.step += 1;
        self.trace.begin(self.step, self.now, action);
    }

    /// Ends a step (that changed peer `id`, if any): checks the whole cluster, then takes the
    /// service snapshots that came due, each as a step of its own.
    fn end(&mut self, id: Option<NodeId>) -> Result<(), Violation> {
        let after = id.map(|id| self.peer_state(id));
        self.trace.end(after);
        let checked = self.check_state();
        self.guard(checked)?;
        while let Some((id, index)) = self.due_snapshots.pop_front() {
            self.take_service_snapshot(id, index)?;
        }
        Ok(())
    }

    fn peer_state(&self, id: NodeId) -> PeerState {
        match &self.peers[id as usize].raft {
            Some(raft) => PeerState::up(&raft.status()),
            None => PeerState::down(id),
        }
    }

    /// Records a property the caller found broken (e.g. liveness), as the cluster records its
    /// own: the first one stops the cluster.
    pub fn broken(&mut self, invariant: &'static str, details: String) -> Violation {
        self.fail(Broken::new(invariant, details))
    }

    /// Records the first violation, and returns it.
    fn fail(&mut self, broken: Broken) -> Violation {
        let violation = Violation {
            step: self.step,
            at: self.now,
            invariant: broken.invariant,
            details: broken.details,
            events: self.trace.lines(),
        };
        self.violation.get_or_insert(violation).clone()
    }

    fn guard<T>(&mut self, checked: Result<T, Broken>) -> Result<T, Violation> {
        checked.map_err(|broken| self.fail(broken))
    }

    /// The checks of the cluster's state after a step, each O(members): every live peer's term
    /// and disk, its commit index still naming the committed log, Election Safety and Leader
    /// Completeness for leaders, and the committed entries on a majority of disks.
    fn check_state(&mut self) -> Result<(), Broken> {
        for peer in &self.peers {
            let Some(raft) = &peer.raft else { continue };
            let status = raft.status();
            Checker::disk_matches_core(status.id, raft, &peer.written)?;
            let durable = peer.disk.hard_state.current_term;
            self.check.term(status.id, status.term, durable)?;
            self.check.commit(
                status.id,
                status.term,
                raft.membership(),
                status.commit_index,
                &peer.written,
            )?;
            if status.role == Role::Leader {
                self.check.leader(status.id, status.term, &peer.written)?;
            }
        }
        self.check.on_majority(|id| &self.peers[id as usize].disk)
    }

    fn deliver(&mut self, msg: Message) -> Result<(), Violation> {
        let to = msg.to;
        if self.peers[to as usize].raft.is_none() {
            return Ok(());
        }
        self.stats.delivered += 1;
        self.begin(Action::Deliver(Summary::of(&msg)));
        let now = self.now;
        let raft = self.peers[to as usize].raft.as_mut().expect("up");
        self.stats.stale_rejections += usize::from(is_stale_rejection(raft, &msg));
        if let MessageBody::CommitQuery { commit } = msg.body {
            let status = raft.status();
            self.stats.commit_queries += 1;
            self.stats.commit_queries_told += usize::from(
                status.role == Role::Leader
                    && status.term == msg.term
                    && status.commit_index > commit,
            );
        }
        raft.step(msg, now);
        self.collect(to)?;
        self.end(Some(to))
    }

    /// A relayed copy reached its relay `at`: a live relay forwards it as it is (as the runtime
    /// does, without looking inside) and its core learns that the sender reaches it. Not a step:
    /// nothing Raft checks changes.
    fn forward(&mut self, at: NodeId, msg: Message) {
        let now = self.now;
        let Some(raft) = self.peers[at as usize].raft.as_mut() else {
            return;
        };
        raft.forwarded(msg.from, msg.to, now);
        self.stats.forwarded += 1;
        self.net.forward(msg, now);
    }

    fn tick(&mut self, id: NodeId) -> Result<(), Violation> {
        self.begin(Action::Tick(id));
        let now = self.now;
        if let Some(raft) = self.peers[id as usize].raft.as_mut() {
            raft.tick(now);
        }
        self.collect(id)?;
        self.end(Some(id))
    }

    fn take_service_snapshot(&mut self, id: NodeId, index: Index) -> Result<(), Violation> {
        if self.peers[id as usize].raft.is_none() {
            return Ok(());
        }
        self.begin(Action::Snapshot { id, index });
        // The service's state right after it applied `index` (it may have applied more since,
        // in the same batch): the committed state there.
        let digest = self
            .check
            .committed_digest(index)
            .expect("applied, so committed");
        let data = service::snapshot_data(index, digest, self.snapshot_len);
        let raft = self.peers[id as usize].raft.as_mut().expect("up");
        if let Err(e) = raft.snapshot(index, data) {
            return Err(self.fail(Broken::new(
                invariants::STATE_MACHINE_SAFETY,
                format!("n{id} refused its service's snapshot: {e}"),
            )));
        }
        self.collect(id)?;
        self.end(Some(id))
    }

    /// Takes peer `id`'s effects and carries them out in the documented order, checking what
    /// each shows: the writes (Log Matching, Leader Append-Only), the commit index (new commits
    /// held by every later leader), the leader's replication (sent at once), then the persist,
    /// queued for the peer's storage thread with everything that waits for it (`sync_due`).
    fn collect(&mut self, id: NodeId) -> Result<(), Violation> {
        let peer = &mut self.peers[id as usize];
        let Some(raft) = peer.raft.as_mut() else {
            return Ok(());
        };
        let ready = raft.take_ready();
        let status = raft.status();
        let membership = raft.membership().clone();
        if let Some(persist) = &ready.persist {
            let checked = peer
                .written
                .apply(persist.clone())
                .map_err(|e| Broken::new(invariants::DURABLE, format!("n{id}: {e}")))
                .and_then(|written| {
                    let leader = status.role == Role::Leader;
                    self.check.wrote(id, &peer.written, &written, leader)
                });
            self.guard(checked)?;
        }
        let peer = &self.peers[id as usize];
        let checked = self
            .check
            .commit(
                id,
                status.term,
                &membership,
                status.commit_index,
                &peer.written,
            )
            .and_then(|newly| match newly {
                Some(newly) => self.check.leaders_hold(newly, self.leaders()),
                None => Ok(()),
            });
        self.guard(checked)?;
        let (now, later): (Vec<Message>, Vec<Message>) = ready
            .messages
            .into_iter()
            .partition(Message::may_precede_persist);
        for msg in now {
            self.send(msg)?;
        }
        let nothing_waits = ready.persist.is_none()
            && later.is_empty()
            && ready.apply.is_empty()
            && ready.reads.is_empty()
            && ready.failed_reads.is_empty();
        if nothing_waits {
            // The log is as the last `Ready` left it, so its mark is already on its way.
            return Ok(());
        }
        let due = match self.sync_latency.draw(&mut self.disk_rng) {
            None => self.now,
            Some(took) => {
                let peer = &self.peers[id as usize];
                (self.now + took).max(peer.unsynced.last_due().unwrap_or(Time::ZERO))
            }
        };
        self.peers[id as usize].unsynced.push(Waiting {
            persist: ready.persist,
            mark: ready.log_mark,
            term: status.term,
            membership,
            messages: later,
            apply: ready.apply,
            reads: ready.reads,
            failed_reads: ready.failed_reads,
            due,
        });
        if due <= self.now {
            self.sync_due(id)?;
        }
        Ok(())
    }

    /// A step: peer `id`'s storage thread completes the syncs due by now.
    fn sync_step(&mut self, id: NodeId) -> Result<(), Violation> {
        self.begin(Action::Sync(id));
        self.sync_due(id)?;
        self.end(Some(id))
    }

    /// Every sync of peer `id` due by now completes, oldest first: its persist reaches the
    /// durable disk, the core hears of it (`Raft::persisted`), and what waited for it happens:
    /// the other messages leave, the service applies (a snapshot comes due at the last
    /// multiple of `snapshot_every` applied), reads are answered. Then the effects of knowing
    /// it durable (a leader's commit) are collected.
    fn sync_due(&mut self, id: NodeId) -> Result<(), Violation> {
        let now = self.now;
        while let Some(waiting) = self.peers[id as usize].unsynced.pop_due(now) {
            let peer = &mut self.peers[id as usize];
            if let Some(persist) = waiting.persist {
                let checked = peer
                    .disk
                    .apply(persist)
                    .map(drop)
                    .map_err(|e| Broken::new(invariants::DURABLE, format!("n{id}: {e}")));
                self.guard(checked)?;
            }
            let peer = &mut self.peers[id as usize];
            peer.raft
                .as_mut()
                .expect("a crash empties the queue")
                .persisted(waiting.mark, now);
            for read in waiting.reads {
                let committed = self.check.commit_index();
                let checked =
                    self.reads
                        .confirm(id, waiting.term, read, committed, &waiting.membership);
                self.guard(checked)?;
            }
            for read in waiting.failed_reads {
                let checked = self.reads.fail(id, read);
                self.guard(checked)?;
            }
            for msg in waiting.messages {
                self.send(msg)?;
            }
            let mut due = None;
            for item in &waiting.apply {
                self.service_apply(id, item)?;
                let is_entry = matches!(item, Apply::Entry(_));
                if is_entry && self.snapshot_every.is_some_and(|n| item.index() % n == 0) {
                    due = Some(item.index());
                }
            }
            if let Some(index) = due {
                self.due_snapshots.push_back((id, index));
            }
        }
        self.collect(id)
    }

    /// (id, term, disk) of every live peer that leads.
    fn leaders(&self) -> impl Iterator<Item = (NodeId, Term, &Disk)> {
        self.peers.iter().filter_map(|p| {
            let status = p.raft.as_ref()?.status();
            (status.role == Role::Leader).then_some((status.id, status.term, &p.written))
        })
    }

    /// Peer `id`'s service applies `item`.
    fn service_apply(&mut self, id: NodeId, item: &Apply) -> Result<(), Violation> {
        let peer = &self.peers[id as usize];
        let checked = self.check.apply(id, peer.applied, peer.digest, item);
        let (applied, digest) = self.guard(checked)?;
        let disk = &self.peers[id as usize].disk;
        let checked = self.check.applied_durable(id, applied, disk);
        self.guard(checked)?;
        let peer = &mut self.peers[id as usize];
        peer.applied = applied;
        peer.digest = digest;
        if matches!(item, Apply::Snapshot(_)) {
            self.stats.snapshots_applied += 1;
        }
        Ok(())
    }

    fn send(&mut self, msg: Message) -> Result<(), Violation> {
        self.stats.datagrams += 1;
        if msg.via.is_some() {
            // A copy of a message just sent directly: checked and counted with it.
            self.stats.relayed += 1;
            self.net.send(msg, self.now);
            return Ok(());
        }
        let prospective = matches!(
            msg.body,
            MessageBody::PreVote { .. }
                | MessageBody::PreVoteReply {
                    vote_granted: true,
                    ..
                }
        );
        if !prospective {
            self.check.announced(msg.from, msg.term);
        }
        match &msg.body {
            MessageBody::AppendEntries { entries, .. } => {
                self.stats.appends_to[msg.to as usize] += 1;
                self.stats.command_bytes += entries.iter().map(|e| e.command.len()).sum::<usize>();
            }
            MessageBody::InstallSnapshot { .. } => self.stats.snapshot_chunks += 1,
            MessageBody::RequestVoteReply { vote_granted: true } => {
                let checked = self.check.vote(msg.from, msg.term, msg.to);
                self.guard(checked)?;
            }
            _ => {}
        }
        self.net.send(msg, self.now);
        Ok(())
    }
}

/// Whether `msg` is a rejection in `raft`'s term, from a follower it leads, of an earlier flow
/// epoch, that the rejected index alone would not have told from a current one: above the
/// follower's match_index, and while probing naming the outstanding probe's prev_log_index
/// (`Stats::stale_rejections`).
fn is_stale_rejection(raft: &Raft, msg: &Message) -> bool {
    let MessageBody::AppendEntriesReply {
        success: false,
        match_index: rejected,
        flow_epoch,
        ..
    } = msg.body
    else {
        return false;
    };
    let Some(progress) = raft.progress_of(msg.from) else {
        return false;
    };
    let plausible = rejected > progress.match_index
        && match progress.state() {
            FlowState::Probe => rejected + 1 == progress.next_index,
            FlowState::Replicate => true,
            FlowState::Snapshot { .. } => false,
        };
    msg.term == raft.status().term && plausible && flow_epoch != progress.epoch()
}
