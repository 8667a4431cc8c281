//! permessage-deflate (RFC 7692): the per-connection compressor and decompressor.
//! Negotiation is in `negotiate.rs`, re-exported here.
//!
//! Our compressor uses the negotiated window for our direction, 9..=15 bits; our
//! decompressor always a 15-bit one, which decodes any smaller window.
//!
//! Memory: a direction whose sender resets after every message (no context takeover)
//! holds no zlib stream between messages. The compressor is borrowed from a per-thread
//! pool for the length of one `compress` call; the decompressor is taken from a
//! per-thread pool when a compressed message starts and given back when it ends, so a
//! connection owns one (about 7 KiB, plus 32 KiB of window once used) only while a
//! message is half-read. With context takeover each direction keeps its own stream
//! from its first compressed message on (about 256 KiB for a 15-bit compressor, 40 KiB
//! for the decompressor), because the next message may refer back into the window.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::ProtocolError;

pub use crate::negotiate::{
    DeflateConfig, DeflateParams, EXTENSION_NAME, negotiate_deflate, parse_deflate_response,
};

/// RFC 7692 §7.2.1: the sender removes, and the receiver appends, this sync-flush tail.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// A permessage-deflate compressor for one direction of one connection; the zlib
/// stream is allocated on first use. [`crate::Connection`] owns one; public for fuzzing
/// and tools.
#[derive(Debug)]
pub struct Deflater {
    stream: Option<Box<Compress>>,
    window_bits: u8,
    no_context_takeover: bool,
    level: u32,
}

impl Deflater {
    /// A compressor with a `window_bits` window (8..=15), resetting after each message
    /// when `no_context_takeover`, at zlib `level` (0..=9). zlib cannot deflate with an
    /// 8-bit window, so an 8-bit compressor is unusable: its owner sends uncompressed
    /// messages, which RFC 7692 always allows (RSV1 is per message).
    #[must_use]
    pub fn new(window_bits: u8, no_context_takeover: bool, level: u32) -> Self {
        Self {
            stream: None,
            window_bits: window_bits.clamp(8, 15),
            no_context_takeover,
            level: level.min(9),
        }
    }

    /// Whether this compressor holds its own zlib stream (tests: memory per connection).
    #[cfg(test)]
    pub(crate) fn has_own_stream(&self) -> bool {
        self.stream.is_some()
    }

    /// Whether this compressor can produce data (its window is at least 9 bits).
    #[must_use]
    pub fn is_usable(&self) -> bool {
        self.window_bits >= 9
    }

    /// Compress one whole message, appending the payload (tail stripped) to `out`.
    /// An unusable (8-bit) compressor compresses with a 9-bit window anyway: callers
    /// check [`Deflater::is_usable`] first.
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let (level, bits) = (self.level, self.window_bits.max(9));
        if self.no_context_takeover {
            compress_message(bits, level, input, out);
            return;
        }
        let stream = self.stream.get_or_insert_with(|| {
            Box::new(Compress::new_with_window_bits(
                Compression::new(level),
                false,
                bits,
            ))
        });
        compress_into(stream, input, out);
    }
}

thread_local! {
    /// Compressors that start every message from an empty window are interchangeable,
    /// so connections without context takeover borrow one per thread, keyed by
    /// (window bits, level), instead of each holding ~256 KiB of zlib state.
    static RESET_COMPRESSORS: RefCell<Vec<((u8, u32), Compress)>> = const { RefCell::new(Vec::new()) };
}

/// Compress one message from an empty window (no context takeover), appending the
/// payload (tail stripped) to `out`.
pub(crate) fn compress_message(window_bits: u8, level: u32, input: &[u8], out: &mut Vec<u8>) {
    let key = (window_bits.clamp(9, 15), level.min(9));
    let fresh = || Compress::new_with_window_bits(Compression::new(key.1), false, key.0);
    RESET_COMPRESSORS.with(|cell| {
        let Ok(mut pool) = cell.try_borrow_mut() else {
            // Unreachable (no re-entry), but a private stream is always correct.
            compress_into(&mut fresh(), input, out);
            return;
        };
        let index = match pool.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                pool.push((key, fresh()));
                pool.len() - 1
            }
        };
        let stream = &mut pool[index].1;
        compress_into(stream, input, out);
        stream.reset();
    });
}

/// Compress `input` with a sync flush and strip the 4-byte tail (RFC 7692 §7.2.1).
pub(crate) fn compress_into(stream: &mut Compress, mut input: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.reserve(input.len() / 2 + 64);
    loop {
        let before = stream.total_in();
        // Compression of in-memory data cannot fail on valid streams; on the impossible
        // error we stop and send what we have, which the peer will reject as corrupt.
        if stream
            .compress_vec(input, out, FlushCompress::Sync)
            .is_err()
        {
            break;
        }
        let consumed = (stream.total_in() - before) as usize;
        input = &input[consumed..];
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity().max(1024));
    }
    if out.ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    if out.len() == start {
        // §7.2.3.6: an empty message may be sent as a single 0x00 byte.
        out.push(0x00);
    }
}

