//! The services a node hosts on its Raft log (the lab's service behind applyCh), through one
//! small interface: apply a committed entry, take a snapshot, restore one.
//!
//! - [`digest`]: folds every command into a digest (`just cluster` without a KV; lab 2's tests
//!   play the service themselves over the control channel and run none).
//! - [`kv`]: the lab 3 key/value store ([`crate::kv`]), which also answers clerks.
//!
//! When to snapshot is the runtime's choice (`--snapshot-every`, `--max-raft-state`), not the
//! service's: a service only knows how to take one.

pub mod digest;
pub mod kv;

use crate::core::Index;
use crate::kv::store::{Applied, KvStore};

pub use digest::DigestService;
pub use kv::KvService;

pub trait Service {
    /// Applies the committed command at `index` (the one after the last applied). A clerk's
    /// write returns who wrote it, so the node can answer the clerk.
    fn apply(&mut self, index: Index, command: &[u8]) -> Option<Applied>;

    /// The state through the last applied index.
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the state with a snapshot's, whose last included index is `index`.
    fn restore(&mut self, index: Index, data: &[u8]) -> Result<(), String>;

    /// The KV store, if this service is one: clerks' reads and retries are answered from it.
    fn kv(&self) -> Option<&KvStore> {
        None
    }

    /// A digest of the state (64-bit FNV-1a of the snapshot): replicas that applied the same
    /// entries agree, since every service snapshots the same state to the same bytes.
    fn digest(&self) -> u64 {
        digest::fnv1a(digest::FNV_OFFSET_BASIS, &self.snapshot())
    }
}
