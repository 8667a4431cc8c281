//! A real `redis-server` per test (a free port, a temp dir, killed by its
//! PID on drop) and wspush nodes sharing it, each with a listening RPC client.

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

/// Upper bound for any single wait in a Redis test.
pub const WAIT: Duration = Duration::from_secs(15);

/// A redis-server of our own, killed on drop.
pub struct Redis {
    child: Child,
    pub port: u16,
    dir: std::path::PathBuf,
    extra: Vec<String>,
}

impl Redis {
    pub async fn start() -> Redis {
        Redis::start_with(&[]).await
    }

    /// With extra `redis-server` arguments (e.g. `--enable-debug-command local`).
    pub async fn start_with(extra: &[&str]) -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("wspush-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let child = Redis::spawn(port, &dir, &extra).await;
        Redis {
            child,
            port,
            dir,
            extra,
        }
    }

    async fn spawn(port: u16, dir: &std::path::Path, extra: &[String]) -> Child {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir)
            .args(extra)
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

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn restart(&mut self) {
        self.stop().await;
        self.child = Redis::spawn(self.port, &self.dir, &self.extra).await;
    }

    /// Kills our redis-server (by its PID, through its `Child`) and reaps it.
    pub async fn stop(&mut self) {
        self.child.kill().await.unwrap();
    }

    /// A connection of the test's own, for commands that set the scene.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// Runs one command on a fresh connection of the test's own.
    pub async fn cmd(&self, args: &[&str]) -> redis::Value {
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query_async(&mut self.conn().await).await.unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One node plus a listening RPC client on it.
pub struct Node {
    pub server: Running,
    pub rpc: Rpc,
    pub events: mpsc::Receiver<Notification>,
}

impl Node {
    pub async fn start(redis: &Redis) -> Node {
        Node::start_with(redis, |_| {}).await
    }

    /// A node whose settings `adjust` changes first.
    pub async fn start_with(redis: &Redis, adjust: impl FnOnce(&mut Settings)) -> Node {
        let mut settings = Settings {
            ws: "127.0.0.1:0".parse().unwrap(),
            rpc: "127.0.0.1:0".parse().unwrap(),
            api: "127.0.0.1:0".parse().unwrap(),
            broker: redis.url(),
            broker_timeout_ms: 1000,
            shutdown_grace: 0,
            ..Settings::default()
        };
        adjust(&mut settings);
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
    pub async fn open(&mut self, query: &str) -> (Ws, u64) {
        let url = format!("ws://{}/{query}", self.server.ws_addr);
        let ws = client::connect(&url).await.unwrap();
        loop {
            let event = timeout(WAIT, self.events.recv()).await.unwrap().unwrap();
            if &event.method[..] == b"on_open" {
                return (ws, event.params[0].as_u64().unwrap());
            }
        }
    }

    pub async fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, CallError> {
        self.rpc.call(method, params).await
    }

    /// One of this node's own `stats()` counters.
    pub async fn counter(&self, name: &str) -> u64 {
        let stats = self.call("stats", vec![]).await.unwrap();
        field(&stats, name)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("no counter {name} in {stats}"))
    }
}

/// `n` nodes on `redis`, every one subscribed.
pub async fn cluster(redis: &Redis, n: u64) -> Vec<Node> {
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(Node::start(redis).await);
    }
    wait_until_published_to(&nodes[0], n).await;
    nodes
}

/// Publishes probes on an unused channel until `n` nodes receive them.
/// Subscribing is the server's own background work, so this polls, bounded.
pub async fn wait_until_published_to(node: &Node, n: u64) {
    for _ in 0..300 {
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

pub async fn recv_text(ws: &mut Ws) -> String {
    match timeout(WAIT, ws.recv_message()).await.unwrap().unwrap() {
        Some(Message::Text(t)) => String::from_utf8(t.to_vec()).unwrap(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// The next positioned frame: its header and its data.
pub async fn recv_positioned(ws: &mut Ws) -> (Json, String) {
    let text = recv_text(ws).await;
    let (head, data) = text.split_once('\n').expect("no header line");
    (serde_json::from_str(head).unwrap(), data.to_owned())
}

pub fn seq(h: &Json) -> u64 {
    h["q"].as_u64().unwrap()
}

/// The value under `key` in a msgpack map.
pub fn field<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}
