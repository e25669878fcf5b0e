//! The peer socket: one UDP socket that receives every peer's datagrams and sends ours, and
//! takes clerks' requests and sends their replies (clerks and peers alike come through netproxy).
//!
//! UDP is lossy by contract (netproxy drops, delays and reorders on purpose) and Raft
//! retransmits, so nothing here ever waits: a datagram that cannot be decoded, is not for us or
//! cannot be sent right now is counted and dropped.
//!
//! Relayed copies (`core::relay`, `wire::Relay`): a message the core addressed `via` a relay
//! goes to the relay in a [`Payload::Relay`] envelope; a relay forwards such an envelope to its
//! target as a [`Payload::Relayed`] one, resealed, without decoding the message inside (one hop:
//! a relay never relays what it received relayed); the target steps the inner message only once
//! its own MAC checks and it names the envelope's sender, target and relay.

use crate::core::{Message, NodeId};
use crate::kv::{ClerkReply, ClerkRequest};
use crate::wire::{self, ClusterKey, DecodeError, Payload, Relay};
use log::{debug, error, trace, warn};
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Room for the largest UDP payload, so the kernel never truncates a datagram silently and an
/// oversize one can be recognised and counted.
const RECV_BUFFER: usize = 1 << 16;

/// Why an incoming datagram was dropped.
#[derive(Debug, PartialEq, Eq)]
pub enum Reject {
    Oversize(usize),
    Malformed(String),
    Version(u8),
    Cluster(u64),
    /// A missing or bad MAC: not from a holder of the cluster secret.
    Unauthenticated,
    /// `from` is not a peer of ours: out of range, or our own id.
    From(NodeId),
    /// Addressed to another node (a misrouted datagram).
    To(NodeId),
    /// A clerk's reply, which only clerks receive.
    ClerkReply,
    /// A relay envelope this node may not take: not its relay or target, ends that are no
    /// peers, or an inner datagram that does not check ([`wire::open_relayed`]).
    Relay(String),
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::Oversize(len) => write!(
                f,
                "datagram of {len} bytes exceeds {} bytes",
                wire::MAX_DATAGRAM
            ),
            Reject::Malformed(e) => write!(f, "malformed datagram: {e}"),
            Reject::Version(v) => write!(
                f,
                "protocol version {v}, expected {}",
                wire::PROTOCOL_VERSION
            ),
            Reject::Cluster(c) => write!(f, "foreign cluster id {c}"),
            Reject::Unauthenticated => write!(f, "missing or bad MAC"),
            Reject::From(from) => write!(f, "sender n{from} is not a peer"),
            Reject::To(to) => write!(f, "addressed to n{to}"),
            Reject::ClerkReply => write!(f, "a clerk reply, sent to a node"),
            Reject::Relay(why) => write!(f, "{why}"),
        }
    }
}

/// What the socket admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Peer(Message),
    Clerk(ClerkRequest),
    /// An answer to a request this node sent as a clerk (a replica group's leader asks the
    /// controller and other groups).
    Reply(ClerkReply),
    /// This node forwarded a relayed copy from `from` to `to`, as its relay: the core learns
    /// that `from` reaches it, and that `to` has something to answer.
    Forwarded {
        from: NodeId,
        to: NodeId,
    },
}

/// What [`admit`] let in: something for the node, or a relayed copy to forward.
#[derive(Debug, PartialEq, Eq)]
pub enum Admitted {
    In(Incoming),
    Forward(Relay),
}

