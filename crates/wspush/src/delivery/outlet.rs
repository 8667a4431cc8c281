//! Outlets: the subscribers of the delivery core, and the wire formats they read.
//!
//! An outlet is a connection's bounded outbound queue (bytes, with the named overflow
//! policy of `ws_server`) seen through one wire format. The fan-out encodes a push once
//! per format that has a recipient ([`Encoded`]), lazily, and queues the same shared
//! bytes to every outlet of that format; a new format is a new [`Format`] variant and its
//! arm in [`Format::encode`], never a change to the fan-out loop.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Notify;
use ws_proto::PreparedMessage;
use ws_server::{Connection, FanOut, SendError};

use super::event_stream::{self, Ids};
use super::payload::Payload;
use super::position::{Position, envelope, gap_notice};

/// How a subscriber reads pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// The pushed data as it came, one WebSocket message per push: what a plain
    /// `new WebSocket(url)` gets (the seed's wire format).
    Raw,
    /// The data behind a JSON header line naming its stream and position (a browser
    /// that asked for `positions` or resumes with `since`): it can resume and sees gaps.
    Positioned,
    /// Server-Sent Events: one event per push, the connection's positions in its `id:`
    /// line (see [`event_stream`]).
    Sse,
    /// No bytes: a long poll waiting for its streams to move is woken, and answers from
    /// history (see `crate::poll`).
    Wake,
}

/// How many formats there are (the size of per-format tables).
pub const FORMATS: usize = 4;

/// A push in one format, shared by every outlet of that format.
#[derive(Debug, Clone)]
pub enum Frame {
    /// A WebSocket message, framed once.
    Ws(Arc<PreparedMessage>),
    /// An event stream's event lines (each connection adds its own `id:` line).
    Sse(SseEvent),
    /// A wake-up, no bytes.
    Wake,
}

/// One push's event for every SSE connection.
#[derive(Debug, Clone)]
pub struct SseEvent {
    /// The `event:` and `data:` lines; a connection puts its own `id:` line first.
    pub body: Bytes,
    /// The whole event for a connection whose only stream is this push's: its `id:` line
    /// is the same for all of them, so it is made once (no line per connection).
    pub alone: Option<Bytes>,
}

impl Frame {
    /// Bytes it takes in a queue (and on the wire, uncompressed).
    pub fn len(&self) -> usize {
        match self {
            Frame::Ws(p) => p.plain_frame().len(),
            Frame::Sse(e) => e.body.len(),
            Frame::Wake => 0,
        }
    }

    /// Whether it is empty (never, for a frame of a push).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Format {
    /// Every format, in table order.
    pub const ALL: [Format; FORMATS] = [Format::Raw, Format::Positioned, Format::Sse, Format::Wake];

    /// The format of a subscriber that did (not) ask for positions.
    pub fn for_positions(positions: bool) -> Format {
        if positions {
            Format::Positioned
        } else {
            Format::Raw
        }
    }

    /// This format's slot in per-format tables.
    pub fn index(self) -> usize {
        match self {
            Format::Raw => 0,
            Format::Positioned => 1,
            Format::Sse => 2,
            Format::Wake => 3,
        }
    }

    /// Whether subscribers of this format see positions, so can resume and get gap
    /// notices.
    pub fn positioned(self) -> bool {
        match self {
            Format::Raw | Format::Wake => false,
            Format::Positioned | Format::Sse => true,
        }
    }

    /// `payload` of `stream` (`None`: the broadcast stream) at `pos` (`None`: a push to
    /// one connection or user, which has no position) in this format.
    pub fn encode(self, payload: &Payload, stream: Option<&str>, pos: Option<&Position>) -> Frame {
        match self {
            Format::Raw => Frame::Ws(prepare(payload.clone())),
            Format::Positioned => Frame::Ws(prepare(envelope(payload, stream, pos))),
            Format::Sse => {
                let body = event_stream::event(payload, stream);
                let alone = pos.map(|pos| event_stream::with_own_id(stream, pos, &body));
                Frame::Sse(SseEvent { body, alone })
            }
            Format::Wake => Frame::Wake,
        }
    }

    /// The notice that `stream` continues after `before` with messages missed in
    /// between; `None` for a format without positions.
    pub fn gap_notice(self, stream: Option<&str>, before: &Position) -> Option<Frame> {
        match self {
            Format::Raw | Format::Wake => None,
            Format::Positioned => Some(Frame::Ws(prepare(gap_notice(stream, before)))),
            Format::Sse => Some(Frame::Sse(SseEvent {
                body: event_stream::gap(stream, before),
                alone: None,
            })),
        }
    }
}

/// Frames a payload once, to be shared by every recipient.
fn prepare(payload: Payload) -> Arc<PreparedMessage> {
    Arc::new(PreparedMessage::new(payload.into_message()))
}

/// One subscriber: its connection id, its queue and its format.
#[derive(Clone)]
pub struct Outlet {
    /// The connection id (with its node, see [`super::conn_id`]).
    pub id: u64,
    /// The connection whose bounded queue takes the frames.
    pub conn: Connection,
    /// The wire format it reads.
    pub format: Format,
    /// [`Format::Sse`]: where the connection is in each of its streams.
    pub ids: Option<Arc<Ids>>,
    /// [`Format::Wake`]: what a push wakes.
    pub wake: Option<Arc<Notify>>,
}

/// Where a frame sits: its stream (`None`: the broadcast stream) and position there.
pub type At<'a> = Option<(Option<&'a str>, &'a Position)>;

