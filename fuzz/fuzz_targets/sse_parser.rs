//! The SSE parser on arbitrary bytes in arbitrary chunks: never panics, stays within its
//! limit, and reads exactly as the byte-at-a-time parser it replaced (the same events, the
//! same error); and what the encoder writes for arbitrary text reads back unchanged.
#![no_main]

#[path = "../../crates/sse-proto/tests/reference/mod.rs"]
mod reference;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sse_proto::{Parser, encode};

fuzz_target!(|input: (&[u8], u8, &str)| {
    let (bytes, chunk, text) = input;
    let mut parser = Parser::new(4096);
    let mut oracle = reference::Parser::new(4096);
    // The borrowing entry point must read the same events as the owning one.
    let mut borrowing = Parser::new(4096);
    for part in bytes.chunks(usize::from(chunk.max(1))) {
        let (got, want) = (parser.handle_input(part), oracle.handle_input(part));
        assert_eq!(got, want);
        let mut borrowed = Vec::new();
        let fed = borrowing.feed(part, |e| {
            borrowed.push((e.event.to_owned(), e.data.to_owned(), e.last_event_id.to_owned()))
        });
        assert_eq!(fed, want);
        let mut borrowed = borrowed.into_iter();
        while let Some(event) = parser.poll_event() {
            assert!(event.data.len() <= 4096);
            let same = (event.event.clone(), event.data.clone(), event.last_event_id.clone());
            assert_eq!(borrowed.next(), Some(same));
            assert_eq!(Some(&event), oracle.poll_event().as_ref());
            parser.recycle(event);
        }
        assert_eq!(oracle.poll_event(), None);
        assert_eq!(borrowed.next(), None);
        if got.is_err() {
            break;
        }
        assert_eq!(parser.last_event_id(), oracle.last_event_id());
        assert_eq!(parser.retry(), oracle.retry());
        assert_eq!(borrowing.last_event_id(), oracle.last_event_id());
    }
    // Round trip: data lines keep their text, with every line end read back as LF.
    let mut out = BytesMut::new();
    if encode::event(&mut out, Some("e"), Some("1"), text).is_ok() {
        let mut parser = Parser::new(usize::MAX);
        parser.handle_input(&out).expect("no limit");
        let event = parser.poll_event().expect("one event");
        let want = text.replace("\r\n", "\n").replace('\r', "\n");
        assert_eq!(event.data, want);
        assert_eq!(event.last_event_id, "1");
    }
});
