//! Measures the server's memory per idle WebSocket connection.
//!
//! `ulimit -n 20000 && cargo run --release -p ws-server --example idle_mem -- [N]` (default
//! N = 10000) starts a server child process (this program with `server`), reads its RSS from
//! `/proc`, opens N client connections from source addresses 127.0.0.1..127.0.0.40, sends one
//! small message on each and waits for its echo, then reads the server's RSS again and prints
//! the difference per connection. Server and clients are separate processes so each needs only
//! N file descriptors.

use std::process::Stdio;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpSocket;
use tokio::task::JoinSet;
use ws_server::client::{self, Client, ClientConfig};
use ws_server::{Echo, Server, ServerConfig};

/// Connections opened at once (the listen backlog is 1024).
const CONCURRENT: usize = 256;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("server") => serve().await,
        Some(n) => measure(n.parse()?).await,
        None => measure(10_000).await,
    }
}

async fn serve() -> Result<(), Error> {
    let mut config = ServerConfig::default();
    config.max_connections = 1_000_000;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("port {}", listener.local_addr()?.port());
    Server::new(config, Echo)
        .serve(listener, std::future::pending())
        .await?;
    Ok(())
}

fn rss_kib(pid: u32) -> Result<u64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmRSS")?.parse()?)
}

async fn open(i: usize, port: u16) -> Result<Client, Error> {
    let source = std::net::Ipv4Addr::new(127, 0, 0, 1 + (i % 40) as u8);
    let socket = TcpSocket::new_v4()?;
    socket.bind((source, 0).into())?;
    let tcp = socket.connect(([127, 0, 0, 1], port).into()).await?;
    let url = format!("ws://127.0.0.1:{port}/");
    let mut ws = client::connect_on(tcp, &url, ClientConfig::default()).await?;
    ws.send_text(format!("hello {i}")).await?;
    ws.recv_message().await?.ok_or("closed before the echo")?;
    Ok(ws)
}

async fn measure(n: usize) -> Result<(), Error> {
    let exe = std::env::current_exe()?;
    let mut child = tokio::process::Command::new(exe)
        .arg("server")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("no child pid")?;
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let line = BufReader::new(stdout)
        .lines()
        .next_line()
        .await?
        .ok_or("server printed nothing")?;
    let port: u16 = line.trim_start_matches("port ").parse()?;
    // Warm the runtime (worker threads, first allocations) before the baseline.
    let warm = open(0, port).await?;
    drop(warm);
    let before = rss_kib(pid)?;
    let started = Instant::now();
    let mut clients = Vec::with_capacity(n);
    let mut next = 0;
    while next < n {
        let mut batch = JoinSet::new();
        for i in next..(next + CONCURRENT).min(n) {
            batch.spawn(open(i, port));
        }
        next = (next + CONCURRENT).min(n);
        while let Some(done) = batch.join_next().await {
            clients.push(done??);
        }
    }
    let after = rss_kib(pid)?;
    let per_conn = (after.saturating_sub(before) * 1024) as f64 / n as f64;
    println!(
        "{n} idle connections in {:.1?}: server RSS {before} KiB -> {after} KiB, {per_conn:.0} bytes per connection",
        started.elapsed()
    );
    drop(clients);
    child.kill().await?;
    Ok(())
}