/// Decodes a datagram and checks that it is a message from one of our peers to us (directly or
/// relayed), a clerk's request, (if `takes_replies`: the node sends requests of its own) a reply
/// to us, or a relayed copy for us to forward.
pub fn admit(
    key: &ClusterKey,
    id: NodeId,
    members: u32,
    takes_replies: bool,
    bytes: &[u8],
) -> Result<Admitted, Reject> {
    if bytes.len() > wire::MAX_DATAGRAM {
        return Err(Reject::Oversize(bytes.len()));
    }
    let payload = wire::decode(key, bytes).map_err(|e| match e {
        DecodeError::Malformed(e) => Reject::Malformed(e),
        DecodeError::Version(v) => Reject::Version(v),
        DecodeError::Cluster(c) => Reject::Cluster(c),
        DecodeError::Unauthenticated => Reject::Unauthenticated,
    })?;
    let peer = |p: NodeId| p < members && p != id;
    let msg = match payload {
        Payload::Peer(msg) => msg,
        Payload::ClerkRequest(request) => return Ok(Admitted::In(Incoming::Clerk(request))),
        Payload::ClerkReply(reply) if takes_replies => {
            return Ok(Admitted::In(Incoming::Reply(reply)))
        }
        Payload::ClerkReply(_) => return Err(Reject::ClerkReply),
        Payload::Relay(relay) => {
            let ok = relay.via == id && peer(relay.from) && peer(relay.to);
            return if ok && relay.from != relay.to {
                Ok(Admitted::Forward(relay))
            } else {
                Err(Reject::Relay(format!(
                    "a relay envelope n{} to n{} via n{}, not for this node to forward",
                    relay.from, relay.to, relay.via
                )))
            };
        }
        Payload::Relayed(relay) => {
            let ok = relay.to == id && peer(relay.from) && peer(relay.via);
            if !ok || relay.from == relay.via {
                return Err(Reject::Relay(format!(
                    "a relayed copy n{} to n{} via n{}, not for this node",
                    relay.from, relay.to, relay.via
                )));
            }
            wire::open_relayed(key, &relay).map_err(|e| Reject::Relay(e.to_string()))?
        }
    };
    if msg.from >= members || msg.from == id {
        return Err(Reject::From(msg.from));
    }
    if msg.to != id {
        return Err(Reject::To(msg.to));
    }
    Ok(Admitted::In(Incoming::Peer(msg)))
}

/// Datagram counts, logged at shutdown.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counters {
    pub received: u64,
    /// Of `received`, the peers' requests (the lab's RPCs; the rest are replies and clerks').
    pub requests_received: u64,
    /// Of `received`, the clerks' requests.
    pub clerk_requests: u64,
    pub sent: u64,
    pub dropped_oversize_in: u64,
    pub dropped_malformed: u64,
    pub dropped_version: u64,
    pub dropped_cluster: u64,
    /// A missing or bad MAC (`GetState`'s `unauthenticated`).
    pub unauthenticated: u64,
    pub dropped_from: u64,
    pub dropped_to: u64,
    pub dropped_clerk_reply: u64,
    /// Encoded messages too large for one datagram (the core's `max_append_bytes` should
    /// prevent these).
    pub dropped_oversize_out: u64,
    /// The socket's send buffer was full.
    pub dropped_would_block: u64,
    pub send_errors: u64,
    pub recv_errors: u64,
    /// Relayed copies of this node's messages sent to a relay.
    pub relay_sent: u64,
    /// Relayed copies this node forwarded as the relay (also in `received`).
    pub relay_forwarded: u64,
    /// Relayed copies that reached this node and were stepped (also in `received`).
    pub relay_received: u64,
    /// Relay envelopes refused ([`Reject::Relay`]): not this node's to forward or take, or an
    /// inner datagram that does not check.
    pub relay_dropped: u64,
}

impl Counters {
    fn count_reject(&mut self, reject: &Reject) {
        let counter = match reject {
            Reject::Oversize(_) => &mut self.dropped_oversize_in,
            Reject::Malformed(_) => &mut self.dropped_malformed,
            Reject::Version(_) => &mut self.dropped_version,
            Reject::Cluster(_) => &mut self.dropped_cluster,
            Reject::Unauthenticated => &mut self.unauthenticated,
            Reject::From(_) => &mut self.dropped_from,
            Reject::To(_) => &mut self.dropped_to,
            Reject::ClerkReply => &mut self.dropped_clerk_reply,
            Reject::Relay(_) => &mut self.relay_dropped,
        };
        *counter += 1;
    }
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "datagrams in={} (requests {}, clerks {}) out={}; dropped in: oversize={} malformed={} \
             version={} cluster={} unauthenticated={} from={} to={} clerk_reply={} relay={}; dropped out: \
             oversize={} would_block={} send_error={}; recv_error={}; relayed: sent={} forwarded={} \
             received={}",
            self.received,
            self.requests_received,
            self.clerk_requests,
            self.sent,
            self.dropped_oversize_in,
            self.dropped_malformed,
            self.dropped_version,
            self.dropped_cluster,
            self.unauthenticated,
            self.dropped_from,
            self.dropped_to,
            self.dropped_clerk_reply,
            self.relay_dropped,
            self.dropped_oversize_out,
            self.dropped_would_block,
            self.send_errors,
            self.recv_errors,
            self.relay_sent,
            self.relay_forwarded,
            self.relay_received,
        )
    }
}

