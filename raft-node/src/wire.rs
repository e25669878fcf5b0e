//! Peer datagrams: a small envelope around a core [`Message`], encoded with rmp-serde.

use crate::core::Message;
use serde::{Deserialize, Serialize};

/// Bumped whenever the encoding of [`Envelope`] or [`Message`] changes incompatibly (3:
/// AppendEntries and its reply carry `read_round`).
pub const PROTOCOL_VERSION: u8 = 3;

/// The largest datagram a node sends or accepts. Loopback UDP carries up to 65,507 bytes;
/// the rest is headroom for the envelope.
pub const MAX_DATAGRAM: usize = 65_000;

#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub version: u8,
    /// Keeps two clusters on one machine from talking to each other by accident.
    pub cluster: u64,
    pub msg: Message,
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

/// Encodes `msg` for `cluster`.
pub fn encode(cluster: u64, msg: &Message) -> Vec<u8> {
    #[derive(Serialize)]
    struct EnvelopeRef<'a> {
        version: u8,
        cluster: u64,
        msg: &'a Message,
    }
    let env = EnvelopeRef {
        version: PROTOCOL_VERSION,
        cluster,
        msg,
    };
    rmp_serde::to_vec(&env).expect("encoding a Message to a Vec cannot fail")
}

/// Decodes a datagram, checking the protocol version and the cluster id.
pub fn decode(cluster: u64, bytes: &[u8]) -> Result<Message, DecodeError> {
    let env: Envelope =
        rmp_serde::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if env.version != PROTOCOL_VERSION {
        return Err(DecodeError::Version(env.version));
    }
    if env.cluster != cluster {
        return Err(DecodeError::Cluster(env.cluster));
    }
    Ok(env.msg)
}
