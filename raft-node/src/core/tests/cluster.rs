//! A tiny deterministic in-memory cluster for the core: a virtual clock, a seeded message
//! scheduler (random delay, loss, duplication, hence reordering), the lab's partition model
//! (a peer is connected or isolated), crashes that keep exactly the persisted state, a service
//! on every peer that can snapshot it every N applied entries (§7, the lab's applierSnap), and
//! the safety checks run on every effect:
//!
//! - Election Safety (§5.2): at most one leader per term, ever.
//! - State Machine Safety (§5.4.3): every peer applies the same entry at each index, gap-free
//!   from 1 or from a snapshot, and a snapshot is exactly the state the applied prefix it
//!   covers produces, so every peer's state follows the one true sequence.
//! - Leader Completeness (§5.4): a new leader's log holds every entry applied anywhere (those
//!   its snapshot covers excepted).
//!
//! The service's state is a digest chained over the applied entries; its snapshot is the index,
//! the digest and filler derived from them, long enough to take several InstallSnapshot chunks.

use super::helpers;
use crate::core::{
    Apply, Config, Entry, HardState, Index, Message, MessageBody, NodeId, Persist, Raft, Restored,
    Role, Snapshot, Term, Time,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::hash_map::DefaultHasher;
use std::collections::{btree_map, BTreeMap, BinaryHeap};
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// The network's faults. Delays are drawn per datagram, so datagrams overtake each other.
#[derive(Clone, Debug)]
pub struct Net {
    pub drop: f64,
    pub duplicate: f64,
    pub delay_max: Duration,
    /// Probability of an extra delay of up to `long_delay` (the lab's long reordering).
    pub long_delay_rate: f64,
    pub long_delay: Duration,
}

impl Net {
    /// No loss, no duplication, a fixed 1 ms delay (so no reordering).
    pub fn reliable() -> Net {
        Net {
            drop: 0.0,
            duplicate: 0.0,
            delay_max: Duration::ZERO,
            long_delay_rate: 0.0,
            long_delay: Duration::ZERO,
        }
    }

    /// Random fault rates up to 20 % loss, 10 % duplication, 30 ms jitter, 5 % long delays.
    pub fn random(rng: &mut SmallRng) -> Net {
        Net {
            drop: rng.gen_range(0.0..0.2),
            duplicate: rng.gen_range(0.0..0.1),
            delay_max: helpers::ms(rng.gen_range(1..30)),
            long_delay_rate: rng.gen_range(0.0..0.05),
            long_delay: helpers::ms(2_000),
        }
    }
}

const MIN_DELAY: Duration = Duration::from_millis(1);

/// What a peer's disk holds: exactly the `Ready::persist` effects applied so far, in the
/// order `Persist` documents.
#[derive(Clone, Debug, Default)]
struct Durable {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
}

impl Durable {
    fn apply(&mut self, persist: Persist) {
        if let Some(hard_state) = persist.hard_state {
            self.hard_state = hard_state;
        }
        if let Some(snapshot) = persist.snapshot {
            self.entries
                .retain(|e| e.index > snapshot.last_included_index);
            self.snapshot = Some(snapshot);
        }
        if let Some(from) = persist.truncate_from {
            self.entries.retain(|e| e.index < from);
        }
        let snapshot_index = self.snapshot.as_ref().map_or(0, |s| s.last_included_index);
        if let Some(first) = self.entries.first() {
            assert_eq!(first.index, snapshot_index + 1, "durable log gap");
        }
        for entry in persist.append {
            let last = self.entries.last().map_or(snapshot_index, |e| e.index);
            assert_eq!(entry.index, last + 1, "durable log gap");
            self.entries.push(entry);
        }
    }

    fn restored(&self) -> Restored {
        Restored {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
        }
    }
}

/// The digest chained over the applied entries up to and including `entry`.
fn digest(prev: u64, entry: &Entry) -> u64 {
    let mut hasher = DefaultHasher::new();
    (prev, entry.index, entry.term, &entry.command).hash(&mut hasher);
    hasher.finish()
}

/// The service's snapshot of its state after applying `index` with `digest`: both, then filler
/// derived from them, `len` bytes in all (at least 16).
fn service_snapshot(index: Index, digest: u64, len: usize) -> Vec<u8> {
    let mut data = [index.to_le_bytes(), digest.to_le_bytes()].concat();
    let seed = index ^ digest;
    data.extend((0..len.saturating_sub(16)).map(|i| (seed >> (i % 8 * 8)) as u8 ^ i as u8));
    data
}

pub struct Peer {
    /// `None` while crashed.
    pub raft: Option<Raft>,
    config: Config,
    durable: Durable,
    pub connected: bool,
    /// The last index this incarnation's service applied (a restart starts over from the
    /// snapshot, or from 1).
    pub applied: Index,
    /// The service's state: the digest of what it applied.
    digest: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Datagrams handed to the network (dropped ones included), as the proxy counts them.
    pub datagrams: usize,
    /// AppendEntries sent to each peer.
    pub appends_to: Vec<usize>,
    /// Command bytes carried by AppendEntries.
    pub command_bytes: usize,
    /// InstallSnapshot chunks sent.
    pub snapshot_chunks: usize,
    /// Snapshots that services received in their apply stream (installs and restarts).
    pub snapshots_applied: usize,
}

/// A datagram in flight, ordered by delivery time, then by send order.
struct InFlight {
    at: Time,
    seq: u64,
    msg: Message,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

pub struct Cluster {
    pub peers: Vec<Peer>,
    pub now: Time,
    pub net: Net,
    pub stats: Stats,
    rng: SmallRng,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    /// Every entry applied by any peer, by index (`committed[i - 1]` is index i).
    pub committed: Vec<Entry>,
    /// The service's digest after each committed entry (`digests[i - 1]` after index i).
    digests: Vec<u64>,
    /// The leader of every term seen so far.
    leaders: BTreeMap<Term, NodeId>,
    /// Services snapshot their peer at every multiple of this index (never when `None`).
    pub snapshot_every: Option<Index>,
    /// The length of a service snapshot.
    pub snapshot_len: usize,
}

impl Cluster {
    /// `members` empty peers with the helpers' timers; `seed` drives everything.
    pub fn new(members: u32, seed: u64, net: Net) -> Cluster {
        Cluster::with_batches(members, seed, net, helpers::MAX_APPEND_BYTES)
    }

    /// As [`Cluster::new`], with AppendEntries limited to `max_append_bytes` of entries.
    pub fn with_batches(members: u32, seed: u64, net: Net, max_append_bytes: usize) -> Cluster {
        let configs = (0..members)
            .map(|id| Config {
                seed: seed.wrapping_mul(31).wrapping_add(u64::from(id)),
                max_append_bytes,
                ..helpers::config(id, members)
            })
            .collect();
        Cluster::with_state(
            configs,
            vec![Restored::default(); members as usize],
            seed,
            net,
        )
    }

    /// Peers restarting from the given configs and durable states.
    pub fn with_state(
        configs: Vec<Config>,
        restored: Vec<Restored>,
        seed: u64,
        net: Net,
    ) -> Cluster {
        let peers = configs
            .into_iter()
            .zip(restored)
            .map(|(config, restored)| Peer {
                raft: Some(Raft::new(config.clone(), restored.clone(), Time::ZERO)),
                config,
                durable: Durable {
                    hard_state: restored.hard_state,
                    snapshot: restored.snapshot,
                    entries: restored.entries,
                },
                connected: true,
                applied: 0,
                digest: 0,
            })
            .collect::<Vec<_>>();
        let members = peers.len();
        Cluster {
            peers,
            now: Time::ZERO,
            net,
            stats: Stats {
                appends_to: vec![0; members],
                ..Stats::default()
            },
            rng: SmallRng::seed_from_u64(seed),
            queue: BinaryHeap::new(),
            seq: 0,
            committed: Vec::new(),
            digests: Vec::new(),
            leaders: BTreeMap::new(),
            snapshot_every: None,
            snapshot_len: 16,
        }
    }

    pub fn raft(&self, id: NodeId) -> &Raft {
        self.peers[id as usize].raft.as_ref().expect("peer is up")
    }

    /// The live, connected peer claiming leadership in the highest term.
    pub fn leader(&self) -> Option<NodeId> {
        self.peers
            .iter()
            .filter(|p| p.connected)
            .filter_map(|p| p.raft.as_ref())
            .map(Raft::status)
            .filter(|s| s.role == Role::Leader)
            .max_by_key(|s| s.term)
            .map(|s| s.id)
    }

    /// Runs the cluster for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        self.run_until(end, |_| false);
    }

    /// Runs until `done` holds (checked after every event) or `limit`; returns whether it held.
    pub fn run_until(&mut self, limit: Time, done: impl Fn(&Cluster) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            let next_message = self.queue.peek().map(|m| m.0.at);
            let next_timer = self
                .peers
                .iter()
                .filter_map(|p| p.raft.as_ref())
                .map(Raft::next_deadline)
                .min();
            let Some(at) = next_message.into_iter().chain(next_timer).min() else {
                self.now = limit;
                return false;
            };
            if at > limit {
                self.now = limit;
                return false;
            }
            self.now = self.now.max(at);
            if next_message == Some(at) {
                let Reverse(InFlight { msg, .. }) = self.queue.pop().expect("peeked");
                self.deliver(msg);
            } else {
                for id in 0..self.peers.len() as NodeId {
                    let now = self.now;
                    if let Some(raft) = self.peers[id as usize].raft.as_mut() {
                        if raft.next_deadline() <= now {
                            raft.tick(now);
                            self.collect(id);
                        }
                    }
                }
            }
        }
    }

    /// The lab's Start() on peer `id`.
    pub fn propose(&mut self, id: NodeId, command: Vec<u8>) -> Option<(Index, Term)> {
        let now = self.now;
        let result = self.peers[id as usize]
            .raft
            .as_mut()?
            .propose(command, now)
            .ok();
        self.collect(id);
        result
    }

    /// Kills peer `id`: its volatile state is gone, its durable state stays.
    pub fn crash(&mut self, id: NodeId) {
        self.peers[id as usize].raft = None;
    }

    /// Restarts a crashed peer from exactly what it persisted; its service starts over from
    /// the replay (the snapshot, if any).
    pub fn restart(&mut self, id: NodeId) {
        let peer = &mut self.peers[id as usize];
        if peer.raft.is_some() {
            return;
        }
        let raft = Raft::new(peer.config.clone(), peer.durable.restored(), self.now);
        let replay = raft.applied(0);
        peer.raft = Some(raft);
        peer.applied = 0;
        peer.digest = 0;
        for item in replay {
            self.check_apply(id, item);
        }
    }

    /// Connects every peer, restarts crashed ones and makes the network reliable.
    pub fn heal(&mut self) {
        self.net = Net::reliable();
        for id in 0..self.peers.len() as NodeId {
            self.restart(id);
            self.peers[id as usize].connected = true;
        }
    }

    fn linked(&self, a: NodeId, b: NodeId) -> bool {
        self.peers[a as usize].connected && self.peers[b as usize].connected
    }

    fn deliver(&mut self, msg: Message) {
        let to = msg.to;
        if !self.linked(msg.from, to) {
            return;
        }
        let now = self.now;
        if let Some(raft) = self.peers[to as usize].raft.as_mut() {
            raft.step(msg, now);
            self.collect(to);
        }
    }

    /// Takes peer `id`'s effects and carries them out in the documented order (persist, send,
    /// apply), checking the safety properties. The service snapshots afterwards if it is due.
    fn collect(&mut self, id: NodeId) {
        let peer = &mut self.peers[id as usize];
        let Some(raft) = peer.raft.as_mut() else {
            return;
        };
        let ready = raft.take_ready();
        let status = raft.status();
        if let Some(persist) = ready.persist {
            peer.durable.apply(persist);
        }
        for msg in ready.messages {
            self.send(msg);
        }
        let mut due = None;
        for item in ready.apply {
            let is_entry = matches!(item, Apply::Entry(_));
            let index = self.check_apply(id, item);
            if is_entry && self.snapshot_every.is_some_and(|n| index.is_multiple_of(n)) {
                due = Some(index);
            }
        }
        if let Some(index) = due {
            let data = service_snapshot(index, self.digests[index as usize - 1], self.snapshot_len);
            let raft = self.peers[id as usize].raft.as_mut().expect("peer is up");
            raft.snapshot(index, data).expect("the service applied it");
        }
        if status.role == Role::Leader {
            self.check_leader(id, status.term);
        }
    }

    /// Peer `id`'s service applies `item`; returns the index it reached.
    fn check_apply(&mut self, id: NodeId, item: Apply) -> Index {
        let peer = &mut self.peers[id as usize];
        match item {
            Apply::Entry(entry) => {
                let index = entry.index;
                assert_eq!(index, peer.applied + 1, "n{id} applied out of order");
                peer.digest = digest(peer.digest, &entry);
                match self.committed.get(index as usize - 1) {
                    Some(committed) => assert_eq!(
                        committed, &entry,
                        "n{id} applied a different entry at index {index}"
                    ),
                    None => {
                        self.committed.push(entry);
                        self.digests.push(peer.digest);
                    }
                }
                peer.applied = index;
            }
            Apply::Snapshot(snapshot) => {
                let index = snapshot.last_included_index;
                assert!(index > peer.applied, "n{id} applied an old snapshot");
                // Some service took it after applying the entries it covers.
                let committed = &self.committed[index as usize - 1];
                let digest = self.digests[index as usize - 1];
                assert_eq!(snapshot.last_included_term, committed.term);
                assert!(
                    snapshot.data == service_snapshot(index, digest, self.snapshot_len),
                    "n{id} applied a snapshot at {index} that is not the committed state"
                );
                peer.applied = index;
                peer.digest = digest;
                self.stats.snapshots_applied += 1;
            }
        }
        assert_eq!(
            peer.digest,
            self.digests[peer.applied as usize - 1],
            "n{id} diverged at index {}",
            peer.applied
        );
        peer.applied
    }

    fn check_leader(&mut self, id: NodeId, term: Term) {
        match self.leaders.entry(term) {
            btree_map::Entry::Occupied(first) => {
                assert_eq!(*first.get(), id, "two leaders in term {term}");
            }
            btree_map::Entry::Vacant(slot) => {
                slot.insert(id);
                let raft = self.peers[id as usize].raft.as_ref().expect("peer is up");
                let compacted = raft.log.snapshot_index() as usize;
                for entry in self.committed.iter().skip(compacted) {
                    assert_eq!(
                        raft.log.term(entry.index),
                        Some(entry.term),
                        "leader n{id} of t{term} lacks committed index {}",
                        entry.index
                    );
                }
            }
        }
    }

    fn send(&mut self, msg: Message) {
        self.stats.datagrams += 1;
        match &msg.body {
            MessageBody::AppendEntries { entries, .. } => {
                self.stats.appends_to[msg.to as usize] += 1;
                self.stats.command_bytes += entries.iter().map(|e| e.command.len()).sum::<usize>();
            }
            MessageBody::InstallSnapshot { .. } => self.stats.snapshot_chunks += 1,
            _ => {}
        }
        if !self.linked(msg.from, msg.to) || self.rng.gen_bool(self.net.drop) {
            return;
        }
        let copies = if self.rng.gen_bool(self.net.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay = MIN_DELAY + self.jitter(self.net.delay_max);
            if self.rng.gen_bool(self.net.long_delay_rate) {
                delay += self.jitter(self.net.long_delay);
            }
            self.seq += 1;
            self.queue.push(Reverse(InFlight {
                at: self.now + delay,
                seq: self.seq,
                msg: msg.clone(),
            }));
        }
    }

    fn jitter(&mut self, max: Duration) -> Duration {
        if max.is_zero() {
            Duration::ZERO
        } else {
            self.rng.gen_range(Duration::ZERO..max)
        }
    }
}
