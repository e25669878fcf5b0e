//! The replicated service every simulated peer runs (the lab's state machine).
//!
//! Its state is a digest chained over the applied entries: [`chain`] folds one entry into the
//! digest of the entries before it. The same function hashes log prefixes for Log Matching
//! (`disk.rs`), so "the service's state after index i" and "the hash of the log through i" are
//! one number, and a snapshot, which carries the digest, names the log prefix it replaces.
//!
//! A snapshot is the index and the digest, then filler derived from them up to the configured
//! length (long enough to take several InstallSnapshot chunks).

use crate::core::{Entry, Index};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

/// The digest of a log prefix (or the service's state) after `entry`, given `prev`, the digest
/// through the entry before it (0 for the empty prefix).
///
/// `DefaultHasher::new()` is SipHash with fixed zero keys: the same input gives the same digest
/// in every run, which seed replay needs.
pub fn chain(prev: u64, entry: &Entry) -> u64 {
    let mut hasher = DefaultHasher::new();
    (prev, entry.index, entry.term, &entry.command).hash(&mut hasher);
    hasher.finish()
}

/// The service's snapshot of its state after applying `index` with `digest`: both, then
/// filler derived from them, `len` bytes in all (at least 16).
pub fn snapshot_data(index: Index, digest: u64, len: usize) -> Vec<u8> {
    let mut data = [index.to_le_bytes(), digest.to_le_bytes()].concat();
    let seed = index ^ digest;
    data.extend((0..len.saturating_sub(16)).map(|i| (seed >> (i % 8 * 8)) as u8 ^ i as u8));
    data
}

/// The index and digest a service snapshot holds; `None` if `data` is not one.
pub fn parse_snapshot(data: &[u8]) -> Option<(Index, u64)> {
    let index = data.get(..8)?.try_into().ok().map(Index::from_le_bytes)?;
    let digest = data.get(8..16)?.try_into().ok().map(u64::from_le_bytes)?;
    Some((index, digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::EntryKind;

    #[test]
    fn a_snapshot_parses_back_to_its_index_and_digest() {
        let data = snapshot_data(42, 0xfeed, 100);
        assert_eq!(data.len(), 100);
        assert_eq!(parse_snapshot(&data), Some((42, 0xfeed)));
        assert_eq!(parse_snapshot(&data[..15]), None);
    }

    #[test]
    fn the_digest_depends_on_every_field_and_on_the_prefix() {
        let entry = Entry {
            term: 2,
            index: 3,
            command: b"x".to_vec(),
            kind: EntryKind::Command,
        };
        let base = chain(7, &entry);
        assert_ne!(base, chain(8, &entry));
        assert_ne!(
            base,
            chain(
                7,
                &Entry {
                    term: 3,
                    ..entry.clone()
                }
            )
        );
        assert_ne!(
            base,
            chain(
                7,
                &Entry {
                    index: 4,
                    ..entry.clone()
                }
            )
        );
        assert_ne!(
            base,
            chain(
                7,
                &Entry {
                    command: b"y".to_vec(),
                    ..entry.clone()
                }
            )
        );
        assert_eq!(base, chain(7, &entry));
    }
}
