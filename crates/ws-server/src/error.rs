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

/// A `wss://` connection failed in its TLS layer (the server's own stream over rustls's
/// unbuffered API). Reads and writes report it as an `io::Error` of the kind named on each
/// variant, with this error inside (`io::Error::get_ref`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsStreamError {
    /// rustls refused what the peer sent or could not go on (`InvalidData`).
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The TCP connection ended without the peer's close_notify (`UnexpectedEof`): what came
    /// before is intact, but the peer may not have sent all it meant to.
    #[error("the peer closed the connection without a TLS close_notify")]
    Truncated,
    /// The TCP connection ended (or the peer closed) before the handshake completed
    /// (`UnexpectedEof`).
    #[error("the connection ended during the TLS handshake")]
    HandshakeEof,
    /// The client sent TLS 1.3 early data, which is not accepted (`InvalidData`).
    #[error("TLS early data (0-RTT) is not accepted")]
    EarlyData,
    /// A write after our close_notify (`BrokenPipe`).
    #[error("the TLS connection is closed for writing")]
    Closed,
    /// A write before the handshake completed (`NotConnected`).
    #[error("the TLS handshake is not complete")]
    HandshakeIncomplete,
    /// The traffic keys reached their use limit and could not be renewed (`Other`).
    #[error("the TLS traffic keys are exhausted")]
    EncryptExhausted,
    /// rustls asked for a buffer larger than it was given, then refused that (`Other`).
    #[error("rustls refused the buffer it asked for")]
    BufferSize,
    /// rustls reported a state this version does not know (`Other`).
    #[error("unknown TLS connection state")]
    UnknownState,
    /// An earlier error ended this connection (`BrokenPipe`).
    #[error("the TLS connection failed earlier")]
    Failed,
    /// The peer broke the TLS 1.3 record protocol after the handshake, on our own record
    /// layer (`InvalidData`).
    #[error("TLS record: {0}")]
    Record(#[from] TlsRecordError),
}

/// What the peer sent that our TLS 1.3 record layer refuses (after the handshake, once
/// rustls handed the connection over); each but a peer's own alert is answered with one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsRecordError {
    /// A record longer than 2^14 + 256 bytes of ciphertext (record_overflow).
    #[error("a record of {0} bytes, more than TLS 1.3 allows")]
    Overflow(usize),
    /// A record whose header's content type is not application_data: after the handshake
    /// every record is protected (unexpected_message).
    #[error("an unprotected record of content type {0} after the handshake")]
    OuterType(u8),
    /// A record header's version is not 3.x (decode_error).
    #[error("a record of version {0:#06x}")]
    Version(u16),
    /// A record did not decrypt (bad_record_mac).
    #[error("a record failed to decrypt (bad record MAC)")]
    BadMac,
    /// A decrypted record of a content type not allowed after the handshake: 0 for none,
    /// 20 for change_cipher_spec (unexpected_message).
    #[error("a record of content type {0} after the handshake")]
    ContentType(u8),
    /// A handshake message other than KeyUpdate after the handshake (unexpected_message).
    #[error("handshake message {0} after the handshake")]
    Handshake(u8),
    /// A KeyUpdate of the wrong length, split across records or not alone in its record
    /// (decode_error).
    #[error("a malformed or misaligned KeyUpdate")]
    KeyUpdateLength,
    /// A KeyUpdate whose value is neither 0 nor 1 (illegal_parameter).
    #[error("a KeyUpdate with an unknown request value")]
    KeyUpdateValue,
    /// An alert that is not two bytes, or a warning TLS 1.3 does not have (decode_error).
    #[error("a malformed alert")]
    Alert,
    /// An alert of an unknown level (illegal_parameter).
    #[error("an alert of unknown level {0}")]
    AlertLevel(u8),
    /// The peer's fatal alert, of this description (nothing is sent back).
    #[error("the peer sent fatal alert {0}")]
    PeerAlert(u8),
}

impl TlsRecordError {
    /// The alert that tells the peer (RFC 8446 §6.2), if one is sent.
    pub fn alert(&self) -> Option<rustls::AlertDescription> {
        use rustls::AlertDescription as A;
        Some(match self {
            Self::Overflow(_) => A::RecordOverflow,
            Self::OuterType(_) | Self::ContentType(_) | Self::Handshake(_) => A::UnexpectedMessage,
            Self::Version(_) | Self::KeyUpdateLength | Self::Alert => A::DecodeError,
            Self::BadMac => A::BadRecordMac,
            Self::KeyUpdateValue | Self::AlertLevel(_) => A::IllegalParameter,
            Self::PeerAlert(_) => return None,
        })
    }
}

impl From<TlsStreamError> for io::Error {
    fn from(e: TlsStreamError) -> Self {
        if let TlsStreamError::Io(e) = e {
            return e;
        }
        let kind = match &e {
            TlsStreamError::Rustls(_) | TlsStreamError::EarlyData | TlsStreamError::Record(_) => {
                io::ErrorKind::InvalidData
            }
            TlsStreamError::Truncated | TlsStreamError::HandshakeEof => {
                io::ErrorKind::UnexpectedEof
            }
            TlsStreamError::Closed | TlsStreamError::Failed => io::ErrorKind::BrokenPipe,
            TlsStreamError::HandshakeIncomplete => io::ErrorKind::NotConnected,
            TlsStreamError::EncryptExhausted
            | TlsStreamError::BufferSize
            | TlsStreamError::UnknownState
            | TlsStreamError::Io(_) => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
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

    #[test]
    fn tls_stream_error_is_small_and_keeps_its_kind() {
        assert!(std::mem::size_of::<TlsStreamError>() <= 64);
        let e = io::Error::from(TlsStreamError::Truncated);
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(matches!(
            e.get_ref().and_then(|e| e.downcast_ref::<TlsStreamError>()),
            Some(TlsStreamError::Truncated)
        ));
        let inner = io::Error::from(io::ErrorKind::ConnectionReset);
        let e = io::Error::from(TlsStreamError::Io(inner));
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    }
}