impl Outlet {
    /// Queues `frame` through `out` (which writes idle WebSockets when it ends); `at`
    /// moves an SSE connection's id. Inlined into the fan-out's loop: it runs once per
    /// delivery.
    #[inline]
    pub fn queue(&self, frame: &Frame, at: At<'_>, out: &mut FanOut<'_>) -> Result<(), SendError> {
        match frame {
            Frame::Ws(p) => out.send(&self.conn, p),
            Frame::Sse(event) => self.queue_event(event, at, Some(out)),
            Frame::Wake => self.wake(),
        }
    }

    /// Queues `frames` (of pushes in order, `at[i]` moving an SSE connection's id for
    /// `frames[i]`) through `out`, reporting each outcome with its index to `sent`. The
    /// WebSocket frames of one push after another go in under one lock of the queue.
    pub fn queue_all(
        &self,
        frames: &[Frame],
        at: &[At<'_>],
        out: &mut FanOut<'_>,
        mut sent: impl FnMut(usize, Result<(), SendError>),
    ) {
        // A WebSocket format's frames are all `Frame::Ws` (see `Format::encode`).
        if matches!(self.format, Format::Raw | Format::Positioned) {
            let msgs = frames.iter().filter_map(|f| match f {
                Frame::Ws(p) => Some(p),
                Frame::Sse(_) | Frame::Wake => None,
            });
            let mut i = 0;
            out.send_all(&self.conn, msgs, |result| {
                sent(i, result);
                i += 1;
            });
            return;
        }
        for (i, frame) in frames.iter().enumerate() {
            let at = at.get(i).copied().flatten();
            sent(i, self.queue(frame, at, out));
        }
    }

    /// Queues `frame` as part of a backlog the subscriber asked for (a replay), beyond
    /// its queue's limit (see `Connection::send_backlog`).
    pub fn queue_backlog(&self, frame: &Frame, at: At<'_>) -> Result<(), SendError> {
        match frame {
            Frame::Ws(p) => self.conn.send_backlog(p),
            Frame::Sse(event) => self.queue_event(event, at, None),
            Frame::Wake => self.wake(),
        }
    }

    fn wake(&self) -> Result<(), SendError> {
        if let Some(wake) = &self.wake {
            wake.notify_one();
        }
        Ok(())
    }

    /// Queues an event: live through `out` (which may write the socket directly), or
    /// without it as part of a backlog.
    fn queue_event(
        &self,
        event: &SseEvent,
        at: At<'_>,
        out: Option<&mut FanOut<'_>>,
    ) -> Result<(), SendError> {
        let send = |head: Bytes, body: &Bytes| match out {
            Some(out) => out.send_chunk(&self.conn, head, body),
            None => self.conn.send_chunk(head, body, true),
        };
        match (&self.ids, at) {
            (Some(ids), Some((stream, pos))) => {
                ids.advance_to(stream, pos, event.alone.as_ref(), &event.body, send)
            }
            _ => send(Bytes::new(), &event.body),
        }
    }
}

/// One push's frames, encoded on first use per format and shared from then on.
pub struct Encoded<'a> {
    payload: &'a Payload,
    stream: Option<&'a str>,
    pos: Option<&'a Position>,
    frames: [Option<Frame>; FORMATS],
    encodes: u64,
}

impl<'a> Encoded<'a> {
    /// Nothing encoded yet.
    pub fn new(payload: &'a Payload, stream: Option<&'a str>, pos: Option<&'a Position>) -> Self {
        Encoded {
            payload,
            stream,
            pos,
            frames: Default::default(),
            encodes: 0,
        }
    }

    /// The frame of `format`, encoded now if this is its first use.
    pub fn frame(&mut self, format: Format) -> &Frame {
        let (payload, stream, pos) = (self.payload, self.stream, self.pos);
        let slot = &mut self.frames[format.index()];
        if slot.is_none() {
            self.encodes += 1;
        }
        slot.get_or_insert_with(|| format.encode(payload, stream, pos))
    }

    /// How many formats were encoded (at most one encode per format per push).
    pub fn encodes(&self) -> u64 {
        self.encodes
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn formats_index_their_tables() {
        for (i, f) in Format::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
        }
        assert_eq!(Format::for_positions(true), Format::Positioned);
        assert_eq!(Format::for_positions(false), Format::Raw);
    }

    #[test]
    fn each_format_is_encoded_once_and_shared() {
        let payload = Payload::Text(Bytes::from_static(b"hi"));
        let pos = Position::new("e", 3);
        let mut enc = Encoded::new(&payload, Some("news"), Some(&pos));
        let ws = |f: &Frame| match f {
            Frame::Ws(p) => Arc::clone(p),
            Frame::Sse(_) | Frame::Wake => panic!("a WebSocket format"),
        };
        let a = ws(enc.frame(Format::Raw));
        let b = ws(enc.frame(Format::Raw));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(enc.encodes(), 1);
        let p = ws(enc.frame(Format::Positioned));
        enc.frame(Format::Positioned);
        assert_eq!(enc.encodes(), 2);
        assert_eq!(&a.plain_frame()[2..], b"hi");
        assert!(p.plain_frame().ends_with(b"\nhi"));
        let Frame::Sse(event) = enc.frame(Format::Sse).clone() else {
            panic!("an SSE frame");
        };
        assert_eq!(&event.body[..], b"event: news\ndata: hi\n\n");
        assert_eq!(
            event.alone.as_deref(),
            Some(&b"id: since=e:3:news\nevent: news\ndata: hi\n\n"[..])
        );
        assert_eq!(enc.encodes(), 3);
        assert!(Format::Raw.gap_notice(None, &pos).is_none());
        assert!(Format::Positioned.gap_notice(None, &pos).is_some());
    }
}
