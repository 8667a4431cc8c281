//! An independent client: the Python `websockets` package against our server.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Ev, TestServer, config, python};

#[tokio::test]
async fn python_websockets_client_round_trips() {
    let mut srv = TestServer::start(config()).await;
    let url = srv.url("/py");
    let out = python("echo_client.py", &[&url]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    // Its two connections: the first closed with 4001, the second with 1000, both cleanly.
    let mut closes = Vec::new();
    while closes.len() < 2 {
        if let Ev::Close { info, .. } = srv.next().await {
            closes.push((info.code, info.clean));
        }
    }
    assert_eq!(closes, vec![(4001, true), (1000, true)]);
    let stats = srv.server.stats().snapshot();
    assert_eq!(stats.messages_received, 6);
}
