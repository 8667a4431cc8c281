//! The Server-Sent Events form of pushes, and the event id that resumes every stream.
//!
//! ```text
//! id: since=lq3x9a.0:41&since=lq3x9a.1:17:news     (this connection's own line, see below)
//! event: news                                       (none for the broadcast stream)
//! data: {"a":1}                                     (one data: line per line of the payload)
//!
//! event: binary:news                                (binary payloads: base64 data)
//! data: AAEC
//!
//! event: gap                                        (messages of a stream were lost)
//! data: {"channel":"news","epoch":"lq3x9a.1","seq":9}
//! ```
//!
//! A push's `event:` and `data:` lines are encoded once and shared by every SSE subscriber;
//! only the `id:` line is each connection's own: it lists the position of every stream the
//! connection joined, in the grammar of the `since=` query parameter. EventSource sends the
//! last one back as `Last-Event-ID` when it reconnects by itself, and that alone resumes
//! every stream exactly (see [`Ids`]). A gap event's data names the stream (`null` for the
//! broadcast stream) and the position after which it continues.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use bytes::{Bytes, BytesMut};
use sse_proto::encode;

use super::payload::Payload;
use super::position::Position;
use super::query::{ClientOptions, QueryError, Since, since_list};

/// The event body of a push on `stream` (`None`: the broadcast stream), without an id.
pub fn event(payload: &Payload, stream: Option<&str>) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.bytes().len() + 32);
    let name = |prefix: &str| stream.map(|c| format!("{prefix}{}", single_line(c)));
    let (name, data) = match payload {
        // A text payload is UTF-8 (checked where it was made).
        Payload::Text(b) => (name(""), String::from_utf8_lossy(b).into_owned()),
        Payload::Binary(b) => (
            Some(name("binary:").unwrap_or_else(|| "binary".to_owned())),
            base64::engine::general_purpose::STANDARD.encode(b),
        ),
    };
    // `single_line` leaves no line break in the name, and there is no id: cannot fail.
    let _ = encode::event(&mut out, name.as_deref(), None, &data);
    out.freeze()
}

/// The gap event: `stream` lost messages and continues after `before`.
pub fn gap(stream: Option<&str>, before: &Position) -> Bytes {
    let data = serde_json::json!({
        "channel": stream,
        "epoch": &*before.epoch,
        "seq": before.seq,
    });
    let mut out = BytesMut::new();
    let _ = encode::event(&mut out, Some("gap"), None, &data.to_string());
    out.freeze()
}

/// Event names are single lines: a channel name with a line break (which a WebSocket client
/// may use) is shown with spaces in its place.
fn single_line(name: &str) -> std::borrow::Cow<'_, str> {
    match name.contains(['\r', '\n']) {
        true => name.replace(['\r', '\n'], " ").into(),
        false => name.into(),
    }
}

/// One SSE connection's position in every stream it joined, rendered as its `id:` line.
/// Locked while a frame is queued, so ids go out in the order the queue holds them.
#[derive(Debug, Default)]
pub struct Ids {
    positions: Mutex<Positions>,
}

/// A stream (`None`: the broadcast stream) and the connection's position in it.
type Entry = (Option<Arc<str>>, Position);

/// The positions, the first stream's inline: most connections join one stream, and a push
/// to each of them then reads no other allocation than this one.
#[derive(Debug, Default)]
struct Positions {
    first: Option<Entry>,
    more: Vec<Entry>,
}

impl Positions {
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }

    fn iter(&self) -> impl Iterator<Item = (Option<&str>, &Position)> {
        self.first
            .iter()
            .chain(&self.more)
            .map(|(s, p)| (s.as_deref(), p))
    }

    fn move_to(&mut self, stream: Option<&str>, pos: &Position) {
        let found = self
            .first
            .iter_mut()
            .chain(&mut self.more)
            .find(|(s, _)| s.as_deref() == stream);
        match found {
            // Within an epoch only the number moves: no reference count touched.
            Some((_, p)) if Arc::ptr_eq(&p.epoch, &pos.epoch) => p.seq = pos.seq,
            Some((_, p)) => *p = pos.clone(),
            None => {
                let entry = (stream.map(Arc::from), pos.clone());
                match self.first {
                    None => self.first = Some(entry),
                    Some(_) => self.more.push(entry),
                }
            }
        }
    }

    fn id_line(&self) -> Bytes {
        Bytes::from(id_text(self.iter()))
    }
}

