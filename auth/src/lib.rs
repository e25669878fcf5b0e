//! The cluster secret and what it keys.
//!
//! A cluster shares one secret: 32 random bytes, kept in a file of mode 0600 as 64 hex digits.
//! Two keys are derived from it (BLAKE3's key derivation, one context string each, so that a
//! value computed for one use is never valid for the other):
//! - the *datagram key*: every peer and clerk datagram carries keyed BLAKE3 of its header and
//!   body (`raft_node::wire`), checked before the body is decoded;
//! - the *control key*: a control connection (a node's, netproxy's) starts with a challenge, a
//!   fresh random nonce from the server, and the client answers with keyed BLAKE3 of it; the
//!   server takes requests only once that proof checks. The nonce is new on every connection,
//!   so a captured proof is worth nothing on the next one.
//!
//! Comparisons go through `blake3::Hash`, whose equality is constant-time.

use rand::RngCore;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Bytes of the secret.
pub const SECRET_LEN: usize = 32;
/// Bytes of a datagram MAC and of a handshake proof (BLAKE3's full output).
pub const MAC_LEN: usize = 32;
/// Bytes of a control handshake's challenge.
pub const NONCE_LEN: usize = 32;

const DATAGRAM_CONTEXT: &str = "raft-lab 2026-12 datagram MAC";
const CONTROL_CONTEXT: &str = "raft-lab 2026-12 control handshake";

/// The keys derived from a cluster secret (the secret itself is not kept). Not comparable:
/// only the constant-time checks below look at key material.
#[derive(Clone)]
pub struct Secret {
    datagram: [u8; 32],
    control: [u8; 32],
}

/// Never prints key material.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(..)")
    }
}

impl Secret {
    pub fn from_bytes(secret: &[u8; SECRET_LEN]) -> Secret {
        Secret {
            datagram: blake3::derive_key(DATAGRAM_CONTEXT, secret),
            control: blake3::derive_key(CONTROL_CONTEXT, secret),
        }
    }

    /// A fresh secret from the operating system's random source.
    pub fn random_bytes() -> [u8; SECRET_LEN] {
        let mut bytes = [0; SECRET_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        bytes
    }

    /// Writes a fresh secret to `path` (mode 0600, replacing what was there) and returns it.
    pub fn create_file(path: &Path) -> io::Result<Secret> {
        let bytes = Secret::random_bytes();
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        // `mode` applies only to a file it creates; an older one may have been readable.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        writeln!(file, "{}", hex(&bytes))?;
        file.sync_all()?;
        Ok(Secret::from_bytes(&bytes))
    }

    /// Reads a secret file: 64 hex digits, readable by its owner only (as ssh insists of a
    /// private key: a secret others can read is not one). Errors name the file and the fix.
    pub fn read_file(path: &Path) -> io::Result<Secret> {
        let context = |e: io::Error| {
            io::Error::new(e.kind(), format!("cluster secret {}: {e}", path.display()))
        };
        let text = fs::read_to_string(path).map_err(context)?;
        let mode = fs::metadata(path).map_err(context)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(context(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "mode {:o} lets others read it; run: chmod 600 {}",
                    mode & 0o777,
                    path.display()
                ),
            )));
        }
        let bytes = unhex(text.trim()).ok_or_else(|| {
            context(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not {} hex digits", 2 * SECRET_LEN),
            ))
        })?;
        Ok(Secret::from_bytes(&bytes))
    }

    /// The MAC of a datagram's `header` and `body`.
    pub fn datagram_mac(&self, header: &[u8], body: &[u8]) -> [u8; MAC_LEN] {
        let mut hasher = blake3::Hasher::new_keyed(&self.datagram);
        hasher.update(header);
        hasher.update(body);
        *hasher.finalize().as_bytes()
    }

    /// Whether `mac` is the MAC of `header` and `body` (in constant time).
    pub fn check_datagram_mac(&self, header: &[u8], body: &[u8], mac: &[u8]) -> bool {
        let Ok(mac) = <[u8; MAC_LEN]>::try_from(mac) else {
            return false;
        };
        blake3::Hash::from(mac) == blake3::Hash::from(self.datagram_mac(header, body))
    }

    /// A control client's answer to the server's challenge `nonce`.
    pub fn proof(&self, nonce: &[u8]) -> [u8; MAC_LEN] {
        *blake3::keyed_hash(&self.control, nonce).as_bytes()
    }

    /// Whether `proof` answers the challenge `nonce` (in constant time).
    pub fn check_proof(&self, nonce: &[u8], proof: &[u8]) -> bool {
        let Ok(proof) = <[u8; MAC_LEN]>::try_from(proof) else {
            return false;
        };
        blake3::Hash::from(proof) == blake3::Hash::from(self.proof(nonce))
    }
}

/// A fresh challenge for a control connection.
pub fn nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    nonce
}

/// Lower-case hex (the secret file, netproxy's text protocol).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of exactly `2 * N` hex digits.
pub fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut bytes = [0; N];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(bytes)
}

/// The message a control server gives a client whose proof does not check.
pub const WRONG_SECRET: &str =
    "authentication failed: the client's cluster secret is not this server's (--secret-file)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_file_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let written = Secret::create_file(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let read = Secret::read_file(&path).unwrap();
        let nonce = nonce();
        assert!(read.check_proof(&nonce, &written.proof(&nonce)));
        // A second one is a new secret.
        let second = Secret::create_file(&path).unwrap();
        assert!(!second.check_proof(&nonce, &written.proof(&nonce)));
    }

    #[test]
    fn a_secret_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        Secret::create_file(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Secret::read_file(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn a_secret_file_that_is_not_64_hex_digits_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        for text in ["", "abc", &"g".repeat(64), &"a".repeat(63), &"é".repeat(32)] {
            fs::write(&path, text).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            assert!(Secret::read_file(&path).is_err(), "{text:?}");
        }
    }

    #[test]
    fn a_datagram_mac_checks_only_with_its_key_header_and_body() {
        let a = Secret::from_bytes(&[1; 32]);
        let b = Secret::from_bytes(&[2; 32]);
        let mac = a.datagram_mac(b"head", b"body");
        assert!(a.check_datagram_mac(b"head", b"body", &mac));
        assert!(!b.check_datagram_mac(b"head", b"body", &mac));
        assert!(!a.check_datagram_mac(b"head", b"bodz", &mac));
        assert!(!a.check_datagram_mac(b"heae", b"body", &mac));
        assert!(!a.check_datagram_mac(b"head", b"body", &mac[..16]));
        assert!(!a.check_datagram_mac(b"head", b"body", &[]));
    }

    #[test]
    fn the_two_keys_differ_so_a_proof_is_no_mac() {
        let s = Secret::from_bytes(&[3; 32]);
        let nonce = [9; NONCE_LEN];
        assert!(s.check_proof(&nonce, &s.proof(&nonce)));
        assert!(!s.check_datagram_mac(&nonce, &[], &s.proof(&nonce)));
        assert!(!Secret::from_bytes(&[4; 32]).check_proof(&nonce, &s.proof(&nonce)));
        assert!(!s.check_proof(&[8; NONCE_LEN], &s.proof(&nonce)));
    }

    #[test]
    fn hex_round_trips() {
        let bytes = Secret::random_bytes();
        assert_eq!(unhex::<SECRET_LEN>(&hex(&bytes)), Some(bytes));
        assert_eq!(unhex::<2>("0aFf"), Some([0x0a, 0xff]));
        assert_eq!(unhex::<2>("0aF"), None);
    }
}