pub struct PeerSocket {
    socket: UdpSocket,
    id: NodeId,
    /// Where to send to each peer, by id (netproxy's faces in a test cluster).
    peers: Vec<SocketAddr>,
    key: ClusterKey,
    /// Whether clerk replies are for us (a node that sends requests of its own).
    takes_replies: bool,
    buf: Box<[u8]>,
    pub counters: Counters,
    /// By target: the relay this node last sent a relayed copy through, and when.
    routes: Vec<Option<(NodeId, Instant)>>,
}

impl PeerSocket {
    pub fn bind(
        listen: SocketAddr,
        id: NodeId,
        peers: Vec<SocketAddr>,
        key: ClusterKey,
        registry: &Registry,
        token: Token,
    ) -> io::Result<PeerSocket> {
        let mut socket = UdpSocket::bind(listen)
            .map_err(|e| io::Error::new(e.kind(), format!("binding UDP {listen}: {e}")))?;
        registry.register(&mut socket, token, Interest::READABLE)?;
        let peers_len = peers.len();
        Ok(PeerSocket {
            socket,
            id,
            peers,
            key,
            takes_replies: false,
            buf: vec![0; RECV_BUFFER].into_boxed_slice(),
            counters: Counters::default(),
            routes: vec![None; peers_len],
        })
    }

    /// From now on clerk replies are delivered ([`Incoming::Reply`]), not dropped.
    pub fn take_replies(&mut self) {
        self.takes_replies = true;
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Receives until the socket is empty or `budget` datagrams were taken, handing each
    /// admitted datagram and its source to `deliver`. Returns whether datagrams may be left.
    pub fn drain(&mut self, budget: usize, mut deliver: impl FnMut(Incoming, SocketAddr)) -> bool {
        for _ in 0..budget {
            let (len, source) = match self.socket.recv_from(&mut self.buf) {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // An ICMP error queued by an earlier send; reading it cleared it.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    self.counters.recv_errors += 1;
                    continue;
                }
                Err(e) => {
                    self.counters.recv_errors += 1;
                    warn!("receiving on the peer socket: {e}");
                    return false;
                }
            };
            let members = self.peers.len() as u32;
            match admit(
                &self.key,
                self.id,
                members,
                self.takes_replies,
                &self.buf[..len],
            ) {
                Ok(Admitted::Forward(relay)) => {
                    self.counters.received += 1;
                    let (from, to) = (relay.from, relay.to);
                    self.forward(relay);
                    deliver(Incoming::Forwarded { from, to }, source);
                }
                Ok(Admitted::In(incoming)) => {
                    self.counters.received += 1;
                    match &incoming {
                        Incoming::Peer(msg) => {
                            if msg.body.is_request() {
                                self.counters.requests_received += 1;
                            }
                            if msg.via.is_some() {
                                self.counters.relay_received += 1;
                            }
                        }
                        Incoming::Clerk(_) => self.counters.clerk_requests += 1,
                        Incoming::Reply(_) | Incoming::Forwarded { .. } => {}
                    }
                    trace!("recv from {source}: {incoming:?}");
                    deliver(incoming, source);
                }
                Err(reject) => {
                    self.counters.count_reject(&reject);
                    debug!("dropped a datagram from {source}: {reject}");
                }
            }
        }
        true
    }

    /// Sends `msg` to its peer, or a relayed copy of it (`msg.via`) to its relay, or counts why
    /// it could not.
    pub fn send(&mut self, msg: &Message) {
        let hop = msg.via.unwrap_or(msg.to);
        let is_peer = |p: NodeId| p != self.id && (p as usize) < self.peers.len();
        if !is_peer(msg.to) || !is_peer(hop) {
            error!(
                "the core addressed a message to n{} via {:?}: not a peer",
                msg.to, msg.via
            );
            return;
        }
        let addr = self.peers[hop as usize];
        match msg.via {
            None => {
                let bytes = wire::encode(&self.key, msg);
                self.send_to(&bytes, addr, format_args!("n{}", msg.to));
            }
            Some(via) => {
                let bytes = wire::encode_relay(&self.key, msg, via);
                if self.send_to(&bytes, addr, format_args!("n{} via n{via}", msg.to)) {
                    self.counters.relay_sent += 1;
                    self.routes[msg.to as usize] = Some((via, Instant::now()));
                }
            }
        }
    }

