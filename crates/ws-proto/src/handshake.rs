//! The opening handshake (RFC 6455 §4): server-side validation and accept key,
//! client-side request and response check. permessage-deflate negotiation lives in
//! [`crate::deflate`] and is re-exported here.
//!
//! Servers built on an HTTP library fill a [`RequestHead`] from its request type;
//! servers reading the socket themselves use [`RequestHead::parse`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest, Sha1};

pub use crate::deflate::{DeflateConfig, DeflateParams, negotiate_deflate, parse_deflate_response};
pub use crate::error::HandshakeError;

/// RFC 6455 §1.3: the GUID appended to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Header count accepted by the raw parsers.
const MAX_HEADERS: usize = 64;
/// Request/response head size accepted by the raw parsers.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (§4.2.2 item 5.4):
/// base64(SHA-1(key ++ GUID)).
#[must_use]
pub fn accept_key(sec_websocket_key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(sec_websocket_key);
    sha.update(GUID);
    BASE64.encode(sha.finalize())
}

/// A client key from 16 caller-supplied random bytes (§4.1: "randomly selected").
#[must_use]
pub fn generate_key(random: [u8; 16]) -> String {
    BASE64.encode(random)
}

/// The parts of an HTTP request the handshake looks at. Borrowed: no copies.
#[derive(Debug, Clone, Default)]
pub struct RequestHead<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0 (HTTP/2+ upgrades are out of scope).
    pub http_minor: u8,
    /// The request target (path and query).
    pub path: &'a str,
    /// Header (name, value) pairs in order; names compare case-insensitively.
    pub headers: Vec<(&'a str, &'a [u8])>,
}

impl<'a> RequestHead<'a> {
    /// Parse a raw HTTP/1.x request head from `buf`. `Ok(None)`: incomplete, read more.
    /// On success also returns the head's length (the WebSocket stream starts after it).
    pub fn parse(buf: &'a [u8]) -> Result<Option<(usize, Self)>, HandshakeError> {
        let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut storage);
        let Some(len) = head_len(req.parse(buf), buf.len())? else {
            return Ok(None);
        };
        let head = Self {
            method: req.method.unwrap_or(""),
            http_minor: req.version.unwrap_or(0),
            path: req.path.unwrap_or(""),
            headers: req.headers.iter().map(|h| (h.name, h.value)).collect(),
        };
        Ok(Some((len, head)))
    }

    /// Values of every header named `name` (case-insensitive), in order.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// Whether some `name` header holds `token` in its comma-separated list.
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.header_values(name).any(|v| {
            v.split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    }

    /// Comma-separated list items of every `name` header, trimmed, as UTF-8 strings
    /// (items that are not UTF-8 are skipped).
    fn list_items(&self, name: &str) -> Vec<String> {
        self.header_values(name)
            .filter_map(|v| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// The head's length from an httparse result, enforcing the size limits on both
/// complete and still-partial heads (`buffered`: bytes available so far).
fn head_len(
    parsed: httparse::Result<usize>,
    buffered: usize,
) -> Result<Option<usize>, HandshakeError> {
    match parsed {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => Ok(Some(len)),
        Ok(httparse::Status::Partial) if buffered <= MAX_HEAD_BYTES => Ok(None),
        Ok(_) | Err(httparse::Error::TooManyHeaders) => Err(HandshakeError::TooLarge),
        Err(e) => Err(HandshakeError::Http(http_error(e))),
    }
}

fn http_error(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid new line",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}

/// A valid upgrade request: what the server needs to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAccept {
    /// The `Sec-WebSocket-Accept` value to send.
    pub accept: String,
    /// Subprotocols the client offered (`Sec-WebSocket-Protocol`), in its order.
    /// The application picks at most one.
    pub protocols: Vec<String>,
    /// The raw `Sec-WebSocket-Extensions` values, for [`negotiate_deflate`].
    pub extensions: Vec<String>,
}

impl ServerAccept {
    /// The extension header values as `&str`, the shape [`negotiate_deflate`] takes.
    #[must_use]
    pub fn extension_offers(&self) -> Vec<&str> {
        self.extensions.iter().map(String::as_str).collect()
    }

    /// A complete `101 Switching Protocols` response for servers that write the socket
    /// themselves. `protocol` must be one the client offered.
    #[must_use]
    pub fn response(&self, protocol: Option<&str>, extensions: Option<&str>) -> Vec<u8> {
        let mut r = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
            self.accept
        );
        if let Some(p) = protocol {
            r.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
        }
        if let Some(e) = extensions {
            r.push_str(&format!("Sec-WebSocket-Extensions: {e}\r\n"));
        }
        r.push_str("\r\n");
        r.into_bytes()
    }
}

/// Validate an upgrade request (RFC 6455 §4.2.1): GET, HTTP/1.1 or later, a `Host`,
/// `Upgrade: websocket` and `Connection: upgrade` (case-insensitive token lists),
/// exactly one `Sec-WebSocket-Key` decoding to 16 bytes, `Sec-WebSocket-Version: 13`.
/// A wrong version maps to 426 ([`HandshakeError::status_code`]).
pub fn validate_request(req: &RequestHead<'_>) -> Result<ServerAccept, HandshakeError> {
    if req.method != "GET" {
        return Err(HandshakeError::Method);
    }
    if req.http_minor < 1 {
        return Err(HandshakeError::HttpVersion);
    }
    if req.header_values("host").next().is_none() {
        return Err(HandshakeError::Host);
    }
    if !req.has_token("upgrade", "websocket") {
        return Err(HandshakeError::Upgrade);
    }
    if !req.has_token("connection", "upgrade") {
        return Err(HandshakeError::Connection);
    }
    let mut keys = req.header_values("sec-websocket-key");
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) => key.trim_ascii(),
        _ => return Err(HandshakeError::Key),
    };
    match BASE64.decode(key) {
        Ok(raw) if raw.len() == 16 => {}
        _ => return Err(HandshakeError::Key),
    }
    let mut versions = req.header_values("sec-websocket-version");
    match (versions.next(), versions.next()) {
        (Some(v), None) if v.trim_ascii() == b"13" => {}
        _ => return Err(HandshakeError::Version),
    }
    Ok(ServerAccept {
        accept: accept_key(key),
        protocols: req.list_items("sec-websocket-protocol"),
        extensions: req
            .header_values("sec-websocket-extensions")
            .filter_map(|v| std::str::from_utf8(v).ok())
            .map(str::to_owned)
            .collect(),
    })
}

