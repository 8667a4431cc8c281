//! Redis faults, each against a real `redis-server` the test starts (and
//! kills): a node that lags the bus, Redis restarting in a burst, a Redis out
//! of memory, a slow Redis, a lost subscription, a stalled subscription
//! (through a proxy in the test), and keys that must expire.
//!
//! What every case checks: a push either fails with an RPC error or reaches
//! the browsers of the node that accepted it; positioned browsers get no
//! duplicates and a gap notice before anything they missed; the node's
//! memory for the bus stays within its bound. Waits are bounded and on
//! events (counters, frames), never on time.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::redis_server::{
    Node, Redis, WAIT, recv_positioned, recv_text, seq, wait_until_published_to,
};
use futures_util::future::join_all;
use msgpack_rpc::Value;
use serde_json::Value as Json;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use ws_server::client::Client as Ws;

/// The end marker every collector waits for.
const END: &str = "end";

fn publish(channel: &str, data: &str) -> Vec<Value> {
    vec![Value::from(channel), Value::from(data)]
}

/// Reads positioned frames until the data [`END`]; returns them and the socket.
fn collect_positioned(mut ws: Ws) -> JoinHandle<(Vec<(Json, String)>, Ws)> {
    tokio::spawn(async move {
        let mut frames = Vec::new();
        loop {
            let (head, data) = recv_positioned(&mut ws).await;
            let done = data == END;
            frames.push((head, data));
            if done {
                return (frames, ws);
            }
        }
    })
}

/// Reads raw frames until [`END`].
fn collect_plain(mut ws: Ws) -> JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut frames = Vec::new();
        loop {
            let data = recv_text(&mut ws).await;
            let done = data == END;
            frames.push(data);
            if done {
                return frames;
            }
        }
    })
}

async fn finish<T>(task: JoinHandle<T>) -> T {
    timeout(WAIT * 2, task)
        .await
        .expect("the end marker never arrived")
        .unwrap()
}

/// Checks what a positioned browser got: no data twice, positions rising
/// within an epoch, and every break (a skipped number, a new epoch) right
/// after a gap notice that announces it. Returns the number of gap notices.
fn check_positioned(frames: &[(Json, String)]) -> usize {
    let mut gaps = 0;
    let mut last: Option<(String, u64)> = None;
    let mut notice: Option<(String, u64)> = None;
    let mut seen = HashSet::new();
    for (head, data) in frames {
        let epoch = head["e"].as_str().unwrap().to_owned();
        let q = seq(head);
        if head.get("gap").is_some() {
            gaps += 1;
            notice = Some((epoch, q));
            continue;
        }
        assert!(seen.insert(data.clone()), "{data} twice: {head}");
        if let Some((le, lq)) = &last {
            if !(*le == epoch && q == lq + 1) {
                assert!(
                    *le != epoch || q > *lq,
                    "went back from {le}:{lq} to {head}"
                );
                assert_eq!(
                    notice,
                    Some((epoch.clone(), q - 1)),
                    "{le}:{lq} then {head} without a gap notice"
                );
            }
        }
        notice = None;
        last = Some((epoch, q));
    }
    gaps
}

/// The resident memory of this test process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap();
    kb * 1024
}

