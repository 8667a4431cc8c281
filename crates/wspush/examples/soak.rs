//! Soak: a server under churn, continuous publishes and stalled clients for a bounded time.
//!
//! ```text
//! cargo run --release -p wspush --example soak -- [--secs 600] [--clients 1000] [--stalled 5]
//!                                                 [--channels 10] [--rate 200]
//! ```
//!
//! ```text
//! publisher (RPC) --publish(cK, "seq")--> server --> churning clients (connect ?channel=cK,
//!                                               |     read 1-5 s, drain to the last seq
//!                                               |     published, close, reconnect)
//!                                               +--> stalled clients (never read: cut off
//!                                                    with 1008 by the queue limit)
//! ```
//!
//! Server and clients share this process. It fails (exit 1) if a well-behaved client saw a
//! gap, a reordering or missed the tail of what was published while it was subscribed, or if
//! RSS or open fds at the end exceed the post-warm-up level by more than a margin. It prints
//! the figures either way.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use msgpack_rpc::{Client as Rpc, Value};
use tokio::time::timeout;
use ws_server::Message;
use ws_server::client;
use wspush::config::Settings;

/// The soak's knobs.
#[derive(Parser, Debug, Clone)]
pub struct Args {
    /// Seconds to run.
    #[arg(long, default_value_t = 600)]
    pub secs: u64,
    /// Well-behaved clients that connect, read, leave and come back.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Clients that connect and never read.
    #[arg(long, default_value_t = 5)]
    pub stalled: usize,
    /// Channels the publishes rotate over.
    #[arg(long, default_value_t = 10)]
    pub channels: usize,
    /// Publishes per second.
    #[arg(long, default_value_t = 200)]
    pub rate: u64,
}

#[derive(Default)]
struct Tally {
    sessions: AtomicU64,
    verified: AtomicU64,
    failures: AtomicU64,
}

/// Published count per channel: message `n` of a channel is the text `n` (1-based).
struct Published(Vec<AtomicU64>);

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

/// A small deterministic generator: session lengths without a rand dependency.
fn next(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

async fn publisher(
    addr: std::net::SocketAddr,
    args: Args,
    published: Arc<Published>,
    end: Instant,
) {
    let rpc = Rpc::connect_tcp(addr).await.unwrap();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / args.rate.max(1)));
    let mut i = 0usize;
    while Instant::now() < end {
        tick.tick().await;
        let c = i % args.channels;
        i += 1;
        let n = published.0[c].load(Ordering::Relaxed) + 1;
        let params = vec![Value::from(format!("c{c}")), Value::from(n.to_string())];
        rpc.call("publish", params).await.unwrap();
        // Counted once the call returned: the frame is queued to every subscriber by then.
        published.0[c].store(n, Ordering::Relaxed);
        if i % 10 == 0 {
            // 64 KiB every 10th publish for the stalled clients: more than their
            // queue and the kernel's buffers hold in 30 s, so they are cut off.
            let blob = Value::Binary(vec![0; 64 << 10]);
            rpc.call("publish", vec![Value::from("stall"), blob])
                .await
                .unwrap();
        }
    }
}

/// One session: the number of messages received, all complete and in order, or what was wrong.
async fn session(url: &str, c: usize, secs: u64, published: &Published) -> Result<u64, String> {
    let mut ws = client::connect(url).await.map_err(|e| e.to_string())?;
    // The server registers a client before its 101, so every publish that
    // started after this read reaches it: from p0 + 2 on (p0 + 1 may have been
    // in flight), nothing may be missing.
    let p0 = published.0[c].load(Ordering::Relaxed);
    let mut last: Option<u64> = None;
    let mut count = 0;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut target = None;
    loop {
        if target.is_none() && Instant::now() >= deadline {
            // Drain up to what was published when we decided to leave.
            target = Some(published.0[c].load(Ordering::Relaxed));
        }
        if let (Some(t), Some(l)) = (target, last)
            && l >= t
        {
            break;
        }
        if let (Some(t), None) = (target, last)
            && t < p0 + 2
        {
            break;
        }
        let wait = match target {
            Some(_) => Duration::from_secs(10),
            None => Duration::from_millis(500),
        };
        let msg = match timeout(wait, ws.recv_message()).await {
            Err(_) if target.is_some() => return Err(format!("tail missing after {last:?}")),
            Err(_) => continue,
            Ok(Ok(Some(Message::Text(t)))) => t,
            Ok(other) => return Err(format!("unexpected {other:?}")),
        };
        let n: u64 = std::str::from_utf8(&msg)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("not a number")?;
        match last {
            Some(l) if n != l + 1 => return Err(format!("channel c{c}: got {n} after {l}")),
            None if n > p0 + 2 => {
                return Err(format!("channel c{c}: first {n}, expected <= {}", p0 + 2));
            }
            _ => {}
        }
        last = Some(n);
        count += 1;
    }
    let _ = timeout(Duration::from_secs(5), ws.close(1000, "")).await;
    Ok(count)
}

