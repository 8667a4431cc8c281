//! Encode once, send to many: the basis of fan-out.
//!
//! A [`PreparedMessage`] holds the complete unmasked server frame as one shared
//! `Bytes`; [`crate::Connection::send_prepared`] queues a reference to it, so N
//! connections cost N reference counts, not N encodings or copies.
//!
//! Compression rule: a compressed frame can only be shared by connections whose
//! compressor starts every message from an empty window, i.e. that negotiated
//! `server_no_context_takeover` (our [`crate::handshake::DeflateConfig`] asks for it by
//! default). For each such window size (9..=15 bits) the compressed variant is
//! computed lazily, once, and shared. Connections with context takeover get the plain
//! frame: RSV1 is per message, so an uncompressed message is always valid.

use std::sync::OnceLock;

use crate::deflate::compress_message;
use crate::frame::{FrameHeader, OpCode};
use crate::message::Message;
use bytes::{Bytes, BytesMut};

/// zlib level of the shared compressed variants: zlib's default balance.
const COMPRESSION_LEVEL: u32 = 6;

/// Which variant of a [`PreparedMessage`] one server connection sends: fixed for the
/// connection's life by its negotiated extension, so it can be computed once and used by
/// code that writes the connection's socket without its [`crate::Connection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameChoice {
    /// Compress messages of at least `.1` bytes with a `.0`-bit empty window; `None`: never.
    compress: Option<(u8, usize)>,
}

impl FrameChoice {
    /// Always the plain frame.
    pub const PLAIN: FrameChoice = FrameChoice { compress: None };

    pub(crate) fn compressed(window_bits: u8, threshold: usize) -> Self {
        FrameChoice {
            compress: Some((window_bits, threshold)),
        }
    }

    /// The frame of `msg` this connection sends.
    #[must_use]
    pub fn frame<'m>(&self, msg: &'m PreparedMessage) -> &'m Bytes {
        match self.compress {
            Some((bits, threshold)) if msg.payload_len() >= threshold => msg.compressed_frame(bits),
            _ => msg.plain_frame(),
        }
    }
}

/// A server data message encoded once, shared by any number of connections
/// (`Send + Sync`; wrap it in an `Arc`).
#[derive(Debug)]
pub struct PreparedMessage {
    message: Message,
    plain: Bytes,
    /// Compressed frames for window bits 9..=15, each computed on first use.
    compressed: [OnceLock<Bytes>; 7],
}

impl PreparedMessage {
    /// Encode the uncompressed frame now. A [`Message::Text`] must hold valid UTF-8
    /// (true of [`Message::text`]); it is not re-checked per connection.
    #[must_use]
    pub fn new(message: Message) -> Self {
        let plain = encode_frame(&message, false, message.as_bytes());
        Self {
            message,
            plain,
            compressed: Default::default(),
        }
    }

    /// The unmasked frame without compression.
    #[must_use]
    pub fn plain_frame(&self) -> &Bytes {
        &self.plain
    }

    /// The frame compressed from an empty `window_bits` window at level 6
    /// (clamped to 9..=15), computed on the first call for that size. Falls back to the
    /// plain frame when compression does not make it smaller.
    pub fn compressed_frame(&self, window_bits: u8) -> &Bytes {
        let bits = window_bits.clamp(9, 15);
        self.compressed[usize::from(bits - 9)].get_or_init(|| {
            let mut out = Vec::new();
            compress_message(bits, COMPRESSION_LEVEL, self.message.as_bytes(), &mut out);
            if out.len() >= self.message.as_bytes().len() {
                self.plain.clone()
            } else {
                encode_frame(&self.message, true, &out)
            }
        })
    }

    /// The message this was prepared from.
    #[must_use]
    pub fn message(&self) -> Message {
        self.message.clone()
    }

    /// The uncompressed payload length.
    #[must_use]
    pub fn payload_len(&self) -> usize {
        self.message.as_bytes().len()
    }
}

fn encode_frame(message: &Message, rsv1: bool, payload: &[u8]) -> Bytes {
    let header = FrameHeader {
        fin: true,
        rsv1,
        rsv2: false,
        rsv3: false,
        opcode: if message.is_text() {
            OpCode::Text
        } else {
            OpCode::Binary
        },
        mask: None,
        payload_len: payload.len() as u64,
    };
    let mut buf = BytesMut::with_capacity(header.encoded_len() + payload.len());
    header.encode(&mut buf);
    buf.extend_from_slice(payload);
    buf.freeze()
}
