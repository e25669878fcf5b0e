//! The data plane: carries each datagram between the nodes, and between clerks and nodes,
//! through the faces, under the network's connectivity and fault rules, and counts what
//! happened to it.
//!
//! Every endpoint (node or clerk) has its own address and a face on the proxy. An endpoint
//! reaches another by sending to the other's face; the forwarder recognises the sender by the
//! source address and sends the datagram on from the sender's face, so that the receiver sees
//! its peer at that face and a reply comes back through the proxy too. A clerk reaches node `j`
//! at node `j`'s face and node `j` answers the clerk's face; clerks have no links to clerks. A
//! datagram with no fault to apply is sent straight from the receive buffer: nothing is
//! allocated per datagram.

use super::delay_queue::DelayQueue;
use crate::command::Change;
use crate::endpoint::{is_link, Endpoint, Endpoints};
use crate::network::Network;
use crate::stats::{LinkCounters, LinkStats, Stats};
use crate::status::Status;
use log::{trace, warn};
use mio::net::UdpSocket;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Foreign sources are logged once each, up to this many, so a flood cannot fill the log.
const MAX_FOREIGN_LOGGED: usize = 1024;

pub struct Forwarder {
    endpoints: Endpoints,
    /// Each endpoint's own address, indexed by [`Endpoints::index`] (nodes, then clerks).
    addrs: Vec<SocketAddr>,
    /// Endpoint `e`'s face receives what is meant for `e` and sends what `e` sent; indexed as
    /// `addrs`. A removed node's face is closed (`None`).
    faces: Vec<Option<UdpSocket>>,
    face_addrs: Vec<SocketAddr>,
    network: Network,
    /// Indexed by [`Endpoints::link`], as the network's tables are.
    counters: Vec<LinkCounters>,
    foreign: u64,
    foreign_bytes: u64,
    foreign_logged: HashSet<SocketAddr>,
    queue: DelayQueue,
    /// Datagrams each link has in `queue`, indexed as `counters`; at most `max_delayed`.
    delayed: Vec<usize>,
    max_delayed: usize,
    seed: u64,
    rng: SmallRng,
}

impl Forwarder {
    /// `addrs` and `faces` hold the endpoints' addresses and faces, nodes first; each directed
    /// link holds at most `max_delayed` delayed datagrams.
    pub fn new(
        endpoints: Endpoints,
        addrs: Vec<SocketAddr>,
        faces: Vec<UdpSocket>,
        seed: u64,
        max_delayed: usize,
    ) -> io::Result<Self> {
        assert!(addrs.len() == endpoints.len() && faces.len() == endpoints.len());
        let face_addrs = faces
            .iter()
            .map(UdpSocket::local_addr)
            .collect::<io::Result<_>>()?;
        Ok(Forwarder {
            endpoints,
            addrs,
            faces: faces.into_iter().map(Some).collect(),
            face_addrs,
            network: Network::new(endpoints),
            counters: vec![LinkCounters::default(); endpoints.len() * endpoints.len()],
            foreign: 0,
            foreign_bytes: 0,
            foreign_logged: HashSet::new(),
            queue: DelayQueue::new(),
            delayed: vec![0; endpoints.len() * endpoints.len()],
            max_delayed,
            seed,
            rng: SmallRng::seed_from_u64(seed),
        })
    }

    pub fn endpoints(&self) -> Endpoints {
        self.endpoints
    }

