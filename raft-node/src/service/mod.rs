//! The services a node hosts on its Raft log (the lab's service behind applyCh), through one
//! small interface: apply a committed entry, take a snapshot, restore one.
//!
//! - [`digest`]: folds every command into a digest (`just cluster` without a KV; lab 2's tests
//!   play the service themselves over the control channel and run none).
//! - [`kv`]: the lab 3 key/value store ([`crate::kv`]), which also answers clerks.
//! - [`shardctrler`]: the lab 4A shard controller ([`crate::shardctrler`]), which answers
//!   clerks too.
//! - [`shardkv`]: a lab 4B replica group ([`crate::shardkv`]): clerks, and other groups
//!   handing it shards.
//!
//! When to snapshot is the runtime's choice (`--snapshot-every`, `--max-raft-state`), not the
//! service's: a service only knows how to take one.

pub mod digest;
pub mod kv;
pub mod shardctrler;
pub mod shardkv;

use crate::core::Index;
use crate::kv::protocol::{ClerkId, Command, Op, Outcome};
use crate::kv::store::{Applied, KvStore};
use crate::shardkv::store::ShardKvStore;

pub use digest::DigestService;
pub use kv::KvService;
pub use shardctrler::ShardCtrlerService;
pub use shardkv::ShardKvService;

pub trait Service {
    /// Applies the committed command at `index` (the one after the last applied). A clerk's
    /// write returns who wrote it, so the node can answer the clerk.
    fn apply(&mut self, index: Index, command: &[u8]) -> Option<Applied>;

    /// The state through the last applied index.
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the state with a snapshot's, whose last included index is `index`.
    fn restore(&mut self, index: Index, data: &[u8]) -> Result<(), String>;

    /// The KV store, if this service is one (its key count is in `GetState`).
    fn kv(&self) -> Option<&KvStore> {
        None
    }

    /// The replica group's state, if this service is a lab 4B group (its leader polls the
    /// controller and hands shards off from it: `runtime`'s shard driver).
    fn shardkv(&self) -> Option<&ShardKvStore> {
        None
    }

    /// The state clerks' reads and retries are answered from, if this service answers clerks.
    fn clerks(&self) -> Option<&dyn ClerkService> {
        None
    }

    /// A digest of the state (64-bit FNV-1a of the snapshot): replicas that applied the same
    /// entries agree, since every service snapshots the same state to the same bytes.
    fn digest(&self) -> u64 {
        digest::fnv1a(digest::FNV_OFFSET_BASIS, &self.snapshot())
    }
}

/// How a service takes a clerk's operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Answered from the applied state once ReadIndex confirms it (thesis §6.4): no log entry.
    Read,
    /// Proposed as a `kv::protocol::Command` and answered when it applies, once per `seq`.
    Write,
}

/// What the node's clerk front (`runtime::clerks`) needs of a service that answers clerks.
pub trait ClerkService {
    /// How this service takes `op`; `None`: not at all (the clerk hears `NoService`).
    fn access(&self, op: &Op) -> Option<Access>;

    /// The answer to the clerk's write `seq` if it is known without the log: `Ok` for a write
    /// applied already (a retry), or a refusal (a replica group's `WrongGroup`). `None`: propose
    /// it.
    fn answer_now(&self, clerk: ClerkId, seq: u64, op: &Op) -> Option<Outcome>;

    /// A read's answer from the state as applied.
    fn read(&self, op: &Op) -> Outcome;
}

/// A new leader's first entry in a service that answers clerks, so that the entries of earlier
/// terms commit without waiting for a clerk's write (Figure 8).
pub fn noop_command() -> Vec<u8> {
    Command::NoOp.encode()
}
