//! Datagrams: a small authenticated envelope around a [`Payload`] — a core [`Message`] between
//! peers, or a clerk's request to a node and its reply — encoded with rmp-serde.
//!
//! ```text
//! byte 0      protocol version
//! bytes 1..9  cluster id, big-endian
//! bytes 9..41 MAC: keyed BLAKE3 (the cluster secret's datagram key) of bytes 0..9 and the body
//! bytes 41..  body: the Payload, rmp-serde
//! ```
//! The header is fixed so that version, cluster and MAC are checked before a byte of the body is
//! decoded: a stranger's datagram costs one hash and is dropped.
//!
//! A relayed copy (`core::relay`) is a whole sealed datagram of the sender's, carried as opaque
//! bytes in a [`Relay`] envelope on each of its two hops: [`Payload::Relay`] from the sender to
//! the relay, [`Payload::Relayed`] from the relay to the target. Each hop's envelope is sealed by
//! the node that sends it; the relay reads only the envelope, and the target checks the inner
//! datagram's own MAC and that it says what the envelope says ([`open_relayed`]), so a copy
//! changed on its way is dropped, not stepped.

use crate::core::{Message, NodeId};
use crate::kv::{ClerkReply, ClerkRequest};
use raft_auth::{Secret, MAC_LEN};
use serde::{Deserialize, Serialize};

/// Bumped whenever the encoding of the envelope or of [`Message`] changes incompatibly (3:
/// AppendEntries and its reply carry `read_round`; 4: the envelope carries a [`Payload`], clerk
/// datagrams included; 5: a fixed header with the MAC replaces the rmp envelope; 6: TimeoutNow,
/// leadership transfer; 7: entries carry their kind (command or configuration), and
/// InstallSnapshot the snapshot's configuration; 8: a configuration carries its outgoing voters,
/// joint consensus, and clerk operations gain the shard controller's and the sharded KV's; 9:
/// every message carries `via` and `hears`, for relaying; 10: AppendEntries and its reply carry
/// `flow_epoch`; 11: the relay envelopes; 12: AppendEntries carries `wants_ack`; 13: CommitQuery;
/// 14: `hears` says how long ago the sender heard each peer, not only whether).
pub const PROTOCOL_VERSION: u8 = 14;

/// The largest datagram a node sends or accepts. Loopback UDP carries up to 65,507 bytes;
/// the rest is headroom for the envelope.
pub const MAX_DATAGRAM: usize = 65_000;

/// Version and cluster id: what the MAC covers besides the body.
const HEADER: usize = 1 + 8;
/// Where the body starts.
pub const BODY: usize = HEADER + MAC_LEN;

/// What a datagram is sealed and checked with: the cluster's id and secret.
#[derive(Clone, Debug)]
pub struct ClusterKey {
    /// Keeps two clusters on one machine from talking to each other by accident (a datagram
    /// of another cluster is counted as such, before its MAC is checked).
    pub id: u64,
    pub secret: Secret,
}

/// What a datagram carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// Raft, between peers.
    Peer(Message),
    /// A clerk's operation, to a node.
    ClerkRequest(ClerkRequest),
    /// A node's answer, to the clerk's address.
    ClerkReply(ClerkReply),
    /// A relayed copy on its first hop: for `via` to forward to `to`.
    Relay(Relay),
    /// A relayed copy on its second hop: `via` forwarded it.
    Relayed(Relay),
}

/// A relayed copy of the message `from` sent to `to`, through `via`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relay {
    pub from: NodeId,
    pub to: NodeId,
    pub via: NodeId,
    /// The sender's own sealed datagram of the message (its `via` set): the relay forwards it
    /// without decoding it.
    #[serde(with = "serde_bytes")]
    pub inner: Vec<u8>,
}

/// Why a relayed copy's inner datagram was refused at its target.
#[derive(Debug, PartialEq, Eq)]
pub enum RelayedError {
    /// The inner datagram is not an authenticated peer message of this protocol and cluster.
    Inner(String),
    /// It is, but not the message the envelope announces (sender, target or relay differ).
    Mismatch {
        from: NodeId,
        to: NodeId,
        via: Option<NodeId>,
    },
}

impl std::fmt::Display for RelayedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RelayedError::Inner(e) => write!(f, "relayed copy: inner datagram: {e}"),
            RelayedError::Mismatch { from, to, via } => write!(
                f,
                "relayed copy: the inner message (n{from} to n{to} via {via:?}) is not the \
                 envelope's"
            ),
        }
    }
}