    /// Forwards a relayed copy to its target, resealed as this node's [`Payload::Relayed`].
    fn forward(&mut self, relay: Relay) {
        let (to, from) = (relay.to, relay.from);
        let addr = self.peers[to as usize];
        let bytes = wire::encode_payload(&self.key, &Payload::Relayed(relay));
        if self.send_to(&bytes, addr, format_args!("n{to} from n{from}")) {
            self.counters.relay_forwarded += 1;
        }
    }

    /// The relayed routes this node sent a copy on within `within`: (target, relay).
    pub fn relay_routes(&self, within: Duration) -> Vec<(NodeId, NodeId)> {
        (self.routes.iter().enumerate())
            .filter_map(|(to, route)| {
                let (via, at) = (*route)?;
                (at.elapsed() < within).then_some((to as NodeId, via))
            })
            .collect()
    }

    /// Sends a request of this node's own, as a clerk, to `to` (a controller's or another
    /// group's face).
    pub fn request(&mut self, to: SocketAddr, request: &ClerkRequest) {
        let bytes = wire::encode_payload(&self.key, &Payload::ClerkRequest(request.clone()));
        self.send_to(&bytes, to, format_args!("server at {to}"));
    }

    /// Sends a clerk's reply to the address its request came from.
    pub fn reply(&mut self, to: SocketAddr, reply: &ClerkReply) {
        let bytes = wire::encode_payload(&self.key, &Payload::ClerkReply(reply.clone()));
        self.send_to(&bytes, to, format_args!("clerk {:x}", reply.clerk));
    }

