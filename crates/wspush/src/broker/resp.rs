//! The little of RESP2 a subscription connection needs, sans-IO: commands
//! out, the replies and pushes of a subscribed connection in.
//!
//! We read the subscription ourselves rather than through the `redis`
//! crate's `PubSub`, whose driver task reads the socket into an unbounded
//! channel: a node that cannot keep up would buffer the bus there without
//! limit, and Redis's own pub/sub output limit never fires because the
//! socket is always drained. Here every complete frame is handed to the
//! caller, which decides (in [`super::intake`]) whether it fits; a `message`
//! larger than the limit is skipped as it arrives, never buffered whole.
//!
//! "Need more bytes" is `Ok(None)`; lengths are checked from the headers
//! before anything is buffered.

use bytes::{Buf, Bytes, BytesMut};

/// Longest header line (`*3`, `$12345`, `:1`, `+OK`, a short error): a peer
/// sending more without a line end is not a Redis server.
const MAX_LINE: usize = 512;

/// Largest bulk string outside a message payload (kinds, channel names).
const MAX_SMALL: usize = 64 << 10;

/// Most elements of an array a subscribed connection receives (`pmessage` has 4).
const MAX_ELEMENTS: usize = 8;

/// Bytes of an oversized payload kept for the caller: its header line.
pub const HEAD_BYTES: usize = 256;

/// One frame read from a subscribed connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// `message CHANNEL PAYLOAD`.
    Message {
        /// The channel it was published to.
        channel: Bytes,
        /// What was published.
        payload: Bytes,
    },
    /// A `message` whose payload is over the limit: only its first
    /// [`HEAD_BYTES`] are kept, the rest is skipped as it arrives.
    Oversized {
        /// The first bytes of the payload (its header line, for the counters).
        head: Bytes,
        /// The payload's whole length.
        len: usize,
    },
    /// `subscribe CHANNEL COUNT`: the subscription to CHANNEL is in place.
    Subscribed(Bytes),
    /// The answer to `PING` on a subscribed connection.
    Pong,
    /// A simple string (`+OK` to `AUTH`).
    Simple(Bytes),
    /// An error reply (`-NOAUTH …`).
    Error(String),
    /// Anything else well-formed (integers, unknown pushes): ignored.
    Other,
}

/// Why the byte stream is not RESP2 from a subscribed Redis connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RespError {
    /// A header line longer than any Redis sends.
    #[error("RESP header line too long")]
    LineTooLong,
    /// Not a RESP2 type byte, number or line end where one belongs.
    #[error("malformed RESP: {0}")]
    Syntax(&'static str),
    /// A bulk string outside a message payload over [`MAX_SMALL`], or an
    /// array with more than [`MAX_ELEMENTS`].
    #[error("RESP value too large for a subscription reply")]
    TooLarge,
}

