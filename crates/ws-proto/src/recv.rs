//! The inbound path: frame headers split anywhere, payload unmasked while copied
//! (the one copy), fragments reassembled, text validated as it arrives, compressed
//! messages inflated as they arrive.

use bytes::Bytes;

use crate::close::CloseFrame;
use crate::connection::Connection;
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, MAX_HEADER_LEN, OpCode, apply_mask};
use crate::message::{Event, Message, Role, State};
use crate::utf8::Utf8Validator;

/// Stack scratch for unmasking compressed input before inflating it.
const SCRATCH: usize = 4096;

/// Decoder state between calls to `handle_input`.
#[derive(Debug)]
pub(crate) struct Receiver {
    /// A header split across reads.
    partial_header: [u8; MAX_HEADER_LEN],
    partial_len: u8,
    /// The frame whose payload is arriving.
    frame: Option<FrameInProgress>,
    /// The data message being assembled (possibly across fragments).
    message: Option<MessageInProgress>,
    /// The control frame payload being assembled (≤ 125 bytes, inline).
    control: [u8; 125],
    control_len: u8,
}

impl Default for Receiver {
    fn default() -> Self {
        Self {
            partial_header: [0; MAX_HEADER_LEN],
            partial_len: 0,
            frame: None,
            message: None,
            control: [0; 125],
            control_len: 0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct FrameInProgress {
    header: FrameHeader,
    remaining: u64,
    offset: usize,
    /// Payload to skip (data after we sent close).
    discard: bool,
}

#[derive(Debug)]
struct MessageInProgress {
    text: bool,
    compressed: bool,
    buf: Vec<u8>,
    utf8: Utf8Validator,
}

impl Connection {
    /// Process input until it is used up or the connection closes.
    pub(crate) fn receive(&mut self, mut input: &[u8]) -> Result<(), ProtocolError> {
        while !input.is_empty() && self.state != State::Closed {
            match self.rx.frame {
                None => {
                    let used = self.receive_header(input)?;
                    input = &input[used..];
                }
                Some(frame) => {
                    let n = usize::try_from(frame.remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    self.receive_payload(&input[..n])?;
                    input = &input[n..];
                    self.finish_frame_if_done()?;
                }
            }
        }
        Ok(())
    }

    /// Parse a header from a stashed partial header plus `input`; returns bytes used.
    fn receive_header(&mut self, input: &[u8]) -> Result<usize, ProtocolError> {
        let have = usize::from(self.rx.partial_len);
        let parsed = if have == 0 {
            FrameHeader::parse(input)?
        } else {
            let take = input.len().min(MAX_HEADER_LEN - have);
            let mut joined = self.rx.partial_header;
            joined[have..have + take].copy_from_slice(&input[..take]);
            FrameHeader::parse(&joined[..have + take])?.map(|(h, len)| (h, len - have))
        };
        let Some((header, used)) = parsed else {
            // Incomplete: a header is at most 14 bytes, so this fits.
            let take = input.len().min(MAX_HEADER_LEN - have);
            self.rx.partial_header[have..have + take].copy_from_slice(&input[..take]);
            self.rx.partial_len = (have + take) as u8;
            return Ok(take);
        };
        self.rx.partial_len = 0;
        self.start_frame(header)?;
        self.finish_frame_if_done()?;
        Ok(used)
    }

    /// Apply every rule the header alone decides, and prepare for the payload.
    fn start_frame(&mut self, h: FrameHeader) -> Result<(), ProtocolError> {
        // §5.2: RSV bits MUST be 0 unless an extension defines them; permessage-deflate
        // defines RSV1 on the first frame of a data message only (RFC 7692 §6).
        let rsv1_ok = self.deflate.is_some() && matches!(h.opcode, OpCode::Text | OpCode::Binary);
        if h.rsv2 || h.rsv3 || (h.rsv1 && !rsv1_ok) {
            return Err(ProtocolError::ReservedBits);
        }
        // §5.1: a server MUST close on an unmasked frame, a client on a masked one.
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::MaskRequired),
            (Role::Client, true) => return Err(ProtocolError::UnexpectedMask),
            _ => {}
        }
        let max_frame = self.config.max_frame_size;
        if h.payload_len > max_frame as u64 {
            return Err(ProtocolError::FrameTooLarge {
                len: h.payload_len,
                max: max_frame,
            });
        }
        let len = h.payload_len as usize;
        let mut discard = false;
        match h.opcode {
            OpCode::Close | OpCode::Ping | OpCode::Pong => self.rx.control_len = 0,
            // §1.4: after sending close, an endpoint discards further data.
            _ if self.state == State::Closing => discard = true,
            OpCode::Continuation => {
                let Some(msg) = self.rx.message.as_mut() else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                if !msg.compressed {
                    check_size(msg.buf.len() + len, self.config.max_message_size)?;
                    msg.buf.reserve(len);
                }
            }
            OpCode::Text | OpCode::Binary => {
                if self.rx.message.is_some() {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                let buf = if h.rsv1 {
                    Vec::new()
                } else {
                    check_size(len, self.config.max_message_size)?;
                    Vec::with_capacity(len)
                };
                self.rx.message = Some(MessageInProgress {
                    text: h.opcode == OpCode::Text,
                    compressed: h.rsv1,
                    buf,
                    utf8: Utf8Validator::new(),
                });
            }
        }
        self.rx.frame = Some(FrameInProgress {
            header: h,
            remaining: h.payload_len,
            offset: 0,
            discard,
        });
        Ok(())
    }

    /// Take in a piece of the current frame's payload (never past the frame's end).
    fn receive_payload(&mut self, chunk: &[u8]) -> Result<(), ProtocolError> {
        let Some(frame) = self.rx.frame.as_mut() else {
            return Ok(());
        };
        let key = frame.header.mask;
        let offset = frame.offset;
        frame.offset += chunk.len();
        frame.remaining -= chunk.len() as u64;
        if frame.discard {
            return Ok(());
        }
        if frame.header.opcode.is_control() {
            let start = usize::from(self.rx.control_len);
            let dst = &mut self.rx.control[start..start + chunk.len()];
            dst.copy_from_slice(chunk);
            if let Some(key) = key {
                apply_mask(dst, key, offset);
            }
            self.rx.control_len += chunk.len() as u8;
            return Ok(());
        }
        let Some(msg) = self.rx.message.as_mut() else {
            return Ok(());
        };
        if !msg.compressed {
            let start = msg.buf.len();
            msg.buf.extend_from_slice(chunk);
            let fresh = &mut msg.buf[start..];
            if let Some(key) = key {
                apply_mask(fresh, key, offset);
            }
            if msg.text {
                msg.utf8
                    .feed(fresh)
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            return Ok(());
        }
        let Some(deflate) = self.deflate.as_mut() else {
            return Err(ProtocolError::ReservedBits);
        };
        let max = self.config.max_message_size;
        let mut scratch = [0u8; SCRATCH];
        for (i, piece) in chunk.chunks(SCRATCH).enumerate() {
            let tmp = &mut scratch[..piece.len()];
            tmp.copy_from_slice(piece);
            if let Some(key) = key {
                apply_mask(tmp, key, offset + i * SCRATCH);
            }
            let start = msg.buf.len();
            deflate.inflater.inflate(tmp, &mut msg.buf, max)?;
            if msg.text {
                msg.utf8
                    .feed(&msg.buf[start..])
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
            }
        }
        Ok(())
    }

    fn finish_frame_if_done(&mut self) -> Result<(), ProtocolError> {
        match self.rx.frame {
            Some(frame) if frame.remaining == 0 => {
                self.rx.frame = None;
                if !frame.discard {
                    self.finish_frame(frame.header)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn finish_frame(&mut self, h: FrameHeader) -> Result<(), ProtocolError> {
        let control = &self.rx.control[..usize::from(self.rx.control_len)];
        match h.opcode {
            OpCode::Close => {
                let frame = CloseFrame::parse(control)?;
                self.handle_peer_close(frame);
            }
            OpCode::Ping => {
                let payload = Bytes::copy_from_slice(control);
                // §5.5.2: answer with a pong carrying the same payload, unless we
                // already sent close (nothing may follow it).
                if self.state == State::Open {
                    self.queue_frame(OpCode::Pong, false, payload.clone());
                }
                self.events.push_back(Event::Ping(payload));
            }
            OpCode::Pong => {
                let payload = Bytes::copy_from_slice(control);
                self.events.push_back(Event::Pong(payload));
            }
            OpCode::Text | OpCode::Binary | OpCode::Continuation if h.fin => {
                self.finish_message()?;
            }
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {}
        }
        Ok(())
    }

    fn finish_message(&mut self) -> Result<(), ProtocolError> {
        let Some(mut msg) = self.rx.message.take() else {
            return Ok(());
        };
        if msg.compressed {
            if let Some(deflate) = self.deflate.as_mut() {
                let start = msg.buf.len();
                deflate
                    .inflater
                    .finish(&mut msg.buf, self.config.max_message_size)?;
                if msg.text {
                    msg.utf8
                        .feed(&msg.buf[start..])
                        .map_err(|_| ProtocolError::InvalidUtf8)?;
                }
            }
        }
        if msg.text {
            msg.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        let bytes = Bytes::from(msg.buf);
        let message = if msg.text {
            Message::Text(bytes)
        } else {
            Message::Binary(bytes)
        };
        self.events.push_back(Event::Message(message));
        Ok(())
    }
}

fn check_size(len: usize, max: usize) -> Result<(), ProtocolError> {
    if len > max {
        Err(ProtocolError::MessageTooLarge { max })
    } else {
        Ok(())
    }
}
