//! The HTTP API with the Redis broker (a real `redis-server` per test): a publish on one
//! node reaches a browser on another and answers the position the Lua script gave, history
//! reads the same on every node, and `broker unavailable` is a 503 in Centrifugo's error
//! shape.
#![allow(clippy::unwrap_used)]

mod common;

use common::http::Http;
use common::redis_server::{Redis, cluster, recv_text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_publishes_with_positions_and_redis_down_is_503() {
    let mut redis = Redis::start().await;
    let mut nodes = cluster(&redis, 2).await;
    let (mut ws, _) = nodes[1].open("?channel=news").await;
    let mut api = Http::connect(nodes[0].server.api_addr).await;
    let r = api
        .api("/api/publish", r#"{"channel":"news","data":{"n":1}}"#)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let result = r.json()["result"].clone();
    assert_eq!(result["offset"], 1);
    let epoch = result["epoch"].as_str().unwrap().to_owned();
    assert!(!epoch.is_empty());
    assert_eq!(recv_text(&mut ws).await, r#"{"n":1}"#);
    let r = api.post("/pub/news", &[], b"two").await;
    assert_eq!(r.json()["offset"], 2);
    assert_eq!(recv_text(&mut ws).await, "two");

    // Either node reads the same history from Redis.
    for node in &nodes {
        let mut api = Http::connect(node.server.api_addr).await;
        let h = api
            .api("/api/history", r#"{"channel":"news","limit":-1}"#)
            .await
            .json();
        assert_eq!(h["result"]["epoch"], epoch.as_str());
        assert_eq!(h["result"]["publications"][1]["data"], "two");
    }

    redis.stop().await;
    let r = api
        .api("/api/publish", r#"{"channel":"news","data":3}"#)
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], 100);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.starts_with("broker"), "{msg}");
    assert!(nodes[0].counter("api_errors_503").await >= 1);
}
