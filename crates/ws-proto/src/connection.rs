//! The state machine for one side of one WebSocket connection: the public API and
//! the outbound path. The inbound path (frame decoding, reassembly) is in `recv.rs`.
//!
//! Calling order, per socket read: [`Connection::handle_input`], then drain
//! [`Connection::poll_event`], then [`Connection::poll_transmit`] (a ping's pong or a
//! close echo is queued by `handle_input`). After any `send*`/`ping`/`close`, call
//! [`Connection::poll_transmit`] and write what it gives, in order.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::close::{self, CloseFrame};
use crate::deflate::{DeflateParams, Deflater, Inflater};
use crate::error::{ProtocolError, SendError};
use crate::frame::{FrameHeader, MAX_HEADER_LEN, OpCode, apply_mask};
use crate::message::{Config, Event, Message, Role, State};
use crate::prepared::{FrameChoice, PreparedMessage};
use crate::recv::Receiver;

/// Payloads at least this long are queued as their own `Bytes` (no copy) instead of
/// being copied next to their header, when no masking is needed.
const ZERO_COPY_MIN: usize = 1024;

/// Negotiated permessage-deflate state, mapped to our role.
#[derive(Debug)]
pub(crate) struct DeflateState {
    /// Window bits of our compressor (for choosing a shared prepared variant).
    pub(crate) tx_window_bits: u8,
    /// We reset our compressor after every message.
    pub(crate) tx_no_context_takeover: bool,
    pub(crate) deflater: Deflater,
    pub(crate) inflater: Inflater,
}

/// One side of one WebSocket connection, sans I/O: bytes in through
/// [`handle_input`](Self::handle_input), events out through
/// [`poll_event`](Self::poll_event), bytes to write out through
/// [`poll_transmit`](Self::poll_transmit).
///
/// Idle memory is a few hundred bytes: no buffer is preallocated, a finished message
/// hands its buffer to the application, and the zlib streams exist only after the
/// first compressed message in their direction.
#[derive(Debug)]
pub struct Connection {
    pub(crate) role: Role,
    pub(crate) config: Config,
    pub(crate) state: State,
    pub(crate) rx: Receiver,
    pub(crate) events: VecDeque<Event>,
    pub(crate) deflate: Option<Box<DeflateState>>,
    /// Small frames encoded here, not yet handed out.
    tx_buf: BytesMut,
    /// Frames in order, ready for the socket (tx_buf is flushed in before any push).
    tx_queue: VecDeque<Bytes>,
    /// xorshift64 state for client masking keys (caller-seeded, never zero).
    mask_state: u64,
}

