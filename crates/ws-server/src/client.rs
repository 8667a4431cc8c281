//! A small WebSocket client on ws-proto's client role, for tests and tools (`wspush tail`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), ws_server::ClientError> {
//! let mut ws = ws_server::client::connect("ws://127.0.0.1:8080/chat").await?;
//! ws.send_text("hello").await?;
//! while let Some(event) = ws.recv().await? {
//!     if let ws_proto::Event::Message(msg) = event {
//!         println!("{msg:?}");
//!         break;
//!     }
//! }
//! ws.close(1000, "bye").await?;
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use ws_proto::handshake::{self, ClientAccepted, DeflateConfig};
use ws_proto::{CloseFrame, Event, Message, Role};

use crate::error::ClientError;
use crate::transport::Transport;

/// Read size of the client (a heap buffer: clients are few).
const READ_CHUNK: usize = 16 * 1024;

/// Client settings.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Protocol limits for what the server sends.
    pub proto: ws_proto::Config,
    /// Offer permessage-deflate with these parameters. Default `None`.
    pub deflate: Option<DeflateConfig>,
    /// Subprotocols to offer (`Sec-WebSocket-Protocol`).
    pub protocols: Vec<String>,
    /// Extra request headers (`Origin`, `Authorization`, ...).
    pub headers: Vec<(String, String)>,
    /// TLS settings for `wss://` URLs (roots to trust). Required for `wss://`: the crate ships
    /// no root certificates.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl ClientConfig {
    /// Sets [`ClientConfig::tls`] to trust exactly `root` (a self-signed server
    /// certificate or a private CA), the usual case for tests and tools.
    pub fn trust_root(
        &mut self,
        root: rustls::pki_types::CertificateDer<'static>,
    ) -> Result<(), rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(root)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        self.tls = Some(Arc::new(tls));
        Ok(())
    }
}

/// Where to connect, from a `ws://` or `wss://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `wss://`.
    pub tls: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (default 80 / 443).
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
}

impl Target {
    /// Parses `ws://host[:port][/path][?query]` or `wss://...`.
    pub fn parse(url: &str) -> Result<Self, ClientError> {
        let bad = || ClientError::BadUrl(url.to_owned());
        let (tls, rest) = if let Some(rest) = url.strip_prefix("ws://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("wss://") {
            (true, rest)
        } else {
            return Err(bad());
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None if after.is_empty() => default_port,
                None => return Err(bad()),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, port.parse().map_err(|_| bad())?),
                None => (authority, default_port),
            }
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            tls,
            host: host.to_owned(),
            port,
            path,
        })
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match (self.tls, self.port) {
            (false, 80) | (true, 443) => host,
            _ => format!("{host}:{}", self.port),
        }
    }
}

/// Connects to `url` with the default [`ClientConfig`] (no compression, `ws://` only).
pub async fn connect(url: &str) -> Result<Client, ClientError> {
    connect_with(url, ClientConfig::default()).await
}

/// Connects to `url` and completes the opening handshake.
pub async fn connect_with(url: &str, config: ClientConfig) -> Result<Client, ClientError> {
    let target = Target::parse(url)?;
    let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
    connect_on(tcp, url, config).await
}

/// Like [`connect_with`] over a TCP connection the caller opened (to choose the source
/// address, socket options, ...). `url` gives the scheme, `Host` header and path.
pub async fn connect_on(
    tcp: TcpStream,
    url: &str,
    config: ClientConfig,
) -> Result<Client, ClientError> {
    let target = Target::parse(url)?;
    let _ = tcp.set_nodelay(true);
    let io = if target.tls {
        let tls = config
            .tls
            .clone()
            .ok_or_else(|| ClientError::BadUrl(format!("{url}: wss:// needs ClientConfig::tls")))?;
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|_| ClientError::ServerName(target.host.clone()))?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await?;
        Transport::TlsClient(Box::new(stream))
    } else {
        Transport::Plain(tcp)
    };
    handshake_on(io, &target, config).await
}

async fn handshake_on(
    mut io: Transport,
    target: &Target,
    config: ClientConfig,
) -> Result<Client, ClientError> {
    let mut key_bytes = [0u8; 16];
    key_bytes[..8].copy_from_slice(&random_u64().to_le_bytes());
    key_bytes[8..].copy_from_slice(&random_u64().to_le_bytes());
    let key = handshake::generate_key(key_bytes);
    let mut extra = config.headers.clone();
    if let Some(deflate) = &config.deflate {
        extra.push(("Sec-WebSocket-Extensions".into(), deflate.client_offer()));
    }
    if !config.protocols.is_empty() {
        extra.push(("Sec-WebSocket-Protocol".into(), config.protocols.join(", ")));
    }
    let request = handshake::client_request(&target.host_header(), &target.path, &key, &extra);
    io.write_all(&request).await?;
    io.flush().await?;
    let mut buf = Vec::with_capacity(READ_CHUNK);
    let (len, accepted) = loop {
        if io.read_buf(&mut buf).await? == 0 {
            return Err(ClientError::HandshakeEof);
        }
        if let Some(done) = handshake::parse_response(&buf, &key)? {
            break done;
        }
    };
    if accepted.deflate.is_some() && config.deflate.is_none() {
        return Err(handshake::HandshakeError::Extension.into());
    }
    let mut proto = ws_proto::Connection::new_client(config.proto, accepted.deflate, random_u64());
    debug_assert_eq!(proto.role(), Role::Client);
    let rest = buf.split_off(len);
    let mut client = Client {
        io,
        out: VecDeque::new(),
        buf,
        accepted,
        proto: {
            if !rest.is_empty() {
                proto.handle_input(&rest)?;
            }
            proto
        },
        eof: false,
    };
    client.buf.clear();
    Ok(client)
}

