//! Scenario e as browsers connect (issue 15): Chrome's exact permessage-deflate offer, one
//! message from each client (compressed, as Chrome compresses every message once deflate is
//! agreed), `wss://`. Such a subscriber upgrades, sends its message and a ping, waits for the
//! pong (the server handles frames in order, so by then it has inflated the message), counts
//! as connected and then only holds the socket: these points publish nothing.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use ws_proto::frame::{FrameHeader, OpCode};
use ws_proto::handshake::DeflateParams;
use ws_proto::{Config, Connection, Message};

use crate::subscriber::SubError;

/// `Sec-WebSocket-Extensions` exactly as Chrome (and Firefox, Safari) send it.
pub const CHROME_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// The first message: 160 bytes of JSON, as a chat page sends when it opens.
pub fn first_message(index: usize) -> String {
    let mut m = format!(
        "{{\"type\":\"hello\",\"client\":{index:>6},\"page\":\"/chat/general\",\"user\":\"guest\",\"text\":\"hi everyone, just joined the channel\",\"lang\":\"en\"}}"
    );
    while m.len() < 160 {
        m.insert(m.len() - 1, ' ');
    }
    m
}

/// How a scenario-e client connects; the default is the plain idle subscriber.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientShape {
    /// Offer permessage-deflate as Chrome does ([`CHROME_OFFER`]).
    #[serde(default)]
    pub chrome_offer: bool,
    /// Send one 160-byte text message ([`first_message`]) after the upgrade, compressed
    /// when deflate was agreed.
    #[serde(default)]
    pub first_message: bool,
    /// Connect with TLS (`wss://`).
    #[serde(default)]
    pub tls: bool,
}

impl ClientShape {
    /// Whether this is the plain subscriber of the other scenarios.
    pub fn is_plain(&self) -> bool {
        *self == ClientShape::default()
    }

    /// For point names: `idle`, `chrome`, `chrome-msg`, `wss`, `wss-chrome-msg`, `msg`.
    pub fn tag(&self) -> String {
        let mut parts = Vec::new();
        if self.tls {
            parts.push("wss");
        }
        if self.chrome_offer {
            parts.push("chrome");
        }
        if self.first_message {
            parts.push("msg");
        }
        if parts.is_empty() {
            "idle".into()
        } else {
            parts.join("-")
        }
    }
}

/// A byte stream a browser-like client speaks over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// What a shaped client needs besides the plain subscriber's spec.
#[derive(Clone)]
pub struct Shaped {
    /// The connection shape.
    pub shape: ClientShape,
    /// TLS client configuration when `shape.tls`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Shaped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shaped")
            .field("shape", &self.shape)
            .finish_non_exhaustive()
    }
}

/// A rustls client trusting the PEM certificates in `ca` (the bench's generated one).
pub fn tls_client(ca: &std::path::Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use anyhow::Context as _;
    let pem = std::fs::read(ca).with_context(|| ca.display().to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Wraps `tcp` in TLS when asked (server name: the address's IP, which the certificate
/// names).
pub async fn wrap(
    tcp: TcpStream,
    shaped: &Shaped,
    addr: std::net::SocketAddr,
) -> Result<Box<dyn Io>, SubError> {
    let Some(tls) = shaped.tls.clone().filter(|_| shaped.shape.tls) else {
        return Ok(Box::new(tcp));
    };
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await?;
    Ok(Box::new(stream))
}

/// After the upgrade (`rest`: bytes read past the response; `deflate`: what the server
/// agreed): send the first message if the shape has one, prove it was handled with a
/// ping/pong, then hold the socket until the server closes it.
pub async fn hold(
    mut io: Box<dyn Io>,
    mut rest: Vec<u8>,
    index: usize,
    shape: ClientShape,
    deflate: Option<DeflateParams>,
    on_ready: impl FnOnce(),
) -> Result<(), SubError> {
    if shape.first_message {
        // ws-proto's client role encodes (and masks) as a browser would: compressed when
        // agreed, whatever the size (threshold 0), as Chrome compresses every message.
        let config = Config {
            compression_threshold: 0,
            ..Config::default()
        };
        let mut client = Connection::new_client(config, deflate, index as u64 + 1);
        let sent = client
            .send(Message::text(first_message(index)))
            .and_then(|()| client.ping(Bytes::from_static(b"m")));
        sent.map_err(|e| SubError::Frame(e.to_string()))?;
        let mut out = VecDeque::new();
        client.poll_transmit(&mut out);
        for chunk in out {
            io.write_all(&chunk).await?;
        }
        wait_pong(&mut io, &mut rest).await?;
    }
    on_ready();
    let mut buf = [0u8; 512];
    loop {
        if io.read(&mut buf).await? == 0 {
            return Err(SubError::Closed(None));
        }
    }
}

/// Reads frames until a pong; anything else before it is skipped.
async fn wait_pong(io: &mut Box<dyn Io>, buf: &mut Vec<u8>) -> Result<(), SubError> {
    loop {
        while let Some((h, len)) =
            FrameHeader::parse(buf).map_err(|e| SubError::Frame(e.to_string()))?
        {
            let end = len.saturating_add(usize::try_from(h.payload_len).unwrap_or(usize::MAX));
            if buf.len() < end {
                break;
            }
            buf.drain(..end);
            match h.opcode {
                OpCode::Pong => return Ok(()),
                OpCode::Close => return Err(SubError::Closed(None)),
                _ => {}
            }
        }
        if io.read_buf(buf).await? == 0 {
            return Err(SubError::Closed(None));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_message_is_160_bytes_of_json() {
        for i in [0, 7, 123_456] {
            let m = first_message(i);
            assert_eq!(m.len(), 160, "{m}");
            assert!(serde_json::from_str::<serde_json::Value>(&m).is_ok(), "{m}");
        }
    }

    #[test]
    fn tags() {
        let s = |chrome_offer, first_message, tls| ClientShape {
            chrome_offer,
            first_message,
            tls,
        };
        assert_eq!(s(false, false, false).tag(), "idle");
        assert_eq!(s(true, true, false).tag(), "chrome-msg");
        assert_eq!(s(false, false, true).tag(), "wss");
        assert_eq!(s(true, true, true).tag(), "wss-chrome-msg");
    }

    #[test]
    fn chrome_offer_is_exact() {
        // What Chrome 120 sends, byte for byte (and what python-websockets sends by default).
        assert_eq!(
            CHROME_OFFER.as_bytes(),
            b"permessage-deflate; client_max_window_bits"
        );
    }
}
