//! Measures what rustls itself keeps per server connection, with no sockets and no tokio:
//! `cargo run --release -p ws-server --example tls_mem -- [N]` (default 10000) completes N
//! TLS 1.3 handshakes in memory (a generated P-256 certificate), each followed by one
//! application record each way, keeps the server sides (each client is dropped before the
//! next starts, so its memory is reused) and prints the process's RSS growth per connection.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::{ClientConnection, RootCertStore, ServerConnection};

type Error = Box<dyn std::error::Error + Send + Sync>;

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

fn main() -> Result<(), Error> {
    let n: usize = std::env::args().nth(1).map_or(Ok(10_000), |a| a.parse())?;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der())?;
    let server_config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)?,
    );
    let mut roots = RootCertStore::empty();
    roots.add(cert.cert.der().clone())?;
    let client_config = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let start = rss_kib()?;
    let mut servers = Vec::with_capacity(n);
    for _ in 0..n {
        let mut client = ClientConnection::new(client_config.clone(), name.clone())?;
        let mut server = ServerConnection::new(server_config.clone())?;
        pump(&mut client, &mut server)?;
        // One application record each way, as an upgrade request and its answer.
        client.writer().write_all(b"GET / HTTP/1.1")?;
        pump(&mut client, &mut server)?;
        let mut got = [0u8; 64];
        let _ = server.reader().read(&mut got)?;
        server.writer().write_all(b"HTTP/1.1 101")?;
        pump(&mut client, &mut server)?;
        // The next client reuses this one's memory: what grows is the server sides.
        drop(client);
        servers.push(server);
    }
    let kept = rss_kib()?;
    println!(
        "{n} rustls server connections after a TLS 1.3 handshake and one record each way: \
         {:.2} KiB of RSS each (in rustls 0.23 its read buffer alone is 4 KiB, never freed)",
        (kept - start) as f64 / n as f64,
    );
    drop(servers);
    Ok(())
}
