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
//!
//! One protocol for every service that answers clerks: the KV's operations and the shard
//! controller's (lab 4A). A node answers `NoService` to an operation its service does not take.

use crate::core::NodeId;
use crate::shardctrler::config::{Config, Gid};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub type ClerkId = u64;

/// One operation: the lab's KV (Get, Put, Append) or its shard controller (Join, Leave, Move,
/// Query).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// The value of `key`, "" if it was never written (the lab's Get).
    Get {
        key: String,
    },
    /// Replaces the value of `key`.
    Put {
        key: String,
        value: String,
    },
    /// Appends `value` to the value of `key` ("" if it was never written).
    Append {
        key: String,
        value: String,
    },
    /// New replica groups and their servers, several at once.
    Join {
        servers: BTreeMap<Gid, Vec<String>>,
    },
    Leave {
        gids: Vec<Gid>,
    },
    /// Shard `shard` to group `gid`, nothing else moved.
    Move {
        shard: usize,
        gid: Gid,
    },
    /// Configuration `num`; the latest for `None` or a number not yet made.
    Query {
        num: Option<u64>,
    },
    /// Between replica groups (lab 4B): part `part` of shard `shard` as the sender held it when
    /// configuration `num` took it away, for the group `num` gives it to. A shard travels in
    /// parts of a bounded size, in order, each its own log entry at the receiver; the last part
    /// carries the shard's exactly-once table.
    InstallShard {
        num: u64,
        shard: usize,
        part: u32,
        last: bool,
        data: BTreeMap<String, String>,
        table: BTreeMap<ClerkId, u64>,
    },
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
    /// Done: a Get's value; "" for a Put, an Append, a Join, a Leave or a Move.
    Ok { value: String },
    /// A Query's configuration.
    Config(Config),
    /// This node cannot do it: it is not the leader, or lost leadership before the operation
    /// committed (it may still commit: retrying is safe). `leader` is its guess of who is.
    WrongLeader { leader: Option<NodeId> },
    /// This node hosts no service that takes this operation (`raft-node run --service`).
    NoService,
    /// A replica group (lab 4B) that does not serve the key's shard now: the lab's
    /// ErrWrongGroup (the clerk asks the controller for the latest configuration). To a group
    /// sending a shard: the receiver is not ready for that part yet.
    WrongGroup,
}

/// What the KV service puts in the Raft log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A new leader's first entry, so that an entry of its term commits without waiting for a
    /// clerk's write.
    NoOp,
    /// A clerk's Put or Append. Gets never enter the log: ReadIndex serves them.
    Op { clerk: ClerkId, seq: u64, op: Op },
    /// A replica group (lab 4B) moves from its configuration to `config`, the next one.
    Reconfigure { config: Config },
    /// A replica group deletes shard `shard`, handed off at configuration `num`, now that the
    /// receiving group has it committed.
    DeleteShard { num: u64, shard: usize },
}

impl Command {
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec(self).expect("encoding a Command to a Vec cannot fail")
    }

    pub fn decode(bytes: &[u8]) -> Result<Command, String> {
        rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
    }
}
