//! Measures what a TLS server connection keeps in memory, with no sockets:
//! `cargo run --release -p ws-server --example tls_mem -- [N] [stream|stream-rustls|buffered]`
//! (default 10000, both) completes N TLS 1.3 handshakes in memory (a generated P-256
//! certificate), each followed by one application record each way (as an upgrade request
//! and its answer), keeps the server sides (each client is dropped before the next starts,
//! so its memory is reused) and prints the process's RSS growth per connection.
//!
//! - `stream`: the server's own [`ws_server::TlsStream`] over an in-memory pipe that frees
//!   its bytes once read, as the server runs it: rustls's unbuffered API for the handshake,
//!   then its own TLS 1.3 record layer; what it keeps is the stream's fields, rustls's AEAD
//!   keys and its `KernelConnection` (key schedule) (the pipe's two empty halves, ~0.2 KiB,
//!   are counted too).
//! - `stream-rustls`: the same stream with a config that does not allow secret extraction,
//!   so the connection stays on rustls's `UnbufferedServerConnection` (as TLS 1.2 does).
//! - `buffered`: rustls's buffered `ServerConnection`, as tokio-rustls used it before.
//!
//! With no mode given, each runs in a child process of its own (a fresh heap each).

mod common;

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::{ClientConnection, ServerConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{Configs, End, Error, configs};

fn rss_kib() -> Result<u64, Error> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmRSS")?.parse()?)
}

/// Moves TLS records between the two sides until neither has anything to send.
fn pump(client: &mut ClientConnection, server: &mut ServerConnection) -> Result<(), Error> {
    loop {
        let mut moved = false;
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf)?;
        }
        if !buf.is_empty() {
            moved = true;
            server.read_tls(&mut &buf[..])?;
            server.process_new_packets()?;
        }
        buf.clear();
        while server.wants_write() {
            server.write_tls(&mut buf)?;
        }
        if !buf.is_empty() {
            moved = true;
            client.read_tls(&mut &buf[..])?;
            client.process_new_packets()?;
        }
        if !moved {
            return Ok(());
        }
    }
}

fn buffered(n: usize, cfg: &Configs) -> Result<f64, Error> {
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let start = rss_kib()?;
    let mut servers = Vec::with_capacity(n);
    for _ in 0..n {
        let mut client = ClientConnection::new(cfg.client.clone(), name.clone())?;
        let mut server = ServerConnection::new(cfg.server.clone())?;
        pump(&mut client, &mut server)?;
        client.writer().write_all(b"GET / HTTP/1.1")?;
        pump(&mut client, &mut server)?;
        let mut got = [0u8; 64];
        let _ = server.reader().read(&mut got)?;
        server.writer().write_all(b"HTTP/1.1 101")?;
        pump(&mut client, &mut server)?;
        drop(client);
        servers.push(server);
    }
    let kept = rss_kib()?;
    drop(servers);
    Ok((kept - start) as f64 / n as f64)
}

/// One server-side stream after a handshake and one record each way.
async fn one_stream(
    cfg: &Configs,
    server_cfg: &Arc<rustls::ServerConfig>,
) -> Result<ws_server::TlsStream<End>, Error> {
    let (mut server, mut client) = common::handshake(cfg, server_cfg, true).await?;
    client.write_all(b"GET / HTTP/1.1").await?;
    client.flush().await?;
    let mut got = [0u8; 64];
    let _ = server.read(&mut got).await?;
    server.write_all(b"HTTP/1.1 101").await?;
    server.flush().await?;
    let _ = client.read(&mut got).await?;
    Ok(server)
}

fn stream(n: usize, cfg: &Configs, server_cfg: &Arc<rustls::ServerConfig>) -> Result<f64, Error> {
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    rt.block_on(async {
        // The per-thread scratch buffers are made by the first connection: not per connection.
        drop(one_stream(cfg, server_cfg).await?);
        let start = rss_kib()?;
        let mut servers = Vec::with_capacity(n);
        for _ in 0..n {
            servers.push(one_stream(cfg, server_cfg).await?);
        }
        let kept = rss_kib()?;
        drop(servers);
        Ok((kept - start) as f64 / n as f64)
    })
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(10_000), |a| a.parse())?;
    let Some(mode) = args.next() else {
        for mode in ["stream", "stream-rustls", "buffered"] {
            let status = std::process::Command::new(std::env::current_exe()?)
                .args([n.to_string(), mode.to_owned()])
                .status()?;
            if !status.success() {
                return Err(format!("{mode}: {status}").into());
            }
        }
        return Ok(());
    };
    let cfg = configs()?;
    let (per_conn, what) = match mode.as_str() {
        "stream" => (
            stream(n, &cfg, &cfg.server)?,
            "ws_server::TlsStream (own TLS 1.3 record layer)",
        ),
        "stream-rustls" => (
            stream(n, &cfg, &cfg.server_rustls)?,
            "ws_server::TlsStream (kept on rustls unbuffered)",
        ),
        "buffered" => (buffered(n, &cfg)?, "rustls buffered ServerConnection"),
        other => {
            return Err(format!("unknown mode {other}: stream, stream-rustls or buffered").into());
        }
    };
    println!(
        "{n} x {what}, after a TLS 1.3 handshake and one record each way: \
         {per_conn:.2} KiB of RSS each"
    );
    if mode.starts_with("stream") {
        println!(
            "  of which inline (the server boxes it): TlsStream<TcpStream> {} B; boxed apart: \
             rustls UnbufferedServerConnection {} B or our layer's {} B (rustls's \
             KernelConnection {} B of it)",
            std::mem::size_of::<ws_server::TlsStream<tokio::net::TcpStream>>(),
            std::mem::size_of::<rustls::server::UnbufferedServerConnection>(),
            ws_server::TlsStream::<tokio::net::TcpStream>::OWN_LAYER_SIZE,
            std::mem::size_of::<
                rustls::kernel::KernelConnection<rustls::server::ServerConnectionData>,
            >(),
        );
    }
    Ok(())
}
