//! The clerk protocol and the KV's log entries.
//!
//! A clerk numbers its operations (`seq`, from 1, one outstanding at a time) under an id drawn at
//! random (64 bits: two clerks colliding is as likely as guessing a random u64). It sends a
//! [`ClerkRequest`] to one node; the node answers with a [`ClerkReply`] for the same
//! `(clerk, seq)` to the address the request came from. A clerk that hears nothing in time, or
//! hears `WrongLeader`, sends the same request (same `seq`) to another node: the state machine's
//! per-clerk table applies a Put/Append once however often it arrives.
//!
//! Both travel in the peer datagrams' envelope (`wire`): same version and cluster id, same
//! treatment of bad input (counted, dropped).

use crate::core::NodeId;
use serde::{Deserialize, Serialize};

pub type ClerkId = u64;

/// One operation of the lab's KV.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// The value of `key`, "" if it was never written (the lab's Get).
    Get { key: String },
    /// Replaces the value of `key`.
    Put { key: String, value: String },
    /// Appends `value` to the value of `key` ("" if it was never written).
    Append { key: String, value: String },
}

impl Op {
    pub fn key(&self) -> &str {
        match self {
            Op::Get { key } | Op::Put { key, .. } | Op::Append { key, .. } => key,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClerkRequest {
    pub clerk: ClerkId,
    pub seq: u64,
    pub op: Op,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClerkReply {
    pub clerk: ClerkId,
    pub seq: u64,
    pub outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Done: a Get's value; "" for a Put or an Append.
    Ok { value: String },
    /// This node cannot do it: it is not the leader, or lost leadership before the operation
    /// committed (it may still commit: retrying is safe). `leader` is its guess of who is.
    WrongLeader { leader: Option<NodeId> },
    /// This node runs no KV service (`raft-node run --service kv`).
    NoService,
}

/// What the KV service puts in the Raft log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A new leader's first entry, so that an entry of its term commits without waiting for a
    /// clerk's write.
    NoOp,
    /// A clerk's Put or Append. Gets never enter the log: ReadIndex serves them.
    Op { clerk: ClerkId, seq: u64, op: Op },
}

impl Command {
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec(self).expect("encoding a Command to a Vec cannot fail")
    }

    pub fn decode(bytes: &[u8]) -> Result<Command, String> {
        rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
    }
}