impl Connection {
    /// A connection in `role` with the negotiated permessage-deflate parameters (if any).
    ///
    /// A [`Role::Client`] built here masks with a fixed-seed sequence; clients should
    /// use [`Connection::new_client`] or [`Connection::set_mask_seed`] with a random seed
    /// (RFC 6455 §5.3: masking keys must be unpredictable to intermediaries).
    #[must_use]
    pub fn new(role: Role, config: Config, deflate: Option<DeflateParams>) -> Self {
        let deflate = deflate.map(|p| {
            let (tx_bits, tx_reset, rx_reset) = match role {
                Role::Server => (
                    p.server_max_window_bits,
                    p.server_no_context_takeover,
                    p.client_no_context_takeover,
                ),
                Role::Client => (
                    p.client_max_window_bits,
                    p.client_no_context_takeover,
                    p.server_no_context_takeover,
                ),
            };
            let tx_bits = tx_bits.clamp(8, 15);
            Box::new(DeflateState {
                tx_window_bits: tx_bits,
                tx_no_context_takeover: tx_reset,
                deflater: Deflater::new(tx_bits, tx_reset, config.compression_level),
                inflater: Inflater::new(rx_reset),
            })
        });
        Self {
            role,
            config,
            state: State::Open,
            rx: Receiver::default(),
            events: VecDeque::new(),
            deflate,
            tx_buf: BytesMut::new(),
            tx_queue: VecDeque::new(),
            mask_state: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// A client connection whose masking keys derive from `mask_seed`, which the caller
    /// takes from a real random source. The crate itself reads no RNG.
    #[must_use]
    pub fn new_client(config: Config, deflate: Option<DeflateParams>, mask_seed: u64) -> Self {
        let mut conn = Self::new(Role::Client, config, deflate);
        conn.set_mask_seed(mask_seed);
        conn
    }

    /// Reseed the masking-key generator (xorshift64; a zero seed is replaced).
    pub fn set_mask_seed(&mut self, seed: u64) {
        self.mask_state = if seed == 0 {
            0x2545_F491_4F6C_DD1D
        } else {
            seed
        };
    }

    /// Our role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// The limits in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether permessage-deflate was negotiated.
    #[must_use]
    pub fn is_compressed(&self) -> bool {
        self.deflate.is_some()
    }

    /// Where the close handshake stands.
    #[must_use]
    pub fn state(&self) -> State {
        self.state
    }

    /// Both close frames went out (or the connection failed): drop the transport once
    /// [`poll_transmit`](Self::poll_transmit) is flushed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Feed bytes read from the transport, in any chunking. Complete messages, pings,
    /// pongs and the peer's close become events; pongs and close echoes are queued for
    /// transmission. Input after [`State::Closed`] is ignored.
    ///
    /// On a protocol violation this queues our close frame with the matching code
    /// (1002/1007/1009), moves to [`State::Closed`] and returns the error.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        if self.state == State::Closed {
            return Ok(());
        }
        match self.receive(bytes) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.fail(e.close_code());
                Err(e)
            }
        }
    }

    /// The next thing the peer did, in order.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Queue a data message as one frame, compressed when negotiated and at least
    /// [`Config::compression_threshold`] bytes. Large server payloads are queued
    /// without copying.
    pub fn send(&mut self, msg: Message) -> Result<(), SendError> {
        self.ensure_open()?;
        let (opcode, payload) = match msg {
            Message::Text(b) => {
                if simdutf8::basic::from_utf8(&b).is_err() {
                    return Err(SendError::InvalidUtf8);
                }
                (OpCode::Text, b)
            }
            Message::Binary(b) => (OpCode::Binary, b),
        };
        if let Some(deflate) = self.deflate.as_mut() {
            if deflate.deflater.is_usable() && payload.len() >= self.config.compression_threshold {
                let mut out = Vec::new();
                deflate.deflater.compress(&payload, &mut out);
                self.queue_frame(opcode, true, Bytes::from(out));
                return Ok(());
            }
        }
        self.queue_frame(opcode, false, payload);
        Ok(())
    }

    /// Queue a prepared message. A server queues the shared frame itself (a reference
    /// count, no copy): the compressed variant when our compressor resets per message
    /// and the payload reaches the compression threshold, the plain frame otherwise
    /// (valid on every connection, compressed or not: RSV1 is per message). A client
    /// must mask, so it re-encodes.
    pub fn send_prepared(&mut self, msg: &PreparedMessage) -> Result<(), SendError> {
        self.ensure_open()?;
        if self.role == Role::Client {
            return self.send(msg.message());
        }
        let frame = self.frame_choice().frame(msg).clone();
        self.push_shared(frame);
        Ok(())
    }

    /// Which variant of a [`PreparedMessage`] this connection sends: compressed only when
    /// our compressor starts every message from an empty window (the shared variants do).
    #[must_use]
    pub fn frame_choice(&self) -> FrameChoice {
        match self.deflate.as_deref() {
            Some(d)
                if self.role == Role::Server
                    && d.tx_no_context_takeover
                    && d.deflater.is_usable() =>
            {
                FrameChoice::compressed(d.tx_window_bits, self.config.compression_threshold)
            }
            _ => FrameChoice::PLAIN,
        }
    }

    /// Queue a ping (payload at most 125 bytes).
    pub fn ping(&mut self, payload: Bytes) -> Result<(), SendError> {
        self.ensure_open()?;
        if payload.len() > 125 {
            return Err(SendError::ControlTooLong);
        }
        self.queue_frame(OpCode::Ping, false, payload);
        Ok(())
    }

    /// Start the close handshake: queue a close frame and move to [`State::Closing`].
    /// `code` must be valid on the wire (1000–1003, 1007–1014, 3000–4999) and the
    /// reason at most 123 bytes.
    pub fn close(&mut self, code: u16, reason: &str) -> Result<(), SendError> {
        self.ensure_open()?;
        if !close::is_valid_wire_code(code) {
            return Err(SendError::InvalidCloseCode(code));
        }
        if reason.len() > 123 {
            return Err(SendError::ControlTooLong);
        }
        self.queue_close(code, reason);
        self.state = State::Closing;
        Ok(())
    }

    /// Move every encoded outbound chunk, in order, into `out`. Prepared frames and
    /// large payloads are the shared `Bytes` themselves; small frames share one buffer.
    pub fn poll_transmit(&mut self, out: &mut VecDeque<Bytes>) {
        self.flush_tx_buf();
        out.extend(self.tx_queue.drain(..));
    }

    /// Whether [`poll_transmit`](Self::poll_transmit) has anything to hand out.
    #[must_use]
    pub fn has_transmit(&self) -> bool {
        !self.tx_buf.is_empty() || !self.tx_queue.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn tx_buf_capacity(&self) -> usize {
        self.tx_buf.capacity()
    }

    fn ensure_open(&self) -> Result<(), SendError> {
        match self.state {
            State::Open => Ok(()),
            State::Closing | State::Closed => Err(SendError::Closed),
        }
    }

    /// Fail the connection (RFC 6455 §7.1.7): send our close if we have not, and stop.
    fn fail(&mut self, code: u16) {
        if self.state == State::Open {
            self.queue_close(code, "");
        }
        self.state = State::Closed;
        self.rx = Receiver::default();
    }

    /// Queue a close frame; 1005 ("no status") becomes an empty payload (§7.4.1).
    pub(crate) fn queue_close(&mut self, code: u16, reason: &str) {
        let mut payload = BytesMut::new();
        if code != close::NO_STATUS {
            payload.extend_from_slice(&code.to_be_bytes());
            payload.extend_from_slice(reason.as_bytes());
        }
        self.queue_frame(OpCode::Close, false, payload.freeze());
    }

    /// The peer's close arrived: echo it if we had not closed, then we are done.
    pub(crate) fn handle_peer_close(&mut self, frame: CloseFrame) {
        if self.state == State::Open {
            // §5.5.1: "the endpoint MUST send a Close frame in response ... typically
            // echoing the status code it received."
            self.queue_close(frame.code, "");
        }
        self.state = State::Closed;
        self.events.push_back(Event::Close(frame));
    }

    /// Encode one final frame (masked in the client role) and queue it.
    pub(crate) fn queue_frame(&mut self, opcode: OpCode, rsv1: bool, payload: Bytes) {
        let mask = match self.role {
            Role::Client => Some(self.next_mask()),
            Role::Server => None,
        };
        let header = FrameHeader {
            fin: true,
            rsv1,
            rsv2: false,
            rsv3: false,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let head_len = header.encode_to_array(&mut head);
        if mask.is_none() && payload.len() >= ZERO_COPY_MIN {
            self.tx_buf.extend_from_slice(&head[..head_len]);
            self.push_shared(payload);
            return;
        }
        self.tx_buf.reserve(head_len + payload.len());
        self.tx_buf.extend_from_slice(&head[..head_len]);
        let start = self.tx_buf.len();
        self.tx_buf.extend_from_slice(&payload);
        if let Some(key) = mask {
            apply_mask(&mut self.tx_buf[start..], key, 0);
        }
    }

    fn push_shared(&mut self, bytes: Bytes) {
        self.flush_tx_buf();
        self.tx_queue.push_back(bytes);
    }

    fn flush_tx_buf(&mut self) {
        if !self.tx_buf.is_empty() {
            // Taking the buffer (not splitting it) leaves no spare capacity behind on an
            // idle connection.
            let chunk = std::mem::take(&mut self.tx_buf).freeze();
            self.tx_queue.push_back(chunk);
        }
    }

    /// xorshift64: cheap, and seeded by the caller from a real random source.
    fn next_mask(&mut self) -> [u8; 4] {
        let mut x = self.mask_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.mask_state = x;
        let [a, b, c, d, ..] = x.to_le_bytes();
        [a, b, c, d]
    }
}
