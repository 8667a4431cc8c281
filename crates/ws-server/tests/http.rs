//! The HTTP side: plain requests (keep-alive, pipelining, bad requests), broken upgrades,
//! refusals by the application and the connection cap.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestServer, config, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use ws_proto::handshake::HandshakeError;
use ws_server::ClientError;
use ws_server::client;

/// Writes `request` and reads until what was read contains `expect_end` (or EOF).
async fn exchange(addr: std::net::SocketAddr, request: &str, expect_end: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    within(async {
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&buf).contains(expect_end) {
            let n = tcp.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    String::from_utf8(buf).unwrap()
}

#[tokio::test]
async fn plain_requests_go_to_on_http_with_keep_alive_and_pipelining() {
    let srv = TestServer::start(config()).await;
    let two = "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\n\r\n";
    let resp = exchange(srv.addr, two, "not found").await;
    let first = resp.find("HTTP/1.1 200 OK").unwrap();
    let second = resp.find("HTTP/1.1 404 Not Found").unwrap();
    assert!(first < second, "{resp}");
    assert!(resp.contains("\r\n\r\nok"), "{resp}");
}

#[tokio::test]
async fn malformed_request_gets_400() {
    let srv = TestServer::start(config()).await;
    let resp = exchange(srv.addr, "NOT HTTP AT ALL\r\n\r\n", "\r\n\r\n").await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
}

#[tokio::test]
async fn broken_upgrades_get_426_with_the_version() {
    let srv = TestServer::start(config()).await;
    let base = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
    for extra in [
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n",
        "Sec-WebSocket-Version: 13\r\n",
        "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n",
    ] {
        let resp = exchange(srv.addr, &format!("{base}{extra}\r\n"), "\r\n\r\n").await;
        assert!(resp.starts_with("HTTP/1.1 426"), "{resp}");
        assert!(
            resp.to_ascii_lowercase()
                .contains("sec-websocket-version: 13"),
            "{resp}"
        );
    }
}

#[tokio::test]
async fn application_can_refuse_an_upgrade() {
    let srv = TestServer::start(config()).await;
    let err = client::connect(&srv.url("/forbidden")).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Handshake(HandshakeError::Status(403))),
        "{err:?}"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_get_503() {
    let mut c = config();
    c.max_connections = 1;
    let mut srv = TestServer::start(c).await;
    let mut first = client::connect(&srv.url("/")).await.unwrap();
    let conn = srv.next_open().await;
    let err = client::connect(&srv.url("/")).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Handshake(HandshakeError::Status(503))),
        "{err:?}"
    );
    assert_eq!(srv.server.stats().snapshot().rejected_full, 1);
    first.close(1000, "").await.unwrap();
    srv.close_of(conn.id()).await;
    // The permit came back with the first connection's end.
    let mut again = client::connect(&srv.url("/")).await.unwrap();
    again.send_text("ok").await.unwrap();
    assert!(again.recv_message().await.unwrap().is_some());
}

#[tokio::test]
async fn silent_and_slow_request_heads_are_dropped_after_the_handshake_timeout() {
    let mut c = config();
    c.handshake_timeout = std::time::Duration::from_millis(200);
    let srv = TestServer::start(c).await;
    for partial in ["", "GET / HTTP/1.1\r\nHost: x\r\n"] {
        let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
        tcp.write_all(partial.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        // hyper answers 408 or just closes; either way the connection ends.
        within(tcp.read_to_end(&mut buf)).await.unwrap();
        let text = String::from_utf8_lossy(&buf);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{text}"
        );
    }
}
