//! The data plane: carries each datagram from a node to its peer through the faces, under the
//! network's connectivity and fault rules, and counts what happened to it.
//!
//! Node `i` sends to face `j`; the forwarder recognises `i` by the source address and sends the
//! datagram on to node `j` from face `i`, so that `j` sees its peer at `i`'s face and its reply
//! comes back through the proxy too. A datagram with no fault to apply is sent straight from
//! the receive buffer: nothing is allocated per datagram.

use super::delay_queue::DelayQueue;
use crate::command::Change;
use crate::network::Network;
use crate::stats::{LinkCounters, LinkStats, Stats};
use crate::status::{LinkFaults, LinkId, NodeStatus, Status};
use log::{trace, warn};
use mio::net::UdpSocket;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

/// Foreign sources are logged once each, up to this many, so a flood cannot fill the log.
const MAX_FOREIGN_LOGGED: usize = 1024;

pub struct Forwarder {
    /// Each node's own address; the index is the node id.
    nodes: Vec<SocketAddr>,
    /// Face `j` receives what is meant for node `j` and sends what node `j` sent.
    faces: Vec<UdpSocket>,
    face_addrs: Vec<SocketAddr>,
    network: Network,
    /// Indexed `from * nodes + to`, as the network's tables are.
    counters: Vec<LinkCounters>,
    foreign: u64,
    foreign_bytes: u64,
    foreign_logged: HashSet<SocketAddr>,
    queue: DelayQueue,
    seed: u64,
    rng: SmallRng,
}

impl Forwarder {
    pub fn new(nodes: Vec<SocketAddr>, faces: Vec<UdpSocket>, seed: u64) -> io::Result<Self> {
        let n = nodes.len();
        let face_addrs = faces
            .iter()
            .map(UdpSocket::local_addr)
            .collect::<io::Result<_>>()?;
        Ok(Forwarder {
            nodes,
            faces,
            face_addrs,
            network: Network::new(n),
            counters: vec![LinkCounters::default(); n * n],
            foreign: 0,
            foreign_bytes: 0,
            foreign_logged: HashSet::new(),
            queue: DelayQueue::new(),
            seed,
            rng: SmallRng::seed_from_u64(seed),
        })
    }

    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Forwards every datagram waiting on face `to`. The socket is edge-triggered, so it is
    /// read until it would block.
    pub fn drain(&mut self, to: usize, buf: &mut [u8]) {
        loop {
            match self.faces[to].recv_from(buf) {
                Ok((len, source)) => self.forward(source, to, &buf[..len]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A socket error is reported once and then cleared; the data behind it is
                // still to be read.
                Err(e) => warn!("face {to}: receive failed: {e}"),
            }
        }
    }

    fn forward(&mut self, source: SocketAddr, to: usize, datagram: &[u8]) {
        let Some(from) = self.nodes.iter().position(|&node| node == source) else {
            self.count_foreign(source, datagram.len());
            return;
        };
        let link = from * self.nodes.len() + to;
        let counters = &mut self.counters[link];
        counters.received += 1;
        counters.received_bytes += datagram.len() as u64;
        if !self.network.passes(from, to) {
            counters.dropped_down += 1;
            trace!("{from}->{to} {}B dropped: link down", datagram.len());
            return;
        }
        let faults = self.network.faults(from, to);
        if faults.is_none() {
            self.send(from, to, datagram);
            return;
        }
        if faults.drops(&mut self.rng) {
            counters.dropped_rule += 1;
            trace!("{from}->{to} {}B dropped by rule", datagram.len());
            return;
        }
        let copies = if faults.duplicates(&mut self.rng) {
            counters.duplicated += 1;
            2
        } else {
            1
        };
        let faults = *faults;
        for _ in 0..copies {
            let delay = faults.draw_delay(&mut self.rng);
            if delay.is_zero() {
                self.send(from, to, datagram);
            } else {
                trace!("{from}->{to} {}B delayed {delay:?}", datagram.len());
                self.queue.push(Instant::now() + delay, from, to, datagram);
            }
        }
    }

    fn send(&mut self, from: usize, to: usize, datagram: &[u8]) {
        let counters = &mut self.counters[from * self.nodes.len() + to];
        match self.faces[from].send_to(datagram, self.nodes[to]) {
            Ok(_) => {
                counters.delivered += 1;
                counters.delivered_bytes += datagram.len() as u64;
                trace!("{from}->{to} {}B delivered", datagram.len());
            }
            Err(e) => {
                // Never block the loop on one slow receiver: the datagram is lost, as a full
                // queue in a real network would lose it. Only a link's first loss (since the
                // counters were reset) is logged, so a lasting failure cannot flood the log.
                if counters.dropped_overflow == 0 {
                    warn!("{from}->{to}: send failed ({e}); further failures only counted");
                }
                counters.dropped_overflow += 1;
            }
        }
    }

    fn count_foreign(&mut self, source: SocketAddr, len: usize) {
        self.foreign += 1;
        self.foreign_bytes += len as u64;
        if self.foreign_logged.len() < MAX_FOREIGN_LOGGED && self.foreign_logged.insert(source) {
            warn!("dropping datagrams from {source}: not a node of this cluster (logged once per source)");
        }
    }

    /// When the next delayed datagram is due, if any is waiting.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.next_due()
    }

    /// Sends every delayed datagram due by `now` whose link is still up; a link cut while the
    /// datagram waited drops it.
    pub fn send_due(&mut self, now: Instant) {
        while let Some(delayed) = self.queue.pop_due(now) {
            let (from, to) = (delayed.from, delayed.to);
            if self.network.passes(from, to) {
                self.send(from, to, &delayed.payload);
            } else {
                self.counters[from * self.nodes.len() + to].dropped_down += 1;
                trace!(
                    "{from}->{to} {}B dropped: link cut while delayed",
                    delayed.payload.len()
                );
            }
            self.queue.recycle(delayed.payload);
        }
    }

    pub fn apply(&mut self, change: &Change) {
        self.network.apply(change);
    }

    pub fn stats(&self) -> Stats {
        let n = self.nodes.len();
        Stats {
            nodes: n,
            links: (self.counters.iter().enumerate())
                .filter(|(_, counters)| !counters.is_zero())
                .map(|(link, &counters)| LinkStats {
                    from: link / n,
                    to: link % n,
                    counters,
                })
                .collect(),
            foreign: self.foreign,
            foreign_bytes: self.foreign_bytes,
        }
    }

    pub fn reset_stats(&mut self) {
        self.counters.fill(LinkCounters::default());
        self.foreign = 0;
        self.foreign_bytes = 0;
    }

    pub fn status(&self) -> Status {
        let n = self.nodes.len();
        let links = || (0..n).flat_map(move |from| (0..n).map(move |to| (from, to)));
        Status {
            seed: self.seed,
            nodes: (0..n)
                .map(|id| NodeStatus {
                    id,
                    addr: self.nodes[id],
                    face: self.face_addrs[id],
                    connected: self.network.is_connected(id),
                })
                .collect(),
            down: links()
                .filter(|&(from, to)| !self.network.is_up(from, to))
                .map(|(from, to)| LinkId { from, to })
                .collect(),
            faults: links()
                .filter(|&(from, to)| !self.network.faults(from, to).is_none())
                .map(|(from, to)| LinkFaults {
                    from,
                    to,
                    faults: *self.network.faults(from, to),
                })
                .collect(),
            queued: self.queue.len(),
        }
    }
}