/// Polls `node`'s counters until `ready` holds for them (bounded).
async fn wait_for_counters(node: &Node, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    timeout(WAIT, async {
        loop {
            let stats = node.call("stats", vec![]).await.unwrap();
            if ready(&stats) {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never: {what}"))
}

fn counter(stats: &Value, name: &str) -> u64 {
    common::redis_server::field(stats, name)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no {name} in {stats}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_node_drops_to_gap_mode_loudly_within_its_bound_and_recovers() {
    const LIMIT: usize = 16 << 10;
    const BURST: usize = 2000;
    let redis = Redis::start().await;
    let fast = Node::start(&redis).await;
    let mut slow = Node::start_with(&redis, |s| s.broker_intake_bytes = LIMIT).await;
    wait_until_published_to(&fast, 2).await;
    let positioned = collect_positioned(slow.open("?channel=lag&positions=1").await.0);
    let plain = collect_plain(slow.open("?channel=lag").await.0);
    let rss_before = rss();
    let base = slow.counter("broker_messages_in").await;

    // Pipelined bursts from the other node until the slow node had to drop.
    let pad = "x".repeat(500);
    let mut published = 0u64;
    for _ in 0..20 {
        let calls = (0..BURST).map(|i| {
            let data = format!("m{}-{pad}", published + i as u64);
            fast.call("publish", publish("lag", &data))
        });
        for result in join_all(calls).await {
            assert!(result.is_ok(), "{result:?}");
        }
        published += BURST as u64;
        if slow.counter("broker_intake_dropped").await > 0 {
            break;
        }
    }
    // Everything read, nothing left queued: the end marker is taken in.
    let stats = wait_for_counters(&slow, "the slow node read the bursts", |s| {
        counter(s, "broker_messages_in") >= base + published
            && counter(s, "broker_intake_bytes") == 0
    })
    .await;
    assert!(counter(&stats, "broker_intake_dropped") > 0, "{stats}");
    assert!(counter(&stats, "broker_lag_episodes") > 0, "{stats}");
    let peak = counter(&stats, "broker_intake_peak_bytes");
    assert!(
        peak > 0 && peak <= LIMIT as u64,
        "intake held {peak} of {LIMIT}"
    );
    fast.call("publish", publish("lag", END)).await.unwrap();

    let (frames, mut ws) = finish(positioned).await;
    assert!(
        check_positioned(&frames) > 0,
        "no gap notice for the dropped messages"
    );
    let raw = finish(plain).await;
    assert!(
        (raw.len() as u64) < published,
        "{} of {published} arrived",
        raw.len()
    );
    let plain_in_order: Vec<&str> = frames
        .iter()
        .filter(|(head, _)| head.get("gap").is_none())
        .map(|(_, d)| d.as_str())
        .collect();
    assert_eq!(
        raw, plain_in_order,
        "both browsers of the node got the same"
    );
    assert!(slow.counter("gap_notices").await > 0);

    // Recovered: one by one, every message arrives, in sequence, without a gap.
    let last = seq(&frames.last().unwrap().0);
    for i in 1..=5 {
        fast.call("publish", publish("lag", &format!("after{i}")))
            .await
            .unwrap();
        let (head, data) = recv_positioned(&mut ws).await;
        assert_eq!(
            (seq(&head), data),
            (last + i, format!("after{i}")),
            "{head}"
        );
    }
    // The bound is what the node holds for the bus, whatever the bursts were.
    let grown = rss().saturating_sub(rss_before);
    assert!(grown < 64 << 20, "RSS grew {grown} bytes");
}

/// A push's data and what the call answered.
type Outcome = (String, Result<Value, String>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_in_a_burst_fails_or_delivers_every_push() {
    let mut redis = Redis::start().await;
    let mut a = Node::start(&redis).await;
    let mut b = Node::start(&redis).await;
    wait_until_published_to(&a, 2).await;
    let mut positioned = Vec::new();
    let mut plain = Vec::new();
    for node in [&mut a, &mut b] {
        positioned.push(collect_positioned(
            node.open("?channel=burst&positions=1").await.0,
        ));
        plain.push(collect_plain(node.open("?channel=burst").await.0));
    }

    // Four callers push without pause; each push's outcome is kept.
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut callers = Vec::new();
    for caller in 0..4 {
        let (rpc, outcomes, stop) = (a.rpc.clone(), Arc::clone(&outcomes), Arc::clone(&stop));
        callers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let data = format!("c{caller}-{i}");
                let result = rpc.call("publish", publish("burst", &data)).await;
                let result = result.map_err(|e| e.to_string());
                outcomes.lock().unwrap().push((data, result));
                i += 1;
            }
        }));
    }
    let successes = || {
        let list = outcomes.lock().unwrap();
        list.iter().filter(|(_, r)| r.is_ok()).count()
    };
    let wait_successes = |n: usize| async move {
        timeout(WAIT, async {
            while successes() < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("pushes never succeeded");
    };
    wait_successes(200).await;
    redis.restart().await;
    let before = successes();
    wait_successes(before + 200).await;
    stop.store(true, Ordering::Relaxed);
    for c in callers {
        c.await.unwrap();
    }
    wait_until_published_to(&a, 2).await;
    a.call("publish", publish("burst", END)).await.unwrap();

    let outcomes = outcomes.lock().unwrap().clone();
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|(_, r)| r.as_ref().err().cloned())
        .collect();
    assert!(!failed.is_empty(), "no push failed while Redis was down");
    for e in &failed {
        assert!(e.contains("broker"), "{e}");
    }
    // Whether a push meets the window where the subscription is down (refused at once,
    // `broker_refused_pushes`) or fails on the publisher's connection depends on how fast
    // Redis comes back; either way every failure is counted.
    assert!(a.counter("broker_publish_errors").await >= failed.len() as u64);
    let succeeded: HashSet<&String> = outcomes
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(d, _)| d)
        .collect();

    let mut tasks = positioned.into_iter();
    let (on_a, _) = finish(tasks.next().unwrap()).await;
    let (on_b, _) = finish(tasks.next().unwrap()).await;
    // Redis lost its keys: a new epoch, announced, on both nodes.
    assert!(check_positioned(&on_a) > 0);
    assert!(check_positioned(&on_b) > 0);
    let raw_a: HashSet<String> = finish(plain.remove(0)).await.into_iter().collect();
    let positioned_a: HashSet<&String> = on_a.iter().map(|(_, d)| d).collect();
    // No silent success: the node that said yes has it queued to its browsers.
    for data in &succeeded {
        assert!(
            raw_a.contains(*data),
            "{data} succeeded but never reached node A's browser"
        );
        assert!(
            positioned_a.contains(data),
            "{data} succeeded but never reached node A"
        );
    }
    finish(plain.remove(0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_out_of_memory_fails_pushes_with_an_error() {
    let redis = Redis::start().await;
    let mut node = Node::start(&redis).await;
    wait_until_published_to(&node, 1).await;
    let positioned = collect_positioned(node.open("?channel=oom&positions=1").await.0);
    node.call("publish", publish("oom", "before"))
        .await
        .unwrap();

    redis
        .cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"])
        .await;
    redis.cmd(&["CONFIG", "SET", "maxmemory", "1mb"]).await;
    // Until Redis is full some pushes may still fit; once it is, every push fails.
    let pad = "y".repeat(4096);
    let mut delivered = Vec::new();
    let mut refused = None;
    for i in 0..2000 {
        let data = format!("fill{i}-{pad}");
        match node.call("publish", publish("oom", &data)).await {
            Ok(_) => delivered.push(data),
            Err(e) => {
                refused = Some(e.to_string());
                break;
            }
        }
    }
    let refused = refused.expect("Redis never ran out of memory");
    assert!(refused.contains("OOM"), "{refused}");
    let again = node.call("publish", publish("oom", "refused")).await;
    assert!(again.unwrap_err().to_string().contains("OOM"));
    assert!(node.counter("broker_publish_errors").await >= 2);

    redis.cmd(&["CONFIG", "SET", "maxmemory", "0"]).await;
    node.call("publish", publish("oom", END)).await.unwrap();
    let (frames, _) = finish(positioned).await;
    check_positioned(&frames);
    let got: Vec<&String> = frames.iter().map(|(_, d)| d).collect();
    assert_eq!(got.first().map(|d| d.as_str()), Some("before"));
    for data in &delivered {
        assert!(
            got.contains(&data),
            "a push that succeeded was not delivered"
        );
    }
    assert!(!got.iter().any(|d| d.as_str() == "refused"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_redis_times_pushes_out_then_recovers() {
    let redis = Redis::start_with(&["--enable-debug-command", "local"]).await;
    let mut node = Node::start(&redis).await;
    wait_until_published_to(&node, 1).await;
    let positioned = collect_positioned(node.open("?channel=slow&positions=1").await.0);
    let plain = collect_plain(node.open("?channel=slow").await.0);
    node.call("publish", publish("slow", "before"))
        .await
        .unwrap();

    let mut conn = redis.conn().await;
    let sleeping = tokio::spawn(async move {
        redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(3)
            .query_async::<()>(&mut conn)
            .await
    });
    // Pushes until one meets the sleeping Redis (the first may still precede it).
    let mut timed_out = None;
    for i in 0..500 {
        if let Err(e) = node
            .call("publish", publish("slow", &format!("during{i}")))
            .await
        {
            timed_out = Some(e.to_string());
            break;
        }
    }
    let timed_out = timed_out.expect("no push met the sleeping Redis");
    assert!(
        timed_out.contains("broker did not answer within 1s"),
        "{timed_out}"
    );
    timeout(WAIT, sleeping).await.unwrap().unwrap().unwrap();

    let mut recovered = false;
    for _ in 0..20 {
        if node.call("publish", publish("slow", END)).await.is_ok() {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "pushes never succeeded again");
    let (frames, _) = finish(positioned).await;
    check_positioned(&frames);
    let raw = finish(plain).await;
    assert_eq!(raw.first().map(String::as_str), Some("before"));
    // Slow is not lost: the subscription rode it out.
    assert_eq!(node.counter("broker_disconnects").await, 0);
    assert_eq!(node.counter("broker_connected").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_are_refused_while_the_subscription_is_down_never_lost_silently() {
    let redis = Redis::start().await;
    let mut a = Node::start(&redis).await;
    let b = Node::start(&redis).await;
    wait_until_published_to(&a, 2).await;
    let positioned = collect_positioned(a.open("?channel=sub&positions=1").await.0);
    let plain = collect_plain(a.open("?channel=sub").await.0);

    // Redis drops every subscription; the publish connections stay.
    redis.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    let mut succeeded = Vec::new();
    let mut refused = false;
    for i in 0..10_000 {
        let data = format!("p{i}");
        match a.call("publish", publish("sub", &data)).await {
            Ok(reached) => {
                // Honest: it reached this node, so at least one.
                assert!(reached.as_u64() >= Some(1), "{reached}");
                succeeded.push(data);
            }
            // Lost on the way back, or refused before it was sent.
            Err(e) if e.to_string().contains("subscription not ready") => {
                refused = true;
                break;
            }
            Err(e) => assert!(e.to_string().contains("subscription"), "{e}"),
        }
    }
    assert!(
        refused,
        "no push was refused while the subscription was down"
    );
    assert!(a.counter("broker_refused_pushes").await > 0);
    wait_until_published_to(&a, 2).await;
    wait_until_published_to(&b, 2).await;
    a.call("publish", publish("sub", END)).await.unwrap();
    let (frames, _) = finish(positioned).await;
    check_positioned(&frames);
    let raw = finish(plain).await;
    for data in &succeeded {
        assert!(raw.contains(data), "{data} succeeded but never arrived");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stream_key_expires_with_the_history_window() {
    let redis = Redis::start().await;
    let mut node = Node::start_with(&redis, |s| s.history_secs = 2).await;
    wait_until_published_to(&node, 1).await;
    let (mut ws, _) = node.open("?channel=k0&positions=1").await;
    for i in 0..50 {
        node.call("publish", publish(&format!("k{i}"), "x"))
            .await
            .unwrap();
    }
    let (first, _) = recv_positioned(&mut ws).await;
    for key in ["wspush:m:c:k0", "wspush:h:c:k0", "wspush:m:c:k49"] {
        let ttl = redis.cmd(&["PTTL", key]).await;
        assert!(
            matches!(ttl, redis::Value::Int(ms) if ms > 0 && ms <= 2000),
            "{key}: {ttl:?}"
        );
    }
    // Bounded wait until Redis has expired them all (nothing else writes them).
    timeout(WAIT, async {
        loop {
            let left = redis.cmd(&["KEYS", "wspush:[mh]:c:k*"]).await;
            if matches!(&left, redis::Value::Array(keys) if keys.is_empty()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("stream keys never expired");
    // The shared stats hash has a lifetime too.
    let ttl = redis.cmd(&["PTTL", "wspush:stats"]).await;
    assert!(matches!(ttl, redis::Value::Int(ms) if ms > 0), "{ttl:?}");

    // The next write starts a new epoch, and a connected client is told.
    node.call("publish", publish("k0", "again")).await.unwrap();
    let (notice, _) = recv_positioned(&mut ws).await;
    assert_eq!(notice["gap"], Json::Bool(true), "{notice}");
    let (head, data) = recv_positioned(&mut ws).await;
    assert_ne!(head["e"], first["e"]);
    assert_eq!((seq(&head), data.as_str()), (1, "again"));
}

/// A TCP proxy in front of Redis that can stall what Redis sends to
/// subscription connections (a half-open or stuck subscription), leaving the
/// publish connection alone.
struct Proxy {
    port: u16,
    stalled: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    async fn start(upstream: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stalled, watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let Ok(up) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                tokio::spawn(Proxy::pipe(down, up, watch.clone()));
            }
        });
        Proxy { port, stalled }
    }

    async fn pipe(
        down: tokio::net::TcpStream,
        up: tokio::net::TcpStream,
        mut stalled: tokio::sync::watch::Receiver<bool>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut down_r, mut down_w) = down.into_split();
        let (mut up_r, mut up_w) = up.into_split();
        let subscriber = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&subscriber);
        let requests = async move {
            let mut buf = vec![0; 64 << 10];
            while let Ok(n @ 1..) = down_r.read(&mut buf).await {
                if buf[..n].windows(9).any(|w| w == b"SUBSCRIBE") {
                    seen.store(true, Ordering::Relaxed);
                }
                if up_w.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        };
        let replies = async move {
            let mut buf = vec![0; 64 << 10];
            while let Ok(n @ 1..) = up_r.read(&mut buf).await {
                if subscriber.load(Ordering::Relaxed) && stalled.wait_for(|s| !*s).await.is_err() {
                    break;
                }
                if down_w.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        };
        // Either direction ending ends the connection.
        tokio::select! {
            _ = requests => {}
            _ = replies => {}
        }
    }

    fn stall(&self, on: bool) {
        self.stalled.send_replace(on);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscription_fails_pushes_instead_of_answering_success() {
    let redis = Redis::start().await;
    let proxy = Proxy::start(redis.port).await;
    let mut node = Node::start_with(&redis, |s| {
        s.broker = format!("redis://127.0.0.1:{}", proxy.port);
    })
    .await;
    wait_until_published_to(&node, 1).await;
    let positioned = collect_positioned(node.open("?channel=stall&positions=1").await.0);
    let plain = collect_plain(node.open("?channel=stall").await.0);
    node.call("publish", publish("stall", "before"))
        .await
        .unwrap();

    // Redis runs the push and answers, but it never comes back to this node:
    // not a success.
    proxy.stall(true);
    let err = node
        .call("publish", publish("stall", "held"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("broker did not answer within 1s"), "{err}");
    // The silent subscription is pinged, then given up: pushes are refused.
    wait_for_counters(&node, "the stalled subscription was given up", |s| {
        counter(s, "broker_connected") == 0 && counter(s, "broker_disconnects") > 0
    })
    .await;
    let err = node
        .call("publish", publish("stall", "refused"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("subscription not ready"), "{err}");

    proxy.stall(false);
    wait_until_published_to(&node, 1).await;
    node.call("publish", publish("stall", END)).await.unwrap();
    let (frames, _) = finish(positioned).await;
    // "held" went down with the stalled connection: a gap, announced.
    assert!(check_positioned(&frames) > 0);
    let raw = finish(plain).await;
    assert_eq!(raw, ["before", END]);
}

/// Issue 12.2: a client that resumes on a node lagging the bus (its subscription held back,
/// here by the proxy) gets its replay from Redis, and then none of the older messages the
/// lagging node delivers when it catches up: de-duplicated by its own position, not the
/// node's. Other positioned clients of that node get everything once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_on_a_lagging_node_gets_nothing_twice() {
    let redis = Redis::start().await;
    let proxy = Proxy::start(redis.port).await;
    let mut lagging = Node::start_with(&redis, |s| {
        s.broker = format!("redis://127.0.0.1:{}", proxy.port);
    })
    .await;
    let publisher = Node::start(&redis).await;
    wait_until_published_to(&publisher, 2).await;
    let mut probe = lagging.open("?channel=lag&positions=1").await.0;
    let others = collect_positioned(lagging.open("?channel=lag&positions=1").await.0);
    publisher
        .call("publish", publish("lag", "m1"))
        .await
        .unwrap();
    let (first, _) = recv_positioned(&mut probe).await;
    drop(probe);
    let epoch = first["e"].as_str().unwrap().to_owned();

    // The lagging node misses m2..m10 for now; Redis has them.
    proxy.stall(true);
    for i in 2..=10 {
        publisher
            .call("publish", publish("lag", &format!("m{i}")))
            .await
            .unwrap();
    }
    let since = format!("{epoch}:7:lag");
    let resumed = collect_positioned(
        lagging
            .open(&format!("?channel=lag&since={}", since.replace(':', "%3A")))
            .await
            .0,
    );
    // Catching up delivers m2..m10 live on the lagging node.
    proxy.stall(false);
    publisher
        .call("publish", publish("lag", END))
        .await
        .unwrap();

    let (frames, _) = finish(resumed).await;
    let got: Vec<(u64, &str)> = frames.iter().map(|(h, d)| (seq(h), d.as_str())).collect();
    assert_eq!(got, [(8, "m8"), (9, "m9"), (10, "m10"), (11, END)]);
    let (frames, _) = finish(others).await;
    assert_eq!(check_positioned(&frames), 0, "{frames:?}");
    let data: Vec<&str> = frames.iter().map(|(_, d)| d.as_str()).collect();
    let mut expected: Vec<String> = (1..=10).map(|i| format!("m{i}")).collect();
    expected.push(END.to_owned());
    assert_eq!(data, expected);
}