    /// Sends one datagram; returns whether it left. `who` names the destination in the log
    /// lines, formatted only if one is written: this runs for every datagram sent.
    fn send_to(&mut self, bytes: &[u8], addr: SocketAddr, who: fmt::Arguments<'_>) -> bool {
        if bytes.len() > wire::MAX_DATAGRAM {
            self.counters.dropped_oversize_out += 1;
            error!(
                "dropped a {}-byte message to {who}: over the {}-byte datagram limit",
                bytes.len(),
                wire::MAX_DATAGRAM
            );
            return false;
        }
        match self.socket.send_to(bytes, addr) {
            Ok(_) => {
                self.counters.sent += 1;
                trace!("sent {} bytes to {who} at {addr}", bytes.len());
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.counters.dropped_would_block += 1;
                debug!("dropped a message to {who}: send buffer full");
                false
            }
            Err(e) => {
                self.counters.send_errors += 1;
                debug!("sending to {who} at {addr}: {e}");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::MessageBody;

    const CLUSTER: u64 = 7;

    fn key() -> ClusterKey {
        ClusterKey {
            id: CLUSTER,
            secret: raft_auth::Secret::from_bytes(&[1; 32]),
        }
    }

    fn other(id: u64, secret: u8) -> ClusterKey {
        ClusterKey {
            id,
            secret: raft_auth::Secret::from_bytes(&[secret; 32]),
        }
    }
    const ME: NodeId = 1;
    const MEMBERS: u32 = 3;

    fn vote(from: NodeId, to: NodeId) -> Message {
        Message {
            from,
            to,
            term: 4,
            body: MessageBody::RequestVote {
                last_log_index: 2,
                last_log_term: 1,
            },
            via: None,
            hears: Default::default(),
        }
    }

    fn check(bytes: &[u8]) -> Result<Incoming, Reject> {
        admit(&key(), ME, MEMBERS, false, bytes).map(|a| match a {
            Admitted::In(incoming) => incoming,
            Admitted::Forward(relay) => panic!("not a relayed copy to forward: {relay:?}"),
        })
    }

    fn get(clerk: u64) -> ClerkRequest {
        ClerkRequest {
            clerk,
            seq: 1,
            op: crate::kv::Op::Get { key: "k".into() },
        }
    }

    #[test]
    fn admits_a_message_from_a_peer_to_us() {
        let msg = vote(0, ME);
        assert_eq!(check(&wire::encode(&key(), &msg)), Ok(Incoming::Peer(msg)));
    }

    #[test]
    fn admits_a_clerk_request_but_not_a_clerk_reply() {
        let request = Payload::ClerkRequest(get(5));
        assert_eq!(
            check(&wire::encode_payload(&key(), &request)),
            Ok(Incoming::Clerk(get(5)))
        );
        let reply = Payload::ClerkReply(ClerkReply {
            clerk: 5,
            seq: 1,
            outcome: crate::kv::Outcome::NoService,
        });
        assert_eq!(
            check(&wire::encode_payload(&key(), &reply)),
            Err(Reject::ClerkReply)
        );
        // A node that sends requests of its own (a replica group's leader) takes replies.
        let Payload::ClerkReply(expected) = reply.clone() else {
            unreachable!()
        };
        assert_eq!(
            admit(
                &key(),
                ME,
                MEMBERS,
                true,
                &wire::encode_payload(&key(), &reply)
            ),
            Ok(Admitted::In(Incoming::Reply(expected)))
        );
    }

    #[test]
    fn a_peer_message_encodes_as_its_payload_does() {
        let msg = vote(0, ME);
        assert_eq!(
            wire::encode(&key(), &msg),
            wire::encode_payload(&key(), &Payload::Peer(msg))
        );
    }

    #[test]
    fn rejects_garbage() {
        for bytes in [&b""[..], b"\x00", &[wire::PROTOCOL_VERSION; 8]] {
            assert!(
                matches!(check(bytes), Err(Reject::Malformed(_))),
                "{bytes:?}"
            );
        }
        assert_eq!(check(b"hello raft"), Err(Reject::Version(b'h')));
        assert_eq!(check(&[0xff; 300]), Err(Reject::Version(0xff)));
    }

    /// Cut inside the header it is malformed; cut after the cluster id its MAC is missing or
    /// does not check.
    #[test]
    fn rejects_a_truncated_datagram() {
        let bytes = wire::encode(&key(), &vote(0, ME));
        for len in 0..bytes.len() {
            let want = if len < 9 {
                matches!(check(&bytes[..len]), Err(Reject::Malformed(_)))
            } else {
                check(&bytes[..len]) == Err(Reject::Unauthenticated)
            };
            assert!(want, "{len} bytes");
        }
    }

    #[test]
    fn rejects_another_cluster() {
        let bytes = wire::encode(&other(CLUSTER + 1, 1), &vote(0, ME));
        assert_eq!(check(&bytes), Err(Reject::Cluster(CLUSTER + 1)));
    }

    #[test]
    fn rejects_another_protocol_version() {
        let mut bytes = wire::encode(&key(), &vote(0, ME));
        bytes[0] = wire::PROTOCOL_VERSION + 1;
        assert_eq!(
            check(&bytes),
            Err(Reject::Version(wire::PROTOCOL_VERSION + 1))
        );
    }

    /// A well-formed message of our cluster sealed with another secret, one whose MAC was
    /// flipped, and one without a MAC.
    #[test]
    fn rejects_a_datagram_without_a_good_mac() {
        let forged = wire::encode(&other(CLUSTER, 2), &vote(0, ME));
        let mut flipped = wire::encode(&key(), &vote(0, ME));
        flipped[wire::BODY - 1] ^= 1;
        let good = wire::encode(&key(), &vote(0, ME));
        let mut no_mac = good[..9].to_vec();
        no_mac.extend_from_slice(&good[wire::BODY..]);
        for bytes in [forged, flipped, no_mac] {
            assert_eq!(check(&bytes), Err(Reject::Unauthenticated));
        }
    }

    #[test]
    fn rejects_a_sender_that_is_not_a_peer() {
        for from in [MEMBERS, u32::MAX, ME] {
            let bytes = wire::encode(&key(), &vote(from, ME));
            assert_eq!(check(&bytes), Err(Reject::From(from)));
        }
    }

    #[test]
    fn rejects_a_message_for_another_node() {
        let bytes = wire::encode(&key(), &vote(0, 2));
        assert_eq!(check(&bytes), Err(Reject::To(2)));
    }

    #[test]
    fn rejects_an_oversize_datagram() {
        let bytes = vec![0u8; wire::MAX_DATAGRAM + 1];
        assert_eq!(check(&bytes), Err(Reject::Oversize(wire::MAX_DATAGRAM + 1)));
    }

    fn relay_of(msg: &Message) -> Relay {
        let via = msg.via.expect("a relayed copy");
        match wire::decode(&key(), &wire::encode_relay(&key(), msg, via)) {
            Ok(Payload::Relay(relay)) => relay,
            other => panic!("a relay envelope decodes as one: {other:?}"),
        }
    }

    /// The largest messages the core makes, an AppendEntries of one entry as large as it
    /// takes and a whole snapshot chunk, still fit one datagram once relayed, on both hops.
    #[test]
    fn the_largest_messages_fit_one_datagram_relayed() {
        let max = crate::runtime::MAX_APPEND_BYTES;
        let bodies = [
            MessageBody::AppendEntries {
                prev_log_index: u64::MAX - 1,
                prev_log_term: u64::MAX,
                entries: vec![crate::core::Entry::command(
                    u64::MAX,
                    u64::MAX,
                    vec![0xff; max - crate::core::ENTRY_OVERHEAD],
                )],
                leader_commit: u64::MAX,
                read_round: u64::MAX,
                flow_epoch: u64::MAX,
                wants_ack: true,
            },
            MessageBody::InstallSnapshot {
                last_included_index: u64::MAX,
                last_included_term: u64::MAX,
                membership: crate::core::Membership::voters(0..8),
                offset: u64::MAX,
                data: vec![0xff; max],
                done: true,
            },
        ];
        for body in bodies {
            let msg = Message {
                from: 7,
                to: 6,
                term: u64::MAX,
                body,
                via: Some(5),
                // The largest report: every id it can name, each heard as long ago as it can say.
                hears: crate::core::Hears(vec![Some(u16::MAX); 64]),
            };
            let direct = wire::encode(&key(), &msg).len();
            let first = wire::encode_relay(&key(), &msg, 5);
            let Ok(Payload::Relay(relay)) = wire::decode(&key(), &first) else {
                panic!("a relay envelope decodes as one");
            };
            let second = wire::encode_payload(&key(), &Payload::Relayed(relay)).len();
            println!(
                "direct {direct} bytes, relayed {} and {second} bytes",
                first.len()
            );
            assert!(first.len().max(second) <= wire::MAX_DATAGRAM);
        }
    }

    /// As relay (ME is 1): an envelope from 0 to 2 via ME is forwarded; one naming another
    /// relay, ME as an end, ends that are no peers, or the same node twice is refused.
    #[test]
    fn a_relay_forwards_only_what_names_it_between_two_peers() {
        let envelope = |relay: Relay| wire::encode_payload(&key(), &Payload::Relay(relay));
        let good = relay_of(&Message {
            via: Some(ME),
            ..vote(0, 2)
        });
        assert_eq!(
            admit(&key(), ME, MEMBERS, false, &envelope(good.clone())),
            Ok(Admitted::Forward(good.clone()))
        );
        for bad in [
            Relay {
                via: 2,
                ..good.clone()
            },
            Relay {
                from: ME,
                ..good.clone()
            },
            Relay {
                to: ME,
                ..good.clone()
            },
            Relay {
                to: MEMBERS,
                ..good.clone()
            },
            Relay {
                from: 2,
                ..good.clone()
            },
        ] {
            assert!(
                matches!(check(&envelope(bad.clone())), Err(Reject::Relay(_))),
                "{bad:?}"
            );
        }
    }

    /// As target: a relayed copy from 0 via 2 is stepped as the message inside, `via` and all;
    /// a copy whose inner datagram was changed, or that is not for ME, is refused.
    #[test]
    fn a_target_takes_a_relayed_copy_only_when_its_inner_datagram_checks() {
        let forwarded = |relay: Relay| wire::encode_payload(&key(), &Payload::Relayed(relay));
        let msg = Message {
            via: Some(2),
            ..vote(0, ME)
        };
        let good = relay_of(&msg);
        assert_eq!(check(&forwarded(good.clone())), Ok(Incoming::Peer(msg)));
        let mut changed = good.clone();
        let last = changed.inner.len() - 1;
        changed.inner[last] ^= 1;
        let mut unsealed = good.clone();
        unsealed.inner[wire::BODY - 1] ^= 1;
        for bad in [
            changed,
            unsealed,
            Relay {
                to: 2,
                ..good.clone()
            },
            Relay {
                via: 0,
                ..good.clone()
            },
            Relay {
                via: ME,
                ..good.clone()
            },
            Relay { from: 2, ..good },
        ] {
            assert!(
                matches!(check(&forwarded(bad.clone())), Err(Reject::Relay(_))),
                "{bad:?}"
            );
        }
    }

    /// Three sockets on loopback: 0 sends a message to 2 through 1. The relay forwards it (and
    /// hands over `Forwarded { from: 0, to: 2 }`), the target steps it with `via: Some(1)`, and each counts its
    /// part; a direct message is no relayed copy anywhere.
    #[test]
    fn a_relayed_copy_crosses_two_hops_of_real_sockets() {
        let poll = mio::Poll::new().unwrap();
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut nodes: Vec<PeerSocket> = (0..3)
            .map(|id| {
                let peers = vec![loopback; 3];
                PeerSocket::bind(
                    loopback,
                    id,
                    peers,
                    key(),
                    poll.registry(),
                    Token(id as usize),
                )
                .unwrap()
            })
            .collect();
        let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.local_addr().unwrap()).collect();
        for node in &mut nodes {
            node.peers = addrs.clone();
        }
        let msg = Message {
            via: Some(1),
            ..vote(0, 2)
        };
        nodes[0].send(&msg);
        nodes[0].send(&vote(0, 2));
        assert_eq!(nodes[0].relay_routes(Duration::from_secs(60)), vec![(2, 1)]);

        let mut at_relay = Vec::new();
        let mut at_target = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while at_target.len() < 2 && Instant::now() < deadline {
            nodes[1].drain(usize::MAX, |incoming, _| at_relay.push(incoming));
            nodes[2].drain(usize::MAX, |incoming, _| at_target.push(incoming));
        }
        assert_eq!(at_relay, vec![Incoming::Forwarded { from: 0, to: 2 }]);
        at_target.sort_by_key(|i| format!("{i:?}"));
        assert_eq!(
            at_target,
            vec![Incoming::Peer(vote(0, 2)), Incoming::Peer(msg)]
        );
        let relay = |n: &PeerSocket| {
            let c = &n.counters;
            (
                c.relay_sent,
                c.relay_forwarded,
                c.relay_received,
                c.relay_dropped,
            )
        };
        assert_eq!(relay(&nodes[0]), (1, 0, 0, 0));
        assert_eq!(relay(&nodes[1]), (0, 1, 0, 0));
        assert_eq!(relay(&nodes[2]), (0, 0, 1, 0));
        assert_eq!(nodes[0].counters.sent, 2);
    }

    /// End to end through a real socket: every reject is counted, nothing panics, and a good
    /// datagram after the bad ones still gets through.
    #[test]
    fn drain_counts_rejects_and_delivers_the_rest() {
        let poll = mio::Poll::new().unwrap();
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let peers = vec![loopback; MEMBERS as usize];
        let mut node =
            PeerSocket::bind(loopback, ME, peers, key(), poll.registry(), Token(0)).unwrap();
        let to = node.local_addr().unwrap();
        let sender = std::net::UdpSocket::bind(loopback).unwrap();
        let datagrams = [
            b"\x05garbage".to_vec(),
            wire::encode(&other(CLUSTER + 1, 1), &vote(0, ME)),
            wire::encode(&other(CLUSTER, 2), &vote(2, ME)),
            wire::encode(&key(), &vote(9, ME)),
            wire::encode(&key(), &vote(0, 2)),
            wire::encode_payload(
                &key(),
                &Payload::ClerkReply(ClerkReply {
                    clerk: 5,
                    seq: 1,
                    outcome: crate::kv::Outcome::NoService,
                }),
            ),
            wire::encode(&key(), &vote(2, ME)),
            wire::encode_payload(&key(), &Payload::ClerkRequest(get(5))),
        ];
        for d in &datagrams {
            sender.send_to(d, to).unwrap();
        }

        let mut delivered = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while delivered.len() < 2 && std::time::Instant::now() < deadline {
            node.drain(usize::MAX, |m, source| {
                assert_eq!(source, sender.local_addr().unwrap());
                delivered.push(m)
            });
        }
        assert_eq!(
            delivered,
            vec![Incoming::Peer(vote(2, ME)), Incoming::Clerk(get(5))]
        );
        assert_eq!(
            node.counters,
            Counters {
                received: 2,
                // A RequestVote is a request.
                requests_received: 1,
                clerk_requests: 1,
                dropped_malformed: 1,
                dropped_cluster: 1,
                unauthenticated: 1,
                dropped_from: 1,
                dropped_to: 1,
                dropped_clerk_reply: 1,
                ..Counters::default()
            }
        );
    }
}
