//! The application-facing values: configuration, roles, messages and events.

use bytes::Bytes;

use crate::close::CloseFrame;

/// Which side of the connection this state machine plays (RFC 6455 §5.1 masking).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Receives masked frames, sends unmasked ones.
    Server,
    /// Sends masked frames (needs a mask seed: [`crate::Connection::new_client`]).
    Client,
}

/// Limits and tuning of one connection. A plain struct: build it with
/// `Config { max_message_size: 64 << 20, ..Config::default() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest inbound frame payload; larger frames close with 1009.
    /// Default 1 MiB: a push server mostly sends, and the limit is checked from the
    /// header before anything is buffered.
    pub max_frame_size: usize,
    /// Largest inbound message, after inflation; larger messages close with 1009.
    /// Default 1 MiB (`examples/echo.rs` raises it to 64 MiB for conformance suites).
    pub max_message_size: usize,
    /// Outbound messages of at least this many bytes are compressed when
    /// permessage-deflate was negotiated. Default 256: below that, deflate rarely wins
    /// and costs CPU.
    pub compression_threshold: usize,
    /// zlib level 0..=9 for outbound compression. Default 6 (zlib's default balance).
    pub compression_level: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_size: 1 << 20,
            max_message_size: 1 << 20,
            compression_threshold: 256,
            compression_level: 6,
        }
    }
}

/// A whole WebSocket data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message. The bytes are valid UTF-8: inbound ones are validated, and
    /// [`crate::Connection::send`] refuses invalid ones.
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// A text message from a string (valid UTF-8 by construction).
    pub fn text(s: impl Into<String>) -> Self {
        Self::Text(Bytes::from(s.into()))
    }

    /// A binary message.
    pub fn binary(b: impl Into<Bytes>) -> Self {
        Self::Binary(b.into())
    }

    /// The payload bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &Bytes {
        match self {
            Self::Text(b) | Self::Binary(b) => b,
        }
    }

    /// Whether this is a text message.
    #[must_use]
    pub fn is_text(&self) -> bool {
        matches!(self, Self::Text(_))
    }

    /// The text, if this is a text message (always valid UTF-8 when inbound).
    #[must_use]
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(b) => std::str::from_utf8(b).ok(),
            Self::Binary(_) => None,
        }
    }
}

/// Something the peer did, reported by [`crate::Connection::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete data message.
    Message(Message),
    /// A ping; the pong with the same payload is already queued (RFC 6455 §5.5.2).
    Ping(Bytes),
    /// A pong (solicited or not; nothing else happens, §5.5.3).
    Pong(Bytes),
    /// The peer's close frame. If we had not sent one, the echo is already queued.
    /// Either way the connection is now [`State::Closed`].
    Close(CloseFrame),
}

/// Where the close handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's; inbound data is discarded.
    Closing,
    /// Both close frames were sent (or the connection failed): flush
    /// [`crate::Connection::poll_transmit`] and drop the transport (the server side
    /// closes TCP first, RFC 6455 §7.1.1).
    Closed,
}
