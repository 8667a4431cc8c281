//! Rust client ↔ Rust server over 127.0.0.1: messages, fragments, compression, pings,
//! close codes, handler events, sends from other tasks.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{Ev, TestServer, config, expect_close, frame, within};
use ws_proto::frame::OpCode;
use ws_proto::handshake::DeflateConfig;
use ws_proto::{Event, Message, PreparedMessage};
use ws_server::client::{self, ClientConfig};

#[tokio::test]
async fn text_and_binary_are_echoed_and_events_reported() {
    let mut srv = TestServer::start(config()).await;
    let mut cfg = ClientConfig::default();
    cfg.headers.push(("X-Test".into(), "yes".into()));
    cfg.protocols = vec!["other".into(), "chat".into()];
    let mut ws = client::connect_with(&srv.url("/room/1?user=ann"), cfg)
        .await
        .unwrap();
    assert_eq!(ws.protocol(), Some("chat"));
    let Ev::Open {
        conn,
        path,
        query,
        header,
    } = srv.next().await
    else {
        panic!("no open")
    };
    assert_eq!(
        (path.as_str(), query.as_deref(), header.as_deref()),
        ("/room/1", Some("user=ann"), Some("yes"))
    );
    assert!(conn.peer_addr().ip().is_loopback());

    ws.send_text("héllo").await.unwrap();
    assert_eq!(
        ws.recv_message().await.unwrap(),
        Some(Message::text("héllo"))
    );
    ws.send_binary(vec![0u8, 1, 2, 255]).await.unwrap();
    assert_eq!(
        ws.recv_message().await.unwrap(),
        Some(Message::binary(vec![0u8, 1, 2, 255]))
    );
    let Ev::Message { id, msg } = srv.next().await else {
        panic!()
    };
    assert_eq!((id, msg), (conn.id(), Message::text("héllo")));

    let peer = ws.close(4000, "done").await.unwrap().unwrap();
    assert_eq!(peer.code, 4000);
    let info = srv.close_of(conn.id()).await;
    assert_eq!(
        (info.code, info.reason.as_str(), info.clean),
        (4000, "done", true)
    );
    let stats = srv.server.stats().snapshot();
    assert_eq!((stats.connections_total, stats.connections_open), (1, 0));
    assert!(stats.closes_by_code.contains(&(4000, 1)));
}

#[tokio::test]
async fn large_and_compressed_messages() {
    let mut c = config();
    c.proto.max_message_size = 8 << 20;
    c.proto.max_frame_size = 8 << 20;
    c.outbound_queue_bytes = 16 << 20;
    let srv = TestServer::start(c).await;
    let mut cfg = ClientConfig::default();
    cfg.proto.max_message_size = 8 << 20;
    cfg.proto.max_frame_size = 8 << 20;
    let mut ws = client::connect_with(&srv.url("/"), cfg.clone())
        .await
        .unwrap();
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    ws.send_binary(big.clone()).await.unwrap();
    assert_eq!(ws.recv_message().await.unwrap(), Some(Message::binary(big)));

    cfg.deflate = Some(DeflateConfig::default());
    let mut ws = client::connect_with(&srv.url("/"), cfg).await.unwrap();
    assert!(ws.is_compressed());
    let text = "compress me please ".repeat(10_000);
    let before = srv.server.stats().snapshot().bytes_sent;
    for _ in 0..3 {
        ws.send_text(text.clone()).await.unwrap();
        assert_eq!(
            ws.recv_message().await.unwrap(),
            Some(Message::text(text.clone()))
        );
    }
    assert!(srv.server.stats().snapshot().bytes_sent - before < text.len() as u64);
}

#[tokio::test]
async fn fragmented_message_with_interleaved_ping() {
    let srv = TestServer::start(config()).await;
    let mut ws = client::connect(&srv.url("/")).await.unwrap();
    let mut raw = frame(false, OpCode::Text, b"Hel");
    raw.extend(frame(true, OpCode::Ping, b"p"));
    raw.extend(frame(false, OpCode::Continuation, b"lo, "));
    ws.send_raw(&raw).await.unwrap();
    ws.send_raw(&frame(true, OpCode::Continuation, "wörld".as_bytes()))
        .await
        .unwrap();
    let pong = within(ws.recv()).await.unwrap();
    assert_eq!(pong, Some(Event::Pong(bytes::Bytes::from_static(b"p"))));
    assert_eq!(
        ws.recv_message().await.unwrap(),
        Some(Message::text("Hello, wörld"))
    );
}