/// Seeds for the handshake key and masking keys. std's hasher keys are random per process
/// (from the OS); the clock and a counter make successive values differ.
fn random_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

/// An open client connection.
#[derive(Debug)]
pub struct Client {
    io: Transport,
    proto: ws_proto::Connection,
    out: VecDeque<Bytes>,
    buf: Vec<u8>,
    accepted: ClientAccepted,
    eof: bool,
}

impl Client {
    /// The subprotocol the server selected.
    pub fn protocol(&self) -> Option<&str> {
        self.accepted.protocol.as_deref()
    }

    /// Whether permessage-deflate was negotiated.
    pub fn is_compressed(&self) -> bool {
        self.accepted.deflate.is_some()
    }

    /// Sends a message (masked; compressed when negotiated and large enough).
    pub async fn send(&mut self, msg: Message) -> Result<(), ClientError> {
        self.proto.send(msg)?;
        self.flush().await
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), ClientError> {
        self.send(Message::text(text)).await
    }

    /// Sends a binary message.
    pub async fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), ClientError> {
        self.send(Message::binary(data)).await
    }

    /// Sends a ping (payload at most 125 bytes).
    pub async fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), ClientError> {
        self.proto.ping(payload.into())?;
        self.flush().await
    }

    /// Writes bytes as they are: hand-made frames (fragments, protocol violations) in tests.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.flush().await?;
        self.io.write_all(bytes).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// The next event from the server (pongs to its pings are sent automatically);
    /// `None` once the TCP connection has ended.
    pub async fn recv(&mut self) -> Result<Option<Event>, ClientError> {
        loop {
            if let Some(event) = self.proto.poll_event() {
                self.flush().await?;
                return Ok(Some(event));
            }
            self.flush().await?;
            if self.eof {
                return Ok(None);
            }
            self.buf.clear();
            self.buf.reserve(READ_CHUNK);
            if self.io.read_buf(&mut self.buf).await? == 0 {
                self.eof = true;
                continue;
            }
            let result = self.proto.handle_input(&self.buf);
            if let Err(e) = result {
                // Our close frame is queued: send it, then report.
                let _ = self.flush().await;
                return Err(e.into());
            }
        }
    }

    /// The next data message, skipping pings and pongs; `None` if the server closed first.
    pub async fn recv_message(&mut self) -> Result<Option<Message>, ClientError> {
        while let Some(event) = self.recv().await? {
            match event {
                Event::Message(msg) => return Ok(Some(msg)),
                Event::Close(_) => return Ok(None),
                Event::Ping(_) | Event::Pong(_) => {}
            }
        }
        Ok(None)
    }

    /// Closes: sends a close frame, waits for the server's and for the end of the TCP
    /// connection. Returns the server's close frame (`None` if it never sent one).
    pub async fn close(
        &mut self,
        code: u16,
        reason: &str,
    ) -> Result<Option<CloseFrame>, ClientError> {
        self.proto.close(code, reason)?;
        self.flush().await?;
        let mut peer = None;
        while let Some(event) = self.recv().await? {
            if let Event::Close(frame) = event {
                peer = Some(frame);
            }
        }
        Ok(peer)
    }

    async fn flush(&mut self) -> Result<(), ClientError> {
        self.proto.poll_transmit(&mut self.out);
        while let Some(chunk) = self.out.pop_front() {
            self.io.write_all(&chunk).await?;
        }
        self.io.flush().await?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let t = Target::parse("ws://example.com/chat?room=1").unwrap();
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.path.as_str()),
            (false, "example.com", 80, "/chat?room=1")
        );
        assert_eq!(t.host_header(), "example.com");
        let t = Target::parse("wss://127.0.0.1:9443").unwrap();
        assert_eq!((t.tls, t.port, t.path.as_str()), (true, 9443, "/"));
        assert_eq!(t.host_header(), "127.0.0.1:9443");
        let t = Target::parse("ws://[::1]:8080?x").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 8080, "/?x")
        );
        assert_eq!(t.host_header(), "[::1]:8080");
        for bad in ["http://x", "ws://", "ws://h:port", "ws://[::1"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
