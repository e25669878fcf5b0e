//! A lab 4B replica group as a hosted service: the group's state machine
//! ([`crate::shardkv::store`]), which answers clerks and other groups' hand-offs; its leader's
//! polls and hand-offs are the runtime's (`shardkv::driver`).

use super::{ClerkService, Service};
use crate::core::Index;
use crate::kv::store::Applied;
use crate::shardctrler::config::Gid;
use crate::shardkv::store::ShardKvStore;
use log::error;

pub struct ShardKvService {
    store: ShardKvStore,
}

impl ShardKvService {
    /// Replica group `gid`, at configuration 0.
    pub fn new(gid: Gid) -> ShardKvService {
        ShardKvService {
            store: ShardKvStore::new(gid),
        }
    }
}

impl Service for ShardKvService {
    fn apply(&mut self, index: Index, command: &[u8]) -> Option<Applied> {
        match self.store.apply(command) {
            Ok(applied) => applied,
            Err(e) => {
                // Every replica hits the same entry and skips it alike, so they stay equal.
                error!("shardkv: entry {index} skipped: {e}");
                None
            }
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        self.store.snapshot()
    }

    fn restore(&mut self, index: Index, data: &[u8]) -> Result<(), String> {
        self.store = ShardKvStore::restore(self.store.gid(), data)
            .map_err(|e| format!("snapshot through {index}: {e}"))?;
        Ok(())
    }

    fn clerks(&self) -> Option<&dyn ClerkService> {
        Some(&self.store)
    }

    fn shardkv(&self) -> Option<&ShardKvStore> {
        Some(&self.store)
    }
}
