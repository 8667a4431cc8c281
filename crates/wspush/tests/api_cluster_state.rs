//! The HTTP API answers for the whole cluster with the Redis broker (a real
//! `redis-server` per test, real wspush nodes): presence, channels and info of every node
//! through any node, by-user subscribe / unsubscribe / disconnect reaching the user on
//! every node, live (`skip_history`) publishes, a node that dies dropping out, and Redis
//! down as 503.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "stock/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::collections::BTreeSet;
use std::time::Duration;

use common::http::Http;
use common::redis_server::{Node, Redis, WAIT, recv_text, wait_until_published_to};
use msgpack_rpc::Value;
use serde_json::{Value as Json, json};
use tokio::time::timeout;
use ws_proto::Event;
use ws_server::client::Client as Ws;

const SECRET: &str = "cluster-state-jwt";

fn token(sub: &str) -> String {
    common::jwt(SECRET, sub, &["*"])
}

/// `n` nodes with JWT on, every one subscribed.
async fn nodes(redis: &Redis, n: u64) -> Vec<Node> {
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(Node::start_with(redis, |s| s.jwt_secret = Some(SECRET.into())).await);
    }
    wait_until_published_to(&nodes[0], n).await;
    nodes
}

/// `user`'s browser on `node` (on `channel` when not empty), registered; its id.
async fn open(node: &mut Node, user: &str, channel: &str) -> (Ws, u64) {
    let channel = match channel {
        "" => String::new(),
        c => format!("&channel={c}"),
    };
    node.open(&format!("?token={}{channel}", token(user))).await
}

/// One API call on `node`: (status, body).
async fn call(node: &Node, method: &str, body: Json) -> (u16, Json) {
    let mut http = Http::connect(node.server.api_addr).await;
    let r = http.api(&format!("/api/{method}"), &body.to_string()).await;
    (r.status, r.json())
}

/// The result of a call that must succeed.
async fn ok(node: &Node, method: &str, body: Json) -> Json {
    let (status, reply) = call(node, method, body).await;
    assert_eq!(status, 200, "{method}: {reply}");
    assert!(reply.get("error").is_none(), "{method}: {reply}");
    reply["result"].clone()
}