#[tokio::test]
async fn ping_is_answered() {
    let srv = TestServer::start(config()).await;
    let mut ws = client::connect(&srv.url("/")).await.unwrap();
    ws.ping(&b"are you there"[..]).await.unwrap();
    assert_eq!(
        within(ws.recv()).await.unwrap(),
        Some(Event::Pong(bytes::Bytes::from_static(b"are you there")))
    );
}

#[tokio::test]
async fn protocol_violation_closes_with_1002() {
    let mut srv = TestServer::start(config()).await;
    let mut ws = client::connect(&srv.url("/")).await.unwrap();
    let conn = srv.next_open().await;
    // An unmasked client frame: RFC 6455 §5.1 says the server must close.
    ws.send_raw(&[0x81, 0x02, b'h', b'i']).await.unwrap();
    assert_eq!(expect_close(&mut ws).await.code, 1002);
    let info = srv.close_of(conn.id()).await;
    assert_eq!((info.code, info.clean), (1002, false));
}

#[tokio::test]
async fn server_close_and_send_from_another_task() {
    let mut srv = TestServer::start(config()).await;
    let mut ws = client::connect(&srv.url("/")).await.unwrap();
    let conn = srv.next_open().await;
    let sender = conn.clone();
    tokio::spawn(async move {
        sender.send_text("from elsewhere").unwrap();
        let prepared = Arc::new(PreparedMessage::new(Message::binary(vec![9u8; 3000])));
        sender.send_prepared(&prepared).unwrap();
        sender.close(3001, "bye");
        assert_eq!(sender.send_text("late"), Err(ws_server::SendError::Closed));
    })
    .await
    .unwrap();
    assert_eq!(
        ws.recv_message().await.unwrap(),
        Some(Message::text("from elsewhere"))
    );
    assert_eq!(
        ws.recv_message().await.unwrap(),
        Some(Message::binary(vec![9u8; 3000]))
    );
    let close = expect_close(&mut ws).await;
    assert_eq!((close.code, close.reason.as_str()), (3001, "bye"));
    let info = srv.close_of(conn.id()).await;
    assert_eq!((info.code, info.clean), (3001, true));
}

#[tokio::test]
async fn prepared_message_reaches_plain_and_compressed_connections() {
    let mut srv = TestServer::start(config()).await;
    let mut plain = client::connect(&srv.url("/")).await.unwrap();
    let a = srv.next_open().await;
    let mut cfg = ClientConfig::default();
    cfg.deflate = Some(DeflateConfig::default());
    let mut deflated = client::connect_with(&srv.url("/"), cfg).await.unwrap();
    let b = srv.next_open().await;
    let text = "shared frame ".repeat(100);
    let prepared = Arc::new(PreparedMessage::new(Message::text(text.clone())));
    for conn in [&a, &b] {
        conn.send_prepared(&prepared).unwrap();
    }
    assert_eq!(
        plain.recv_message().await.unwrap(),
        Some(Message::text(text.clone()))
    );
    assert_eq!(
        deflated.recv_message().await.unwrap(),
        Some(Message::text(text))
    );
    assert_eq!(srv.server.stats().snapshot().messages_sent, 2);
}

/// `on_open` runs before the `101` goes out: when `connect` returns, the handler already
/// knows the connection (nothing sent to it afterwards can be missed), and whatever
/// `on_open` queued arrives first. Also: a client that leaves before the `101` still
/// gets its `on_close`.
#[tokio::test]
async fn on_open_happens_before_the_client_sees_the_connection_open() {
    let mut srv = TestServer::start(config()).await;
    let mut ws = within(client::connect(&srv.url("/"))).await.unwrap();
    // No waiting: the open event is already there.
    let Ok(Ev::Open { conn, .. }) = srv.events.try_recv() else {
        panic!("on_open had not run when the client saw 101")
    };
    assert_eq!(srv.server.connections().len(), 1);
    conn.send_text("right after open").unwrap();
    assert_eq!(
        within(ws.recv_message()).await.unwrap(),
        Some(Message::text("right after open"))
    );
    ws.close(1000, "").await.unwrap();
    srv.close_of(conn.id()).await;
}
