//! A peer datagram as the node's socket hands it over: `wire::decode` must return an error for
//! anything that is not a message of this protocol and cluster, never panic or allocate what a
//! length field claims; what decodes must encode and decode back to the same message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_node::wire;

/// The cluster id the seeds are encoded for (`seeds datagram`).
const CLUSTER: u64 = 1;

fuzz_target!(|bytes: &[u8]| {
    match wire::decode(CLUSTER, bytes) {
        Ok(msg) => {
            let again = wire::encode(CLUSTER, &msg);
            match wire::decode(CLUSTER, &again) {
                Ok(back) => assert_eq!(back, msg, "re-encoded as {again:?}"),
                Err(e) => panic!("{msg:?} re-encoded as {again:?} does not decode: {e}"),
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