impl Ids {
    fn lock(&self) -> MutexGuard<'_, Positions> {
        self.positions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves `stream` to `pos` and hands `queue` the `id:` line that results, under the
    /// lock (so concurrent fan-outs of two streams queue their ids in order).
    pub fn advance<T>(
        &self,
        stream: Option<&str>,
        pos: &Position,
        queue: impl FnOnce(Bytes) -> T,
    ) -> T {
        let mut positions = self.lock();
        positions.move_to(stream, pos);
        queue(positions.id_line())
    }

    /// Moves `stream` to `pos` and hands `queue` what to send, under the lock (as
    /// [`Ids::advance`]): `alone` (the event with its id line, shared) when this is the only
    /// stream of the connection, else the connection's own id line and `body`.
    pub fn advance_to<'b, T>(
        &self,
        stream: Option<&str>,
        pos: &Position,
        alone: Option<&'b Bytes>,
        body: &'b Bytes,
        queue: impl FnOnce(Bytes, &'b Bytes) -> T,
    ) -> T {
        let mut positions = self.lock();
        positions.move_to(stream, pos);
        match alone {
            Some(alone) if positions.len() == 1 => queue(Bytes::new(), alone),
            _ => queue(positions.id_line(), body),
        }
    }

    /// Hands `queue` the `id:` line of where the connection is now, under the lock.
    pub fn with_line<T>(&self, queue: impl FnOnce(Bytes) -> T) -> T {
        let positions = self.lock();
        queue(positions.id_line())
    }
}

/// `body` after the `id:` line of a connection whose only stream is `stream`, at `pos`.
pub fn with_own_id(stream: Option<&str>, pos: &Position, body: &Bytes) -> Bytes {
    let id = id_text(std::iter::once((stream, pos)));
    let mut out = BytesMut::with_capacity(id.len() + body.len());
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(body);
    out.freeze()
}

/// `id: ` and the positions in the `since=` grammar, one line.
fn id_text<'a>(positions: impl Iterator<Item = (Option<&'a str>, &'a Position)>) -> String {
    let mut id = String::with_capacity(64);
    id.push_str("id: ");
    since_query(positions, &mut id);
    id.push('\n');
    id
}

/// Appends `since=EPOCH:SEQ[:CHANNEL]` for each stream, joined by `&`: the query
/// grammar, so a client can send it back as it is (SSE ids, long-poll answers).
pub fn since_query<'a>(
    positions: impl Iterator<Item = (Option<&'a str>, &'a Position)>,
    out: &mut String,
) {
    for (i, (stream, pos)) in positions.enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str("since=");
        percent_encode(&pos.epoch, out);
        out.push(':');
        let _ = write!(out, "{}", pos.seq);
        if let Some(channel) = stream {
            out.push(':');
            percent_encode(channel, out);
        }
    }
}

