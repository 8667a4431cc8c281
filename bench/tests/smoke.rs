//! A small run of every scenario against an in-process wspush, so the
//! benchmark cannot rot, and of every publisher shape (one call at a time,
//! pipelined, notifications, two publishers). It asserts that well-behaved
//! subscribers lost and reordered nothing, never any timing.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use wspush::config::Settings;
use wspush_bench::browser::ClientShape;
use wspush_bench::publisher::{Target, messages_on_channel};
use wspush_bench::report::PointResult;
use wspush_bench::run::Bench;
use wspush_bench::scenario::{PubMode, PubShape, Shape, Transport, parse_letters};

async fn start_server() -> wspush::serve::Running {
    let settings = Settings {
        ws: "127.0.0.1:0".parse().unwrap(),
        rpc: "127.0.0.1:0".parse().unwrap(),
        api: "127.0.0.1:0".parse().unwrap(),
        ..Settings::default()
    };
    wspush::serve::start(&settings).await.unwrap()
}

/// Every scenario with at most `subscribers` connections and 1% of its messages.
fn small(subscribers: usize) -> Shape {
    Shape {
        scale: 0.01,
        max_subscribers: subscribers,
        idle_connections: vec![subscribers],
        ..Shape::default()
    }
}

/// The generator against the in-process wspush at `rpc` / `ws`.
fn wspush_bench(ws: SocketAddr, rpc: SocketAddr, run_id: &str) -> Bench {
    Bench {
        label: "wspush".into(),
        ws,
        sub_path: "/".into(),
        publish: Target::Rpc(rpc),
        // The server runs in this process: its numbers are ours, only checked for sanity.
        server_pid: Some(std::process::id()),
        stats_rpc: Some(rpc),
        lag: 16,
        run_id: run_id.into(),
        tls: None,
    }
}

/// Clean, and every well-behaved subscriber got all its channel's messages.
fn assert_complete(r: &PointResult) {
    let p = &r.point;
    assert!(
        r.is_clean(),
        "{} {}: {}",
        p.name,
        p.publisher.label(),
        r.json()
    );
    if !p.idle_only {
        let n = p.channels.max(1);
        let want: u64 = (0..p.subscribers)
            .map(|i| messages_on_channel(p.messages, i % n, n))
            .sum();
        assert_eq!(r.deliveries, want, "{} {}", p.name, p.publisher.label());
    }
}

/// Paced points: keep the smoke run short (the rate is what is exercised).
fn shorten_paced(point: &mut wspush_bench::scenario::Point) {
    if point.rate.is_some() {
        point.rate = Some(50.0);
        point.messages = 10;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_small_and_clean() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let server = start_server().await;
    let bench = wspush_bench(server.ws_addr, server.rpc_addr, "smoke");
    let shape = small(300);
    let mut inflight = Vec::new();
    for letter in parse_letters("all").unwrap() {
        for point in shape.points(letter) {
            let mut point = point;
            shorten_paced(&mut point);
            let r = bench.run(&point).await.unwrap();
            assert_complete(&r);
            assert!(r.json().starts_with('{'));
            inflight.push(r.point.publisher.inflight);
        }
    }
    // a, b, c and f: one call at a time (the synchronous publisher), then 16.
    assert_eq!(
        inflight,
        [1, 16, 1, 16, 1, 16, 1, 16, 1, 16, 1, 1, 1, 1, 16, 1, 1]
    );
    server.shutdown().await.unwrap();
}

/// Notifications (one and two publishers) and two publishers with calls in
/// flight, on a broadcast, on 100 channels and with nobody subscribed:
/// nothing lost or reordered per publisher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_shapes_small_and_clean() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let server = start_server().await;
    let bench = wspush_bench(server.ws_addr, server.rpc_addr, "shapes");
    let shapes = [
        (PubMode::Notify, 1, 1),
        (PubMode::Notify, 2, 1),
        (PubMode::Call, 2, 1),
        (PubMode::Call, 2, 4),
    ];
    for (pub_mode, publishers, inflight) in shapes {
        let shape = Shape {
            publisher: PubShape {
                inflight,
                publishers,
                pub_mode,
            },
            pipelined: 0,
            ..small(200)
        };
        for letter in ['a', 'c', 'f'] {
            for point in shape.points(letter) {
                let r = bench.run(&point).await.unwrap();
                assert_complete(&r);
                let json: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
                assert_eq!(json["publishers"], publishers);
                assert_eq!(json["pub_mode"], pub_mode.to_string());
                let want = if pub_mode == PubMode::Notify {
                    0
                } else {
                    inflight
                };
                assert_eq!(json["inflight"], want);
            }
        }
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_a_scenario_and_prints_json_lines() {
    let server = start_server().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wspush-bench"))
        .args(["run", "--scenario", "a,f", "--scale", "0.01"])
        .args([
            "--max-subscribers",
            "100",
            "--threads",
            "1",
            "--pipelined",
            "4",
        ])
        .args(["--ws", &server.ws_addr.to_string()])
        .args(["--rpc", &server.rpc_addr.to_string()])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let points: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = points
        .iter()
        .map(|p| p["point"].as_str().unwrap())
        .collect();
    let a = "a-100-64B";
    let f = "f-push_data-64B";
    assert_eq!(names, [a, a, a, a, f, f]);
    let inflight: Vec<_> = points.iter().map(|p| p["inflight"].clone()).collect();
    assert_eq!(inflight, [1, 4, 1, 4, 1, 4]);
    assert!(
        points
            .iter()
            .all(|p| p["lost"] == 0 && p["out_of_order"] == 0)
    );
    assert!(
        stderr.contains("| server | point | publisher |"),
        "the table: {stderr}"
    );
    server.shutdown().await.unwrap();
}

/// The floor server (scenario d's calibration) speaks the Nchan-style interface the
/// generator drives: subscribers on any path, HTTP POST publishes (one at a time or
/// pipelined); nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_server_serves_paced_and_max_rate_points_cleanly() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || wspush_bench::floor::serve(listener, 2));
    let bench = Bench {
        label: "floor".into(),
        ws: addr,
        sub_path: "/sub".into(),
        publish: Target::Http {
            addr,
            host: addr.to_string(),
            path: "/pub".into(),
        },
        server_pid: None,
        stats_rpc: None,
        lag: 16,
        run_id: "floor".into(),
        tls: None,
    };
    let mut paced = small(200).points('d').remove(0);
    shorten_paced(&mut paced);
    // One POST at a time (the default), and pipelined at max rate.
    for point in [paced].into_iter().chain(small(200).points('a').drain(..2)) {
        let r = bench.run(&point).await.unwrap();
        assert_complete(&r);
    }
}

/// Scenario d at its largest point times 100 newcomers' upgrades while it publishes: the
/// figures reach the JSON line and the printed summary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_d_times_the_upgrades_of_newcomers() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let server = start_server().await;
    let bench = wspush_bench(server.ws_addr, server.rpc_addr, "newcomers");
    let mut point = small(200).points('d').remove(0);
    shorten_paced(&mut point);
    assert_eq!(point.newcomers, 100);
    let r = bench.run(&point).await.unwrap();
    assert_complete(&r);
    let u = r.upgrades.unwrap();
    assert_eq!((u.count, u.failed), (100, 0));
    assert!(
        0.0 < u.p50_ms && u.p50_ms <= u.p99_ms && u.p99_ms <= u.max_ms,
        "{u:?}"
    );
    let json: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
    assert_eq!(json["newcomers"], 100);
    assert_eq!(json["upgrades"]["count"], 100);
    assert!(json["upgrades"]["p99_ms"].is_f64(), "{json}");
    let summary = wspush_bench::handshake::summary(std::slice::from_ref(&r));
    assert!(
        summary.contains("time to 101 for 100 new connections"),
        "{summary}"
    );
    // The other d point has no newcomers, and says nothing of them.
    let fast = &small(200).points('d')[1];
    assert_eq!(fast.newcomers, 0);
    assert!(!serde_json::to_string(fast).unwrap().contains("newcomers"));
    server.shutdown().await.unwrap();
}

