//! A lab 4B replica group: its own Raft cluster serving the shards the controller's
//! configuration gives it, moving from configuration N to N+1 only, and handing shards to other
//! groups through the log.
//!
//! - [`store`]: the replicated state machine: the configuration, each shard held (serving,
//!   receiving, sending) with its data and exactly-once table, and every entry that changes them.
//! - [`driver`]: what the group's leader sends: the controller polls and the shard hand-offs,
//!   IO-free (the runtime moves its datagrams).
//! - [`model`]: a seeded model test of several groups' reconfiguration, store and driver
//!   driven directly, with its invariants checked at every step.
//!
//! Ownership is decided when an entry is applied, never when a request arrives: a Put/Append
//! for a shard the group does not serve at that point of its log is refused (`WrongGroup`) and
//! changes nothing, its exactly-once table included.

pub mod driver;
pub mod model;
pub mod store;

use crate::shardctrler::config::NSHARDS;

/// The lab's key2shard: the key's first byte mod [`NSHARDS`]; the empty key is shard 0.
pub fn key2shard(key: &str) -> usize {
    key.as_bytes().first().map_or(0, |&b| b as usize % NSHARDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key2shard_is_the_labs() {
        assert_eq!(key2shard("0"), 8);
        assert_eq!(key2shard("1"), 9);
        assert_eq!(key2shard("19"), 9);
        assert_eq!(key2shard("2"), 0);
        assert_eq!(key2shard("9"), 7);
        assert_eq!(key2shard(""), 0);
    }
}