/// Encodes one command as a RESP array of bulk strings.
pub fn command(args: &[&[u8]]) -> Vec<u8> {
    let len = args.iter().map(|a| a.len() + 16).sum::<usize>() + 16;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads frames of a subscribed connection out of a growing buffer.
#[derive(Debug)]
pub struct Decoder {
    max_payload: usize,
    /// Bytes of an oversized payload (and its CRLF) still to discard.
    skip: usize,
}

#[derive(Debug, Clone, Copy)]
enum Elem {
    /// Offset and length in the buffer.
    Bulk(usize, usize),
    Int,
    Nil,
}

/// What parsing the buffer's start found.
enum Parsed {
    Need,
    /// A whole frame of `len` bytes.
    Whole(usize, Frame),
    /// An oversized message: consume `taken` bytes now and skip `skip` more.
    Skip {
        taken: usize,
        skip: usize,
        frame: Frame,
    },
}

impl Decoder {
    /// A decoder that skips message payloads over `max_payload` bytes.
    pub fn new(max_payload: usize) -> Decoder {
        Decoder {
            max_payload,
            skip: 0,
        }
    }

    /// The next frame, `Ok(None)` until one is complete. Consumes what it returns.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, RespError> {
        if self.skip > 0 {
            let n = self.skip.min(buf.len());
            buf.advance(n);
            self.skip -= n;
            if self.skip > 0 {
                return Ok(None);
            }
        }
        match self.parse(buf)? {
            Parsed::Need => Ok(None),
            Parsed::Whole(len, frame) => {
                buf.advance(len);
                Ok(Some(frame))
            }
            Parsed::Skip { taken, skip, frame } => {
                buf.advance(taken);
                self.skip = skip;
                Ok(Some(frame))
            }
        }
    }

    fn parse(&self, buf: &[u8]) -> Result<Parsed, RespError> {
        let Some((kind, head, mut at)) = line(buf, 0)? else {
            return Ok(Parsed::Need);
        };
        match kind {
            b'+' => Ok(Parsed::Whole(
                at,
                Frame::Simple(Bytes::copy_from_slice(head)),
            )),
            b'-' => Ok(Parsed::Whole(
                at,
                Frame::Error(String::from_utf8_lossy(head).into_owned()),
            )),
            b':' => Ok(Parsed::Whole(at, Frame::Other)),
            b'$' => match bulk_at(buf, 0, MAX_SMALL)? {
                Some((_, end)) => Ok(Parsed::Whole(end, Frame::Other)),
                None => Ok(Parsed::Need),
            },
            b'*' => {
                let n = number(head)?;
                if n < 0 {
                    return Ok(Parsed::Whole(at, Frame::Other));
                }
                let n = usize::try_from(n).map_err(|_| RespError::TooLarge)?;
                if n > MAX_ELEMENTS {
                    return Err(RespError::TooLarge);
                }
                let mut elems = [Elem::Nil; MAX_ELEMENTS];
                for i in 0..n {
                    if i == 2 && n == 3 && bulk_of(buf, elems[0]) == Some(b"message") {
                        let Some(channel) = bulk_of(buf, elems[1]) else {
                            return Err(RespError::Syntax("channel"));
                        };
                        return self.payload(buf, at, channel);
                    }
                    match element(buf, at)? {
                        Some((elem, end)) => {
                            elems[i] = elem;
                            at = end;
                        }
                        None => return Ok(Parsed::Need),
                    }
                }
                Ok(Parsed::Whole(at, array_frame(buf, &elems[..n])))
            }
            _ => Err(RespError::Syntax("unknown type byte")),
        }
    }

    /// The payload of a `message` to `channel`, starting at `at`.
    fn payload(&self, buf: &[u8], at: usize, channel: &[u8]) -> Result<Parsed, RespError> {
        let Some((kind, head, data)) = line(buf, at)? else {
            return Ok(Parsed::Need);
        };
        if kind != b'$' {
            return Err(RespError::Syntax("payload is not a bulk string"));
        }
        let len = usize::try_from(number(head)?).map_err(|_| RespError::Syntax("payload"))?;
        if len <= self.max_payload {
            return match bulk_at(buf, at, len)? {
                Some((elem, end)) => Ok(Parsed::Whole(
                    end,
                    Frame::Message {
                        channel: Bytes::copy_from_slice(channel),
                        payload: Bytes::copy_from_slice(bulk_of(buf, elem).unwrap_or_default()),
                    },
                )),
                None => Ok(Parsed::Need),
            };
        }
        // Too large to hold: keep its head line, skip the rest as it comes.
        let head_len = len.min(HEAD_BYTES);
        if buf.len() < data + head_len {
            return Ok(Parsed::Need);
        }
        Ok(Parsed::Skip {
            taken: data + head_len,
            skip: len - head_len + 2,
            frame: Frame::Oversized {
                head: Bytes::copy_from_slice(&buf[data..data + head_len]),
                len,
            },
        })
    }
}

fn bulk_of(buf: &[u8], elem: Elem) -> Option<&[u8]> {
    match elem {
        Elem::Bulk(off, len) => buf.get(off..off + len),
        _ => None,
    }
}

fn array_frame(buf: &[u8], elems: &[Elem]) -> Frame {
    let bulk = |i: usize| elems.get(i).and_then(|e| bulk_of(buf, *e));
    match bulk(0) {
        Some(b"subscribe") => match bulk(1) {
            Some(channel) => Frame::Subscribed(Bytes::copy_from_slice(channel)),
            None => Frame::Other,
        },
        Some(b"pong") => Frame::Pong,
        _ => Frame::Other,
    }
}

/// A header line: its type byte, the rest without CRLF, and where the next starts.
type Line<'a> = (u8, &'a [u8], usize);

/// The line starting at `at`.
fn line(buf: &[u8], at: usize) -> Result<Option<Line<'_>>, RespError> {
    let rest = buf.get(at..).unwrap_or_default();
    let window = &rest[..rest.len().min(MAX_LINE)];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(0) => Err(RespError::Syntax("empty line")),
        Some(end) => Ok(Some((rest[0], &rest[1..end], at + end + 2))),
        None if rest.len() >= MAX_LINE => Err(RespError::LineTooLong),
        None => Ok(None),
    }
}

fn number(digits: &[u8]) -> Result<i64, RespError> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(RespError::Syntax("not a number"))
}