/// `--transport sse` against wspush's `/sse`: the broadcast stream (scenario a), named
/// channel events (c), and a paced point whose newcomers open event streams (d). Every
/// subscriber gets every message in order, and the JSON line says `"transport":"sse"`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_subscribers_get_everything() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let server = start_server().await;
    let bench = Bench {
        sub_path: "/sse".into(),
        ..wspush_bench(server.ws_addr, server.rpc_addr, "sse")
    };
    let shape = Shape {
        transport: Transport::Sse,
        pipelined: 0,
        ..small(200)
    };
    for letter in ['a', 'c', 'd'] {
        for mut point in shape.points(letter) {
            shorten_paced(&mut point);
            let r = bench.run(&point).await.unwrap();
            assert_complete(&r);
            assert!(r.deliveries > 0, "{}", r.json());
            let json: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
            assert_eq!(json["transport"], "sse");
            if let Some(u) = r.upgrades {
                assert_eq!((u.count, u.failed), (100, 0), "newcomers' event streams");
            }
        }
    }
    server.shutdown().await.unwrap();
}

/// Scenario e as browsers connect: Chrome's offer with a first message, over ws:// and
/// wss:// (a certificate generated here): every client upgrades, has its message handled
/// (the pong after it came back) and is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_like_idle_points_connect_over_ws_and_wss() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!("wspush-bench-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    for tls in [false, true] {
        let settings = Settings {
            ws: "127.0.0.1:0".parse().unwrap(),
            rpc: "127.0.0.1:0".parse().unwrap(),
            api: "127.0.0.1:0".parse().unwrap(),
            tls_cert: tls.then(|| cert_path.clone()),
            tls_key: tls.then(|| key_path.clone()),
            ..Settings::default()
        };
        let server = wspush::serve::start(&settings).await.unwrap();
        let mut bench = wspush_bench(server.ws_addr, server.rpc_addr, "browser");
        bench.tls = tls.then(|| wspush_bench::browser::tls_client(&cert_path).unwrap());
        let shape = Shape {
            client: ClientShape {
                chrome_offer: true,
                first_message: true,
                tls,
            },
            ..small(50)
        };
        let points = shape.points('e');
        assert_eq!(points.len(), 1);
        let want = if tls {
            "e-50-wss-chrome-msg"
        } else {
            "e-50-chrome-msg"
        };
        assert_eq!(points[0].name, want);
        let r = bench.run(&points[0]).await.unwrap();
        assert_complete(&r);
        server.shutdown().await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Publishing through wspush's HTTP API, raw (`/pub`, `/pub/<channel>`) and JSON
/// (`/api/publish`, `/api/push_data`): the broadcast and channel scenarios arrive complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_over_the_http_api_delivers_everything() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let server = start_server().await;
    for path in ["/pub{/channel}", "/api"] {
        let mut bench = wspush_bench(server.ws_addr, server.rpc_addr, "api");
        bench.publish = Target::Http {
            addr: server.api_addr,
            host: server.api_addr.to_string(),
            path: path.into(),
        };
        for letter in ['a', 'c'] {
            let point = small(100).points(letter).remove(0);
            let r = bench.run(&point).await.unwrap();
            assert_complete(&r);
        }
    }
    server.shutdown().await.unwrap();
}