    /// Forwards every datagram waiting on the face of the endpoint in slot `face`. The socket
    /// is edge-triggered, so it is read until it would block.
    pub fn drain(&mut self, face: usize, buf: &mut [u8]) {
        let to = self.endpoints.at(face);
        loop {
            let Some(socket) = &self.faces[face] else {
                return;
            };
            match socket.recv_from(buf) {
                Ok((len, source)) => self.forward(source, to, &buf[..len]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A socket error is reported once and then cleared; the data behind it is
                // still to be read.
                Err(e) => warn!("face {to}: receive failed: {e}"),
            }
        }
    }

    fn forward(&mut self, source: SocketAddr, to: Endpoint, datagram: &[u8]) {
        let sender = self.addrs.iter().position(|&addr| addr == source);
        let Some(from) = sender.map(|slot| self.endpoints.at(slot)) else {
            self.count_foreign(source, datagram.len());
            return;
        };
        if !is_link(from, to) {
            self.count_foreign(source, datagram.len());
            return;
        }
        let counters = &mut self.counters[self.endpoints.link(from, to)];
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
                self.delay(from, to, delay, datagram);
            }
        }
    }

    /// Queues `datagram` for `delay`, unless its link already holds its cap of delayed
    /// datagrams: then it is lost as a full router queue would lose it.
    fn delay(&mut self, from: Endpoint, to: Endpoint, delay: Duration, datagram: &[u8]) {
        let link = self.endpoints.link(from, to);
        if self.delayed[link] >= self.max_delayed {
            let counters = &mut self.counters[link];
            if counters.dropped_overflow == 0 {
                warn!(
                    "{from}->{to}: {} datagrams already delayed; further ones dropped and counted \
                     as overflow (--max-delayed-per-link)",
                    self.max_delayed
                );
            }
            counters.dropped_overflow += 1;
            return;
        }
        trace!("{from}->{to} {}B delayed {delay:?}", datagram.len());
        self.delayed[link] += 1;
        self.queue.push(Instant::now() + delay, from, to, datagram);
    }

    fn send(&mut self, from: Endpoint, to: Endpoint, datagram: &[u8]) {
        let endpoints = self.endpoints;
        let counters = &mut self.counters[endpoints.link(from, to)];
        let Some(face) = &self.faces[endpoints.index(from)] else {
            counters.dropped_down += 1;
            return;
        };
        match face.send_to(datagram, self.addrs[endpoints.index(to)]) {
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
            warn!("dropping datagrams from {source}: no link of this cluster (logged once per source)");
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
            self.delayed[self.endpoints.link(from, to)] -= 1;
            if self.network.passes(from, to) {
                self.send(from, to, &delayed.payload);
            } else {
                self.counters[self.endpoints.link(from, to)].dropped_down += 1;
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

    /// The face the next node would get unless told: the port after the last node's face.
    pub fn next_face(&self) -> SocketAddr {
        let mut last = self.face_addrs[self.endpoints.nodes - 1];
        last.set_port(last.port().wrapping_add(1));
        last
    }

    /// A node joins with its own address `addr` and the face bound for it; returns its id.
    /// Every per-endpoint and per-link table grows: the node's slot comes after the other
    /// nodes', before the clerks', whose faces the caller re-registers under their new slots.
    pub fn add_node(&mut self, addr: SocketAddr, face: UdpSocket) -> io::Result<usize> {
        let old = self.endpoints;
        let grown = Endpoints::new(old.nodes + 1, old.clerks);
        let face_addr = face.local_addr()?;
        let id = old.nodes;
        self.addrs.insert(id, addr);
        self.faces.insert(id, Some(face));
        self.face_addrs.insert(id, face_addr);
        self.counters = old.regrow_links(&self.counters, grown, LinkCounters::default());
        self.delayed = old.regrow_links(&self.delayed, grown, 0);
        self.network.add_node();
        self.endpoints = grown;
        Ok(id)
    }

    /// Node `id` leaves: its face is closed and handed back for deregistering, nothing passes
    /// to or from it from now on, and its counters stay as they were.
    pub fn remove_node(&mut self, id: usize) -> Option<UdpSocket> {
        self.network.remove_node(id);
        self.faces[self.endpoints.index(Endpoint::Node(id))].take()
    }

    pub fn is_removed(&self, id: usize) -> bool {
        self.network.is_removed(Endpoint::Node(id))
    }

    /// The face of the endpoint in `slot`, if open (to register it under a new token).
    pub fn face_mut(&mut self, slot: usize) -> Option<&mut UdpSocket> {
        self.faces[slot].as_mut()
    }

    pub fn has_address(&self, addr: SocketAddr) -> bool {
        self.addrs.contains(&addr)
    }

    pub fn stats(&self) -> Stats {
        let endpoints = self.endpoints;
        Stats {
            nodes: endpoints.nodes,
            clerks: endpoints.clerks,
            links: (endpoints.links())
                .map(|(from, to)| LinkStats {
                    from,
                    to,
                    counters: self.counters[endpoints.link(from, to)],
                })
                .filter(|link| !link.counters.is_zero())
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
        let endpoints = self.endpoints;
        self.network
            .status(self.seed, self.queue.len(), |endpoint| {
                let slot = endpoints.index(endpoint);
                (self.addrs[slot], self.face_addrs[slot])
            })
    }
}
