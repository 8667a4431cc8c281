//! The streaming decoder.
//!
//! Decoding runs in two passes over each message. A skip-scanner walks the
//! headers to find where the message ends, checking every limit from the
//! headers alone, and remembers how far it got, so bytes already scanned are
//! never scanned again: a 16 MiB message arriving in 64 KiB reads costs
//! O(n) in total, not O(n²). Only when the whole message is buffered is it
//! decoded, once, from a frozen slice (method names share that buffer).

use bytes::{Bytes, BytesMut};
use rmpv::Value;

use crate::error::DecodeError;
use crate::message::{Message, NOTIFICATION, REQUEST, RESPONSE};
use crate::wire::{Header, read_header};

/// Decoder limits. Every one is checked from headers, before allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted, in encoded bytes. Default 16 MiB: far above
    /// any push payload a browser should receive (the WebSocket side's own
    /// limit is 1 MiB), yet it caps the read buffer one connection can make
    /// the server hold, which is the point of a limit.
    pub max_message_size: usize,
    /// Deepest array/map nesting, counting the message array itself.
    /// Default 64: JSON-like data rarely nests past ten, and the value
    /// decoder recurses once per level.
    pub max_depth: usize,
    /// Most array/map elements (map pairs count twice) in one message.
    /// Default 1 Mi: a decoded element takes 40 bytes (`size_of::<Value>()`)
    /// against 1 encoded byte for a nil, so this caps that amplification at
    /// 40 MiB per message.
    pub max_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 16 << 20,
            max_depth: 64,
            max_elements: 1 << 20,
        }
    }
}

/// A streaming MessagePack-RPC decoder for one byte stream.
///
/// Append bytes read from the stream to a `BytesMut` and call
/// [`Decoder::decode`] until it returns `Ok(None)` (need more bytes). The
/// decoder remembers how far into the first message it has scanned, so the
/// caller must only append to the buffer between calls, never consume from
/// it. After an error the stream is out of sync: drop it.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    limits: Limits,
    /// Bytes of the current message scanned so far.
    pos: usize,
    /// Elements still to scan in each open array/map; the bottom entry is
    /// the message itself. Empty between messages.
    stack: Vec<u64>,
    elements: usize,
}

impl Decoder {
    /// A decoder with `max_message_size` and default other limits.
    #[must_use]
    pub fn new(max_message_size: usize) -> Self {
        Self::with_limits(Limits {
            max_message_size,
            ..Limits::default()
        })
    }

    /// A decoder with these limits.
    #[must_use]
    pub fn with_limits(limits: Limits) -> Self {
        Decoder {
            limits,
            pos: 0,
            stack: Vec::new(),
            elements: 0,
        }
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Changes the limits, also in the middle of a message: the scan goes on
    /// under the new ones (a server lifts its pre-authentication limit this
    /// way once `auth` succeeded). Lowering them below what the current
    /// message has already passed makes the next `decode` fail.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Takes the next complete message off the front of `buf`.
    ///
    /// `Ok(None)`: the message is not complete yet; append more bytes.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, DecodeError> {
        let scanned = self.scan(buf);
        if scanned.is_err() {
            self.reset();
        }
        let Some(len) = scanned? else {
            return Ok(None);
        };
        self.reset();
        let frame = buf.split_to(len).freeze();
        parse_message(&frame).map(Some)
    }

    fn reset(&mut self) {
        self.pos = 0;
        self.stack.clear();
        self.elements = 0;
    }

    /// Advances the scan; `Ok(Some(len))` once the message is complete.
    fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, DecodeError> {
        if self.stack.is_empty() {
            if buf.is_empty() {
                return Ok(None);
            }
            self.stack.push(1);
        }
        let limits = self.limits;
        while let Some(remaining) = self.stack.last_mut() {
            if *remaining == 0 {
                self.stack.pop();
                continue;
            }
            let rest = buf.get(self.pos..).unwrap_or_default();
            let Some((header, header_len)) = read_header(rest)? else {
                return Ok(None);
            };
            let end = self.pos + header_len + header.body_len();
            if end > limits.max_message_size {
                return Err(DecodeError::TooLarge {
                    limit: limits.max_message_size,
                });
            }
            if end > buf.len() {
                // Only this header is parsed again on the next call.
                return Ok(None);
            }
            *remaining -= 1;
            let is_message = self.pos == 0;
            self.pos = end;
            let children = match header {
                Header::Array(n) => u64::from(n),
                Header::Map(n) => 2 * u64::from(n),
                _ => 0,
            };
            if is_message {
                match header {
                    Header::Array(3 | 4) => {}
                    Header::Array(len) => return Err(DecodeError::BadLength { len }),
                    _ => return Err(DecodeError::NotAnArray),
                }
            }
            if children > 0 {
                self.open(children, end)?;
            }
        }
        let len = self.pos;
        Ok(Some(len))
    }

