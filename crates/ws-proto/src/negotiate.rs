//! permessage-deflate (RFC 7692) parameter negotiation: the server's answer to a
//! client's offers, the client's offer and its check of the answer. The zlib streams
//! are in [`crate::deflate`], which re-exports everything here.
//!
//! Window sizes: our decompressor always uses a 32 KiB window (15 bits), which decodes
//! any stream produced with a smaller one, so `client_max_window_bits` (as server) and
//! `server_max_window_bits` (as client) only ever *shrink the peer*. zlib cannot
//! produce raw deflate with an 8-bit window, so when 8 is demanded of us we honour it
//! by never compressing in that direction (RFC 7692 lets a sender leave any message
//! uncompressed); a server prefers any other offer it can fully honour and takes an
//! 8-bit one only as a last resort (declining it outright would leave such a client
//! without compression in either direction).

use crate::error::HandshakeError;

/// The extension token.
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// What this endpoint is willing to negotiate. As a server it shapes the answer to a
/// client's offers; as a client it shapes the offer ([`DeflateConfig::client_offer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Reset the server's compressor after every message even if the client did not
    /// ask (saves nothing by itself, but makes compressed prepared frames shareable:
    /// see [`crate::PreparedMessage`]). Default `true`, because fan-out is the product.
    pub server_no_context_takeover: bool,
    /// Ask the client to reset its compressor after every message, even when it did not
    /// offer to (RFC 7692 §7.1.1.1 lets a server). Default `true`: then no connection
    /// keeps a decompressor between messages (see [`crate::deflate::Inflater`]), which
    /// is what lets a browser that sent one message cost as little as an idle one. The
    /// price is cross-message redundancy: each client message compresses on its own.
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
            client_no_context_takeover: true,
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