/// A bulk string at `at` of at most `max` bytes: the element and its end.
fn bulk_at(buf: &[u8], at: usize, max: usize) -> Result<Option<(Elem, usize)>, RespError> {
    let Some((_, head, data)) = line(buf, at)? else {
        return Ok(None);
    };
    let len = number(head)?;
    if len < 0 {
        return Ok(Some((Elem::Nil, data)));
    }
    let len = usize::try_from(len).map_err(|_| RespError::TooLarge)?;
    if len > max {
        return Err(RespError::TooLarge);
    }
    let end = data.checked_add(len).ok_or(RespError::TooLarge)?;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(RespError::Syntax("bulk string without CRLF"));
    }
    Ok(Some((Elem::Bulk(data, len), end + 2)))
}

/// One array element (bulk, integer, simple string or nil) at `at`.
fn element(buf: &[u8], at: usize) -> Result<Option<(Elem, usize)>, RespError> {
    let Some((kind, _, next)) = line(buf, at)? else {
        return Ok(None);
    };
    match kind {
        b'$' => bulk_at(buf, at, MAX_SMALL),
        b':' | b'+' => Ok(Some((Elem::Int, next))),
        b'*' | b'-' => Err(RespError::Syntax("nested value in a subscription reply")),
        _ => Err(RespError::Syntax("unknown type byte")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn decode_all(d: &mut Decoder, bytes: &[u8]) -> Vec<Frame> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(f) = d.decode(&mut buf).unwrap() {
            out.push(f);
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        out
    }

    const MESSAGE: &[u8] = b"*3\r\n$7\r\nmessage\r\n$10\r\nwspush:bus\r\n$5\r\nhe\r\nl\r\n";

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(
            command(&[b"SUBSCRIBE", b"a b"]),
            b"*2\r\n$9\r\nSUBSCRIBE\r\n$3\r\na b\r\n"
        );
    }

    #[test]
    fn the_frames_of_a_subscription_parse() {
        let mut d = Decoder::new(1024);
        let mut input = b"+OK\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n".to_vec();
        input.extend_from_slice(MESSAGE);
        input.extend_from_slice(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n-NOAUTH no\r\n:3\r\n");
        assert_eq!(
            decode_all(&mut d, &input),
            vec![
                Frame::Simple(Bytes::from_static(b"OK")),
                Frame::Subscribed(Bytes::from_static(b"a")),
                Frame::Message {
                    channel: Bytes::from_static(b"wspush:bus"),
                    payload: Bytes::from_static(b"he\r\nl"),
                },
                Frame::Pong,
                Frame::Error("NOAUTH no".into()),
                Frame::Other,
            ]
        );
    }

    #[test]
    fn every_split_point_needs_more_bytes_then_completes() {
        for cut in 0..MESSAGE.len() {
            let mut d = Decoder::new(1024);
            let mut buf = BytesMut::from(&MESSAGE[..cut]);
            assert_eq!(d.decode(&mut buf).unwrap(), None, "cut at {cut}");
            buf.extend_from_slice(&MESSAGE[cut..]);
            assert!(matches!(
                d.decode(&mut buf).unwrap(),
                Some(Frame::Message { .. })
            ));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn an_oversized_payload_is_skipped_as_it_arrives() {
        let payload: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut input =
            format!("*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n${}\r\n", payload.len()).into_bytes();
        input.extend_from_slice(&payload);
        input.extend_from_slice(b"\r\n");
        input.extend_from_slice(MESSAGE);
        let mut d = Decoder::new(300);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for chunk in input.chunks(100) {
            buf.extend_from_slice(chunk);
            while let Some(f) = d.decode(&mut buf).unwrap() {
                frames.push(f);
            }
            // Never more than one chunk and a header line are held.
            assert!(buf.len() <= 100 + HEAD_BYTES + 64, "{}", buf.len());
        }
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert_eq!(
            frames[0],
            Frame::Oversized {
                head: Bytes::copy_from_slice(&payload[..HEAD_BYTES]),
                len: 1000
            }
        );
        assert!(matches!(&frames[1], Frame::Message { payload, .. } if &payload[..] == b"he\r\nl"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b"?\r\n"[..],
            b"*x\r\n",
            b"*99\r\n",
            b"*1\r\n*1\r\n",
            b"$3\r\nabcde",
            b"\r\n",
        ] {
            let mut d = Decoder::new(16);
            assert!(d.decode(&mut BytesMut::from(bad)).is_err(), "{bad:?}");
        }
        let mut d = Decoder::new(16);
        let long = vec![b'+'; MAX_LINE + 1];
        assert_eq!(
            d.decode(&mut BytesMut::from(&long[..])),
            Err(RespError::LineTooLong)
        );
    }
}
