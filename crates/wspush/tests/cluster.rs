//! Three wspush nodes sharing a real `redis-server` (started by each test on
//! a free port in a temp dir): cross-node publish and send, resume on another
//! node, and a Redis restart in the middle.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::redis_server::{
    Redis, WAIT, cluster, field, recv_positioned, recv_text, seq, wait_until_published_to,
};
use msgpack_rpc::Value;
use serde_json::Value as Json;
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_on_any_node_reach_every_node_in_order() {
    let redis = Redis::start().await;
    let mut nodes = cluster(&redis, 3).await;
    let mut plain = Vec::new();
    let mut positioned = Vec::new();
    for node in nodes.iter_mut() {
        plain.push(node.open("?channel=c").await.0);
        positioned.push(node.open("?channel=c&positions=1").await.0);
    }
    const N: u32 = 50;
    let mut publishers = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        let rpc = node.rpc.clone();
        publishers.push(tokio::spawn(async move {
            for i in 0..N {
                let data = Value::from(format!("n{n}-{i}"));
                rpc.call("publish", vec![Value::from("c"), data])
                    .await
                    .unwrap();
            }
        }));
    }
    for p in publishers {
        p.await.unwrap();
    }
    for ws in plain.iter_mut() {
        let mut next = [0u32; 3];
        for _ in 0..3 * N {
            let text = recv_text(ws).await;
            let (n, i) = text[1..].split_once('-').unwrap();
            let (n, i): (usize, u32) = (n.parse().unwrap(), i.parse().unwrap());
            assert_eq!(i, next[n], "publisher {n} out of order");
            next[n] += 1;
        }
    }
    for ws in positioned.iter_mut() {
        let mut epoch = None;
        for expected in 1..=u64::from(3 * N) {
            let (head, _) = recv_positioned(ws).await;
            assert_eq!(seq(&head), expected, "{head}");
            let e = head["e"].as_str().unwrap().to_owned();
            assert_eq!(epoch.get_or_insert(e.clone()), &e);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_and_subscribe_reach_connections_on_other_nodes() {
    let redis = Redis::start().await;
    let mut nodes = cluster(&redis, 3).await;
    let (mut ws, id) = nodes[2].open("?x=1").await;
    let node_of_id = id >> 32;
    assert_ne!(node_of_id, 0, "ids carry their node: {id:#x}");
    let conns = nodes[2].call("connections", vec![]).await.unwrap();
    assert!(
        conns
            .to_string()
            .contains(&format!("\"node\": {node_of_id}")),
        "{conns}"
    );
    let reached = nodes[0]
        .call("send", vec![Value::from(id), Value::from("direct")])
        .await
        .unwrap();
    assert_eq!(reached, Value::Boolean(true));
    assert_eq!(recv_text(&mut ws).await, "direct");
    nodes[1]
        .call("subscribe", vec![Value::from(id), Value::from("later")])
        .await
        .unwrap();
    nodes[0]
        .call("publish", vec![Value::from("later"), Value::from("joined")])
        .await
        .unwrap();
    assert_eq!(recv_text(&mut ws).await, "joined");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_on_another_node_with_exactly_what_it_missed() {
    let redis = Redis::start().await;
    let mut nodes = cluster(&redis, 3).await;
    let (mut ws, _) = nodes[0].open("?channel=r&positions=1").await;
    for i in 1..=5 {
        let data = Value::from(format!("m{i}"));
        nodes[1]
            .call("publish", vec![Value::from("r"), data])
            .await
            .unwrap();
    }
    let mut last = Json::Null;
    for i in 1..=3 {
        let (head, data) = recv_positioned(&mut ws).await;
        assert_eq!((seq(&head), data), (i, format!("m{i}")));
        last = head;
    }
    drop(ws);
    for i in 6..=8 {
        let data = Value::from(format!("m{i}"));
        nodes[1]
            .call("publish", vec![Value::from("r"), data])
            .await
            .unwrap();
    }
    let since = format!("{}:3:r", last["e"].as_str().unwrap());
    let (mut ws, _) = nodes[2].open(&format!("?channel=r&since={since}")).await;
    nodes[0]
        .call("publish", vec![Value::from("r"), Value::from("m9")])
        .await
        .unwrap();
    for i in 4..=9 {
        let (head, data) = recv_positioned(&mut ws).await;
        assert_eq!(head.get("gap"), None, "{head}");
        assert_eq!((seq(&head), data), (i, format!("m{i}")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_fails_publishes_loudly_then_delivery_resumes_with_a_gap_notice() {
    let mut redis = Redis::start().await;
    let mut nodes = cluster(&redis, 3).await;
    let (mut ws, _) = nodes[1].open("?channel=o&positions=1").await;
    let (mut raw, _) = nodes[2].open("?channel=o").await;
    let publish = |data: &str| vec![Value::from("o"), Value::from(data)];
    nodes[0].call("publish", publish("before")).await.unwrap();
    let (before, _) = recv_positioned(&mut ws).await;
    assert_eq!(recv_text(&mut raw).await, "before");

    redis.stop().await;
    let err = nodes[0].call("publish", publish("lost")).await.unwrap_err();
    assert!(err.to_string().contains("broker"), "{err}");
    let err = nodes[2]
        .call("push_data", vec![Value::from("lost")])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("broker"), "{err}");

    redis.restart().await;
    wait_until_published_to(&nodes[0], 3).await;
    nodes[0].call("publish", publish("after")).await.unwrap();
    // Redis lost its keys: a new epoch. The positioned client is told.
    let (notice, _) = recv_positioned(&mut ws).await;
    assert_eq!(notice["gap"], Json::Bool(true), "{notice}");
    assert_ne!(notice["e"], before["e"]);
    let (head, data) = recv_positioned(&mut ws).await;
    assert_eq!((seq(&head), data.as_str()), (1, "after"));
    assert_eq!(recv_text(&mut raw).await, "after");

    // This node's own counters (the `cluster` sums may be a second old).
    assert!(nodes[0].counter("broker_publish_errors").await > 0);
    assert!(nodes[0].counter("broker_disconnects").await > 0);
    assert_eq!(nodes[0].counter("broker_connected").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_aggregate_across_nodes() {
    let redis = Redis::start().await;
    let mut nodes = cluster(&redis, 3).await;
    let mut browsers = Vec::new();
    for node in nodes.iter_mut() {
        browsers.push(node.open("").await.0);
    }
    // One broadcast reaches the three browsers, one per node.
    nodes[0]
        .call("push_data", vec![Value::from("x")])
        .await
        .unwrap();
    for ws in browsers.iter_mut() {
        assert_eq!(recv_text(ws).await, "x");
    }
    // Each node shares its counters every second; wait (bounded) until
    // node 0's cluster view counts all three browsers and deliveries.
    let cluster = timeout(WAIT, async {
        loop {
            let stats = nodes[0].call("stats", vec![]).await.unwrap();
            if let Some(cluster) = field(&stats, "cluster") {
                let nodes_seen = field(cluster, "nodes")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let connections = field(cluster, "connections").and_then(Value::as_u64);
                let deliveries = field(cluster, "deliveries").and_then(Value::as_u64);
                if nodes_seen == 3 && connections == Some(3) && deliveries >= Some(3) {
                    return cluster.clone();
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the cluster view never counted all three nodes");
    // The per-node view of node 0 still shows only its own browser.
    let own = nodes[0].call("stats", vec![]).await.unwrap();
    assert_eq!(field(&own, "connections"), Some(&Value::from(1)));
    assert_eq!(
        field(&cluster, "node"),
        None,
        "per-node facts are not summed"
    );
}

/// Server-Sent Events and long polls on a cluster: any node serves them, and a reconnect on
/// another node (Last-Event-ID, a poll's `next`) resumes from Redis with exactly what was
/// missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_and_polls_resume_on_any_node() {
    use common::sse::Sse;
    let redis = Redis::start().await;
    let mut nodes = cluster(&redis, 3).await;
    let addr0 = nodes[0].server.ws_addr;
    let mut sse = Sse::open(addr0, "/sse?channel=r", &[]).await;
    assert_eq!(sse.status, 200, "{}", sse.refusal);
    timeout(WAIT, async {
        while &nodes[0].events.recv().await.unwrap().method[..] != b"on_open" {}
    })
    .await
    .unwrap();
    for i in 1..=2 {
        let data = Value::from(format!("m{i}"));
        nodes[1]
            .call("publish", vec![Value::from("r"), data])
            .await
            .unwrap();
    }
    assert_eq!(sse.event().await.data, "m1");
    assert_eq!(sse.event().await.data, "m2");
    let last = sse.last_event_id();
    drop(sse);
    for i in 3..=4 {
        let data = Value::from(format!("m{i}"));
        nodes[1]
            .call("publish", vec![Value::from("r"), data])
            .await
            .unwrap();
    }
    let addr2 = nodes[2].server.ws_addr;
    let mut sse = Sse::open(addr2, "/sse?channel=r", &[("last-event-id", &last)]).await;
    assert_eq!(sse.event().await.data, "m3");
    assert_eq!(sse.event().await.data, "m4");

    // A poll on node 2 from the stream's start answers from Redis's history.
    let epoch = last
        .split('&')
        .find(|s| s.ends_with(":r"))
        .and_then(|s| s.strip_prefix("since="))
        .and_then(|s| s.split(':').next())
        .unwrap()
        .to_owned();
    let body = poll(
        addr2,
        &format!("/poll?channel=r&since={epoch}:2:r&timeout=0"),
    )
    .await;
    let answer: Json = serde_json::from_str(&body).unwrap();
    let data: Vec<_> = answer["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["data"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(data, ["m3", "m4"]);
    // The next poll, on node 0, waits until a publish on node 1 wakes it.
    let next = answer["next"].as_str().unwrap().to_owned();
    let waiting =
        tokio::spawn(async move { poll(addr0, &format!("/poll?channel=r&{next}")).await });
    timeout(WAIT, async {
        while &nodes[0].events.recv().await.unwrap().method[..] != b"on_open" {}
    })
    .await
    .unwrap();
    nodes[1]
        .call("publish", vec![Value::from("r"), Value::from("m5")])
        .await
        .unwrap();
    let answer: Json = serde_json::from_str(&waiting.await.unwrap()).unwrap();
    assert_eq!(answer["messages"][0]["data"], "m5", "{answer}");
    assert_eq!(sse.event().await.data, "m5");
}

/// A GET on a node's public port: the body.
async fn poll(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    timeout(WAIT * 7, tcp.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // The first request of a connection: the answer has the socket to itself and ends
        // with the connection.
        return body.to_owned();
    }
    // Chunked (through hyper): one chunk (size line, data), then the terminator.
    let mut lines = body.splitn(2, "\r\n");
    let size = usize::from_str_radix(lines.next().unwrap().trim(), 16).unwrap();
    lines.next().unwrap()[..size].to_owned()
}
