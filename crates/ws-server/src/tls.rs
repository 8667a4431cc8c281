//! TLS (`wss://`) termination with rustls, configured from PEM files.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use crate::error::TlsError;

/// A rustls server configuration ready to accept `wss://` connections.
#[derive(Clone)]
pub struct TlsConfig {
    /// Shared by every connection's `TlsStream` (see `tls_stream`).
    pub(crate) config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Loads a certificate chain and a private key (PKCS#8, PKCS#1 or SEC1) from PEM files.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, TlsError> {
        let (cert, key) = (cert.as_ref(), key.as_ref());
        let io_err = |path: &Path| {
            let path = path.display().to_string();
            move |source| TlsError::Io { path, source }
        };
        let mut reader = BufReader::new(File::open(cert).map_err(io_err(cert))?);
        let certs = rustls_pemfile::certs(&mut reader)
            .collect::<Result<Vec<_>, _>>()
            .map_err(io_err(cert))?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate(cert.display().to_string()));
        }
        let mut reader = BufReader::new(File::open(key).map_err(io_err(key))?);
        let key_der = rustls_pemfile::private_key(&mut reader)
            .map_err(io_err(key))?
            .ok_or_else(|| TlsError::NoPrivateKey(key.display().to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key_der)?;
        // HTTP/2 for pages (more than six event streams to one origin); WebSocket clients
        // ask for http/1.1 (RFC 8441's WebSocket over HTTP/2 is not served).
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // TLS 1.3 connections leave rustls for our own record layer once the handshake is
        // done (see `tls_stream`): rustls hands their secrets over only if allowed to.
        config.enable_secret_extraction = true;
        Ok(Self::from_rustls(Arc::new(config)))
    }

    /// Uses a rustls configuration built by the caller (client authentication, resolvers, ...).
    /// Leave `max_early_data_size` at 0: a client's early data (0-RTT) ends its connection.
    ///
    /// Set `enable_secret_extraction` to keep idle `wss://` connections small: with it, a
    /// TLS 1.3 connection is moved, once its handshake is done, from rustls onto our own
    /// record layer (rustls's AEAD and key schedule, none of its buffers or handshake
    /// state), about 1.7 KiB less per connection. Without it (and for TLS 1.2) rustls keeps
    /// the whole connection, which works the same, only larger.
    pub fn from_rustls(config: Arc<rustls::ServerConfig>) -> Self {
        Self { config }
    }
}