/// The message a relayed copy carries, once its inner datagram authenticates and names the
/// envelope's sender, target and relay.
pub fn open_relayed(key: &ClusterKey, relay: &Relay) -> Result<Message, RelayedError> {
    let msg = match decode(key, &relay.inner) {
        Ok(Payload::Peer(msg)) => msg,
        Ok(_) => return Err(RelayedError::Inner("not a peer message".to_string())),
        Err(e) => return Err(RelayedError::Inner(e.to_string())),
    };
    if (msg.from, msg.to, msg.via) != (relay.from, relay.to, Some(relay.via)) {
        return Err(RelayedError::Mismatch {
            from: msg.from,
            to: msg.to,
            via: msg.via,
        });
    }
    Ok(msg)
}

/// The first hop of `msg`'s relayed copy (`msg.via` is the relay): the sealed datagram of the
/// message, in an envelope sealed as well.
pub fn encode_relay(key: &ClusterKey, msg: &Message, via: NodeId) -> Vec<u8> {
    encode_payload(
        key,
        &Payload::Relay(Relay {
            from: msg.from,
            to: msg.to,
            via,
            inner: encode(key, msg),
        }),
    )
}

#[derive(Debug)]
pub enum DecodeError {
    Malformed(String),
    Version(u8),
    Cluster(u64),
    /// The MAC is missing or does not check: not from a holder of the cluster secret.
    Unauthenticated,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Malformed(e) => write!(f, "malformed datagram: {e}"),
            DecodeError::Version(v) => {
                write!(f, "protocol version {v}, expected {PROTOCOL_VERSION}")
            }
            DecodeError::Cluster(c) => write!(f, "foreign cluster id {c}"),
            DecodeError::Unauthenticated => write!(f, "missing or bad MAC"),
        }
    }
}

/// Encodes a peer message (without copying it into a [`Payload`]).
pub fn encode(key: &ClusterKey, msg: &Message) -> Vec<u8> {
    /// Encodes exactly as `Payload::Peer(msg.clone())` would.
    #[derive(Serialize)]
    enum PayloadRef<'a> {
        Peer(&'a Message),
    }
    encode_body(key, PayloadRef::Peer(msg))
}

/// Encodes any payload.
pub fn encode_payload(key: &ClusterKey, payload: &Payload) -> Vec<u8> {
    encode_body(key, payload)
}

fn encode_body(key: &ClusterKey, payload: impl Serialize) -> Vec<u8> {
    let mut datagram = vec![0; BODY];
    rmp_serde::encode::write(&mut datagram, &payload)
        .expect("encoding a datagram to a Vec cannot fail");
    seal(key, datagram)
}

/// Fills in the header and MAC of `datagram`, whose body starts at [`BODY`] (what is before it
/// is overwritten). Public so that the fuzzer can authenticate arbitrary bodies.
pub fn seal(key: &ClusterKey, mut datagram: Vec<u8>) -> Vec<u8> {
    assert!(datagram.len() >= BODY, "a datagram holds its header");
    datagram[0] = PROTOCOL_VERSION;
    datagram[1..HEADER].copy_from_slice(&key.id.to_be_bytes());
    let (head, body) = datagram.split_at(BODY);
    let mac = key.secret.datagram_mac(&head[..HEADER], body);
    datagram[HEADER..BODY].copy_from_slice(&mac);
    datagram
}

