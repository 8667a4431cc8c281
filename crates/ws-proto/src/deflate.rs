//! permessage-deflate (RFC 7692): parameter negotiation and the per-connection
//! compressor / decompressor.
//!
//! Window sizes: our decompressor always uses a 32 KiB window (15 bits), which decodes
//! any stream produced with a smaller one, so `client_max_window_bits` (as server) and
//! `server_max_window_bits` (as client) only ever *shrink the peer*. Our compressor uses
//! the negotiated window for our direction, 9..=15 bits. zlib cannot produce raw deflate
//! with an 8-bit window, so when 8 is demanded of us we honour it by never compressing
//! in that direction (RFC 7692 lets a sender leave any message uncompressed); a server
//! prefers any other offer it can fully honour and takes an 8-bit one only as a last
//! resort (declining it outright would leave such a client without compression in
//! either direction).
//!
//! Memory: neither zlib stream exists until the first compressed message in its
//! direction (about 256 KiB for a 15-bit compressor, 40 KiB for the decompressor).

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::{HandshakeError, ProtocolError};

/// The extension token.
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// RFC 7692 §7.2.1: the sender removes, and the receiver appends, this sync-flush tail.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// What this endpoint is willing to negotiate. As a server it shapes the answer to a
/// client's offers; as a client it shapes the offer ([`DeflateConfig::client_offer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Reset the server's compressor after every message even if the client did not
    /// ask (saves nothing by itself, but makes compressed prepared frames shareable:
    /// see [`crate::PreparedMessage`]). Default `true`, because fan-out is the product.
    pub server_no_context_takeover: bool,
    /// Ask the client to reset its compressor after every message. Default `false`.
    pub client_no_context_takeover: bool,
    /// Largest window (9..=15) the server compressor uses. Default 15.
    pub server_max_window_bits: u8,
    /// Window (9..=15) requested of the client when it offers `client_max_window_bits`.
    /// Default 15 (no request).
    pub client_max_window_bits: u8,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            server_no_context_takeover: true,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

impl DeflateConfig {
    /// The `Sec-WebSocket-Extensions` value a client sends to offer this configuration.
    #[must_use]
    pub fn client_offer(&self) -> String {
        let mut s = String::from(EXTENSION_NAME);
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits < 15 {
            s.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        s.push_str("; client_max_window_bits");
        if self.client_max_window_bits < 15 {
            s.push_str(&format!("={}", self.client_max_window_bits));
        }
        s
    }
}

/// The parameters agreed for one connection, in RFC 7692 terms (server/client, not
/// us/peer): [`crate::Connection`] maps them to its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message.
    pub client_no_context_takeover: bool,
    /// The server compressor's window, 8..=15 (with 8 the server sends uncompressed).
    pub server_max_window_bits: u8,
    /// The client compressor's window, 8..=15 (a client told 8 sends uncompressed).
    pub client_max_window_bits: u8,
}

impl Default for DeflateParams {
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

/// One parsed offer or response: the parameters as written.
#[derive(Debug, Default)]
struct RawParams {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value.
    client_max_window_bits: Option<Option<u8>>,
}

/// Parse the parameters of one `permessage-deflate` element; `None` when an element
/// is invalid (unknown or repeated parameter, bad value: RFC 7692 §5.1 "decline").
fn parse_params<'a>(mut params: impl Iterator<Item = &'a str>) -> Option<RawParams> {
    let mut raw = RawParams::default();
    params.try_for_each(|param| {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (param.trim(), None),
        };
        let bits = |v: Option<&str>| -> Option<u8> {
            let v = v?;
            // RFC 7692 §7.1.2: "1*DIGIT" with no leading zeros, 8..=15.
            if v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            v.parse().ok().filter(|b| (8..=15).contains(b))
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("server_no_context_takeover", None) if !raw.server_no_context_takeover => {
                raw.server_no_context_takeover = true;
            }
            ("client_no_context_takeover", None) if !raw.client_no_context_takeover => {
                raw.client_no_context_takeover = true;
            }
            ("server_max_window_bits", v) if raw.server_max_window_bits.is_none() => {
                raw.server_max_window_bits = Some(bits(v)?);
            }
            ("client_max_window_bits", None) if raw.client_max_window_bits.is_none() => {
                raw.client_max_window_bits = Some(None);
            }
            ("client_max_window_bits", v) if raw.client_max_window_bits.is_none() => {
                raw.client_max_window_bits = Some(Some(bits(v)?));
            }
            _ => return None,
        }
        Some(())
    })?;
    Some(raw)
}

