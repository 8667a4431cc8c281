//! Calls/s of a small call (one 64-byte string argument, nil result) from
//! one client to an in-process server over 127.0.0.1 TCP, with 1, 16 and
//! 256 calls in flight, for a sync and an async handler.
//!
//! `cargo bench -p msgpack-rpc --bench calls` measures; without `--bench`
//! (as `cargo test --all-targets` runs it) it does a smoke run and exits.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use msgpack_rpc::{Client, ClientConfig, Server, Value};
use tokio::net::TcpListener;

const IN_FLIGHT: [usize; 3] = [1, 16, 256];

fn main() {
    let measure = std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // On a worker, like the server and client tasks: block_on would run
    // the driver on a third thread and add a cross-thread hop per batch.
    runtime.block_on(runtime.spawn(run(measure))).unwrap();
}

async fn run(measure: bool) {
    let server = Server::builder()
        .method_sync("push_sync", 1, |_, _| Ok(Value::Nil))
        .method("push_async", 1, |_, _| async { Ok(Value::Nil) })
        .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        server
            .serve_tcp(listener, async {
                let _ = stopped.await;
            })
            .await
    });
    // No per-call timer: measure the protocol path, not the timer wheel.
    let config = ClientConfig {
        call_timeout: None,
        ..ClientConfig::default()
    };
    let client = Client::connect_tcp_with(addr, config).await.unwrap();
    let arg = Value::from("x".repeat(64));

    if measure {
        println!(
            "{:>10} | {:>16} | {:>16}",
            "in flight", "sync calls/s", "async calls/s"
        );
        println!("{:-<10}-+-{:-<16}-+-{:-<16}", "", "", "");
    }
    for in_flight in IN_FLIGHT {
        let mut rates = Vec::new();
        for method in ["push_sync", "push_async"] {
            if measure {
                let run = |time| drive(&client, method, &arg, in_flight, Budget::Time(time));
                // Warm up, then measure for a fixed time.
                run(Duration::from_millis(300)).await;
                let (calls, took) = run(Duration::from_secs(3)).await;
                rates.push(calls as f64 / took.as_secs_f64());
            } else {
                let (calls, _) = drive(&client, method, &arg, in_flight, Budget::Calls(300)).await;
                assert_eq!(calls, 300);
            }
        }
        if measure {
            println!("{in_flight:>10} | {:>16.0} | {:>16.0}", rates[0], rates[1]);
        }
    }
    drop(client);
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
    if !measure {
        println!("calls bench: smoke run ok (pass --bench to measure)");
    }
}

enum Budget {
    Time(Duration),
    Calls(u64),
}

/// Keeps `in_flight` calls outstanding until the budget is spent; returns
/// calls completed and the time taken.
async fn drive(
    client: &Client,
    method: &str,
    arg: &Value,
    in_flight: usize,
    budget: Budget,
) -> (u64, Duration) {
    let start = Instant::now();
    let mut calls = FuturesUnordered::new();
    let mut done = 0u64;
    let mut issued = 0u64;
    let more = |issued: u64| match budget {
        Budget::Time(limit) => start.elapsed() < limit,
        Budget::Calls(n) => issued < n,
    };
    loop {
        while calls.len() < in_flight && more(issued) {
            calls.push(client.call(method, vec![arg.clone()]));
            issued += 1;
        }
        match calls.next().await {
            Some(result) => {
                result.unwrap();
                done += 1;
            }
            None => break,
        }
    }
    (done, start.elapsed())
}
