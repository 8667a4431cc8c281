//! Nanoseconds per event for the SSE parser, before and after: the byte-at-a-time parser it
//! replaced (`tests/reference`) and this one, with events dropped or handed back
//! ([`Parser::recycle`]), or borrowed in place ([`Parser::feed`]). wspush-like events
//! (`id: since=…:N`, 64 bytes of data) in 16 KiB reads, as the load generator receives them.
//!
//! `cargo run --release -p sse-proto --example parse_bench [EVENTS]` (default 1,000,000).
//! A measurement to read, not a test: nothing here asserts a time.

#[path = "../../tests/reference/mod.rs"]
mod reference;

use std::hint::black_box;
use std::time::Instant;

use sse_proto::{Event, Parser};

/// The read size of the load generator's socket reads.
const READ: usize = 16 * 1024;
/// Events in the stream fed again and again (about 1 MiB).
const BLOCK: usize = 10_000;

/// A stream of `BLOCK` events as wspush sends them to an EventSource.
fn stream() -> Vec<u8> {
    let data = "0123456789abcdef".repeat(4);
    let mut out = Vec::new();
    for n in 0..BLOCK {
        out.extend_from_slice(
            format!("id: since=661939e22e37e.211e.0:{n}\ndata: {data}\n\n").as_bytes(),
        );
    }
    out
}

/// Feeds `events` events in `READ`-byte reads to `feed`, which returns the events it
/// completed; nanoseconds per event.
fn time(stream: &[u8], events: usize, mut feed: impl FnMut(&[u8]) -> usize) -> f64 {
    let start = Instant::now();
    let mut seen = 0;
    while seen < events {
        for read in stream.chunks(READ) {
            seen += feed(black_box(read));
        }
    }
    start.elapsed().as_nanos() as f64 / seen as f64
}

fn consume(event: &Event) -> usize {
    black_box(event.data.len() + event.last_event_id.len() + event.event.len());
    1
}

fn main() {
    let events: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let stream = stream();
    println!(
        "{events} events of {} bytes, {READ}-byte reads",
        stream.len() / BLOCK
    );
    for round in 1..=3 {
        let mut old = reference::Parser::new(1 << 20);
        let before = time(&stream, events, |read| {
            old.handle_input(read).expect("a valid stream");
            std::iter::from_fn(|| old.poll_event())
                .map(|e| consume(&e))
                .sum()
        });
        let mut new = Parser::new(1 << 20);
        let dropped = time(&stream, events, |read| {
            new.handle_input(read).expect("a valid stream");
            std::iter::from_fn(|| new.poll_event())
                .map(|e| consume(&e))
                .sum()
        });
        let mut new = Parser::new(1 << 20);
        let recycled = time(&stream, events, |read| {
            new.handle_input(read).expect("a valid stream");
            let mut n = 0;
            while let Some(e) = new.poll_event() {
                n += consume(&e);
                new.recycle(e);
            }
            n
        });
        let mut new = Parser::new(1 << 20);
        let borrowed = time(&stream, events, |read| {
            let mut n = 0;
            new.feed(read, |e| {
                black_box(e.data.len() + e.last_event_id.len() + e.event.len());
                n += 1;
            })
            .expect("a valid stream");
            n
        });
        println!(
            "round {round}: before {before:.0} ns/event, after {dropped:.0} ns/event \
             (events dropped), {recycled:.0} ns/event (events recycled), {borrowed:.0} \
             ns/event (borrowed, `Parser::feed`)"
        );
    }
}
