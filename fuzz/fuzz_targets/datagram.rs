//! A datagram as the node's socket hands it over (a peer's message, a clerk's request, a node's
//! reply to a clerk, which the clerks decode the same way): `wire::decode` must return an error
//! for anything that is not a payload of this protocol and cluster, never panic or allocate what
//! a length field claims; what decodes must encode and decode back to the same payload.

#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_node::wire;

/// The cluster id the seeds are encoded for (`seeds datagram`).
const CLUSTER: u64 = 1;

fuzz_target!(|bytes: &[u8]| {
    match wire::decode(CLUSTER, bytes) {
        Ok(payload) => {
            let again = wire::encode_payload(CLUSTER, &payload);
            match wire::decode(CLUSTER, &again) {
                Ok(back) => assert_eq!(back, payload, "re-encoded as {again:?}"),
                Err(e) => panic!("{payload:?} re-encoded as {again:?} does not decode: {e}"),
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
