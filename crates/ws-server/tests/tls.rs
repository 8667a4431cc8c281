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