/// `%XX` for every byte outside unreserved ASCII, so the id is one line without NUL and
/// reads back through the query grammar.
fn percent_encode(s: &str, out: &mut String) {
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// The resume points a `Last-Event-ID` names (what [`Ids`] wrote), for the streams in
/// `opts`; they take the place of the query's `since`.
pub fn resume_from(last_event_id: &str, opts: &mut ClientOptions) -> Result<(), QueryError> {
    let channels = &opts.channels;
    opts.since = since_list(last_event_id)?
        .into_iter()
        .filter(|s: &Since| s.stream.as_ref().is_none_or(|c| channels.contains(c)))
        .collect();
    opts.positions = true;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn text(s: &'static str) -> Payload {
        Payload::Text(Bytes::from_static(s.as_bytes()))
    }

    #[test]
    fn events_name_their_channel_and_split_lines() {
        assert_eq!(&event(&text("{\"a\":1}"), None)[..], b"data: {\"a\":1}\n\n");
        assert_eq!(
            &event(&text("a\nb"), Some("news"))[..],
            b"event: news\ndata: a\ndata: b\n\n"
        );
        let bin = Payload::Binary(Bytes::from_static(&[0, 1, 2]));
        assert_eq!(&event(&bin, None)[..], b"event: binary\ndata: AAEC\n\n");
        assert_eq!(
            &event(&bin, Some("n")),
            &b"event: binary:n\ndata: AAEC\n\n"[..]
        );
        assert_eq!(
            &event(&text("x"), Some("a\nevent: b"))[..],
            b"event: a event: b\ndata: x\n\n"
        );
    }

    #[test]
    fn a_gap_event_names_the_stream_and_where_it_continues() {
        let g = gap(Some("news"), &Position::new("e1", 9));
        assert_eq!(
            &g[..],
            b"event: gap\ndata: {\"channel\":\"news\",\"epoch\":\"e1\",\"seq\":9}\n\n"
        );
        assert!(
            gap(None, &Position::new("e", 1)).starts_with(b"event: gap\ndata: {\"channel\":null")
        );
    }

    #[test]
    fn an_id_follows_its_stream_within_an_epoch_and_into_the_next() {
        let ids = Ids::default();
        let first = Position::new("e0", 1);
        let line = |pos: &Position| ids.advance(None, pos, |l| l);
        assert_eq!(&line(&first)[..], b"id: since=e0:1\n");
        let same_epoch = Position {
            epoch: first.epoch.clone(),
            seq: 2,
        };
        assert_eq!(&line(&same_epoch)[..], b"id: since=e0:2\n");
        assert_eq!(&line(&Position::new("e1", 1))[..], b"id: since=e1:1\n");
        let alone = Bytes::from_static(b"shared");
        let body = Bytes::from_static(b"body");
        let sent = ids.advance_to(
            None,
            &Position::new("e1", 2),
            Some(&alone),
            &body,
            |h, b| (h, b.clone()),
        );
        assert_eq!(
            sent,
            (Bytes::new(), alone.clone()),
            "one stream: the shared event"
        );
        let sent = ids.advance_to(
            Some("c"),
            &Position::new("e2", 1),
            Some(&alone),
            &body,
            |h, b| (h, b.clone()),
        );
        assert_eq!(&sent.0[..], b"id: since=e1:2&since=e2:1:c\n");
        assert_eq!(sent.1, body, "two streams: its own id line and the body");
    }

    #[test]
    fn ids_list_every_stream_and_read_back_as_resume_points() {
        let ids = Ids::default();
        ids.advance(None, &Position::new("e0", 4), drop);
        let line = ids.advance(Some("a b:c"), &Position::new("e1", 7), |l| l);
        assert_eq!(&line[..], b"id: since=e0:4&since=e1:7:a%20b%3Ac\n");
        let line = ids.advance(None, &Position::new("e0", 5), |l| l);
        assert_eq!(&line[..], b"id: since=e0:5&since=e1:7:a%20b%3Ac\n");
        let last_event_id = std::str::from_utf8(&line[4..line.len() - 1]).unwrap();
        let mut opts = ClientOptions::parse("channel=a%20b%3Ac").unwrap();
        resume_from(last_event_id, &mut opts).unwrap();
        assert_eq!(
            opts.since,
            [
                Since {
                    stream: None,
                    epoch: "e0".into(),
                    seq: 5
                },
                Since {
                    stream: Some("a b:c".into()),
                    epoch: "e1".into(),
                    seq: 7
                },
            ]
        );
        let mut other = ClientOptions::parse("channel=x").unwrap();
        resume_from(last_event_id, &mut other).unwrap();
        assert_eq!(other.since.len(), 1, "only the streams it joins now");
        assert!(resume_from("since=broken", &mut other).is_err());
    }
}
