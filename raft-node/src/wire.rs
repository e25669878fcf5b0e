//! Datagrams: a small envelope around a [`Payload`] — a core [`Message`] between peers, or a
//! clerk's request to a node and its reply — encoded with rmp-serde.

use crate::core::Message;
use crate::kv::{ClerkReply, ClerkRequest};
use serde::{Deserialize, Serialize};

/// Bumped whenever the encoding of [`Envelope`] or [`Message`] changes incompatibly (3:
/// AppendEntries and its reply carry `read_round`; 4: the envelope carries a [`Payload`], clerk
/// datagrams included).
pub const PROTOCOL_VERSION: u8 = 5;

/// The largest datagram a node sends or accepts. Loopback UDP carries up to 65,507 bytes;
/// the rest is headroom for the envelope.
pub const MAX_DATAGRAM: usize = 65_000;

#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub version: u8,
    /// Keeps two clusters on one machine from talking to each other by accident.
    pub cluster: u64,
    pub payload: Payload,
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
}

#[derive(Debug)]
pub enum DecodeError {
    Malformed(String),
    Version(u8),
    Cluster(u64),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Malformed(e) => write!(f, "malformed datagram: {e}"),
            DecodeError::Version(v) => {
                write!(f, "protocol version {v}, expected {PROTOCOL_VERSION}")
            }
            DecodeError::Cluster(c) => write!(f, "foreign cluster id {c}"),
        }
    }
}

/// Encodes a peer message for `cluster` (without copying it into a [`Payload`]).
pub fn encode(cluster: u64, msg: &Message) -> Vec<u8> {
    /// Encodes exactly as `Payload::Peer(msg.clone())` would.
    #[derive(Serialize)]
    enum PayloadRef<'a> {
        Peer(&'a Message),
    }
    encode_envelope(cluster, PayloadRef::Peer(msg))
}

/// Encodes any payload for `cluster`.
pub fn encode_payload(cluster: u64, payload: &Payload) -> Vec<u8> {
    encode_envelope(cluster, payload)
}

fn encode_envelope(cluster: u64, payload: impl Serialize) -> Vec<u8> {
    #[derive(Serialize)]
    struct EnvelopeRef<P> {
        version: u8,
        cluster: u64,
        payload: P,
    }
    let env = EnvelopeRef {
        version: PROTOCOL_VERSION,
        cluster,
        payload,
    };
    rmp_serde::to_vec(&env).expect("encoding a datagram to a Vec cannot fail")
}

/// Decodes a datagram, checking the protocol version and the cluster id.
pub fn decode(cluster: u64, bytes: &[u8]) -> Result<Payload, DecodeError> {
    let env: Envelope =
        rmp_serde::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if env.version != PROTOCOL_VERSION {
        return Err(DecodeError::Version(env.version));
    }
    if env.cluster != cluster {
        return Err(DecodeError::Cluster(env.cluster));
    }
    Ok(env.payload)
}