async fn churner(
    ws_addr: std::net::SocketAddr,
    k: usize,
    args: Args,
    published: Arc<Published>,
    tally: Arc<Tally>,
    end: Instant,
) {
    let mut seed = k as u64 + 1;
    while Instant::now() < end {
        let c = (next(&mut seed) as usize) % args.channels;
        let url = format!("ws://{ws_addr}/?channel=c{c}");
        match session(&url, c, 1 + next(&mut seed) % 5, &published).await {
            Ok(n) => {
                tally.verified.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                eprintln!("client {k}: {e}");
                tally.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        tally.sessions.fetch_add(1, Ordering::Relaxed);
    }
}

async fn stalled(ws_addr: std::net::SocketAddr, end: Instant) {
    while Instant::now() < end {
        // Never read: the server's queue limit cuts it off; come back every 30 s.
        let ws = client::connect(&format!("ws://{ws_addr}/?channel=stall")).await;
        let left = end.saturating_duration_since(Instant::now());
        tokio::time::sleep(Duration::from_secs(30).min(left)).await;
        drop(ws);
    }
}

/// What a run found.
pub struct Report {
    /// Sessions with a gap, a reordering or a missing tail.
    pub failures: u64,
    /// Messages checked in order by clients.
    pub verified: u64,
    /// Stalled clients were cut off (or there were none).
    pub stalled_cut: bool,
    /// RSS stayed within the margin of its level after warm-up.
    pub rss_ok: bool,
    /// Open fds stayed within the margin of their level after warm-up.
    pub fds_ok: bool,
}

impl Report {
    /// Everything held.
    pub fn ok(&self) -> bool {
        self.failures == 0 && self.stalled_cut && self.rss_ok && self.fds_ok
    }
}

/// Runs the soak with `args`, printing a line every 5 s and the totals.
pub async fn run(args: Args) -> Report {
    let settings = Settings {
        ws: "127.0.0.1:0".parse().unwrap(),
        rpc: "127.0.0.1:0".parse().unwrap(),
        api: "127.0.0.1:0".parse().unwrap(),
        queue_bytes: 64 << 10,
        shutdown_grace: 1,
        ..Settings::default()
    };
    let server = wspush::serve::start(&settings).await.unwrap();
    let published = Arc::new(Published(
        (0..args.channels).map(|_| AtomicU64::new(0)).collect(),
    ));
    let tally = Arc::new(Tally::default());
    let start = Instant::now();
    let end = start + Duration::from_secs(args.secs);
    let mut tasks = vec![tokio::spawn(publisher(
        server.rpc_addr,
        args.clone(),
        Arc::clone(&published),
        end,
    ))];
    for k in 0..args.clients {
        let (a, p, t) = (args.clone(), Arc::clone(&published), Arc::clone(&tally));
        tasks.push(tokio::spawn(churner(server.ws_addr, k, a, p, t, end)));
    }
    for _ in 0..args.stalled {
        tasks.push(tokio::spawn(stalled(server.ws_addr, end)));
    }

    // Samples every 5 s; the level after the first fifth is the reference.
    let warm = start + Duration::from_secs(args.secs / 5);
    let mut reference = None;
    let mut last = (0, 0);
    while Instant::now() < end {
        tokio::time::sleep(
            Duration::from_secs(5).min(end.saturating_duration_since(Instant::now())),
        )
        .await;
        let (rss, fds) = (rss_kib(), open_fds());
        let stats = server.shared.stats();
        println!(
            "t={:>4}s rss={rss} KiB fds={fds} conns={} sessions={} verified={} failures={} overflow_closes={}",
            start.elapsed().as_secs(),
            stats.connections,
            tally.sessions.load(Ordering::Relaxed),
            tally.verified.load(Ordering::Relaxed),
            tally.failures.load(Ordering::Relaxed),
            stats.overflow_closes,
        );
        if reference.is_none() && Instant::now() >= warm {
            reference = Some((rss, fds));
        }
        last = (rss, fds);
    }
    for t in tasks {
        let _ = t.await;
    }
    let stats = server.shared.stats();
    server.shutdown().await.unwrap();
    let (ref_rss, ref_fds) = reference.unwrap_or(last);
    let total: u64 = published.0.iter().map(|p| p.load(Ordering::Relaxed)).sum();
    let report = Report {
        failures: tally.failures.load(Ordering::Relaxed),
        verified: tally.verified.load(Ordering::Relaxed),
        stalled_cut: args.stalled == 0 || stats.overflow_closes > 0,
        // Flat: within 50% + 32 MiB of the warmed-up RSS, fds within 10% of the clients + 64.
        rss_ok: last.0 <= ref_rss * 3 / 2 + (32 << 10),
        fds_ok: last.1 <= ref_fds + args.clients as u64 / 10 + 64,
    };
    println!(
        "published={total} sessions={} verified={} failures={} overflow_closes={} rss {ref_rss} -> {} KiB, fds {ref_fds} -> {} stalled_cut={} rss_ok={} fds_ok={}",
        tally.sessions.load(Ordering::Relaxed),
        report.verified,
        report.failures,
        stats.overflow_closes,
        last.0,
        last.1,
        report.stalled_cut,
        report.rss_ok,
        report.fds_ok,
    );
    report
}

#[tokio::main]
#[allow(dead_code)] // also compiled as a module of tests/soak.rs
async fn main() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    if !run(Args::parse()).await.ok() {
        eprintln!("soak FAILED");
        std::process::exit(1);
    }
    println!("soak ok");
}
