//! What a benchmark message carries: `"<seq> <sent_ns> <publisher> "` in
//! ASCII, padded with `x` to the payload size, so it is valid UTF-8 (a text
//! frame on every server) and a subscriber can check order and compute latency
//! from the first few bytes. `sent_ns` is read from [`now_ns`], one monotonic
//! clock shared by the publisher and the subscribers (they are one process).
//! `seq` counts from 0 per channel *and publisher connection*: order is only
//! defined within one connection, so a subscriber checks it per publisher.
//!
//! Warm-up messages start with `w`: they prove a subscriber is registered
//! on the server before sequence 0 is sent, and are otherwise ignored.

use std::sync::OnceLock;
use std::time::Instant;

static BASE: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the first call in this process (monotonic).
pub fn now_ns() -> u64 {
    let base = BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A message as a subscriber reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A warm-up message (not counted).
    Warmup,
    /// A benchmark message.
    Data {
        /// Sequence number within its channel and publisher, from 0.
        seq: u64,
        /// [`now_ns`] when the publisher encoded it.
        sent_ns: u64,
        /// Which publisher connection sent it, from 0.
        publisher: u32,
    },
}

/// Appends a data payload of at least `size` bytes (exactly `size` when the
/// header fits).
pub fn encode(seq: u64, sent_ns: u64, publisher: u32, size: usize, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(format!("{seq} {sent_ns} {publisher} ").as_bytes());
    let target = start + size;
    if out.len() < target {
        out.resize(target, b'x');
    }
}

/// Appends a warm-up payload.
pub fn encode_warmup(out: &mut Vec<u8>) {
    out.extend_from_slice(b"w warmup");
}

/// Reads the header of a payload; `None` if it is not one of ours.
pub fn parse(payload: &[u8]) -> Option<Parsed> {
    // Published through wspush's JSON API, a payload arrives as a JSON string.
    let payload = payload.strip_prefix(b"\"").unwrap_or(payload);
    if payload.first() == Some(&b'w') {
        return Some(Parsed::Warmup);
    }
    let (seq, rest) = parse_u64(payload)?;
    let (sent_ns, rest) = parse_u64(rest)?;
    let (publisher, _) = parse_u64(rest)?;
    Some(Parsed::Data {
        seq,
        sent_ns,
        publisher: u32::try_from(publisher).ok()?,
    })
}

/// A decimal number followed by one space; returns the bytes after the space.
fn parse_u64(b: &[u8]) -> Option<(u64, &[u8])> {
    let end = b.iter().position(|c| *c == b' ')?;
    if end == 0 || end > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for c in &b[..end] {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some((n, &b[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_padding() {
        let mut out = Vec::new();
        encode(42, 123_456_789, 3, 64, &mut out);
        assert_eq!(out.len(), 64);
        assert!(out.starts_with(b"42 123456789 3 xxx"));
        assert_eq!(
            parse(&out),
            Some(Parsed::Data {
                seq: 42,
                sent_ns: 123_456_789,
                publisher: 3,
            })
        );
        out.clear();
        encode(u64::MAX, u64::MAX, u32::MAX, 8, &mut out);
        assert_eq!(out.len(), 53, "a header longer than size is kept whole");
        assert!(matches!(
            parse(&out),
            Some(Parsed::Data { seq: u64::MAX, .. })
        ));
    }

    #[test]
    fn a_payload_sent_as_a_json_string_reads_the_same() {
        let mut out = b"\"".to_vec();
        encode(7, 99, 1, 32, &mut out);
        out.push(b'"');
        assert_eq!(
            parse(&out),
            Some(Parsed::Data {
                seq: 7,
                sent_ns: 99,
                publisher: 1
            })
        );
        assert_eq!(parse(b"\"w warmup\""), Some(Parsed::Warmup));
    }

    #[test]
    fn warmup_and_garbage() {
        let mut out = Vec::new();
        encode_warmup(&mut out);
        assert_eq!(parse(&out), Some(Parsed::Warmup));
        assert_eq!(parse(b"hello"), None);
        assert_eq!(parse(b"1 2 0"), None, "the publisher needs its space");
        assert_eq!(parse(b"1 2 4294967296 "), None, "publisher beyond u32");
        assert_eq!(parse(b" 1 2 "), None);
        assert_eq!(parse(b"1a 2 "), None);
        assert_eq!(parse(b"99999999999999999999 1 "), None, "overflow");
    }
}
