//! Timeouts and shutdown: idle pings, dead peers, graceful shutdown with 1001.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{TestServer, config, expect_close, within};
use ws_proto::{Event, Message};
use ws_server::client;

#[tokio::test]
async fn idle_peers_are_pinged_and_dead_ones_dropped() {
    let mut c = config();
    c.ping_interval = Some(Duration::from_millis(100));
    c.pong_timeout = Duration::from_millis(200);
    let mut srv = TestServer::start(c).await;
    // Never reads, so never answers the ping: a dead peer.
    let _dead = client::connect(&srv.url("/")).await.unwrap();
    let dead = srv.next_open().await;
    let mut live = client::connect(&srv.url("/")).await.unwrap();
    let alive = srv.next_open().await;

    // The live client sees pings (and its recv loop answers them).
    assert!(matches!(
        within(live.recv()).await.unwrap(),
        Some(Event::Ping(_))
    ));
    let info = srv.close_of(dead.id()).await;
    assert_eq!((info.code, info.clean), (1006, false));
    assert_eq!(info.reason, "no pong before the deadline");
    // Two more pings answered: still open.
    for _ in 0..2 {
        assert!(matches!(
            within(live.recv()).await.unwrap(),
            Some(Event::Ping(_))
        ));
    }
    assert!(!alive.is_closed());
    live.send_text("still here").await.unwrap();
    assert_eq!(
        live.recv_message().await.unwrap(),
        Some(Message::text("still here"))
    );
}

#[tokio::test]
async fn graceful_shutdown_sends_1001_and_returns() {
    let mut srv = TestServer::start(config()).await;
    let mut a = client::connect(&srv.url("/")).await.unwrap();
    let ca = srv.next_open().await;
    let mut b = client::connect(&srv.url("/")).await.unwrap();
    let cb = srv.next_open().await;
    srv.shutdown();
    for ws in [&mut a, &mut b] {
        assert_eq!(expect_close(ws).await.code, 1001);
    }
    within(&mut srv.task).await.unwrap().unwrap();
    for id in [ca.id(), cb.id()] {
        let info = srv.close_of(id).await;
        assert_eq!((info.code, info.clean), (1001, true));
    }
    // The listener is gone.
    assert!(client::connect(&srv.url("/")).await.is_err());
}

#[tokio::test]
async fn shutdown_deadline_drops_peers_that_do_not_answer() {
    let mut c = config();
    c.shutdown_timeout = Duration::from_millis(200);
    c.close_timeout = Duration::from_secs(30);
    let mut srv = TestServer::start(c).await;
    let _silent = client::connect(&srv.url("/")).await.unwrap();
    let conn = srv.next_open().await;
    srv.shutdown();
    within(&mut srv.task).await.unwrap().unwrap();
    let info = srv.close_of(conn.id()).await;
    assert_eq!((info.code, info.clean), (1001, false));
}