/// Client side: the request head to send. `extra` adds headers such as
/// `Sec-WebSocket-Extensions` (see [`DeflateConfig::client_offer`]),
/// `Sec-WebSocket-Protocol` or `Origin`.
#[must_use]
pub fn client_request(host: &str, path: &str, key: &str, extra: &[(String, String)]) -> Vec<u8> {
    let mut r = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (name, value) in extra {
        r.push_str(&format!("{name}: {value}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// What a client learns from a successful `101` response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAccepted {
    /// The subprotocol the server chose, if any.
    pub protocol: Option<String>,
    /// permessage-deflate parameters when the server accepted compression. The caller
    /// must check that it offered compression (we reject any other extension).
    pub deflate: Option<DeflateParams>,
}

/// Client side: check the server's response (§4.1). `Ok(None)`: incomplete, read more;
/// on success also returns the head's length (WebSocket frames may follow at once).
pub fn parse_response(
    bytes: &[u8],
    key: &str,
) -> Result<Option<(usize, ClientAccepted)>, HandshakeError> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut storage);
    let Some(len) = head_len(resp.parse(bytes), bytes.len())? else {
        return Ok(None);
    };
    let code = resp.code.unwrap_or(0);
    if code != 101 {
        return Err(HandshakeError::Status(code));
    }
    let head = RequestHead {
        headers: resp.headers.iter().map(|h| (h.name, h.value)).collect(),
        ..RequestHead::default()
    };
    if !head.has_token("upgrade", "websocket") {
        return Err(HandshakeError::Upgrade);
    }
    if !head.has_token("connection", "upgrade") {
        return Err(HandshakeError::Connection);
    }
    let expected = accept_key(key.as_bytes());
    let mut accepts = head.header_values("sec-websocket-accept");
    match (accepts.next(), accepts.next()) {
        (Some(a), None) if a.trim_ascii() == expected.as_bytes() => {}
        _ => return Err(HandshakeError::Accept),
    }
    let extensions: Vec<String> = head.list_items("sec-websocket-extensions");
    let ext_refs: Vec<&str> = extensions.iter().map(String::as_str).collect();
    let deflate = parse_deflate_response(&ext_refs)?;
    let protocol = head.list_items("sec-websocket-protocol").into_iter().next();
    Ok(Some((len, ClientAccepted { protocol, deflate })))
}
