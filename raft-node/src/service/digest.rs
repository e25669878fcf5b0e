//! The digest service (`raft-node run --service digest`): it folds every applied command into a
//! digest, so that with `--snapshot-every N` compaction and InstallSnapshot happen in a cluster
//! driven by hand, and replicas can be compared by their snapshots.
//!
//! Snapshot data, 16 bytes: the last applied index, then the digest, both u64 little-endian.
//! The digest is 64-bit FNV-1a chained over each applied command's length (u64 LE) and bytes, in
//! index order. Every node snapshots at the same indices, so two snapshots of one index are
//! byte-identical exactly when the nodes applied the same commands (barring a collision).

use super::Service;
use crate::core::Index;
use crate::kv::store::Applied;

pub(super) const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

pub struct DigestService {
    applied: Index,
    digest: u64,
}

impl Default for DigestService {
    fn default() -> DigestService {
        DigestService {
            applied: 0,
            digest: FNV_OFFSET_BASIS,
        }
    }
}

impl DigestService {
    pub fn new() -> DigestService {
        DigestService::default()
    }
}

impl Service for DigestService {
    fn apply(&mut self, index: Index, command: &[u8]) -> Option<Applied> {
        let len = command.len() as u64;
        self.digest = fnv1a(fnv1a(self.digest, &len.to_le_bytes()), command);
        self.applied = index;
        None
    }

    fn snapshot(&self) -> Vec<u8> {
        [self.applied.to_le_bytes(), self.digest.to_le_bytes()].concat()
    }

    fn restore(&mut self, index: Index, data: &[u8]) -> Result<(), String> {
        match decode(data) {
            Some((applied, digest)) if applied == index => {
                self.applied = applied;
                self.digest = digest;
                Ok(())
            }
            _ => Err(format!("snapshot through {index} is not a digest snapshot")),
        }
    }
}

fn decode(data: &[u8]) -> Option<(Index, u64)> {
    let (index, digest) = data.split_at_checked(8)?;
    Some((
        Index::from_le_bytes(index.try_into().ok()?),
        u64::from_le_bytes(digest.try_into().ok()?),
    ))
}

pub(super) fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_the_applied_index_and_the_digest() {
        let mut service = DigestService::new();
        service.apply(1, b"a");
        service.apply(2, b"b");
        let data = service.snapshot();
        assert_eq!(data.len(), 16);
        assert_eq!(decode(&data).unwrap().0, 2);
    }

    /// A node that installs a snapshot continues the digest of the node that took it.
    #[test]
    fn a_snapshot_carries_the_digest_over() {
        let mut a = DigestService::new();
        a.apply(1, b"x");
        a.apply(2, b"y");
        let mut b = DigestService::new();
        b.restore(2, &a.snapshot()).unwrap();
        a.apply(3, b"z");
        b.apply(3, b"z");
        assert_eq!(a.snapshot(), b.snapshot());
        // A snapshot claimed for an index it does not hold is refused.
        assert!(b.restore(4, &a.snapshot()).is_err());
    }

    /// The length is folded in, so commands that concatenate alike differ.
    #[test]
    fn different_commands_give_different_digests() {
        let mut a = DigestService::new();
        a.apply(1, b"ab");
        a.apply(2, b"c");
        let mut b = DigestService::new();
        b.apply(1, b"a");
        b.apply(2, b"bc");
        assert_ne!(a.snapshot(), b.snapshot());
    }

    #[test]
    fn a_foreign_snapshot_is_an_error() {
        assert!(DigestService::new().restore(4, b"short").is_err());
    }
}
