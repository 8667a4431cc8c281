//! RFC 6455 §4 handshake: accept key, validation rejects, client side.

use crate::handshake::*;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn request(lines: &str) -> Vec<u8> {
    format!("{lines}\r\n").into_bytes()
}

const GOOD: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n";

fn validate(raw: &[u8]) -> Result<ServerAccept, HandshakeError> {
    let (_, head) = RequestHead::parse(raw)?.unwrap();
    validate_request(&head)
}

#[test]
fn accept_key_rfc_example() {
    assert_eq!(accept_key(KEY.as_bytes()), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn valid_request() {
    let raw = request(GOOD);
    let (len, head) = RequestHead::parse(&raw).unwrap().unwrap();
    assert_eq!(len, raw.len());
    assert_eq!(head.path, "/chat");
    let accept = validate_request(&head).unwrap();
    assert_eq!(accept.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(accept.protocols, ["chat", "superchat"]);
    let response = String::from_utf8(accept.response(Some("chat"), None)).unwrap();
    assert!(response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(response.contains("Sec-WebSocket-Protocol: chat\r\n"));
    // Incomplete heads ask for more.
    assert!(RequestHead::parse(&raw[..raw.len() - 1]).unwrap().is_none());
}

#[test]
fn token_lists_case_insensitive() {
    let raw = request(
        &GOOD
            .replace("Upgrade: websocket", "upgrade: WebSocket")
            .replace("Connection: Upgrade", "Connection: keep-alive, UPGRADE"),
    );
    validate(&raw).unwrap();
}

#[test]
fn rejects() {
    let cases: &[(String, HandshakeError)] = &[
        (GOOD.replace("GET", "POST"), HandshakeError::Method),
        (
            GOOD.replace("HTTP/1.1", "HTTP/1.0"),
            HandshakeError::HttpVersion,
        ),
        (
            GOOD.replace("Host: server.example.com\r\n", ""),
            HandshakeError::Host,
        ),
        (
            GOOD.replace("Upgrade: websocket\r\n", ""),
            HandshakeError::Upgrade,
        ),
        (
            GOOD.replace("Upgrade: websocket", "Upgrade: h2c"),
            HandshakeError::Upgrade,
        ),
        (
            GOOD.replace("Connection: Upgrade", "Connection: keep-alive"),
            HandshakeError::Connection,
        ),
        (
            GOOD.replace(&format!("Sec-WebSocket-Key: {KEY}\r\n"), ""),
            HandshakeError::Key,
        ),
        (
            GOOD.replace(KEY, "dGhlIHNhbXBsZSBub25jZQ"),
            HandshakeError::Key,
        ),
        (
            GOOD.replace(KEY, "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            HandshakeError::Key,
        ),
        (GOOD.replace(KEY, "not base64!!"), HandshakeError::Key),
        (
            GOOD.replace("Origin", &format!("Sec-WebSocket-Key: {KEY}\r\nOrigin")),
            HandshakeError::Key,
        ),
        (
            GOOD.replace("Version: 13", "Version: 8"),
            HandshakeError::Version,
        ),
        (
            GOOD.replace("Sec-WebSocket-Version: 13\r\n", ""),
            HandshakeError::Version,
        ),
    ];
    for (raw, expect) in cases {
        assert_eq!(validate(&request(raw)).unwrap_err(), *expect, "{raw}");
    }
}

#[test]
fn wrong_version_is_426_with_version_header() {
    let err = validate(&request(&GOOD.replace("Version: 13", "Version: 8"))).unwrap_err();
    assert_eq!(err.status_code(), 426);
    let response = String::from_utf8(err.http_response()).unwrap();
    assert!(response.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    assert!(response.contains("\r\nSec-WebSocket-Version: 13\r\n"));
    assert_eq!(HandshakeError::Method.status_code(), 400);
}

#[test]
fn malformed_and_oversized_heads() {
    assert!(RequestHead::parse(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").is_err());
    let mut huge = b"GET / HTTP/1.1\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 20_000));
    assert_eq!(
        RequestHead::parse(&huge).unwrap_err(),
        HandshakeError::TooLarge
    );
    let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
    let raw = format!("GET / HTTP/1.1\r\n{many}\r\n");
    assert_eq!(
        RequestHead::parse(raw.as_bytes())
            .unwrap_err()
            .status_code(),
        431
    );
}

#[test]
fn client_request_round_trip_with_deflate() {
    let offer = DeflateConfig::default().client_offer();
    let raw = client_request(
        "example.com",
        "/ws?x=1",
        KEY,
        &[("Sec-WebSocket-Extensions".into(), offer)],
    );
    let accept = validate(&raw).unwrap();
    let (params, ext) =
        negotiate_deflate(&accept.extension_offers(), &DeflateConfig::default()).unwrap();
    let response = accept.response(None, Some(&ext));
    let mut with_frame = response.clone();
    with_frame.extend_from_slice(&[0x81, 0x00]);
    let (len, accepted) = parse_response(&with_frame, KEY).unwrap().unwrap();
    assert_eq!(len, response.len());
    assert_eq!(accepted.deflate, Some(params));
    assert_eq!(accepted.protocol, None);
    assert!(parse_response(&response[..10], KEY).unwrap().is_none());
}

#[test]
fn client_rejects_bad_responses() {
    let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    parse_response(ok.as_bytes(), KEY).unwrap().unwrap();
    let bad = [
        (
            ok.replace("101 Switching Protocols", "200 OK"),
            HandshakeError::Status(200),
        ),
        (ok.replace("s3pP", "AAAA"), HandshakeError::Accept),
        (
            ok.replace("Upgrade: websocket\r\n", ""),
            HandshakeError::Upgrade,
        ),
        (
            ok.replace("\r\n\r\n", "\r\nSec-WebSocket-Extensions: x-foo\r\n\r\n"),
            HandshakeError::Extension,
        ),
    ];
    for (raw, expect) in bad {
        assert_eq!(
            parse_response(raw.as_bytes(), KEY).unwrap_err(),
            expect,
            "{raw}"
        );
    }
}
