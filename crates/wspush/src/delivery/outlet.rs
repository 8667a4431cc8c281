//! Outlets: the subscribers of the delivery core, and the wire formats they read.
//!
//! An outlet is a connection's bounded outbound queue (bytes, with the named overflow
//! policy of `ws_server`) seen through one wire format. The fan-out encodes a push once
//! per format that has a recipient ([`Encoded`]), lazily, and queues the same shared
//! bytes to every outlet of that format; a new format is a new [`Format`] variant and its
//! arm in [`Format::encode`], never a change to the fan-out loop.

use std::sync::Arc;

use ws_proto::PreparedMessage;
use ws_server::Connection;

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
}

/// How many formats there are (the size of per-format tables).
pub const FORMATS: usize = 2;

impl Format {
    /// Every format, in table order.
    pub const ALL: [Format; FORMATS] = [Format::Raw, Format::Positioned];

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
        }
    }

    /// Whether subscribers of this format see positions, so can resume and get gap
    /// notices.
    pub fn positioned(self) -> bool {
        match self {
            Format::Raw => false,
            Format::Positioned => true,
        }
    }

    /// `payload` of `stream` (`None`: the broadcast stream) at `pos` (`None`: a push to
    /// one connection or user, which has no position) in this format.
    pub fn encode(
        self,
        payload: &Payload,
        stream: Option<&str>,
        pos: Option<&Position>,
    ) -> Arc<PreparedMessage> {
        match self {
            Format::Raw => prepare(payload.clone()),
            Format::Positioned => prepare(envelope(payload, stream, pos)),
        }
    }

    /// The notice that `stream` continues after `before` with messages missed in
    /// between; `None` for a format without positions.
    pub fn gap_notice(
        self,
        stream: Option<&str>,
        before: &Position,
    ) -> Option<Arc<PreparedMessage>> {
        self.positioned()
            .then(|| prepare(gap_notice(stream, before)))
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
}

/// One push's frames, encoded on first use per format and shared from then on.
pub struct Encoded<'a> {
    payload: &'a Payload,
    stream: Option<&'a str>,
    pos: Option<&'a Position>,
    frames: [Option<Arc<PreparedMessage>>; FORMATS],
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
    pub fn frame(&mut self, format: Format) -> &Arc<PreparedMessage> {
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
        let a = Arc::clone(enc.frame(Format::Raw));
        let b = Arc::clone(enc.frame(Format::Raw));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(enc.encodes(), 1);
        let p = Arc::clone(enc.frame(Format::Positioned));
        enc.frame(Format::Positioned);
        assert_eq!(enc.encodes(), 2);
        assert_eq!(&a.plain_frame()[2..], b"hi");
        assert!(p.plain_frame().ends_with(b"\nhi"));
        assert!(Format::Raw.gap_notice(None, &pos).is_none());
        assert!(Format::Positioned.gap_notice(None, &pos).is_some());
    }
}
