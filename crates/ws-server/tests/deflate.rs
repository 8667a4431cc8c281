//! permessage-deflate as browsers offer it, on the wire: Chrome's exact request, our exact
//! answer, then compressed messages both ways, each client message compressed on its own
//! (the answer told the client `client_no_context_takeover`).
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestServer, config, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use ws_proto::deflate::{Deflater, Inflater};
use ws_proto::frame::{FrameHeader, OpCode, apply_mask};

/// Chrome 120's upgrade request, headers as it sends them (the key is RFC 6455's sample).
const CHROME_REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n\
    Pragma: no-cache\r\nCache-Control: no-cache\r\nUpgrade: websocket\r\n\
    Origin: http://127.0.0.1\r\nSec-WebSocket-Version: 13\r\n\
    Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

/// A masked, compressed (RSV1) client text frame, compressed from an empty window.
fn compressed_frame(text: &str) -> Vec<u8> {
    let mut payload = Vec::new();
    Deflater::new(15, true, 6).compress(text.as_bytes(), &mut payload);
    let key = [1, 2, 3, 4];
    let header = FrameHeader {
        fin: true,
        rsv1: true,
        rsv2: false,
        rsv3: false,
        opcode: OpCode::Text,
        mask: Some(key),
        payload_len: payload.len() as u64,
    };
    let mut out = Vec::new();
    header.encode(&mut out);
    let start = out.len();
    out.extend_from_slice(&payload);
    apply_mask(&mut out[start..], key, 0);
    out
}

/// Reads until `buf` holds one whole server frame; returns (header, payload).
async fn read_frame(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> (FrameHeader, Vec<u8>) {
    loop {
        if let Some((h, len)) = FrameHeader::parse(buf).unwrap() {
            let end = len + h.payload_len as usize;
            if buf.len() >= end {
                let payload = buf[len..end].to_vec();
                buf.drain(..end);
                return (h, payload);
            }
        }
        assert!(within(tcp.read_buf(buf)).await.unwrap() > 0, "closed");
    }
}

#[tokio::test]
async fn chrome_offer_is_answered_byte_for_byte_and_messages_round_trip() {
    let srv = TestServer::start(config()).await;
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(CHROME_REQUEST.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let head_end = loop {
        assert!(within(tcp.read_buf(&mut buf)).await.unwrap() > 0);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8(buf.drain(..head_end).collect()).unwrap();
    let mut lines: Vec<&str> = head.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.remove(0), "HTTP/1.1 101 Switching Protocols");
    let extensions: Vec<&str> = lines
        .iter()
        .filter(|l| {
            l.to_ascii_lowercase()
                .starts_with("sec-websocket-extensions:")
        })
        .copied()
        .collect();
    assert_eq!(
        extensions,
        [
            "sec-websocket-extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        ],
        "{head}"
    );
    assert!(lines.contains(&"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));

    // Two compressed messages, each from an empty window as the answer asked; the echo of a
    // long one comes back compressed, a short one plain (below the threshold).
    let short = "hello from a browser";
    let long = "{\"channel\":\"chat\",\"text\":\"hello everyone\"} ".repeat(20);
    for text in [short, long.as_str(), short] {
        tcp.write_all(&compressed_frame(text)).await.unwrap();
        let (h, payload) = read_frame(&mut tcp, &mut buf).await;
        let got = if h.rsv1 {
            let mut inflater = Inflater::new(true);
            let mut out = Vec::new();
            inflater.inflate(&payload, &mut out, 1 << 20).unwrap();
            inflater.finish(&mut out, 1 << 20).unwrap();
            assert!(payload.len() < text.len() / 4, "compressed echo");
            out
        } else {
            payload
        };
        assert_eq!((h.opcode, h.rsv1), (OpCode::Text, text.len() >= 256));
        assert_eq!(String::from_utf8(got).unwrap(), text);
    }
}
