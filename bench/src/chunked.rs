//! HTTP/1.1 chunked transfer coding (RFC 9112 §7.1), decoding only, as sans-IO code: what the
//! SSE subscriber needs to read wspush's event stream.
//!
//! Why not hyper's client: the generator holds tens of thousands of streams on the same two
//! cores as the server under test, and its WebSocket subscriber is one small task reading into
//! a per-thread buffer. A decoder that hands out slices of the bytes it was given keeps the
//! SSE subscriber that cheap too: no per-connection buffer, no copy, no body frames.

/// What the decoder refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkedError {
    /// A chunk size that is not hexadecimal (or is missing).
    #[error("bad chunk size byte {0:#04x}")]
    BadSize(u8),
    /// A chunk size beyond `u64`.
    #[error("chunk size overflows")]
    Overflow,
    /// The bytes after a chunk's data are not CRLF.
    #[error("chunk data not followed by CRLF (got {0:#04x})")]
    MissingCrlf(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits; `digits` counts them (a size needs at least one).
    Size { size: u64, digits: u8 },
    /// After the size: a chunk extension (ignored) or whitespace, up to LF.
    Ext { size: u64 },
    /// This many data bytes still to come.
    Data(u64),
    /// The CR after a chunk's data.
    DataCr,
    /// The LF after a chunk's data.
    DataLf,
    /// The start of a trailer line after the last chunk: LF (or CR LF) ends the body.
    TrailerStart,
    /// Inside a trailer field line (ignored), up to LF.
    Trailer,
    /// The body ended.
    Done,
}

/// An incremental chunked-body decoder.
#[derive(Debug, Clone)]
pub struct Decoder {
    state: State,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            state: State::Size { size: 0, digits: 0 },
        }
    }
}

impl Decoder {
    /// A decoder at the start of a body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the last chunk and its trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes `input`, handing every run of body bytes to `sink` as a slice of `input`.
    /// Returns the bytes used: all of them, unless the body ended inside `input` (what
    /// follows belongs to no body of ours).
    pub fn decode(
        &mut self,
        input: &[u8],
        mut sink: impl FnMut(&[u8]),
    ) -> Result<usize, ChunkedError> {
        let mut at = 0;
        while at < input.len() {
            let b = input[at];
            self.state = match self.state {
                State::Size { size, digits } => match hex(b) {
                    Some(d) => {
                        let size = size
                            .checked_mul(16)
                            .and_then(|s| s.checked_add(u64::from(d)))
                            .ok_or(ChunkedError::Overflow)?;
                        State::Size {
                            size,
                            digits: digits.saturating_add(1),
                        }
                    }
                    None if digits == 0 => return Err(ChunkedError::BadSize(b)),
                    None if b == b'\n' => after_size(size),
                    // `;ext`, the CR, or the whitespace some servers write before them.
                    None if matches!(b, b';' | b'\r' | b' ' | b'\t') => State::Ext { size },
                    None => return Err(ChunkedError::BadSize(b)),
                },
                State::Ext { size } if b == b'\n' => after_size(size),
                State::Ext { size } => State::Ext { size },
                State::Data(left) => {
                    // Hand out as much of this chunk as `input` holds, in one slice.
                    let n = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(input.len() - at);
                    sink(&input[at..at + n]);
                    at += n;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data(left)
                    };
                    continue;
                }
                State::DataCr if b == b'\r' => State::DataLf,
                // A bare LF is accepted (RFC 9112 §2.2 lets a recipient do so).
                State::DataCr | State::DataLf if b == b'\n' => State::Size { size: 0, digits: 0 },
                State::DataCr | State::DataLf => return Err(ChunkedError::MissingCrlf(b)),
                State::TrailerStart if b == b'\n' => {
                    self.state = State::Done;
                    return Ok(at + 1);
                }
                State::TrailerStart if b == b'\r' => State::TrailerStart,
                State::TrailerStart | State::Trailer if b == b'\n' => State::TrailerStart,
                State::TrailerStart | State::Trailer => State::Trailer,
                State::Done => return Ok(at),
            };
            at += 1;
        }
        Ok(at)
    }
}

/// The state after a chunk-size line: its data, or the trailers after the last chunk.
fn after_size(size: u64) -> State {
    if size == 0 {
        State::TrailerStart
    } else {
        State::Data(size)
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const BODY: &[u8] =
        b"5\r\nhello\r\n1;name=value\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";

    /// Decodes `parts` one after another; returns the body, the bytes used, and whether done.
    fn run(parts: &[&[u8]]) -> (Vec<u8>, usize, bool) {
        let mut d = Decoder::new();
        let mut body = Vec::new();
        let mut used = 0;
        for p in parts {
            used += d.decode(p, |s| body.extend_from_slice(s)).unwrap();
        }
        (body, used, d.is_done())
    }

    #[test]
    fn whole_body_stops_before_what_follows() {
        let (body, used, done) = run(&[BODY]);
        assert_eq!(body, b"hello 0123456789");
        assert_eq!(used, BODY.len() - 4, "NEXT is not the body's");
        assert!(done);
    }

    #[test]
    fn split_at_every_position_and_byte_by_byte() {
        for cut in 0..=BODY.len() {
            let (body, _, done) = run(&[&BODY[..cut], &BODY[cut..]]);
            assert_eq!(body, b"hello 0123456789", "cut at {cut}");
            assert!(done, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = BODY.chunks(1).collect();
        let (body, used, done) = run(&bytes);
        assert_eq!(
            (body.as_slice(), used, done),
            (&b"hello 0123456789"[..], BODY.len() - 4, true)
        );
    }

    #[test]
    fn an_endless_stream_is_never_done() {
        let (body, used, done) = run(&[b"3\r\nabc\r\n", b"2\r\nde"]);
        assert_eq!((body.as_slice(), used, done), (&b"abcde"[..], 13, false));
        let (body, _, _) = run(&[b"3\nabc\n2\nde\n"]);
        assert_eq!(body, b"abcde", "bare LFs");
    }

    #[test]
    fn refusals() {
        let err = |input: &[u8]| Decoder::new().decode(input, |_| {}).unwrap_err();
        assert_eq!(err(b"\r\n"), ChunkedError::BadSize(b'\r'), "no digits");
        assert_eq!(err(b"5x\r\n"), ChunkedError::BadSize(b'x'));
        assert_eq!(err(b"2\r\nabX"), ChunkedError::MissingCrlf(b'X'));
        assert_eq!(err(b"2\r\nab\rX"), ChunkedError::MissingCrlf(b'X'));
        assert_eq!(err(b"11111111111111111\r\n"), ChunkedError::Overflow);
    }
}
