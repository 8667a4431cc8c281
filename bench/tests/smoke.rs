//! A small run of every scenario against an in-process wspush, so the
//! benchmark cannot rot. It asserts that well-behaved subscribers lost and
//! reordered nothing, never any timing.
#![allow(clippy::unwrap_used)]

use wspush::config::Settings;
use wspush_bench::publisher::Target;
use wspush_bench::run::Bench;
use wspush_bench::scenario::{Shape, parse_letters};

async fn start_server() -> wspush::serve::Running {
    let settings = Settings {
        ws: "127.0.0.1:0".parse().unwrap(),
        rpc: "127.0.0.1:0".parse().unwrap(),
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
    let bench = Bench {
        label: "wspush".into(),
        ws: server.ws_addr,
        sub_path: "/".into(),
        publish: Target::Rpc(server.rpc_addr),
        // The server runs in this process: its numbers are ours, only checked for sanity.
        server_pid: Some(std::process::id()),
        stats_rpc: Some(server.rpc_addr),
        window: 64,
        lag: 16,
        run_id: "smoke".into(),
    };
    let shape = small(300);
    let mut seen = 0;
    for letter in parse_letters("all").unwrap() {
        for point in shape.points(letter) {
            let mut point = point;
            shorten_paced(&mut point);
            let r = bench.run(&point).await.unwrap();
            assert!(r.is_clean(), "{}: {}", point.name, r.json());
            if !point.idle_only {
                // Round robin over equal channels: each subscriber gets messages / channels.
                let per_sub = point.messages / point.channels.max(1) as u64;
                let want = per_sub * point.subscribers as u64;
                assert_eq!(r.deliveries, want, "{}", point.name);
            }
            assert!(r.json().starts_with('{'));
            seen += 1;
        }
    }
    assert_eq!(seen, 11);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_a_scenario_and_prints_json_lines() {
    let server = start_server().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wspush-bench"))
        .args(["run", "--scenario", "a,f", "--scale", "0.01"])
        .args(["--max-subscribers", "100", "--threads", "1"])
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
    assert_eq!(names, ["a-100-64B", "a-100-64B", "f-push_data-64B"]);
    assert!(
        points
            .iter()
            .all(|p| p["lost"] == 0 && p["out_of_order"] == 0)
    );
    assert!(stderr.contains("| server | point |"), "the table: {stderr}");
    server.shutdown().await.unwrap();
}

/// The floor server (scenario d's calibration) speaks the Nchan-style interface the
/// generator drives: subscribers on any path, HTTP POST publishes; nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_server_serves_a_paced_point_cleanly() {
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
        window: 64,
        lag: 16,
        run_id: "floor".into(),
    };
    let mut point = small(200).points('d').remove(0);
    shorten_paced(&mut point);
    let r = bench.run(&point).await.unwrap();
    assert!(r.is_clean(), "{}", r.json());
    assert_eq!(r.deliveries, 10 * point.subscribers as u64);
}
