//! Arbitrary bytes through the permessage-deflate inflater with a limit, in arbitrary
//! pieces: never more than the limit delivered, never a panic. Valid data round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ws_proto::deflate::{Deflater, Inflater};

const MAX: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let mut inflater = Inflater::new(chunk & 1 != 0);
    let mut out = Vec::new();
    let ok = input
        .chunks(usize::from(chunk).max(1))
        .try_for_each(|piece| inflater.inflate(piece, &mut out, MAX))
        .and_then(|()| inflater.finish(&mut out, MAX));
    if ok.is_ok() {
        assert!(out.len() <= MAX);
    }
    // Round trip: what we compress, we inflate to the same bytes.
    let mut deflater = Deflater::new(9 + chunk % 7, chunk & 2 != 0, u32::from(chunk % 10));
    let mut compressed = Vec::new();
    deflater.compress(input, &mut compressed);
    let mut inflater = Inflater::new(false);
    let mut back = Vec::new();
    inflater
        .inflate(&compressed, &mut back, usize::MAX)
        .unwrap();
    inflater.finish(&mut back, usize::MAX).unwrap();
    assert_eq!(back, input);
});
