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

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use rustls::{ClientConnection, RootCertStore, ServerConnection};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn rss_kib() -> Result<u64, Error> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmRSS")?.parse()?)
}

struct Configs {
    server: Arc<rustls::ServerConfig>,
    /// The same without secret extraction: the stream stays on rustls.
    server_rustls: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

fn configs() -> Result<Configs, Error> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der())?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)?;
    // As `TlsConfig::from_pem_files` sets them: the stream's TLS 1.3 connections move to
    // its own record layer (the buffered mode is not affected).
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    server.enable_secret_extraction = true;
    let mut roots = RootCertStore::empty();
    roots.add(cert.cert.der().clone())?;
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut server_rustls = server.clone();
    server_rustls.enable_secret_extraction = false;
    Ok(Configs {
        server: Arc::new(server),
        server_rustls: Arc::new(server_rustls),
        client: Arc::new(client),
    })
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

/// One direction of an in-memory pipe; its bytes are freed once read.
#[derive(Default)]
struct Half {
    bytes: VecDeque<u8>,
    reader: Option<Waker>,
    closed: bool,
}

/// One end of an in-memory pipe.
struct End {
    rx: Arc<Mutex<Half>>,
    tx: Arc<Mutex<Half>>,
}

fn pipe() -> (End, End) {
    let (a, b) = (Arc::default(), Arc::default());
    (
        End {
            rx: Arc::clone(&a),
            tx: Arc::clone(&b),
        },
        End { rx: b, tx: a },
    )
}

fn lock(half: &Mutex<Half>) -> std::sync::MutexGuard<'_, Half> {
    half.lock().unwrap_or_else(|p| p.into_inner())
}

impl AsyncRead for End {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let mut half = lock(&self.rx);
        if half.bytes.is_empty() {
            if half.closed {
                return Poll::Ready(Ok(()));
            }
            half.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.remaining().min(half.bytes.len());
        for b in half.bytes.drain(..n) {
            buf.put_slice(&[b]);
        }
        if half.bytes.is_empty() {
            half.bytes = VecDeque::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for End {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut half = lock(&self.tx);
        half.bytes.extend(buf);
        if let Some(w) = half.reader.take() {
            w.wake();
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut half = lock(&self.tx);
        half.closed = true;
        if let Some(w) = half.reader.take() {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }
}

/// One server-side stream after a handshake and one record each way.
async fn one_stream(
    cfg: &Configs,
    server_cfg: &Arc<rustls::ServerConfig>,
) -> Result<ws_server::TlsStream<End>, Error> {
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let (c, s) = pipe();
    let connector = tokio_rustls::TlsConnector::from(cfg.client.clone());
    let (server, client) = tokio::join!(
        ws_server::TlsStream::accept(s, server_cfg.clone()),
        connector.connect(name, c)
    );
    let (mut server, mut client) = (server?, client?);
    if server.is_compact() != server_cfg.enable_secret_extraction {
        return Err("the stream is not on the record layer its config calls for".into());
    }
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
