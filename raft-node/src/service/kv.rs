//! The KV store as a hosted service.

use super::{ClerkService, Service};
use crate::core::Index;
use crate::kv::store::{Applied, KvStore};
use log::error;

#[derive(Default)]
pub struct KvService {
    store: KvStore,
}

impl KvService {
    pub fn new() -> KvService {
        KvService::default()
    }
}

impl Service for KvService {
    fn apply(&mut self, index: Index, command: &[u8]) -> Option<Applied> {
        match self.store.apply(command) {
            Ok(applied) => applied,
            Err(e) => {
                // Every replica hits the same entry and skips it alike, so they stay equal.
                error!("KV: entry {index} is not a KV command, skipped: {e}");
                None
            }
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        self.store.snapshot()
    }

    fn restore(&mut self, index: Index, data: &[u8]) -> Result<(), String> {
        self.store =
            KvStore::restore(data).map_err(|e| format!("snapshot through {index}: {e}"))?;
        Ok(())
    }

    fn kv(&self) -> Option<&KvStore> {
        Some(&self.store)
    }

    fn clerks(&self) -> Option<&dyn ClerkService> {
        Some(&self.store)
    }
}
