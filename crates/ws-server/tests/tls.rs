//! `wss://`: a self-signed certificate generated in the test, served from PEM files, reached
//! by the Rust client (custom root) and by Python `websockets` (ssl context with the CA file).
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestServer, config, python};
use ws_proto::Message;
use ws_server::TlsConfig;
use ws_server::client::{self, ClientConfig};

struct Pki {
    _dir: TempDir,
    cert_path: std::path::PathBuf,
    key_path: std::path::PathBuf,
    cert_der: rustls::pki_types::CertificateDer<'static>,
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pki(name: &str) -> Pki {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!("ws-server-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, key.cert.pem()).unwrap();
    std::fs::write(&key_path, key.key_pair.serialize_pem()).unwrap();
    Pki {
        _dir: TempDir(dir),
        cert_path,
        key_path,
        cert_der: key.cert.der().clone(),
    }
}

async fn tls_server(pki: &Pki) -> TestServer {
    let mut c = config();
    c.tls = Some(TlsConfig::from_pem_files(&pki.cert_path, &pki.key_path).unwrap());
    TestServer::start(c).await
}

#[tokio::test]
async fn rust_client_over_wss() {
    let pki = pki("rust");
    let srv = tls_server(&pki).await;
    let mut cfg = ClientConfig::default();
    cfg.trust_root(pki.cert_der.clone()).unwrap();
    let url = format!("wss://localhost:{}/secure", srv.addr.port());
    let mut ws = client::connect_with(&url, cfg).await.unwrap();
    let text = "over TLS ".repeat(5000);
    ws.send_text(text.clone()).await.unwrap();
    assert_eq!(ws.recv_message().await.unwrap(), Some(Message::text(text)));
    assert_eq!(ws.close(1000, "").await.unwrap().unwrap().code, 1000);
    // Without the root, the handshake is refused.
    assert!(client::connect(&url).await.is_err());
}

#[tokio::test]
async fn python_client_over_wss() {
    let pki = pki("py");
    let srv = tls_server(&pki).await;
    let url = format!("wss://localhost:{}/secure", srv.addr.port());
    let out = python("echo_client.py", &[&url, pki.cert_path.to_str().unwrap()]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[test]
fn missing_pem_files_are_reported() {
    let err =
        TlsConfig::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
    assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
}

/// A TLS client with these ALPN protocols, trusting the test's certificate.
async fn tls_connect(
    pki: &Pki,
    port: u16,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.cert_der.clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// ALPN `h2` gets HTTP/2 over the server's TLS stream (many streams on one connection),
/// `http/1.1` gets HTTP/1.1; both answer plain HTTP requests.
#[tokio::test]
async fn http2_and_http11_through_alpn() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let pki = pki("alpn");
    let srv = tls_server(&pki).await;
    let tls = tls_connect(&pki, srv.addr.port(), &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut streams = Vec::new();
    for i in 0..20 {
        let mut send = send.clone();
        streams.push(tokio::spawn(async move {
            let req = http::Request::get(format!("https://localhost/nothing-{i}"))
                .body(Empty::<bytes::Bytes>::new())
                .unwrap();
            let resp = send.send_request(req).await.unwrap();
            assert_eq!(resp.version(), http::Version::HTTP_2);
            let status = resp.status();
            resp.into_body().collect().await.unwrap();
            status
        }));
    }
    for s in streams {
        assert_eq!(s.await.unwrap(), http::StatusCode::NOT_FOUND);
    }

    let tls = tls_connect(&pki, srv.addr.port(), &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("/nothing")
        .header("host", "localhost")
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_11);
    assert_eq!(resp.status(), http::StatusCode::NOT_FOUND);
}
