//! A datagram as the node's socket hands it over (a peer's message, a clerk's request, a node's
//! reply to a clerk, which the clerks decode the same way): `wire::decode` must return an error
//! for anything that is not an authenticated payload of this protocol and cluster, never panic
//! or allocate what a length field claims; what decodes must encode and decode back to the same
//! payload.
//!
//! A relayed copy's second hop is opened as its target opens it (`wire::open_relayed`): the
//! inner datagram is checked like any other, and what opens must be the message the envelope
//! announces.
//!
//! Each input is tried twice: as it came (version, cluster id and MAC checked first, so nearly
//! every mutation stops at the MAC), and resealed with the cluster's key (`wire::seal`), as if
//! its sender held the secret, so that the body decoder behind the MAC is fuzzed as deeply.

#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_auth::Secret;
use raft_node::wire::{self, ClusterKey, Payload, Relay};

/// The cluster the seeds are sealed for (`seeds datagram`).
fn key() -> ClusterKey {
    ClusterKey {
        id: 1,
        secret: Secret::from_bytes(&[0; 32]),
    }
}

fuzz_target!(|bytes: &[u8]| {
    let key = key();
    check(&key, bytes);
    if bytes.len() >= wire::BODY {
        check(&key, &wire::seal(&key, bytes.to_vec()));
    }
});

fn check(key: &ClusterKey, bytes: &[u8]) {
    match wire::decode(key, bytes) {
        Ok(payload) => {
            if let Payload::Relayed(relay) | Payload::Relay(relay) = &payload {
                open(key, relay);
                // Resealed as its sender would have, so that the inner decoder is reached too.
                if relay.inner.len() >= wire::BODY {
                    let inner = wire::seal(key, relay.inner.clone());
                    open(
                        key,
                        &Relay {
                            inner,
                            ..relay.clone()
                        },
                    );
                }
            }
            let again = wire::encode_payload(key, &payload);
            match wire::decode(key, &again) {
                Ok(back) => assert_eq!(back, payload, "re-encoded as {again:?}"),
                Err(e) => panic!("{payload:?} re-encoded as {again:?} does not decode: {e}"),
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fn open(key: &ClusterKey, relay: &Relay) {
    match wire::open_relayed(key, relay) {
        Ok(msg) => assert_eq!(
            (msg.from, msg.to, msg.via),
            (relay.from, relay.to, Some(relay.via))
        ),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}
