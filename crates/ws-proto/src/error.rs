//! Typed errors of the protocol core: one enum per layer.

use thiserror::Error;

use crate::close;

/// A violation of RFC 6455 / RFC 7692 by the peer, or a local limit it exceeded.
///
/// Returned by [`crate::Connection::handle_input`]. The connection has already
/// queued the matching close frame (see [`ProtocolError::close_code`]) and moved
/// to [`crate::State::Closed`]: flush [`crate::Connection::poll_transmit`], then drop the transport.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// RSV bits set without a negotiated extension that defines them (RFC 6455 §5.2).
    #[error("reserved bits set without a negotiated extension")]
    ReservedBits,
    /// An opcode RFC 6455 reserves for future use (§5.2).
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// A control frame with FIN clear (§5.5: control frames MUST NOT be fragmented).
    #[error("fragmented control frame")]
    FragmentedControl,
    /// A control frame with a payload longer than 125 bytes (§5.5).
    #[error("control frame payload longer than 125 bytes")]
    ControlTooLong,
    /// A continuation frame with no message in progress (§5.4).
    #[error("continuation frame without a message in progress")]
    UnexpectedContinuation,
    /// A new text/binary frame while a fragmented message is in progress (§5.4).
    #[error("new data frame inside a fragmented message")]
    ExpectedContinuation,
    /// A client frame that is not masked (§5.1: the server MUST close).
    #[error("client frame not masked")]
    MaskRequired,
    /// A server frame that is masked (§5.1: the client MUST close).
    #[error("server frame masked")]
    UnexpectedMask,
    /// A 64-bit payload length with the most significant bit set (§5.2).
    #[error("payload length with the most significant bit set")]
    InvalidLength,
    /// A close frame with a one-byte payload (§5.5.1: a code is two bytes).
    #[error("close frame payload of one byte")]
    CloseTooShort,
    /// A close code that must not appear on the wire (§7.4).
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A text message, or a close reason, that is not valid UTF-8 (§8.1).
    #[error("invalid UTF-8 in a text message or close reason")]
    InvalidUtf8,
    /// A frame whose payload exceeds [`crate::Config::max_frame_size`].
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// Declared payload length.
        len: u64,
        /// Configured limit.
        max: usize,
    },
    /// A message (after inflation) exceeding [`crate::Config::max_message_size`].
    #[error("message exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// Configured limit.
        max: usize,
    },
    /// The compressed payload could not be inflated (RFC 7692 §8: fail the connection).
    #[error("invalid compressed payload")]
    Inflate,
}

impl ProtocolError {
    /// The close code this violation maps to (1002, 1007 or 1009).
    #[must_use]
    pub fn close_code(&self) -> u16 {
        match self {
            Self::InvalidUtf8 | Self::Inflate => close::INVALID_PAYLOAD,
            Self::FrameTooLarge { .. } | Self::MessageTooLarge { .. } => close::TOO_BIG,
            _ => close::PROTOCOL_ERROR,
        }
    }
}

/// Why a local `send`/`ping`/`close` call was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendError {
    /// We already sent a close frame (or the connection failed): nothing more may be sent.
    #[error("connection is closing or closed")]
    Closed,
    /// Ping payload or close reason too long for a control frame (125 bytes, §5.5).
    #[error("control frame payload longer than 125 bytes")]
    ControlTooLong,
    /// A close code that may not be sent (§7.4: 1004, 1005, 1006, 1015, < 1000, ...).
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// A [`crate::Message::Text`] whose bytes are not UTF-8.
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
}

/// Why an opening handshake was refused or could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// Malformed HTTP (httparse's reason).
    #[error("malformed HTTP: {0}")]
    Http(&'static str),
    /// The request head is larger than the parser accepts (header count or bytes).
    #[error("request or response head too large")]
    TooLarge,
    /// Method other than GET (RFC 6455 §4.2.1 item 1).
    #[error("method must be GET")]
    Method,
    /// HTTP version below 1.1 (§4.2.1 item 1).
    #[error("HTTP/1.1 or later required")]
    HttpVersion,
    /// No `Host` header (§4.2.1 item 2; HTTP/1.1 requires it too).
    #[error("missing Host")]
    Host,
    /// `Upgrade` header missing or without the `websocket` token (§4.2.1 item 3).
    #[error("missing Upgrade: websocket")]
    Upgrade,
    /// `Connection` header missing or without the `upgrade` token (§4.2.1 item 4).
    #[error("missing Connection: upgrade")]
    Connection,
    /// `Sec-WebSocket-Key` missing, repeated or not base64 of 16 bytes (§4.2.1 item 5).
    #[error("missing or invalid Sec-WebSocket-Key")]
    Key,
    /// `Sec-WebSocket-Version` missing or not 13 (§4.2.1 item 6): answer 426.
    #[error("unsupported Sec-WebSocket-Version")]
    Version,
    /// Client side: the status was not 101.
    #[error("server answered status {0}")]
    Status(u16),
    /// Client side: `Sec-WebSocket-Accept` missing or wrong (§4.1).
    #[error("missing or wrong Sec-WebSocket-Accept")]
    Accept,
    /// Client side: an extension we did not offer, or invalid parameters (§4.1, RFC 7692 §5).
    #[error("unexpected or invalid Sec-WebSocket-Extensions")]
    Extension,
}

impl HandshakeError {
    /// The HTTP status a server answers this error with (400, 426, 431).
    #[must_use]
    pub fn status_code(&self) -> u16 {
        match self {
            Self::Version => 426,
            Self::TooLarge => 431,
            _ => 400,
        }
    }

    /// A complete HTTP/1.1 error response for servers that write the socket themselves.
    /// The 426 carries `Sec-WebSocket-Version: 13` (RFC 6455 §4.4).
    #[must_use]
    pub fn http_response(&self) -> Vec<u8> {
        let status = self.status_code();
        let reason = match status {
            426 => "Upgrade Required",
            431 => "Request Header Fields Too Large",
            _ => "Bad Request",
        };
        let version = if status == 426 {
            "Sec-WebSocket-Version: 13\r\n"
        } else {
            ""
        };
        let body = self.to_string();
        format!(
            "HTTP/1.1 {status} {reason}\r\n{version}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}
