//! The simulated network: which directed links are up, what faults datagrams meet, and the
//! datagrams in flight.
//!
//! A datagram from `a` to `b` passes iff both peers are connected (the lab's
//! `connect`/`disconnect`, which cuts every link of one peer) and the directed link `a -> b` is
//! up. Links go down one way ([`Links::cut`]) or by group ([`Links::split`]); a datagram is lost
//! if its link is down when it is sent or when it arrives. Every datagram that is sent meets the
//! [`Faults`]: loss, duplication, and a delay drawn per copy, so datagrams overtake each other,
//! some of them by seconds (the lab's long reordering).

use crate::core::{Message, NodeId, Time};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

/// Every datagram takes at least this long.
pub const MIN_DELAY: Duration = Duration::from_millis(1);

/// The faults every datagram meets.
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    pub drop: f64,
    pub duplicate: f64,
    /// Each copy is delayed by `MIN_DELAY` plus up to this.
    pub delay_max: Duration,
    /// Probability of an extra delay of up to `long_delay` (the lab's long reordering).
    pub long_delay_rate: f64,
    pub long_delay: Duration,
}

impl Faults {
    /// No loss, no duplication, a fixed `MIN_DELAY` (so no reordering).
    pub fn reliable() -> Faults {
        Faults {
            drop: 0.0,
            duplicate: 0.0,
            delay_max: Duration::ZERO,
            long_delay_rate: 0.0,
            long_delay: Duration::ZERO,
        }
    }

    /// Random rates up to 20 % loss, 10 % duplication, 30 ms jitter, 5 % long delays of up to
    /// 2 s.
    pub fn random(rng: &mut SmallRng) -> Faults {
        Faults {
            drop: rng.gen_range(0.0..0.2),
            duplicate: rng.gen_range(0.0..0.1),
            delay_max: Duration::from_millis(rng.gen_range(1..30)),
            long_delay_rate: rng.gen_range(0.0..0.05),
            long_delay: Duration::from_secs(2),
        }
    }

    /// The longest a datagram sent under these faults can take.
    pub fn max_delay(&self) -> Duration {
        MIN_DELAY + self.delay_max + self.long_delay
    }
}

/// Which datagrams get through: per-peer connectivity and per-directed-link state.
#[derive(Clone, Debug)]
pub struct Links {
    members: usize,
    connected: Vec<bool>,
    /// `down[from * members + to]`: the link from `from` to `to` is cut.
    down: Vec<bool>,
}

impl Links {
    pub fn new(members: usize) -> Links {
        Links {
            members,
            connected: vec![true; members],
            down: vec![false; members * members],
        }
    }

    pub fn passes(&self, from: NodeId, to: NodeId) -> bool {
        let (from, to) = (from as usize, to as usize);
        self.connected[from] && self.connected[to] && !self.down[from * self.members + to]
    }

    pub fn is_connected(&self, id: NodeId) -> bool {
        self.connected[id as usize]
    }

    /// The lab's `connect(id)` (true) / `disconnect(id)` (false).
    pub fn set_connected(&mut self, id: NodeId, connected: bool) {
        self.connected[id as usize] = connected;
    }

    /// Cuts the link from `from` to `to` (one way).
    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        self.down[from as usize * self.members + to as usize] = true;
    }

    /// Cuts every link between peers of different groups (`group[id]` is peer id's), both ways;
    /// links within a group are up.
    pub fn split(&mut self, group: &[u8]) {
        for from in 0..self.members {
            for to in 0..self.members {
                self.down[from * self.members + to] = group[from] != group[to];
            }
        }
    }

    /// Every directed link up (connectivity of peers unchanged).
    pub fn restore_links(&mut self) {
        self.down.fill(false);
    }

    /// Every link up and every peer connected.
    pub fn heal(&mut self) {
        self.restore_links();
        self.connected.fill(true);
    }
}

/// A datagram in flight, ordered by delivery time, then by send order (so ties break the same
/// way in every run).
struct InFlight {
    at: Time,
    seq: u64,
    msg: Message,
    /// The link it travels: `msg.from -> msg.to`, or one of the two hops of a relayed copy.
    hop: (NodeId, NodeId),
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

/// The links, the faults, and the datagrams in flight.
pub struct Network {
    pub links: Links,
    pub faults: Faults,
    rng: SmallRng,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
}

impl Network {
    /// `seed` draws every loss, duplication and delay.
    pub fn new(members: usize, faults: Faults, seed: u64) -> Network {
        Network {
            links: Links::new(members),
            faults,
            rng: SmallRng::seed_from_u64(seed),
            queue: BinaryHeap::new(),
            seq: 0,
        }
    }

    /// Sends `msg` at `now` (a relayed copy to its relay); returns how many copies are in flight
    /// (0 if it was lost).
    pub fn send(&mut self, msg: Message, now: Time) -> usize {
        let hop = (msg.from, msg.via.unwrap_or(msg.to));
        self.send_hop(msg, hop, now)
    }

    /// The relay `msg.via` forwards the relayed copy `msg` to `msg.to`, as it is.
    pub fn forward(&mut self, msg: Message, now: Time) -> usize {
        let relay = msg.via.expect("a relayed copy");
        let hop = (relay, msg.to);
        self.send_hop(msg, hop, now)
    }

    fn send_hop(&mut self, msg: Message, hop: (NodeId, NodeId), now: Time) -> usize {
        if !self.links.passes(hop.0, hop.1) || self.rng.gen_bool(self.faults.drop) {
            return 0;
        }
        let copies = if self.rng.gen_bool(self.faults.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay = MIN_DELAY + self.jitter(self.faults.delay_max);
            if self.rng.gen_bool(self.faults.long_delay_rate) {
                delay += self.jitter(self.faults.long_delay);
            }
            self.seq += 1;
            self.queue.push(Reverse(InFlight {
                at: now + delay,
                seq: self.seq,
                msg: msg.clone(),
                hop,
            }));
        }
        copies
    }

    /// When the next datagram arrives.
    pub fn next_arrival(&self) -> Option<Time> {
        self.queue.peek().map(|m| m.0.at)
    }

    /// The next datagram to arrive and the peer it arrives at (the relay, for a relayed copy on
    /// its first hop), if its link is still up (else it is lost on the way). `None` when nothing
    /// is in flight.
    pub fn arrive(&mut self) -> Option<Option<(Message, NodeId)>> {
        let Reverse(InFlight { msg, hop, .. }) = self.queue.pop()?;
        Some(self.links.passes(hop.0, hop.1).then_some((msg, hop.1)))
    }

    fn jitter(&mut self, max: Duration) -> Duration {
        if max.is_zero() {
            Duration::ZERO
        } else {
            self.rng.gen_range(Duration::ZERO..max)
        }
    }
}