/// The next close frame's code (data before it is skipped).
async fn close_code(ws: &mut Ws) -> u16 {
    timeout(WAIT, async {
        loop {
            match ws.recv().await.unwrap() {
                Some(Event::Close(frame)) => return frame.code,
                Some(_) => continue,
                None => panic!("ended without a close frame"),
            }
        }
    })
    .await
    .expect("no close in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_channels_and_info_are_the_whole_clusters_on_any_node() {
    let redis = Redis::start().await;
    let mut nodes = nodes(&redis, 2).await;
    let (_alice, alice) = open(&mut nodes[0], "alice", "news").await;
    let (_bob, bob) = open(&mut nodes[1], "bob", "news").await;
    let (_bob2, _) = open(&mut nodes[1], "bob", "sport").await;

    for node in &nodes {
        let p = ok(node, "presence", json!({"channel": "news"})).await;
        let (a, b) = (alice.to_string(), bob.to_string());
        assert_eq!(
            p["presence"],
            json!({ &a: {"client": &a, "user": "alice"}, &b: {"client": &b, "user": "bob"} })
        );
        let s = ok(node, "presence_stats", json!({"channel": "news"})).await;
        assert_eq!(s, json!({"num_clients": 2, "num_users": 2}));
        let c = ok(node, "channels", json!({})).await;
        assert_eq!(
            c["channels"],
            json!({"news": {"num_clients": 2}, "sport": {"num_clients": 1}})
        );
        let c = ok(node, "channels", json!({"pattern": "sp*"})).await;
        assert_eq!(c["channels"], json!({"sport": {"num_clients": 1}}));

        let info = ok(node, "info", json!({})).await;
        let list = info["nodes"].as_array().unwrap();
        assert_eq!(list.len(), 2, "{info}");
        let clients: Vec<u64> = list
            .iter()
            .map(|n| n["num_clients"].as_u64().unwrap())
            .collect();
        assert_eq!(clients, [1, 2], "ordered by node number: {info}");
        let names: BTreeSet<&str> = list.iter().map(|n| n["name"].as_str().unwrap()).collect();
        assert_eq!(names.len(), 2, "{info}");
        assert_eq!(list[1]["num_subs"], 2);
    }
    // RPC `channels()` is the cluster's too.
    let c = nodes[1].call("channels", vec![]).await.unwrap();
    assert_eq!(
        c,
        Value::Map(vec![
            (Value::from("news"), Value::from(2)),
            (Value::from("sport"), Value::from(1)),
        ])
    );
    // Node B asked 5 surveys and RPC one; node A answered those and its own 5.
    assert!(nodes[1].counter("broker_surveys").await >= 6);
    assert!(nodes[0].counter("broker_survey_answers").await >= 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_user_commands_on_one_node_reach_the_user_on_every_node() {
    let redis = Redis::start().await;
    let mut nodes = nodes(&redis, 2).await;
    let (mut on_a, _) = open(&mut nodes[0], "alice", "").await;
    let (mut kept, kept_id) = open(&mut nodes[0], "alice", "").await;
    let (mut on_b, _) = open(&mut nodes[1], "alice", "").await;
    let (mut carol, _) = open(&mut nodes[0], "carol", "").await;

    // Subscribe through node B: alice's connections on both nodes join.
    let r = ok(
        &nodes[1],
        "subscribe",
        json!({"user": "alice", "channel": "later"}),
    )
    .await;
    assert_eq!(r, json!({}));
    let s = ok(&nodes[0], "presence_stats", json!({"channel": "later"})).await;
    assert_eq!(s, json!({"num_clients": 3, "num_users": 1}));
    ok(
        &nodes[1],
        "publish",
        json!({"channel": "later", "data": "joined"}),
    )
    .await;
    for ws in [&mut on_a, &mut kept, &mut on_b] {
        assert_eq!(recv_text(ws).await, "\"joined\"");
    }

    // Unsubscribe through node A: none of them gets the next publish; the marker after
    // it (to the user) is the next thing each receives.
    ok(
        &nodes[0],
        "unsubscribe",
        json!({"user": "alice", "channel": "later"}),
    )
    .await;
    ok(
        &nodes[1],
        "publish",
        json!({"channel": "later", "data": "gone"}),
    )
    .await;
    ok(
        &nodes[1],
        "send_user",
        json!({"user": "alice", "data": "marker"}),
    )
    .await;
    for ws in [&mut on_a, &mut kept, &mut on_b] {
        assert_eq!(recv_text(ws).await, "\"marker\"");
    }
    let p = ok(&nodes[1], "presence", json!({"channel": "later"})).await;
    assert_eq!(p["presence"], json!({}));

    // Disconnect through node B, one of alice's connections on A kept: the others get
    // the close code; carol and the kept one stay.
    let body = json!({
        "user": "alice",
        "whitelist": [kept_id.to_string()],
        "disconnect": {"code": 4001, "reason": "bye"},
    });
    assert_eq!(ok(&nodes[1], "disconnect", body).await, json!({}));
    assert_eq!(close_code(&mut on_a).await, 4001);
    assert_eq!(close_code(&mut on_b).await, 4001);
    ok(
        &nodes[1],
        "send_user",
        json!({"user": "alice", "data": "still"}),
    )
    .await;
    assert_eq!(recv_text(&mut kept).await, "\"still\"");
    ok(
        &nodes[1],
        "send_user",
        json!({"user": "carol", "data": "here"}),
    )
    .await;
    assert_eq!(recv_text(&mut carol).await, "\"here\"");

    // Without a code: Centrifugo's 3503 "force disconnect".
    let body = json!({"user": "alice"});
    ok(&nodes[1], "disconnect", body).await;
    assert_eq!(close_code(&mut kept).await, 3503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_history_is_live_on_every_node_and_kept_nowhere() {
    let redis = Redis::start().await;
    let mut nodes = nodes(&redis, 2).await;
    let query = format!("?token={}&channel=news&positions=1", token("u"));
    let (mut ws, _) = nodes[1].open(&query).await;
    let r = ok(
        &nodes[0],
        "publish",
        json!({"channel": "news", "data": "live", "skip_history": true}),
    )
    .await;
    assert_eq!(
        r,
        json!({}),
        "no position for a message that is not numbered"
    );
    let r = ok(
        &nodes[0],
        "publish",
        json!({"channel": "news", "data": "kept"}),
    )
    .await;
    assert_eq!(r["offset"], 1);
    let (head, data) = common::redis_server::recv_positioned(&mut ws).await;
    assert_eq!((head, data.as_str()), (json!({"c": "news"}), "\"live\""));
    let (head, data) = common::redis_server::recv_positioned(&mut ws).await;
    assert_eq!((head["q"].as_u64(), data.as_str()), (Some(1), "\"kept\""));
    assert!(head.get("gap").is_none(), "{head}");
    let h = ok(
        &nodes[1],
        "history",
        json!({"channel": "news", "limit": -1}),
    )
    .await;
    assert_eq!(h["publications"], json!([{"data": "kept", "offset": 1}]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_dies_drops_out_of_presence_and_info() {
    let redis = Redis::start().await;
    let mut nodes = [Node::start(&redis).await];
    let url = redis.url();
    let other = harness::Wspush::spawn_with(
        &[
            "--ws",
            "127.0.0.1:0",
            "--rpc",
            "127.0.0.1:0",
            "--broker",
            &url,
            "--broker-timeout-ms",
            "1000",
        ],
        &[],
    )
    .await;
    wait_until_published_to(&nodes[0], 2).await;
    let (_here, here) = nodes[0].open("?channel=news").await;
    let _there = ws_server::client::connect(&format!("ws://{}/?channel=news", other.ws))
        .await
        .unwrap();
    // Bounded wait until node A sees the other node's browser (it registers after its 101).
    let clients = |p: &Json| p["presence"].as_object().map_or(0, |m| m.len());
    let mut seen = 0;
    for _ in 0..500 {
        let (status, reply) = call(&nodes[0], "presence", json!({"channel": "news"})).await;
        assert_eq!(status, 200, "{reply}");
        seen = clients(&reply["result"]);
        if seen == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen, 2);
    assert_eq!(
        ok(&nodes[0], "info", json!({})).await["nodes"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    other.kill().await;
    // Redis drops its subscription with its process: within the broker timeout the
    // cluster is this node alone. Meanwhile an answer is whole or a 503, never partial.
    let mut alone = false;
    for _ in 0..500 {
        let (status, reply) = call(&nodes[0], "info", json!({})).await;
        match status {
            503 => assert_eq!(reply["error"]["code"], 100, "{reply}"),
            200 if reply["result"]["nodes"].as_array().unwrap().len() == 1 => {
                alone = true;
                break;
            }
            200 => {}
            other => panic!("{other}: {reply}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(alone, "the dead node never dropped out of info");
    let p = ok(&nodes[0], "presence", json!({"channel": "news"})).await;
    assert_eq!(
        p["presence"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        [&here.to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_503_for_every_cluster_read_and_by_user_command() {
    let mut redis = Redis::start().await;
    let mut nodes = nodes(&redis, 2).await;
    let (_ws, _) = open(&mut nodes[0], "alice", "news").await;
    redis.stop().await;
    for (method, body) in [
        ("presence", json!({"channel": "news"})),
        ("presence_stats", json!({"channel": "news"})),
        ("channels", json!({})),
        ("info", json!({})),
        ("subscribe", json!({"user": "alice", "channel": "x"})),
        ("unsubscribe", json!({"user": "alice", "channel": "news"})),
        ("disconnect", json!({"user": "alice"})),
        (
            "publish",
            json!({"channel": "news", "data": 1, "skip_history": true}),
        ),
    ] {
        let (status, reply) = call(&nodes[1], method, body).await;
        assert_eq!(status, 503, "{method}: {reply}");
        assert_eq!(reply["error"]["code"], 100, "{method}: {reply}");
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("broker"), "{method}: {message}");
    }
    let e = nodes[1].call("channels", vec![]).await.unwrap_err();
    assert!(e.to_string().contains("broker"), "{e}");
    assert!(nodes[1].counter("broker_survey_errors").await >= 4);
}
