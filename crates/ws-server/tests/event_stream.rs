//! Event streams: a plain request the handler turns into a `200` fed by a connection's queue.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::{TestServer, config, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use ws_server::SendError;

/// Opens `path` as a plain GET and returns the socket.
async fn get(addr: std::net::SocketAddr, path: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    tcp
}

/// Reads until what was read so far contains `want` (or EOF); returns all of it.
async fn read_until(tcp: &mut TcpStream, seen: &mut Vec<u8>, want: &str) -> String {
    within(async {
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(seen).contains(want) {
            let n = tcp.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    String::from_utf8_lossy(seen).into_owned()
}

/// Opens `path` as a GET on a connection that first served `/health`: the stream is the
/// connection's second request, so hyper serves it (chunked).
async fn get_after_health(addr: std::net::SocketAddr, path: &str) -> (TcpStream, Vec<u8>) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    read_until(&mut tcp, &mut seen, "\r\n\r\nok").await;
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    (tcp, seen)
}

/// The first request of a connection: the stream gets the socket, its body is
/// close-delimited, and the close is the end of the connection.
#[tokio::test]
async fn a_stream_sends_its_head_preamble_and_chunks_in_order_then_ends_on_close() {
    let mut srv = TestServer::start(config()).await;
    let mut tcp = get(srv.addr, "/events").await;
    let conn = srv.next_open().await;
    assert!(conn.is_event_stream());
    let body = Bytes::from_static(b"data: shared\n\n");
    conn.send_chunk(Bytes::from_static(b"id: 1\n"), &body, false)
        .unwrap();
    conn.send_chunk(Bytes::new(), &body, false).unwrap();
    let mut seen = Vec::new();
    let text = read_until(&mut tcp, &mut seen, "data: shared\n\ndata: shared").await;
    let (head, body_text) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(head.contains("content-type: text/event-stream"), "{text}");
    assert!(head.contains("connection: close"), "{text}");
    assert!(!head.contains("transfer-encoding"), "{text}");
    assert_eq!(
        body_text,
        "retry: 1000\n\nid: 1\ndata: shared\n\ndata: shared\n\n"
    );
    conn.close(1000, "done");
    let info = srv.close_of(conn.id()).await;
    assert_eq!(
        (info.code, info.reason.as_str(), info.clean),
        (1000, "done", true)
    );
    let mut rest = Vec::new();
    within(tcp.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty(), "nothing after the close: {rest:?}");
    assert_eq!(
        conn.send_chunk(Bytes::new(), &body, false),
        Err(SendError::Closed)
    );
}

/// A fan-out writes an idle stream on its own socket directly (no wake-up of its task),
/// and coalesces while the socket is busy, as for a WebSocket.
#[tokio::test]
async fn a_fan_out_writes_an_own_socket_stream_directly() {
    let mut srv = TestServer::start(config()).await;
    let mut tcp = get(srv.addr, "/events").await;
    let conn = srv.next_open().await;
    let mut seen = Vec::new();
    read_until(&mut tcp, &mut seen, "retry: 1000\n\n").await;
    // The head is out once the preamble arrived; the task attaches the socket right after.
    let writers = ws_server::Writers::new(1);
    let before = srv.server.stats().snapshot().direct_writes;
    let body = Bytes::from_static(b"data: direct\n\n");
    within(async {
        loop {
            let mut out = writers.fan_out();
            out.send_chunk(&conn, Bytes::from_static(b"id: 7\n"), &body)
                .unwrap();
            drop(out);
            let seen_text = read_until(&mut tcp, &mut seen, "data: direct\n\n").await;
            assert!(
                seen_text.ends_with("id: 7\ndata: direct\n\n"),
                "{seen_text}"
            );
            seen.clear();
            if srv.server.stats().snapshot().direct_writes > before {
                break;
            }
        }
    })
    .await;
}

/// A stream asked for on a connection that already served a request goes through hyper:
/// chunked, ended by the last chunk.
#[tokio::test]
async fn a_stream_on_a_reused_connection_is_chunked_by_hyper() {
    let mut srv = TestServer::start(config()).await;
    let (mut tcp, mut seen) = get_after_health(srv.addr, "/events").await;
    let conn = srv.next_open().await;
    assert!(conn.is_event_stream());
    let body = Bytes::from_static(b"data: shared\n\n");
    conn.send_chunk(Bytes::from_static(b"id: 1\n"), &body, false)
        .unwrap();
    let text = read_until(&mut tcp, &mut seen, "id: 1\ndata: shared").await;
    assert!(text.contains("transfer-encoding: chunked"), "{text}");
    conn.close(1000, "done");
    let text = read_until(&mut tcp, &mut seen, "\r\n0\r\n\r\n").await;
    assert!(
        text.ends_with("\r\n0\r\n\r\n"),
        "the chunked body ends: {text}"
    );
    let info = srv.close_of(conn.id()).await;
    assert_eq!(
        (info.code, info.reason.as_str(), info.clean),
        (1000, "done", true)
    );
}

#[tokio::test]
async fn a_client_that_leaves_ends_its_stream_with_1006() {
    let mut srv = TestServer::start(config()).await;
    let tcp = get(srv.addr, "/events?hb").await;
    let conn = srv.next_open().await;
    drop(tcp);
    // The heartbeat's write finds the socket gone.
    let info = srv.close_of(conn.id()).await;
    assert_eq!((info.code, info.clean), (1006, false));
    assert!(conn.is_closed());
}

#[tokio::test]
async fn an_idle_stream_gets_heartbeats() {
    let mut srv = TestServer::start(config()).await;
    let mut tcp = get(srv.addr, "/events?hb").await;
    let _conn = srv.next_open().await;
    let mut seen = Vec::new();
    let text = read_until(&mut tcp, &mut seen, ": hb\n\n").await;
    assert!(text.contains(": hb\n\n"), "{text}");
}

#[tokio::test]
async fn a_refused_stream_gets_the_handlers_answer_and_never_opens() {
    let mut srv = TestServer::start(config()).await;
    let mut tcp = get(srv.addr, "/events-refused").await;
    let mut seen = Vec::new();
    let text = read_until(&mut tcp, &mut seen, "no token").await;
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    // The next event is this WebSocket's open, not a stream's.
    let mut ws = ws_server::client::connect(&srv.url("/")).await.unwrap();
    let conn = srv.next_open().await;
    assert!(!conn.is_event_stream());
    assert_eq!(
        conn.send_chunk(Bytes::new(), &Bytes::from_static(b"x"), false),
        Err(SendError::NotAStream)
    );
    ws.close(1000, "").await.unwrap();
}

async fn stalled_reader_case(reused: bool) {
    let mut cfg = config();
    cfg.outbound_queue_bytes = 64 << 10;
    let mut srv = TestServer::start(cfg).await;
    let _stalled = if reused {
        get_after_health(srv.addr, "/events").await.0
    } else {
        get(srv.addr, "/events").await
    };
    let stalled = srv.next_open().await;
    let mut reader = get(srv.addr, "/events").await;
    let live = srv.next_open().await;
    let body = Bytes::from(vec![b'x'; 16 << 10]);
    let mut refused = false;
    for _ in 0..10_000 {
        let _ = live.send_chunk(Bytes::new(), &Bytes::from_static(b"data: ok\n\n"), false);
        if stalled.send_chunk(Bytes::new(), &body, false) == Err(SendError::Full) {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(refused, "the stalled stream's queue never filled");
    let info = srv.close_of(stalled.id()).await;
    assert_eq!(info.code, 1008);
    let mut seen = Vec::new();
    let text = read_until(&mut reader, &mut seen, "data: ok").await;
    assert!(text.contains("data: ok"));
    assert!(!live.is_closed());
}

#[tokio::test]
async fn a_stalled_reader_meets_the_overflow_policy_and_slows_no_one() {
    stalled_reader_case(false).await;
}

#[tokio::test]
async fn a_stalled_reader_through_hyper_meets_the_overflow_policy_too() {
    stalled_reader_case(true).await;
}