    /// Enters an array/map of `children` elements whose body starts at `at`.
    fn open(&mut self, children: u64, at: usize) -> Result<(), DecodeError> {
        let limits = &self.limits;
        // The bottom stack entry is the stream, not a container.
        if self.stack.len() > limits.max_depth {
            return Err(DecodeError::TooDeep {
                limit: limits.max_depth,
            });
        }
        // Each element takes at least one byte: a header claiming more
        // elements than bytes left under the limit is already too large.
        if children > (limits.max_message_size - at) as u64 {
            return Err(DecodeError::TooLarge {
                limit: limits.max_message_size,
            });
        }
        self.elements += children as usize;
        if self.elements > limits.max_elements {
            return Err(DecodeError::TooManyElements {
                limit: limits.max_elements,
            });
        }
        self.stack.push(children);
        Ok(())
    }
}

/// Decodes one complete, already scanned message.
fn parse_message(frame: &Bytes) -> Result<Message, DecodeError> {
    let mut r = Reader { frame, pos: 0 };
    let Header::Array(len) = r.header()? else {
        return Err(DecodeError::NotAnArray);
    };
    let kind = match r.header()? {
        Header::Uint(n) => i64::try_from(n).unwrap_or(i64::MAX),
        Header::Int(n) => n,
        _ => return Err(DecodeError::TypeNotInteger),
    };
    let expected = match u8::try_from(kind) {
        Ok(REQUEST | RESPONSE) => 4,
        Ok(NOTIFICATION) => 3,
        _ => return Err(DecodeError::UnknownType(kind)),
    };
    if len != expected {
        return Err(DecodeError::WrongArity {
            kind: kind as u8,
            expected,
            len,
        });
    }
    Ok(match kind as u8 {
        REQUEST => Message::Request {
            msgid: r.msgid()?,
            method: r.method()?,
            params: r.params()?,
        },
        RESPONSE => Message::Response {
            msgid: r.msgid()?,
            error: r.value()?,
            result: r.value()?,
        },
        _ => Message::Notification {
            method: r.method()?,
            params: r.params()?,
        },
    })
}

/// A cursor over a scanned message. The scanner proved the structure is
/// complete and within limits, so running short here means a scanner bug;
/// it is reported as a decode error rather than a panic all the same.
struct Reader<'a> {
    frame: &'a Bytes,
    pos: usize,
}

impl Reader<'_> {
    fn header(&mut self) -> Result<Header, DecodeError> {
        let rest = self.frame.get(self.pos..).unwrap_or_default();
        let (header, len) = read_header(rest)?.ok_or(DecodeError::Truncated)?;
        self.pos += len;
        Ok(header)
    }

    fn body(&mut self, len: u32) -> Result<&[u8], DecodeError> {
        let end = self.pos + len as usize;
        let body = self
            .frame
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(body)
    }

    fn msgid(&mut self) -> Result<u32, DecodeError> {
        match self.header()? {
            Header::Uint(n) => u32::try_from(n).map_err(|_| DecodeError::BadMsgId),
            // Some encoders write small non-negative ints in signed widths.
            Header::Int(n) => u32::try_from(n).map_err(|_| DecodeError::BadMsgId),
            _ => Err(DecodeError::BadMsgId),
        }
    }

    fn method(&mut self) -> Result<Bytes, DecodeError> {
        match self.header()? {
            Header::Str(len) | Header::Bin(len) => {
                let start = self.pos;
                self.body(len)?;
                Ok(self.frame.slice(start..self.pos))
            }
            _ => Err(DecodeError::BadMethod),
        }
    }

    fn params(&mut self) -> Result<Vec<Value>, DecodeError> {
        match self.header()? {
            Header::Array(n) => self.values(n),
            _ => Err(DecodeError::BadParams),
        }
    }

    fn values(&mut self, n: u32) -> Result<Vec<Value>, DecodeError> {
        let mut values = Vec::with_capacity(n as usize);
        for _ in 0..n {
            values.push(self.value()?);
        }
        Ok(values)
    }

    fn value(&mut self) -> Result<Value, DecodeError> {
        let start = self.pos;
        Ok(match self.header()? {
            Header::Nil => Value::Nil,
            Header::Bool(b) => Value::Boolean(b),
            Header::Uint(n) => Value::from(n),
            Header::Int(n) => Value::from(n),
            Header::F32(f) => Value::F32(f),
            Header::F64(f) => Value::F64(f),
            Header::Str(len) => match std::str::from_utf8(self.body(len)?) {
                Ok(s) => Value::from(s),
                // rmpv keeps invalid UTF-8 as bytes inside a String value
                // but only its own decoder can build one.
                Err(_) => {
                    let mut raw = self.frame.get(start..self.pos).unwrap_or_default();
                    rmpv::decode::read_value(&mut raw).unwrap_or(Value::Nil)
                }
            },
            Header::Bin(len) => Value::Binary(self.body(len)?.to_vec()),
            Header::Array(n) => Value::Array(self.values(n)?),
            Header::Map(n) => {
                let pairs = (0..n).map(|_| Ok((self.value()?, self.value()?)));
                Value::Map(pairs.collect::<Result<_, DecodeError>>()?)
            }
            Header::Ext(ty, len) => Value::Ext(ty, self.body(len)?.to_vec()),
        })
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
