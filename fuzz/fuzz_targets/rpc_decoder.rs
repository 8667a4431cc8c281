//! Arbitrary bytes, in arbitrary chunking, into the MessagePack-RPC streaming
//! `Decoder`; every decoded message must re-encode and decode again.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use msgpack_rpc::{Decoder, encode};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let mut decoder = Decoder::new(64 * 1024);
    let mut buf = BytesMut::new();
    'outer: for piece in input.chunks(usize::from(chunk).max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(msg)) => {
                    let mut again = BytesMut::new();
                    encode(&msg, &mut again);
                    let mut fresh = Decoder::new(usize::MAX);
                    let back = fresh
                        .decode(&mut again)
                        .expect("re-encoded message decodes");
                    assert!(back.is_some());
                    assert!(again.is_empty());
                }
                Ok(None) => break,
                Err(_) => break 'outer,
            }
        }
    }
});