/// A permessage-deflate decompressor for one direction of one connection.
/// [`crate::Connection`] owns one; public for fuzzing and tools.
///
/// With context takeover the zlib stream is allocated on the first compressed message
/// and kept. Without it the stream is taken from the thread's pool at the start of a
/// message and returned, reset, by [`Inflater::finish`]: idle connections hold none.
#[derive(Debug)]
pub struct Inflater {
    stream: Option<Decompress>,
    no_context_takeover: bool,
}

/// Reset decompressors kept per thread. More than this many messages half-read at once
/// on one thread take fresh streams, and the extras are freed when they finish: the
/// pool's memory stays bounded (each holds a 32 KiB window once used).
const POOL_MAX: usize = 4;

thread_local! {
    /// Decompressors between messages, reset: interchangeable, since a message sent
    /// without context takeover never refers to an earlier one.
    static RESET_INFLATERS: RefCell<Vec<Decompress>> = const { RefCell::new(Vec::new()) };
}

fn fresh_decompress() -> Decompress {
    Decompress::new_with_window_bits(false, 15)
}

/// A reset decompressor from this thread's pool, or a new one.
fn take_pooled() -> Decompress {
    RESET_INFLATERS
        .with(|cell| cell.try_borrow_mut().ok().and_then(|mut pool| pool.pop()))
        .unwrap_or_else(fresh_decompress)
}

/// Give a reset decompressor back to this thread's pool (freed when the pool is full).
fn return_pooled(stream: Decompress) {
    RESET_INFLATERS.with(|cell| {
        if let Ok(mut pool) = cell.try_borrow_mut() {
            if pool.len() < POOL_MAX {
                pool.push(stream);
            }
        }
    });
}

impl Inflater {
    /// A decompressor (always a 15-bit window, which decodes any smaller one),
    /// resetting after each message when `no_context_takeover`.
    #[must_use]
    pub fn new(no_context_takeover: bool) -> Self {
        Self {
            stream: None,
            no_context_takeover,
        }
    }

    /// Whether this decompressor holds a zlib stream now (tests: memory per connection).
    #[cfg(test)]
    pub(crate) fn has_stream(&self) -> bool {
        self.stream.is_some()
    }

    /// Inflate a piece of a compressed message into `out`, failing once `out` would
    /// exceed `max` bytes (a decompression bomb never allocates past `max + 1`).
    pub fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), ProtocolError> {
        let pooled = self.no_context_takeover;
        let stream = self.stream.get_or_insert_with(|| {
            if pooled {
                take_pooled()
            } else {
                fresh_decompress()
            }
        });
        inflate_into(stream, input, out, max)
    }

    /// End of message: feed the tail the sender stripped, then reset if negotiated
    /// (giving the stream back to the thread's pool). After an error the stream is
    /// dropped with the connection, never pooled.
    pub fn finish(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), ProtocolError> {
        self.inflate(&TAIL, out, max)?;
        if self.no_context_takeover {
            if let Some(mut stream) = self.stream.take() {
                stream.reset(false);
                return_pooled(stream);
            }
        }
        Ok(())
    }
}

fn inflate_into(
    stream: &mut Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    max: usize,
) -> Result<(), ProtocolError> {
    let too_large = ProtocolError::MessageTooLarge { max };
    loop {
        if out.len() > max {
            return Err(too_large);
        }
        if out.len() == out.capacity() {
            // Doubling, but never past the limit: a bomb allocates at most `max + 1`.
            let grow = out.len().max(input.len() * 2).max(4096);
            out.reserve_exact(grow.min(max.saturating_add(1) - out.len()));
        }
        let (in_before, out_before) = (stream.total_in(), out.len());
        let status = stream
            .decompress_vec(input, out, FlushDecompress::Sync)
            .map_err(|_| ProtocolError::Inflate)?;
        let consumed = (stream.total_in() - in_before) as usize;
        input = &input[consumed..];
        let progressed = consumed > 0 || out.len() > out_before;
        if status == Status::StreamEnd {
            // A final block ended the stream; anything after it starts a new one.
            stream.reset(false);
        }
        if out.len() > max {
            return Err(too_large);
        }
        let out_full = out.len() == out.capacity();
        if input.is_empty() && !out_full {
            return Ok(());
        }
        if !progressed {
            if input.is_empty() {
                return Ok(());
            }
            return Err(ProtocolError::Inflate);
        }
    }
}
