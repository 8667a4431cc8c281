//! Positions in a stream and how they travel to the browsers that ask for them.
//!
//! Every stream (the broadcast stream of `push_data` and each channel of
//! `publish`) numbers its messages 1, 2, 3… within an *epoch*, an opaque
//! token that changes whenever the numbering restarts (the embedded broker
//! restarted or forgot the stream, Redis lost its keys). `(epoch, seq)` is a
//! [`Position`].
//!
//! Browsers that did not ask get the raw data, byte for byte. A browser that
//! opened with `?positions=1` or any `since=` gets every frame as a one-line
//! JSON header, `\n`, then the data, in a frame of the data's own type:
//!
//! ```text
//! {"c":"news","e":"lq3x9a.1","q":17}\n<data>     a message of channel "news"
//! {"e":"lq3x9a.0","q":4}\n<data>                 a message of the broadcast stream
//! {}\n<data>                                     a send() to this connection (no position)
//! {"c":"news","e":"lq3x9a.1","q":9,"gap":true}\n a gap notice (text frame, no data)
//! ```
//!
//! A gap notice means: messages between your last position and `(e, q)` are
//! lost; what follows on this stream continues after `q`.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::delivery::payload::Payload;

/// A message's place in its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Changes whenever the numbering restarts; `""` when the stream has no history.
    pub epoch: Arc<str>,
    /// 1 for the first message of the epoch.
    pub seq: u64,
}

impl Position {
    /// A position.
    pub fn new(epoch: impl Into<Arc<str>>, seq: u64) -> Position {
        Position {
            epoch: epoch.into(),
            seq,
        }
    }

    /// Whether `next` directly follows `self` (same epoch, next number). The start of a
    /// stream that had no history (empty epoch, 0) is followed by the first message of
    /// whatever epoch the stream then begins.
    pub fn is_followed_by(&self, next: &Position) -> bool {
        let same_run = self.epoch == next.epoch || (self.epoch.is_empty() && self.seq == 0);
        same_run && self.seq.checked_add(1) == Some(next.seq)
    }

    /// Whether a message at `pos` was already delivered by someone at `self`.
    pub fn covers(&self, pos: &Position) -> bool {
        self.epoch == pos.epoch && pos.seq <= self.seq
    }
}

fn header(stream: Option<&str>, pos: Option<&Position>, gap: bool) -> BytesMut {
    let mut h = String::with_capacity(48);
    h.push('{');
    if let Some(channel) = stream {
        h.push_str("\"c\":");
        // A str always serialises.
        h.push_str(&serde_json::to_string(channel).unwrap_or_else(|_| "\"\"".into()));
    }
    if let Some(p) = pos {
        if stream.is_some() {
            h.push(',');
        }
        h.push_str("\"e\":");
        h.push_str(&serde_json::to_string(&*p.epoch).unwrap_or_else(|_| "\"\"".into()));
        h.push_str(",\"q\":");
        h.push_str(&p.seq.to_string());
    }
    if gap {
        h.push_str(",\"gap\":true");
    }
    h.push_str("}\n");
    BytesMut::from(h.as_bytes())
}

/// The positioned form of `payload`: header line, then the data, same frame type.
/// `stream` is `None` for the broadcast stream; `pos` is `None` for `send()`.
pub fn envelope(payload: &Payload, stream: Option<&str>, pos: Option<&Position>) -> Payload {
    let mut out = header(stream, pos, false);
    out.reserve(payload.bytes().len());
    out.put_slice(payload.bytes());
    let bytes = out.freeze();
    match payload {
        Payload::Text(_) => Payload::Text(bytes),
        Payload::Binary(_) => Payload::Binary(bytes),
    }
}

/// The gap notice for `stream`: what follows continues after `pos`.
pub fn gap_notice(stream: Option<&str>, pos: &Position) -> Payload {
    Payload::Text(Bytes::from(header(stream, Some(pos), true)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn envelopes_keep_the_frame_type_and_the_bytes() {
        let p = Position::new("e1", 17);
        let text = envelope(
            &Payload::Text(Bytes::from_static(b"{\"a\":1}")),
            Some("ne\"ws"),
            Some(&p),
        );
        assert_eq!(
            text,
            Payload::Text(Bytes::from_static(
                b"{\"c\":\"ne\\\"ws\",\"e\":\"e1\",\"q\":17}\n{\"a\":1}"
            ))
        );
        let bin = envelope(
            &Payload::Binary(Bytes::from_static(&[0, 255])),
            None,
            Some(&p),
        );
        assert_eq!(
            bin,
            Payload::Binary(Bytes::from_static(b"{\"e\":\"e1\",\"q\":17}\n\x00\xff"))
        );
        let direct = envelope(&Payload::Text(Bytes::from_static(b"hi")), None, None);
        assert_eq!(direct, Payload::Text(Bytes::from_static(b"{}\nhi")));
    }

    #[test]
    fn gap_notices_are_headers_only() {
        assert_eq!(
            gap_notice(Some("a"), &Position::new("e", 3)),
            Payload::Text(Bytes::from_static(
                b"{\"c\":\"a\",\"e\":\"e\",\"q\":3,\"gap\":true}\n"
            ))
        );
    }

    #[test]
    fn order_between_positions() {
        let a = Position::new("e", 3);
        assert!(a.is_followed_by(&Position::new("e", 4)));
        assert!(!a.is_followed_by(&Position::new("f", 4)));
        assert!(!a.is_followed_by(&Position::new("e", 5)));
        assert!(a.covers(&Position::new("e", 3)));
        assert!(!a.covers(&Position::new("e", 4)));
        assert!(!a.covers(&Position::new("f", 1)));
        assert!(!Position::new("e", u64::MAX).is_followed_by(&Position::new("e", 0)));
        // A stream with no history yet, then its first message in a new epoch.
        let empty = Position::new("", 0);
        assert!(empty.is_followed_by(&Position::new("f", 1)));
        assert!(!empty.is_followed_by(&Position::new("f", 2)));
        assert!(!Position::new("", 1).is_followed_by(&Position::new("f", 2)));
    }
}
