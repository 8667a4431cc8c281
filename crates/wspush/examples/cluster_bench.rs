//! Measures the Redis broker: cross-node deliveries per second with 3 nodes
//! and N subscribers spread over them, and the latency a push takes through
//! Redis against the embedded broker.
//!
//! ```text
//! cargo run --release -p wspush --example cluster_bench -- [SUBSCRIBERS] [MESSAGES]
//! ```
//!
//! Starts its own `redis-server` on a free port and every node in this
//! process, on 127.0.0.1; the load generator shares the machine. Each
//! subscriber costs two descriptors here (client and server side): 9,000 fit a
//! hard limit of 20,000.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use msgpack_rpc::{Client as Rpc, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Notify;
use ws_server::client;
use wspush::config::Settings;
use wspush::serve::{Running, start};

async fn redis_server(port: u16, dir: &std::path::Path) -> tokio::process::Child {
    let mut child = tokio::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server (run scripts/test-deps.sh)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.contains("Ready to accept connections") {
            break;
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

async fn node(broker: &str) -> Running {
    let settings = Settings {
        ws: "127.0.0.1:0".parse().unwrap(),
        rpc: "127.0.0.1:0".parse().unwrap(),
        api: "127.0.0.1:0".parse().unwrap(),
        broker: broker.to_owned(),
        queue_bytes: 16 << 20,
        shutdown_grace: 0,
        ..Settings::default()
    };
    start(&settings).await.unwrap()
}

/// Opens `n` subscribers spread over `nodes`; each counts `messages` then stops.
async fn subscribers(
    nodes: &[Running],
    n: usize,
    messages: usize,
) -> (Arc<AtomicUsize>, Arc<Notify>) {
    let done = Arc::new(AtomicUsize::new(0));
    let notify = Arc::new(Notify::new());
    let mut opened = Vec::with_capacity(n);
    for i in 0..n {
        let url = format!("ws://{}/", nodes[i % nodes.len()].ws_addr);
        opened.push(tokio::spawn(
            async move { client::connect(&url).await.unwrap() },
        ));
        if opened.len() % 500 == 0 {
            for c in opened.drain(..) {
                start_reader(c.await.unwrap(), messages, &done, &notify);
            }
        }
    }
    for c in opened {
        start_reader(c.await.unwrap(), messages, &done, &notify);
    }
    (done, notify)
}

fn start_reader(
    mut ws: client::Client,
    messages: usize,
    done: &Arc<AtomicUsize>,
    notify: &Arc<Notify>,
) {
    let (done, notify) = (Arc::clone(done), Arc::clone(notify));
    tokio::spawn(async move {
        for _ in 0..messages {
            if ws.recv_message().await.ok().flatten().is_none() {
                break;
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
        notify.notify_one();
    });
}

async fn throughput(nodes: &[Running], subs: usize, messages: usize) -> f64 {
    let (done, notify) = subscribers(nodes, subs, messages).await;
    // Every node has registered its share before the clock starts.
    let total: usize = loop {
        let mut n = 0;
        for node in nodes {
            n += node.shared.hub.connection_count();
        }
        if n == subs {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let rpc = Rpc::connect_tcp(nodes[0].rpc_addr).await.unwrap();
    let started = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..messages {
        let rpc = rpc.clone();
        calls.spawn(async move {
            rpc.call(
                "push_data",
                vec![Value::from(format!(
                    "{{\"n\":{i},\"pad\":\"0123456789abcdef0123456789abcdef\"}}"
                ))],
            )
            .await
            .unwrap()
        });
        while calls.len() >= 64 {
            calls.join_next().await;
        }
    }
    while calls.join_next().await.is_some() {}
    while done.load(Ordering::Relaxed) < total {
        notify.notified().await;
    }
    (total * messages) as f64 / started.elapsed().as_secs_f64()
}

/// Publish on `from`, receive on `to`, one at a time: microseconds per push.
async fn latency(from: &Running, to: &Running, samples: usize) -> (u128, u128) {
    let rpc = Rpc::connect_tcp(from.rpc_addr).await.unwrap();
    let mut ws = client::connect(&format!("ws://{}/?channel=lat", to.ws_addr))
        .await
        .unwrap();
    while to.shared.hub.channels().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut us = Vec::with_capacity(samples);
    for i in 0..samples {
        let t = Instant::now();
        rpc.call(
            "publish",
            vec![Value::from("lat"), Value::from(i.to_string())],
        )
        .await
        .unwrap();
        ws.recv_message().await.unwrap().unwrap();
        us.push(t.elapsed().as_micros());
    }
    us.sort_unstable();
    (us[samples / 2], us[samples * 99 / 100])
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let subs = args.first().copied().unwrap_or(10_000);
    let messages = args.get(1).copied().unwrap_or(100);
    let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
    rlimit::Resource::NOFILE.set(hard, hard).unwrap();
    let _ = soft;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("wspush-bench-redis-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let _redis = redis_server(port, &dir).await;
    let url = format!("redis://127.0.0.1:{port}");

    let embedded = node("embedded").await;
    let (p50, p99) = latency(&embedded, &embedded, 2000).await;
    println!("latency embedded (publish -> browser, same node): p50 {p50} us, p99 {p99} us");
    let cluster = vec![node(&url).await, node(&url).await, node(&url).await];
    let (p50, p99) = latency(&cluster[0], &cluster[1], 2000).await;
    println!("latency redis (publish on node 1 -> browser on node 2): p50 {p50} us, p99 {p99} us");

    let rate = throughput(std::slice::from_ref(&embedded), subs, messages).await;
    println!("embedded, 1 node, {subs} subscribers, {messages} pushes: {rate:.0} deliveries/s");
    embedded.shutdown().await.unwrap();
    let rate = throughput(&cluster, subs, messages).await;
    println!("redis, 3 nodes, {subs} subscribers, {messages} pushes: {rate:.0} deliveries/s");
    let _ = std::fs::remove_dir_all(&dir);
}
