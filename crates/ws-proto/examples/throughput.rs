//! Rough single-core throughput of the hot paths (not a test; no assertions):
//! fan-out of a prepared frame to many connections, and decoding small masked frames.
//!
//! `cargo run --release -p ws-proto --example throughput`

use std::collections::VecDeque;
use std::time::Instant;

use ws_proto::{Config, Connection, Event, Message, PreparedMessage, Role};

fn main() {
    fan_out();
    decode();
}

fn fan_out() {
    const CONNS: usize = 10_000;
    const ROUNDS: usize = 100;
    let mut conns: Vec<Connection> = (0..CONNS)
        .map(|_| Connection::new(Role::Server, Config::default(), None))
        .collect();
    let prepared = PreparedMessage::new(Message::text(r#"{"channel":"news","data":"hello"}"#));
    let mut out = VecDeque::new();
    let start = Instant::now();
    for _ in 0..ROUNDS {
        for conn in &mut conns {
            conn.send_prepared(&prepared).expect("open");
            conn.poll_transmit(&mut out);
            out.clear();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let frames = (CONNS * ROUNDS) as f64;
    println!(
        "fan-out: {frames} prepared frames to {CONNS} connections in {secs:.3}s = {:.1} M frames/s",
        frames / secs / 1e6
    );
}

fn decode() {
    const FRAMES: usize = 1_000_000;
    let key = [1u8, 2, 3, 4];
    let payload = b"{\"op\":\"ping\"}";
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    let batch: Vec<u8> = frame.repeat(1000);
    let mut conn = Connection::new(Role::Server, Config::default(), None);
    let mut count = 0usize;
    let start = Instant::now();
    for _ in 0..FRAMES / 1000 {
        conn.handle_input(&batch).expect("valid");
        while let Some(event) = conn.poll_event() {
            if let Event::Message(_) = event {
                count += 1;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "decode: {count} masked 13-byte text messages in {secs:.3}s = {:.1} M msgs/s ({:.0} MB/s of frames)",
        count as f64 / secs / 1e6,
        (count * frame.len()) as f64 / secs / 1e6
    );
}
