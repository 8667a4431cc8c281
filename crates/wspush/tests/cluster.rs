//! Three wspush nodes sharing a real `redis-server` (started by each test on
//! a free port in a temp dir): cross-node publish and send, resume on another
//! node, and a Redis restart in the middle.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use msgpack_rpc::{CallError, Client as Rpc, Notification, Value};
use serde_json::Value as Json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::timeout;
use ws_server::Message;
use ws_server::client::{self, Client as Ws};
use wspush::config::Settings;
use wspush::serve::{Running, start};

const WAIT: Duration = Duration::from_secs(15);

/// A redis-server of our own, killed on drop.
struct Redis {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Redis {
    async fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("wspush-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Redis::spawn(port, &dir).await;
        Redis { child, port, dir }
    }

    async fn spawn(port: u16, dir: &std::path::Path) -> Child {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}): run scripts/test-deps.sh to install it")
            });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = timeout(WAIT, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains("Ready to accept connections") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(ready, Ok(true), "redis-server did not start on port {port}");
        // Keep draining its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        child
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn restart(&mut self) {
        self.stop().await;
        self.child = Redis::spawn(self.port, &self.dir).await;
    }

    async fn stop(&mut self) {
        self.child.kill().await.unwrap();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One node plus a listening RPC client on it.
struct Node {
    server: Running,
    rpc: Rpc,
    events: mpsc::Receiver<Notification>,
}

impl Node {
    async fn start(redis: &Redis) -> Node {
        let settings = Settings {
            ws: "127.0.0.1:0".parse().unwrap(),
            rpc: "127.0.0.1:0".parse().unwrap(),
            broker: redis.url(),
            broker_timeout_ms: 1000,
            shutdown_grace: 0,
            ..Settings::default()
        };
        let server = start(&settings).await.unwrap();
        let rpc = Rpc::connect_tcp(server.rpc_addr).await.unwrap();
        let events = rpc.notifications();
        rpc.call("listen", vec![]).await.unwrap();
        Node {
            server,
            rpc,
            events,
        }
    }

    /// Opens a browser on this node; returns it with its id once registered.
    async fn open(&mut self, query: &str) -> (Ws, u64) {
        let url = format!("ws://{}/{query}", self.server.ws_addr);
        let ws = client::connect(&url).await.unwrap();
        loop {
            let event = timeout(WAIT, self.events.recv()).await.unwrap().unwrap();
            if &event.method[..] == b"on_open" {
                return (ws, event.params[0].as_u64().unwrap());
            }
        }
    }

    async fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, CallError> {
        self.rpc.call(method, params).await
    }
}

async fn cluster(redis: &Redis) -> Vec<Node> {
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(Node::start(redis).await);
    }
    // Every node subscribed: a publish reaches all three.
    wait_until_published_to(&nodes[0], 3).await;
    nodes
}

/// Publishes probes on an unused channel until `n` nodes receive them.
/// Subscribing is the server's own background work, so this polls, bounded.
async fn wait_until_published_to(node: &Node, n: u64) {
    for _ in 0..200 {
        let reached = node
            .call("publish", vec![Value::from("probe"), Value::from("x")])
            .await;
        if reached.ok().and_then(|v| v.as_u64()) == Some(n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the nodes never all subscribed");
}

async fn recv_text(ws: &mut Ws) -> String {
    match timeout(WAIT, ws.recv_message()).await.unwrap().unwrap() {
        Some(Message::Text(t)) => String::from_utf8(t.to_vec()).unwrap(),
        other => panic!("expected text, got {other:?}"),
    }
}

async fn recv_positioned(ws: &mut Ws) -> (Json, String) {
    let text = recv_text(ws).await;
    let (head, data) = text.split_once('\n').expect("no header line");
    (serde_json::from_str(head).unwrap(), data.to_owned())
}

fn seq(h: &Json) -> u64 {
    h["q"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_on_any_node_reach_every_node_in_order() {
    let redis = Redis::start().await;
    let mut nodes = cluster(&redis).await;
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
    let mut nodes = cluster(&redis).await;
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
    let mut nodes = cluster(&redis).await;
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
    let mut nodes = cluster(&redis).await;
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

    let stats = nodes[0].call("stats", vec![]).await.unwrap().to_string();
    assert!(!stats.contains("\"broker_publish_errors\": 0"), "{stats}");
    assert!(!stats.contains("\"broker_disconnects\": 0"), "{stats}");
    assert!(stats.contains("\"broker_connected\": 1"), "{stats}");
}

/// The value under `key` in a msgpack map.
fn field<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_aggregate_across_nodes() {
    let redis = Redis::start().await;
    let mut nodes = cluster(&redis).await;
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
