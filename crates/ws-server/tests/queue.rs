//! Outbound queue policies: a client that never reads fills only its own queue; the sender
//! never waits; the policy (close 1008 or drop) applies and is counted; others are unaffected.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{TestServer, config, within};
use ws_proto::{Event, Message};
use ws_server::client;
use ws_server::{OverflowPolicy, SendError};

/// Sends 16 KiB messages until the queue refuses one (bounded: the kernel buffers of a
/// loopback connection hold a few MiB at most).
fn fill(conn: &ws_server::Connection) -> usize {
    let chunk = bytes::Bytes::from(vec![7u8; 16 * 1024]);
    for sent in 0..100_000 {
        match conn.send_binary(chunk.clone()) {
            Ok(()) => {}
            Err(SendError::Full) => return sent,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    panic!("queue never filled");
}

#[tokio::test]
async fn stalled_client_is_closed_with_1008_and_others_are_unaffected() {
    let mut c = config();
    c.outbound_queue_bytes = 64 * 1024;
    c.close_timeout = Duration::from_millis(300);
    let mut srv = TestServer::start(c).await;
    let _stalled = client::connect(&srv.url("/")).await.unwrap();
    let stalled = srv.next_open().await;
    let mut healthy = client::connect(&srv.url("/")).await.unwrap();
    srv.next_open().await;

    fill(&stalled);
    assert_eq!(stalled.send_text("more"), Err(SendError::Closed));
    healthy.send_text("still fast").await.unwrap();
    assert_eq!(
        healthy.recv_message().await.unwrap(),
        Some(Message::text("still fast"))
    );

    // The stalled peer never answers the close: dropped after the close timeout.
    let info = srv.close_of(stalled.id()).await;
    assert_eq!(
        (info.code, info.reason.as_str(), info.clean),
        (1008, "slow consumer", false)
    );
    let stats = srv.server.stats().snapshot();
    assert_eq!(stats.overflow_closes, 1);
    assert_eq!(stats.connections_open, 1);
}

#[tokio::test]
async fn drop_policy_refuses_and_counts_but_keeps_the_connection() {
    let mut c = config();
    c.outbound_queue_bytes = 64 * 1024;
    c.overflow = OverflowPolicy::Drop;
    let mut srv = TestServer::start(c).await;
    let mut ws = client::connect(&srv.url("/")).await.unwrap();
    let conn = srv.next_open().await;
    let sent = fill(&conn);
    assert_eq!(conn.dropped_messages(), 1);
    assert!(!conn.is_closed());
    assert!(conn.queued_bytes() <= 64 * 1024);
    assert_eq!(srv.server.stats().snapshot().dropped_messages, 1);
    // Reading catches up and the connection still works.
    for _ in 0..sent {
        within(ws.recv_message()).await.unwrap().unwrap();
    }
    // The pong proves the server task went round its loop after the last write, which
    // releases the written bytes from the queue's count.
    ws.ping(&b"sync"[..]).await.unwrap();
    assert!(matches!(
        within(ws.recv()).await.unwrap(),
        Some(Event::Pong(_))
    ));
    assert_eq!(conn.queued_bytes(), 0);
    conn.send_text("after").unwrap();
    assert_eq!(
        within(ws.recv_message()).await.unwrap(),
        Some(Message::text("after"))
    );
}