/// Split header values into extension elements: (name, parameters).
fn elements<'a>(
    values: &'a [&'a str],
) -> impl Iterator<Item = (&'a str, std::str::Split<'a, char>)> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut parts = e.split(';');
            let name = parts.next().unwrap_or("").trim();
            (name, parts)
        })
}

/// Server side: choose the first `permessage-deflate` offer we can honour from the
/// client's `Sec-WebSocket-Extensions` values. Returns the agreed parameters and the
/// response header value, or `None` (no compression).
#[must_use]
pub fn negotiate_deflate(offers: &[&str], cfg: &DeflateConfig) -> Option<(DeflateParams, String)> {
    let valid: Vec<RawParams> = elements(offers)
        .filter(|(name, _)| name.eq_ignore_ascii_case(EXTENSION_NAME))
        .filter_map(|(_, params)| parse_params(params))
        .collect();
    // First choice: an offer we can compress under; else one demanding an 8-bit window.
    let full = valid.iter().find(|o| o.server_max_window_bits != Some(8));
    accept_offer(full.or(valid.first())?, cfg)
}

fn accept_offer(offer: &RawParams, cfg: &DeflateConfig) -> Option<(DeflateParams, String)> {
    let server_cap = cfg.server_max_window_bits.clamp(9, 15);
    let server_bits = match offer.server_max_window_bits {
        // zlib cannot deflate with a 256-byte window: we agree and never compress.
        Some(8) => 8,
        Some(n) => n.min(server_cap),
        // Unasked, the server may still announce its window (RFC 7692 §7.1.2.1).
        None => server_cap,
    };
    let client_cap = cfg.client_max_window_bits.clamp(9, 15);
    let client_bits = match offer.client_max_window_bits {
        Some(Some(n)) => n.min(client_cap),
        Some(None) => client_cap,
        None => 15,
    };
    let params = DeflateParams {
        server_no_context_takeover: offer.server_no_context_takeover
            || cfg.server_no_context_takeover,
        client_no_context_takeover: offer.client_no_context_takeover
            || cfg.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    };
    let mut response = String::from(EXTENSION_NAME);
    if params.server_no_context_takeover {
        response.push_str("; server_no_context_takeover");
    }
    if params.client_no_context_takeover {
        response.push_str("; client_no_context_takeover");
    }
    if offer.server_max_window_bits.is_some() || server_bits < 15 {
        response.push_str(&format!("; server_max_window_bits={server_bits}"));
    }
    // §7.1.2.2: only when the client offered the parameter (it may not support it).
    if offer.client_max_window_bits.is_some() && client_bits < 15 {
        response.push_str(&format!("; client_max_window_bits={client_bits}"));
    }
    Some((params, response))
}

/// Client side: read the server's `Sec-WebSocket-Extensions` response. `Ok(None)` when
/// the server did not accept compression; an error for anything we did not offer.
pub fn parse_deflate_response(values: &[&str]) -> Result<Option<DeflateParams>, HandshakeError> {
    let mut found = None;
    for (name, params) in elements(values) {
        if !name.eq_ignore_ascii_case(EXTENSION_NAME) || found.is_some() {
            return Err(HandshakeError::Extension);
        }
        let raw = parse_params(params).ok_or(HandshakeError::Extension)?;
        let client_bits = match raw.client_max_window_bits {
            Some(None) => return Err(HandshakeError::Extension),
            Some(Some(n)) => n,
            None => 15,
        };
        found = Some(DeflateParams {
            server_no_context_takeover: raw.server_no_context_takeover,
            client_no_context_takeover: raw.client_no_context_takeover,
            server_max_window_bits: raw.server_max_window_bits.unwrap_or(15),
            client_max_window_bits: client_bits,
        });
    }
    Ok(found)
}

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

/// A permessage-deflate decompressor for one direction of one connection; the zlib
/// stream is allocated on the first compressed message. [`crate::Connection`] owns one;
/// public for fuzzing and tools.
#[derive(Debug)]
pub struct Inflater {
    stream: Option<Box<Decompress>>,
    no_context_takeover: bool,
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

    /// Inflate a piece of a compressed message into `out`, failing once `out` would
    /// exceed `max` bytes (a decompression bomb never allocates past `max + 1`).
    pub fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), ProtocolError> {
        let stream = self
            .stream
            .get_or_insert_with(|| Box::new(Decompress::new_with_window_bits(false, 15)));
        inflate_into(stream, input, out, max)
    }

    /// End of message: feed the tail the sender stripped, then reset if negotiated.
    pub fn finish(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), ProtocolError> {
        self.inflate(&TAIL, out, max)?;
        if self.no_context_takeover {
            if let Some(stream) = self.stream.as_mut() {
                stream.reset(false);
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
