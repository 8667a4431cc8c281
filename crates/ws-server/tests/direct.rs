//! `Connection::send_prepared_now`: senders write whole frames to an idle socket
//! themselves. Whatever mix of direct and queued sends, from however many tasks, every
//! frame arrives intact and each sender's messages keep their order; the rest of a frame
//! the socket took only in part goes out before anything else (a pong included).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{TestServer, config, frame, within};
use ws_proto::frame::OpCode;
use ws_proto::handshake::DeflateConfig;
use ws_proto::{Event, Message, PreparedMessage};
use ws_server::client::{self, ClientConfig};
use ws_server::{Connection, Handler, Server};

/// Echoes through the direct path, as `examples/echo --direct` does.
struct DirectEcho;

impl Handler for DirectEcho {
    async fn on_message(&self, conn: &Connection, msg: Message) {
        let _ = conn.send_prepared_now(&Arc::new(PreparedMessage::new(msg)));
    }
}

/// Autobahn 5.6: a ping between two fragments is answered before the echo of the message,
/// even when the echo is written directly by the handler.
#[tokio::test]
async fn a_pong_made_before_a_direct_reply_goes_out_first() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(config(), DirectEcho);
    tokio::spawn(server.serve(listener, std::future::pending::<()>()));
    let mut ws = client::connect(&format!("ws://{addr}/")).await.unwrap();
    let mut burst = frame(false, OpCode::Text, b"fragment1");
    burst.extend(frame(true, OpCode::Ping, b"ping payload"));
    burst.extend(frame(true, OpCode::Continuation, b"fragment2"));
    ws.send_raw(&burst).await.unwrap();
    match within(ws.recv()).await.unwrap() {
        Some(Event::Pong(p)) => assert_eq!(&p[..], b"ping payload"),
        other => panic!("expected the pong first, got {other:?}"),
    }
    assert_eq!(
        within(ws.recv_message()).await.unwrap(),
        Some(Message::text("fragment1fragment2"))
    );
}

