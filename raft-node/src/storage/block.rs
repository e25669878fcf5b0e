//! Sealed blocks: the fixed-size, self-checking layout shared by the `state` file and every
//! segment's header, little-endian:
//!
//! `[magic: 4 bytes][format version: u32][body][crc32 of all the bytes before it: u32]`
//!
//! The version sits at the same offset in every version, so a file from a newer build is
//! reported as such rather than as a checksum mismatch.

use super::error::StorageError;
use std::path::Path;

/// The only format this build writes and reads. Version 2: configuration entries in the log,
/// and the configuration in the snapshot file (Raft thesis, chapter 4).
pub(super) const FORMAT_VERSION: u32 = 2;

const PREFIX_LEN: usize = 8;
const CRC_LEN: usize = 4;

pub(super) const fn sealed_len(body_len: usize) -> usize {
    PREFIX_LEN + body_len + CRC_LEN
}

pub(super) fn seal(magic: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut block = Vec::with_capacity(sealed_len(body.len()));
    block.extend_from_slice(magic);
    block.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    block.extend_from_slice(body);
    let crc = crc32fast::hash(&block);
    block.extend_from_slice(&crc.to_le_bytes());
    block
}

/// Checks that `block` is exactly one sealed block of `body_len` with this `magic`, and returns
/// its body. `what` names the block in errors ("state file", "segment header").
pub(super) fn unseal<'a>(
    path: &Path,
    what: &str,
    block: &'a [u8],
    magic: &[u8; 4],
    body_len: usize,
) -> Result<&'a [u8], StorageError> {
    let expected_len = sealed_len(body_len);
    if block.len() < PREFIX_LEN {
        return Err(StorageError::corrupt(
            path,
            None,
            format!("{what} is {} bytes, expected {expected_len}", block.len()),
        ));
    }
    if &block[..4] != magic {
        return Err(StorageError::corrupt(
            path,
            None,
            format!(
                "{what} does not start with {:?}",
                String::from_utf8_lossy(magic)
            ),
        ));
    }
    let version = le_u32(&block[4..8]);
    if version != FORMAT_VERSION {
        return Err(StorageError::UnsupportedVersion {
            path: path.to_owned(),
            version,
        });
    }
    if block.len() != expected_len {
        return Err(StorageError::corrupt(
            path,
            None,
            format!("{what} is {} bytes, expected {expected_len}", block.len()),
        ));
    }
    let (sealed, crc) = block.split_at(expected_len - CRC_LEN);
    if crc32fast::hash(sealed).to_le_bytes() != crc {
        return Err(StorageError::corrupt(
            path,
            None,
            format!("{what} fails its checksum"),
        ));
    }
    Ok(&sealed[PREFIX_LEN..])
}

/// Reads a little-endian u32 from exactly 4 bytes; callers slice after checking lengths.
pub(super) fn le_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes.try_into().expect("caller passes 4 bytes"))
}

/// Reads a little-endian u64 from exactly 8 bytes; callers slice after checking lengths.
pub(super) fn le_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("caller passes 8 bytes"))
}
