//! The built-in service of `raft-node run --snapshot-every N`, for clusters that run no service
//! of their own (`just cluster`): it folds every applied command into a digest, and at every
//! index that is a multiple of N it snapshots the node (§7), so compaction and InstallSnapshot
//! happen in a cluster driven by hand. (The harness runs the lab's service over the control
//! channel instead, with the flag off.)
//!
//! Snapshot data, 16 bytes: the last applied index, then the digest, both u64 little-endian.
//! The digest is 64-bit FNV-1a chained over each applied command's length (u64 LE) and bytes, in
//! index order. Every node snapshots at the same indices, so two snapshots of one index are
//! byte-identical exactly when the nodes applied the same commands (barring a collision).

use crate::core::{Apply, Index};
use log::error;

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

pub struct DigestService {
    /// Snapshot at every index that is a multiple of this (at least 1).
    every: Index,
    applied: Index,
    digest: u64,
}

impl DigestService {
    pub fn new(every: Index) -> DigestService {
        assert!(every > 0, "a snapshot every 0 entries");
        DigestService {
            every,
            applied: 0,
            digest: FNV_OFFSET_BASIS,
        }
    }

    /// Applies one item of the node's apply stream. Returns the snapshot to take, as
    /// `(index, data)`, when one is due.
    pub fn apply(&mut self, item: &Apply) -> Option<(Index, Vec<u8>)> {
        match item {
            Apply::Entry(entry) => {
                let len = entry.command.len() as u64;
                self.digest = fnv1a(fnv1a(self.digest, &len.to_le_bytes()), &entry.command);
                self.applied = entry.index;
                entry
                    .index
                    .is_multiple_of(self.every)
                    .then(|| (entry.index, self.encode()))
            }
            Apply::Snapshot(snapshot) => {
                match decode(&snapshot.data) {
                    Some((index, digest)) if index == snapshot.last_included_index => {
                        self.digest = digest;
                    }
                    _ => error!(
                        "snapshot through {} is not a digest snapshot; digest reset",
                        snapshot.last_included_index
                    ),
                }
                self.applied = snapshot.last_included_index;
                None
            }
        }
    }

    fn encode(&self) -> Vec<u8> {
        [self.applied.to_le_bytes(), self.digest.to_le_bytes()].concat()
    }
}

fn decode(data: &[u8]) -> Option<(Index, u64)> {
    let (index, digest) = data.split_at_checked(8)?;
    Some((
        Index::from_le_bytes(index.try_into().ok()?),
        u64::from_le_bytes(digest.try_into().ok()?),
    ))
}

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Entry, Snapshot};

    fn entry(index: Index, command: &[u8]) -> Apply {
        Apply::Entry(Entry {
            term: 1,
            index,
            command: command.to_vec(),
        })
    }

    #[test]
    fn snapshots_at_multiples_of_every() {
        let mut service = DigestService::new(2);
        assert_eq!(service.apply(&entry(1, b"a")), None);
        let (index, data) = service.apply(&entry(2, b"b")).unwrap();
        assert_eq!(index, 2);
        assert_eq!(data.len(), 16);
        assert_eq!(decode(&data).unwrap().0, 2);
        assert_eq!(service.apply(&entry(3, b"c")), None);
        assert_eq!(service.apply(&entry(4, b"d")).unwrap().0, 4);
    }

    /// A node that installs a snapshot continues the digest of the node that took it.
    #[test]
    fn a_snapshot_carries_the_digest_over() {
        let mut a = DigestService::new(2);
        a.apply(&entry(1, b"x"));
        let (index, data) = a.apply(&entry(2, b"y")).unwrap();
        let mut b = DigestService::new(2);
        let snapshot = Apply::Snapshot(Snapshot {
            last_included_index: index,
            last_included_term: 1,
            data,
        });
        assert_eq!(b.apply(&snapshot), None);
        a.apply(&entry(3, b"z"));
        b.apply(&entry(3, b"z"));
        assert_eq!(a.apply(&entry(4, b"w")), b.apply(&entry(4, b"w")));
    }

    /// The length is folded in, so commands that concatenate alike differ.
    #[test]
    fn different_commands_give_different_digests() {
        let mut a = DigestService::new(2);
        a.apply(&entry(1, b"ab"));
        let mut b = DigestService::new(2);
        b.apply(&entry(1, b"a"));
        assert_ne!(a.apply(&entry(2, b"c")), b.apply(&entry(2, b"bc")));
    }
}
