//! What the TLS examples (`tls_mem`, `tls_speed`) share: the rustls configs (a generated
//! P-256 certificate) and an in-memory pipe to run `ws_server::TlsStream` over.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub struct Configs {
    pub server: Arc<rustls::ServerConfig>,
    /// The same without secret extraction: the stream stays on rustls.
    pub server_rustls: Arc<rustls::ServerConfig>,
    pub client: Arc<rustls::ClientConfig>,
}

pub fn configs() -> Result<Configs, Error> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der())?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)?;
    // As `TlsConfig::from_pem_files` sets them: the stream's TLS 1.3 connections move to
    // its own record layer (rustls's buffered `ServerConnection` is not affected).
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    server.enable_secret_extraction = true;
    let mut roots = rustls::RootCertStore::empty();
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

/// One direction of an in-memory pipe.
#[derive(Default)]
struct Half {
    bytes: VecDeque<u8>,
    reader: Option<Waker>,
    closed: bool,
    /// Free the bytes' allocation whenever everything written is read (for measuring
    /// memory); otherwise it is kept for the next write (for measuring speed).
    free_when_read: bool,
}

/// One end of an in-memory pipe.
pub struct End {
    rx: Arc<Mutex<Half>>,
    tx: Arc<Mutex<Half>>,
}

/// A pipe whose halves free their bytes once read (`free_when_read`), or keep their room.
pub fn pipe(free_when_read: bool) -> (End, End) {
    let half = || {
        Arc::new(Mutex::new(Half {
            free_when_read,
            ..Half::default()
        }))
    };
    let (a, b) = (half(), half());
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
        let (front, back) = half.bytes.as_slices();
        let from_front = n.min(front.len());
        buf.put_slice(&front[..from_front]);
        buf.put_slice(&back[..n - from_front]);
        half.bytes.drain(..n);
        if half.bytes.is_empty() && half.free_when_read {
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

/// A TLS handshake over a new pipe: the server's `ws_server::TlsStream` (checked to be on
/// the record layer `server_cfg` calls for) and a tokio-rustls client.
pub async fn handshake(
    cfg: &Configs,
    server_cfg: &Arc<rustls::ServerConfig>,
    free_when_read: bool,
) -> Result<
    (
        ws_server::TlsStream<End>,
        tokio_rustls::client::TlsStream<End>,
    ),
    Error,
> {
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let (c, s) = pipe(free_when_read);
    let connector = tokio_rustls::TlsConnector::from(cfg.client.clone());
    let (server, client) = tokio::join!(
        ws_server::TlsStream::accept(s, server_cfg.clone()),
        connector.connect(name, c)
    );
    let (server, client) = (server?, client?);
    if server.is_compact() != server_cfg.enable_secret_extraction {
        return Err("the stream is not on the record layer its config calls for".into());
    }
    Ok((server, client))
}
