//! Error types of the server layer.

use std::io;

/// Why [`Connection::send_text`](crate::Connection::send_text) and friends refused a message.
///
/// Sending never waits: a refusal is immediate and the message is not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The outbound queue is full ([`ServerConfig::outbound_queue_bytes`](crate::ServerConfig::outbound_queue_bytes));
    /// what happens next depends on [`OverflowPolicy`](crate::OverflowPolicy).
    #[error("outbound queue full")]
    Full,
    /// The connection is closing or closed.
    #[error("connection closed")]
    Closed,
    /// [`Connection::send_text`](crate::Connection::send_text) was given bytes that are not UTF-8.
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// [`Connection::send_chunk`](crate::Connection::send_chunk) on a WebSocket connection.
    #[error("raw chunks go only to event streams")]
    NotAStream,
}

/// Loading a TLS certificate and key failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// The certificate file holds no certificate.
    #[error("no certificate in {0}")]
    NoCertificate(String),
    /// The key file holds no private key.
    #[error("no private key in {0}")]
    NoPrivateKey(String),
    /// rustls refused the certificate/key pair.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A client connection ([`client`](crate::client)) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not `ws://host[:port][/path]` or `wss://...`.
    #[error("bad URL: {0}")]
    BadUrl(String),
    /// Socket error.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The server's handshake response was refused.
    #[error("handshake: {0}")]
    Handshake(#[from] ws_proto::handshake::HandshakeError),
    /// The server broke the protocol.
    #[error("protocol: {0}")]
    Protocol(#[from] ws_proto::ProtocolError),
    /// The protocol core refused to send (connection closing).
    #[error("send: {0}")]
    Send(#[from] ws_proto::SendError),
    /// The TLS server name is not a valid DNS name or IP address.
    #[error("invalid TLS server name: {0}")]
    ServerName(String),
    /// The server closed the connection before completing the handshake.
    #[error("connection closed during the handshake")]
    HandshakeEof,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_error_is_small() {
        assert_eq!(std::mem::size_of::<SendError>(), 1);
    }
}
