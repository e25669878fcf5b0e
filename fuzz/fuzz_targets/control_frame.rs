//! Control-channel bytes as a node (the handshake's `Authenticate`, then requests) or a client
//! (the `Challenge`, then responses) receives them: a stream of length-prefixed frames. Frames are split off the front with `decode_frame`, as the node's
//! server does, until one is incomplete or bad; `read_frame`, the clients' blocking reader, must
//! agree with it on every frame; a frame that decodes must encode and decode back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_node::control::{self, Authenticate, Challenge, Request, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::io::Cursor;

fuzz_target!(|bytes: &[u8]| {
    frames::<Authenticate>(bytes);
    frames::<Challenge>(bytes);
    frames::<Request>(bytes);
    frames::<Response>(bytes);
});

fn frames<T: Serialize + DeserializeOwned + PartialEq + Debug>(bytes: &[u8]) {
    let mut rest = bytes;
    loop {
        let read = control::read_frame::<T>(&mut Cursor::new(rest));
        match control::decode_frame::<T>(rest) {
            Ok(Some((value, used))) => {
                assert!(
                    (4..=rest.len()).contains(&used),
                    "used {used} of {}",
                    rest.len()
                );
                match read {
                    Ok(read) => assert_eq!(read, value),
                    Err(e) => panic!("decode_frame took {value:?}, read_frame failed: {e}"),
                }
                let frame = control::encode_frame(&value);
                match control::decode_frame::<T>(&frame) {
                    Ok(Some((back, len))) => {
                        assert_eq!(back, value);
                        assert_eq!(len, frame.len());
                    }
                    other => panic!("{value:?} encoded as {frame:?} decodes as {other:?}"),
                }
                rest = &rest[used..];
            }
            // Incomplete: a reader waits for more, a blocking reader hits the end of the stream.
            Ok(None) => {
                assert!(
                    read.is_err(),
                    "read_frame took a frame decode_frame calls incomplete"
                );
                return;
            }
            Err(e) => {
                assert!(
                    read.is_err(),
                    "read_frame took a frame decode_frame rejects: {e}"
                );
                return;
            }
        }
    }
}
