//! The lab 4A shard controller as a hosted service. It never snapshots on its own (the lab's
//! controller takes no maxraftstate), but takes one when the runtime asks.

use super::{ClerkService, Service};
use crate::core::Index;
use crate::kv::store::Applied;
use crate::shardctrler::store::ShardCtrlerStore;
use log::error;

#[derive(Default)]
pub struct ShardCtrlerService {
    store: ShardCtrlerStore,
}

impl ShardCtrlerService {
    pub fn new() -> ShardCtrlerService {
        ShardCtrlerService::default()
    }
}

impl Service for ShardCtrlerService {
    fn apply(&mut self, index: Index, command: &[u8]) -> Option<Applied> {
        match self.store.apply(command) {
            Ok(applied) => applied,
            Err(e) => {
                // Every replica hits the same entry and skips it alike, so they stay equal.
                error!("shard controller: entry {index} skipped: {e}");
                None
            }
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        self.store.snapshot()
    }

    fn restore(&mut self, index: Index, data: &[u8]) -> Result<(), String> {
        self.store = ShardCtrlerStore::restore(data)
            .map_err(|e| format!("snapshot through {index}: {e}"))?;
        Ok(())
    }

    fn clerks(&self) -> Option<&dyn ClerkService> {
        Some(&self.store)
    }
}