/// Checks a datagram's version, cluster id and MAC, in that order, then decodes its body.
pub fn decode(key: &ClusterKey, bytes: &[u8]) -> Result<Payload, DecodeError> {
    if bytes.len() < HEADER {
        return Err(DecodeError::Malformed(format!(
            "{} bytes, shorter than the header",
            bytes.len()
        )));
    }
    if bytes[0] != PROTOCOL_VERSION {
        return Err(DecodeError::Version(bytes[0]));
    }
    let cluster = u64::from_be_bytes(bytes[1..HEADER].try_into().expect("8 bytes"));
    if cluster != key.id {
        return Err(DecodeError::Cluster(cluster));
    }
    // A datagram cut inside its MAC has none.
    if bytes.len() < BODY
        || !key
            .secret
            .check_datagram_mac(&bytes[..HEADER], &bytes[BODY..], &bytes[HEADER..BODY])
    {
        return Err(DecodeError::Unauthenticated);
    }
    rmp_serde::from_slice(&bytes[BODY..]).map_err(|e| DecodeError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::MessageBody;

    fn key(secret: u8) -> ClusterKey {
        ClusterKey {
            id: 7,
            secret: Secret::from_bytes(&[secret; 32]),
        }
    }

    fn vote() -> Message {
        Message {
            from: 0,
            to: 1,
            term: 4,
            body: MessageBody::RequestVote {
                last_log_index: 2,
                last_log_term: 1,
            },
            via: None,
            hears: Default::default(),
        }
    }

    #[test]
    fn a_sealed_datagram_decodes_with_its_key() {
        let bytes = encode(&key(1), &vote());
        assert_eq!(decode(&key(1), &bytes).unwrap(), Payload::Peer(vote()));
    }

    #[test]
    fn another_key_is_unauthenticated() {
        let bytes = encode(&key(2), &vote());
        assert!(matches!(
            decode(&key(1), &bytes),
            Err(DecodeError::Unauthenticated)
        ));
    }

    #[test]
    fn any_changed_byte_after_the_cluster_id_is_unauthenticated() {
        let bytes = encode(&key(1), &vote());
        for i in HEADER..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(
                matches!(decode(&key(1), &bad), Err(DecodeError::Unauthenticated)),
                "byte {i}"
            );
        }
    }

    /// The envelope without its MAC (the body right after the cluster id), and every prefix
    /// that keeps the cluster id: all unauthenticated, none decoded.
    #[test]
    fn a_missing_or_truncated_mac_is_unauthenticated() {
        let bytes = encode(&key(1), &vote());
        let mut no_mac = bytes[..HEADER].to_vec();
        no_mac.extend_from_slice(&bytes[BODY..]);
        let cut = (HEADER..bytes.len()).map(|len| bytes[..len].to_vec());
        for bad in std::iter::once(no_mac).chain(cut) {
            assert!(
                matches!(decode(&key(1), &bad), Err(DecodeError::Unauthenticated)),
                "{} bytes",
                bad.len()
            );
        }
    }

    /// Version and cluster are told apart before the MAC, so a stale binary or a neighbouring
    /// cluster is counted as what it is.
    #[test]
    fn version_and_cluster_are_checked_first() {
        let mut bytes = encode(&key(2), &vote());
        bytes[0] = PROTOCOL_VERSION - 1;
        assert!(matches!(
            decode(&key(1), &bytes),
            Err(DecodeError::Version(v)) if v == PROTOCOL_VERSION - 1
        ));
        let other = ClusterKey { id: 8, ..key(1) };
        assert!(matches!(
            decode(&key(1), &encode(&other, &vote())),
            Err(DecodeError::Cluster(8))
        ));
        assert!(matches!(
            decode(&key(1), &[PROTOCOL_VERSION]),
            Err(DecodeError::Malformed(_))
        ));
    }

    fn relayed(msg: &Message) -> Relay {
        let Ok(Payload::Relay(relay)) = decode(&key(1), &encode_relay(&key(1), msg, 2)) else {
            panic!("a relay envelope decodes as one");
        };
        relay
    }

    fn vote_via(relay: NodeId) -> Message {
        Message {
            via: Some(relay),
            ..vote()
        }
    }

    #[test]
    fn a_relayed_copy_opens_to_its_message() {
        let relay = relayed(&vote_via(2));
        assert_eq!((relay.from, relay.to, relay.via), (0, 1, 2));
        assert_eq!(open_relayed(&key(1), &relay), Ok(vote_via(2)));
    }

    /// The relay cannot change a byte of the copy, nor pass one off as another's: the inner
    /// datagram's MAC and its ends are checked at the target.
    #[test]
    fn a_changed_or_misattributed_relayed_copy_does_not_open() {
        let good = relayed(&vote_via(2));
        for i in HEADER..good.inner.len() {
            let mut bad = good.clone();
            bad.inner[i] ^= 0x20;
            assert!(
                matches!(open_relayed(&key(1), &bad), Err(RelayedError::Inner(_))),
                "byte {i}"
            );
        }
        for bad in [
            Relay {
                from: 2,
                ..good.clone()
            },
            Relay {
                to: 2,
                ..good.clone()
            },
            Relay {
                via: 0,
                ..good.clone()
            },
        ] {
            assert!(matches!(
                open_relayed(&key(1), &bad),
                Err(RelayedError::Mismatch { .. })
            ));
        }
        // Sealed with another secret, or no peer message inside.
        let foreign = Relay {
            inner: encode(&key(9), &vote_via(2)),
            ..good.clone()
        };
        assert!(matches!(
            open_relayed(&key(1), &foreign),
            Err(RelayedError::Inner(_))
        ));
        let clerk = Payload::ClerkRequest(crate::kv::ClerkRequest {
            clerk: 1,
            seq: 1,
            op: crate::kv::Op::Get { key: "k".into() },
        });
        let not_peer = Relay {
            inner: encode_payload(&key(1), &clerk),
            ..good
        };
        assert!(matches!(
            open_relayed(&key(1), &not_peer),
            Err(RelayedError::Inner(_))
        ));
    }

    /// A body that is not a payload is malformed only once its MAC checks.
    #[test]
    fn an_authenticated_body_that_is_no_payload_is_malformed() {
        let mut datagram = vec![0; BODY];
        datagram.extend_from_slice(b"\xc1 not msgpack");
        let bytes = seal(&key(1), datagram);
        assert!(matches!(
            decode(&key(1), &bytes),
            Err(DecodeError::Malformed(_))
        ));
    }
}