fn prepared(msg: Message) -> Arc<PreparedMessage> {
    Arc::new(PreparedMessage::new(msg))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_and_queued_sends_from_many_tasks_keep_each_senders_order() {
    const SENDERS: usize = 4;
    const EACH: usize = 2_000;
    let mut c = config();
    c.outbound_queue_bytes = 64 << 20;
    let mut srv = TestServer::start(c).await;
    let mut ws = client::connect(&srv.url("/")).await.unwrap();
    let conn = srv.next_open().await;
    let senders: Vec<_> = (0..SENDERS)
        .map(|k| {
            let conn = conn.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    // Sizes vary so some frames straddle socket buffer boundaries.
                    let text = format!("{k}:{i}:{}", "x".repeat(i % 700));
                    match i % 3 {
                        0 => conn.send_prepared_now(&prepared(Message::text(text))),
                        1 => conn.send_prepared(&prepared(Message::text(text))),
                        _ => conn.send_text(text),
                    }
                    .unwrap();
                    if i % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    let mut next = [0usize; SENDERS];
    for _ in 0..SENDERS * EACH {
        let Some(Message::Text(bytes)) = within(ws.recv_message()).await.unwrap() else {
            panic!("expected a text message");
        };
        let text = std::str::from_utf8(&bytes).unwrap();
        let mut parts = text.splitn(3, ':');
        let k: usize = parts.next().unwrap().parse().unwrap();
        let i: usize = parts.next().unwrap().parse().unwrap();
        assert_eq!(i, next[k], "sender {k} out of order");
        assert_eq!(parts.next().unwrap().len(), i % 700);
        next[k] += 1;
    }
    for s in senders {
        s.await.unwrap();
    }
    let stats = srv.server.stats().snapshot();
    assert_eq!(stats.messages_sent, (SENDERS * EACH) as u64);
}

/// A frame far larger than the socket buffers is written in part by the sender; the task
/// finishes it before the pong it owes and before later messages.
#[tokio::test]
async fn the_rest_of_a_partly_written_frame_goes_out_first() {
    let mut c = config();
    c.outbound_queue_bytes = 64 << 20;
    let mut srv = TestServer::start(c).await;
    let mut cfg = ClientConfig::default();
    cfg.proto.max_message_size = 32 << 20;
    cfg.proto.max_frame_size = 32 << 20;
    let mut ws = client::connect_with(&srv.url("/"), cfg).await.unwrap();
    let conn = srv.next_open().await;

    let big: Vec<u8> = (0..16_000_000u32).map(|i| (i % 251) as u8).collect();
    conn.send_prepared_now(&prepared(Message::binary(big.clone())))
        .unwrap();
    assert!(
        conn.queued_bytes() > 0,
        "16 MB cannot fit loopback socket buffers: the sender must have written a part"
    );
    // The server owes a pong while the rest of the big frame is pending.
    ws.ping("are you there").await.unwrap();
    conn.send_prepared_now(&prepared(Message::text("after")))
        .unwrap();
    conn.send_text("last").unwrap();

    let mut got = Vec::new();
    let mut pong = false;
    while got.len() < 3 {
        match within(ws.recv()).await.unwrap() {
            Some(Event::Message(m)) => got.push(m),
            Some(Event::Pong(p)) => {
                assert_eq!(&p[..], b"are you there");
                pong = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got[0], Message::binary(big));
    assert_eq!(got[1..], [Message::text("after"), Message::text("last")]);
    if !pong {
        match within(ws.recv()).await.unwrap() {
            Some(Event::Pong(p)) => assert_eq!(&p[..], b"are you there"),
            other => panic!("expected the pong, got {other:?}"),
        }
    }
    assert_eq!(conn.queued_bytes(), 0);
}

#[tokio::test]
async fn a_compressed_connection_gets_the_shared_compressed_frame_directly() {
    let mut srv = TestServer::start(config()).await;
    let mut cfg = ClientConfig::default();
    cfg.deflate = Some(DeflateConfig::default());
    let mut ws = client::connect_with(&srv.url("/"), cfg).await.unwrap();
    assert!(ws.is_compressed());
    let conn = srv.next_open().await;
    let text = "compress me ".repeat(1000);
    let msg = prepared(Message::text(text.clone()));
    conn.send_prepared_now(&msg).unwrap();
    assert_eq!(
        within(ws.recv_message()).await.unwrap(),
        Some(Message::text(text.clone()))
    );
    let sent = srv.server.stats().snapshot().bytes_sent;
    assert!(
        sent < text.len() as u64 / 4,
        "{sent} bytes sent for {} bytes of text: not compressed",
        text.len()
    );
}

#[tokio::test]
async fn sends_after_a_close_request_are_refused_and_the_close_comes_last() {
    let mut srv = TestServer::start(config()).await;
    let mut ws = client::connect(&srv.url("/")).await.unwrap();
    let conn = srv.next_open().await;
    conn.send_prepared_now(&prepared(Message::text("one")))
        .unwrap();
    conn.close(4000, "bye");
    assert_eq!(
        conn.send_prepared_now(&prepared(Message::text("two"))),
        Err(ws_server::SendError::Closed)
    );
    assert_eq!(
        within(ws.recv_message()).await.unwrap(),
        Some(Message::text("one"))
    );
    let close = common::expect_close(&mut ws).await;
    assert_eq!(close.code, 4000);
    assert_eq!(srv.close_of(conn.id()).await.code, 4000);
}

/// Frames a fan-out queues to one idle connection together are handed to a writer once and
/// leave in one write, in order.
#[tokio::test]
async fn frames_sent_together_leave_in_one_write_in_order() {
    let mut srv = TestServer::start(config()).await;
    let mut ws = client::connect(&srv.url("/")).await.unwrap();
    let conn = srv.next_open().await;
    let frames: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|t| prepared(Message::text(t)))
        .collect();
    let writers = ws_server::Writers::new(1);
    let mut outcomes = Vec::new();
    let mut out = writers.fan_out();
    out.send_all(&conn, &frames, |r| outcomes.push(r));
    // A fan-out to so few connections writes them here, as it ends: the counts are final.
    drop(out);
    assert_eq!(outcomes, [Ok(()), Ok(()), Ok(())]);
    for text in ["a", "b", "c"] {
        assert_eq!(
            within(ws.recv_message()).await.unwrap(),
            Some(Message::text(text))
        );
    }
    let stats = srv.server.stats().snapshot();
    assert_eq!((stats.direct_writes, stats.messages_sent), (1, 3));
}
