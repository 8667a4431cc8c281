//! [`TlsStream`] against a real rustls client (tokio-rustls) over an in-memory duplex pipe.

#![allow(clippy::unwrap_used)]

use std::io::IoSlice;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_rustls::client::TlsStream as ClientStream;

use super::TlsStream;
use crate::error::TlsStreamError;

const WAIT: Duration = Duration::from_secs(10);

struct Pki {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    Pki {
        cert: cert.cert.der().clone(),
        key: PrivateKeyDer::try_from(cert.key_pair.serialize_der()).unwrap(),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config(pki: &Pki, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.cert.clone()], pki.key.clone_key())
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // As `TlsConfig` sets it: TLS 1.3 connections move to our record layer.
    config.enable_secret_extraction = true;
    Arc::new(config)
}

fn client_config(
    pki: &Pki,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.cert.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

async fn connect(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    pipe: usize,
) -> (TlsStream<DuplexStream>, ClientStream<DuplexStream>) {
    let (c, s) = tokio::io::duplex(pipe);
    connect_over(s, c, server, client).await
}

/// A handshake between the server over `server_io` and a client over `client_io`.
async fn connect_over<IO>(
    server_io: IO,
    client_io: DuplexStream,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
) -> (TlsStream<IO>, ClientStream<DuplexStream>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let accept = tokio::spawn(TlsStream::accept(server_io, server));
    let name = ServerName::try_from("localhost").unwrap();
    let connect = tokio_rustls::TlsConnector::from(client).connect(name, client_io);
    let client = tokio::time::timeout(WAIT, connect).await.unwrap().unwrap();
    let server = tokio::time::timeout(WAIT, accept).await.unwrap();
    (server.unwrap().unwrap(), client)
}

async fn pair(pipe: usize) -> (TlsStream<DuplexStream>, ClientStream<DuplexStream>) {
    let pki = pki();
    let server = server_config(&pki, &[b"h2", b"http/1.1"]);
    connect(server, client_config(&pki, rustls::ALL_VERSIONS, &[]), pipe).await
}

/// Reads exactly `n` bytes with reads of at most `chunk`.
async fn read_n(r: &mut (impl AsyncReadExt + Unpin), n: usize, chunk: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(n);
    let mut buf = vec![0u8; chunk];
    while got.len() < n {
        let k = tokio::time::timeout(WAIT, r.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(k, 0, "EOF after {} of {n} bytes", got.len());
        got.extend_from_slice(&buf[..k]);
    }
    got
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

fn holds_no_buffers(s: &TlsStream<DuplexStream>) -> bool {
    s.incoming.capacity() == 0 && s.outgoing.is_empty() && s.plain.is_empty()
}

/// `up` from the client to the server, then `down` back.
async fn round_trip(
    server: &mut TlsStream<DuplexStream>,
    client: &mut ClientStream<DuplexStream>,
    up: &[u8],
    down: &[u8],
) {
    client.write_all(up).await.unwrap();
    client.flush().await.unwrap();
    assert_eq!(read_n(server, up.len(), 64).await, up);
    server.write_all(down).await.unwrap();
    server.flush().await.unwrap();
    assert_eq!(read_n(client, down.len(), 4096).await, down);
}

#[tokio::test]
async fn handshake_and_data_both_ways_tls13_and_tls12() {
    let pki = pki();
    for (version, want) in [
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
    ] {
        let server = server_config(&pki, &[]);
        let client = client_config(&pki, &[version], &[]);
        let (mut server, mut client) = connect(server, client, 64 * 1024).await;
        assert_eq!(server.protocol_version(), Some(want));
        // TLS 1.3 leaves rustls for our record layer; TLS 1.2 stays on rustls.
        assert_eq!(
            server.is_compact(),
            want == rustls::ProtocolVersion::TLSv1_3
        );
        assert!(holds_no_buffers(&server));
        let (up, down) = (b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 101\r\n\r\n");
        round_trip(&mut server, &mut client, up, down).await;
        // Idle again: nothing held between records.
        assert!(holds_no_buffers(&server));
    }
}

#[tokio::test]
async fn alpn_picks_h2_or_http11_or_nothing() {
    let pki = pki();
    let server = server_config(&pki, &[b"h2", b"http/1.1"]);
    for (offer, want) in [
        (&[&b"h2"[..], b"http/1.1"][..], Some(&b"h2"[..])),
        (&[&b"http/1.1"[..]][..], Some(&b"http/1.1"[..])),
        (&[][..], None),
    ] {
        let client = client_config(&pki, rustls::ALL_VERSIONS, offer);
        let (server, client) = connect(Arc::clone(&server), client, 64 * 1024).await;
        assert_eq!(server.alpn_protocol(), want);
        assert_eq!(client.get_ref().1.alpn_protocol(), want);
    }
}

#[tokio::test]
async fn large_writes_through_a_narrow_pipe() {
    // 1000-byte pipe: every record arrives in pieces, every write is taken in part.
    let (mut server, mut client) = pair(1000).await;
    let big = pattern(1 << 20);
    let up = big.clone();
    let writer = tokio::spawn(async move {
        client.write_all(&up).await.unwrap();
        client.flush().await.unwrap();
        let back = read_n(&mut client, 1 << 20, 16 * 1024).await;
        (client, back)
    });
    // Reads smaller than a record: the rest of each record waits in `plain`.
    let got = read_n(&mut server, 1 << 20, 1000).await;
    assert!(got == big, "client -> server bytes differ");
    server.write_all(&big).await.unwrap();
    server.flush().await.unwrap();
    let (_client, back) = tokio::time::timeout(WAIT, writer).await.unwrap().unwrap();
    assert!(back == big, "server -> client bytes differ");
    assert!(holds_no_buffers(&server));
}

/// The server's socket, giving and taking at most `sizes()` bytes per call.
struct Chopped<F> {
    io: DuplexStream,
    sizes: F,
}

impl<F: FnMut() -> usize + Unpin> tokio::io::AsyncRead for Chopped<F> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let cap = (self.sizes)();
        let mut part = buf.take(cap);
        std::task::ready!(std::pin::Pin::new(&mut self.io).poll_read(cx, &mut part))?;
        let n = part.filled().len();
        buf.advance(n);
        std::task::Poll::Ready(Ok(()))
    }
}

impl<F: FnMut() -> usize + Unpin> tokio::io::AsyncWrite for Chopped<F> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let n = buf.len().min((self.sizes)());
        std::pin::Pin::new(&mut self.io).poll_write(cx, &buf[..n])
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Pseudo-random sizes from a seed (xorshift64): mostly 1 to 40 bytes, a quarter of the
/// time up to 20,000 (records split anywhere, several in one read).
fn choppy(mut state: u64) -> impl FnMut() -> usize + Unpin {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        match state % 4 {
            0 => 1 + (state >> 8) as usize % 20_000,
            _ => 1 + (state >> 8) as usize % 40,
        }
    }
}

#[tokio::test]
async fn partial_records_byte_by_byte() {
    // The handshake and every record reach the server one byte per read and write.
    let pki = pki();
    let (c, s) = tokio::io::duplex(64 * 1024);
    let io = Chopped { io: s, sizes: || 1 };
    let client = client_config(&pki, rustls::ALL_VERSIONS, &[]);
    let (mut server, mut client) = connect_over(io, c, server_config(&pki, &[]), client).await;
    let msg = pattern(40_000);
    client.write_all(&msg).await.unwrap();
    client.flush().await.unwrap();
    assert!(read_n(&mut server, 40_000, 4096).await == msg);
    assert_eq!(server.incoming.capacity(), 0);
    server.write_all(&msg).await.unwrap();
    server.flush().await.unwrap();
    assert!(read_n(&mut client, 40_000, 4096).await == msg);
    // A record left incomplete is kept in an allocation of its own size, not a read buffer:
    // the first bytes of a record header, straight onto the pipe.
    client
        .get_mut()
        .0
        .write_all(&[0x17, 0x03, 0x03])
        .await
        .unwrap();
    let mut one = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(200), server.read(&mut one)).await;
    assert!(read.is_err(), "nothing to read yet");
    assert_eq!(server.incoming, [0x17, 0x03, 0x03]);
    assert_eq!(server.incoming.capacity(), 3);
}

#[tokio::test]
async fn vectored_writes_share_records() {
    let (mut server, mut client) = pair(256 * 1024).await;
    let frames: Vec<Vec<u8>> = (0..300).map(|i| vec![i as u8; 70]).collect();
    let slices: Vec<IoSlice<'_>> = frames.iter().map(|f| IoSlice::new(f)).collect();
    let mut sent = 0;
    while sent < 300 * 70 {
        // One call takes what it can; advancing by whole slices is enough for this check.
        let n = server.write_vectored(&slices[sent / 70..]).await.unwrap();
        assert_eq!(
            n % 70,
            0,
            "took {n}: whole slices here (well under MAX_WRITE)"
        );
        sent += n;
    }
    server.flush().await.unwrap();
    let got = read_n(&mut client, 300 * 70, 64 * 1024).await;
    assert!(got == frames.concat());
}

#[tokio::test]
async fn close_notify_both_ways() {
    let (mut server, mut client) = pair(64 * 1024).await;
    client.write_all(b"bye").await.unwrap();
    client.shutdown().await.unwrap();
    assert_eq!(read_n(&mut server, 3, 64).await, b"bye");
    let mut buf = [0u8; 16];
    // The client's close_notify is end of file, and stays so.
    assert_eq!(server.read(&mut buf).await.unwrap(), 0);
    assert_eq!(server.read(&mut buf).await.unwrap(), 0);
    // We may still write after the peer's close_notify, then send ours.
    server.write_all(b"last").await.unwrap();
    server.shutdown().await.unwrap();
    assert!(server.write_all(b"more").await.is_err());
    assert_eq!(read_n(&mut client, 4, 64).await, b"last");
    assert_eq!(
        client.read(&mut buf).await.unwrap(),
        0,
        "clean end for the client"
    );
}

#[tokio::test]
async fn peer_abort_without_close_notify_is_truncation() {
    let (mut server, client) = pair(64 * 1024).await;
    drop(client);
    let mut buf = [0u8; 16];
    let e = server.read(&mut buf).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    let inner = e.get_ref().and_then(|e| e.downcast_ref::<TlsStreamError>());
    assert!(matches!(inner, Some(TlsStreamError::Truncated)), "{e}");
}

#[tokio::test]
async fn abort_during_the_handshake() {
    let pki = pki();
    let (mut c, s) = tokio::io::duplex(1024);
    let accept = tokio::spawn(TlsStream::accept(s, server_config(&pki, &[])));
    // The first bytes of a ClientHello record, then nothing.
    c.write_all(&[0x16, 0x03, 0x01, 0x00, 0x80, 0x01])
        .await
        .unwrap();
    drop(c);
    let e = accept.await.unwrap().unwrap_err();
    assert!(matches!(e, TlsStreamError::HandshakeEof), "{e}");
}

#[tokio::test]
async fn garbage_is_a_typed_error_with_an_alert() {
    let pki = pki();
    let (mut c, s) = tokio::io::duplex(1024);
    let accept = tokio::spawn(TlsStream::accept(s, server_config(&pki, &[])));
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let e = accept.await.unwrap().unwrap_err();
    assert!(matches!(e, TlsStreamError::Rustls(_)), "{e}");
    // The server told the peer why: an alert record (content type 21).
    let mut first = [0u8; 1];
    c.read_exact(&mut first).await.unwrap();
    assert_eq!(first[0], 21);
}

#[tokio::test]
async fn key_update_requested_by_the_client() {
    let (mut server, mut client) = pair(64 * 1024).await;
    // TLS 1.3 KeyUpdate with update_requested: the server must answer with its own.
    client.get_mut().1.refresh_traffic_keys().unwrap();
    round_trip(&mut server, &mut client, b"after update", b"answered").await;
    // And more both ways, to be sure both sides use their new keys.
    for i in 0..3u8 {
        round_trip(&mut server, &mut client, &[i; 100], &[i; 50]).await;
    }
}

#[tokio::test]
async fn random_chopping_both_ways_tls12_and_tls13() {
    let pki = pki();
    for (seed, version) in [
        (0x9e37_79b9_7f4a_7c15u64, &rustls::version::TLS13),
        (0x2545_f491_4f6c_dd1d, &rustls::version::TLS12),
        (0x1234_5678_9abc_def1, &rustls::version::TLS13),
    ] {
        let (c, s) = tokio::io::duplex(8 * 1024);
        let io = Chopped {
            io: s,
            sizes: choppy(seed),
        };
        let server = server_config(&pki, &[b"http/1.1"]);
        let client = client_config(&pki, &[version], &[b"http/1.1"]);
        let (server, client) = connect_over(io, c, server, client).await;
        // Messages of many sizes each way, the two directions at once.
        let sizes: Vec<usize> = (0..40).map(|i| (i * 7919) % 70_000 + 1).collect();
        let total: usize = sizes.iter().sum();
        let data = pattern(total);
        let (mut cr, mut cw) = tokio::io::split(client);
        let (mut sr, mut sw) = tokio::io::split(server);
        let (up, back, got, ()) = tokio::join!(
            async {
                let mut at = 0;
                for &n in &sizes {
                    cw.write_all(&data[at..at + n]).await.unwrap();
                    cw.flush().await.unwrap();
                    at += n;
                }
            },
            read_n(&mut cr, total, 3000),
            read_n(&mut sr, total, 5000),
            async {
                let mut at = 0;
                for &n in &sizes {
                    // Each message as two slices of one vectored write.
                    write_all_vectored(
                        &mut sw,
                        &[&data[at..at + n / 2], &data[at + n / 2..at + n]],
                    )
                    .await;
                    sw.flush().await.unwrap();
                    at += n;
                }
            },
        );
        let () = up;
        assert!(got == data, "client -> server differs (seed {seed:x})");
        assert!(back == data, "server -> client differs (seed {seed:x})");
        let server = sr.unsplit(sw);
        assert_eq!(server.incoming.capacity(), 0);
        assert!(server.outgoing.is_empty() && server.plain.is_empty());
    }
}

/// Writes every byte of `parts`, in order, through vectored writes.
async fn write_all_vectored(w: &mut (impl AsyncWriteExt + Unpin), parts: &[&[u8]]) {
    let mut left: Vec<&[u8]> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    while !left.is_empty() {
        let slices: Vec<IoSlice<'_>> = left.iter().map(|p| IoSlice::new(p)).collect();
        let mut k = w.write_vectored(&slices).await.unwrap();
        assert_ne!(k, 0);
        while k > 0 {
            if k >= left[0].len() {
                k -= left[0].len();
                left.remove(0);
            } else {
                left[0] = &left[0][k..];
                k = 0;
            }
        }
    }
}

#[tokio::test]
async fn resumed_handshakes_and_hello_retry() {
    use rustls::HandshakeKind;
    let pki = pki();
    let server = server_config(&pki, &[]);
    // The same client config keeps its session cache: the second handshake resumes
    // (TLS 1.3 from a ticket; TLS 1.2 from the server's session cache, an abbreviated
    // handshake in which the server's Finished goes first).
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let client = client_config(&pki, &[version], &[]);
        for want in [HandshakeKind::Full, HandshakeKind::Resumed] {
            let (mut s, mut c) = connect(Arc::clone(&server), Arc::clone(&client), 64 * 1024).await;
            // The client takes its tickets with the first record it reads.
            round_trip(&mut s, &mut c, b"hello", b"there").await;
            assert_eq!(s.handshake_kind(), Some(want), "{version:?}");
        }
    }
    // A client whose key share (P-384) the server does not take (X25519 only) is asked
    // again: a HelloRetryRequest, one more round trip in the handshake.
    let mut x25519_only = rustls::crypto::ring::default_provider();
    x25519_only.kx_groups = vec![rustls::crypto::ring::kx_group::X25519];
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(x25519_only))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.cert.clone()], pki.key.clone_key())
        .unwrap();
    server.enable_secret_extraction = true;
    let server = Arc::new(server);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.cert.clone()).unwrap();
    let mut groups = rustls::crypto::ring::default_provider();
    groups.kx_groups = vec![
        rustls::crypto::ring::kx_group::SECP384R1,
        rustls::crypto::ring::kx_group::X25519,
    ];
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(groups))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let (mut s, mut c) = connect(server, Arc::new(client), 64 * 1024).await;
    round_trip(&mut s, &mut c, b"again", b"yes").await;
    assert_eq!(
        s.handshake_kind(),
        Some(HandshakeKind::FullWithHelloRetryRequest)
    );
}

/// Key updates our record layer sent (0 on rustls's).
fn tx_updates(s: &TlsStream<impl Sized>) -> u32 {
    match &s.layer {
        super::Layer::Own(own) => own.records.tx_updates,
        super::Layer::Rustls(_) => 0,
    }
}

#[tokio::test]
async fn without_secret_extraction_tls13_stays_on_rustls() {
    let pki = pki();
    let mut config = (*server_config(&pki, &[b"http/1.1"])).clone();
    config.enable_secret_extraction = false;
    let client = client_config(&pki, &[&rustls::version::TLS13], &[b"http/1.1"]);
    // Room in the pipe for a whole round trip's message (it is written before it is read).
    let (mut server, mut client) = connect(Arc::new(config), client, 1 << 20).await;
    assert!(!server.is_compact());
    assert_eq!(server.alpn_protocol(), Some(&b"http/1.1"[..]));
    client.get_mut().1.refresh_traffic_keys().unwrap();
    round_trip(&mut server, &mut client, &pattern(50_000), &pattern(70_000)).await;
}

#[tokio::test]
async fn every_tls13_suite_on_our_record_layer() {
    use rustls::crypto::ring::cipher_suite as cs;
    let pki = pki();
    let server = server_config(&pki, &[b"h2"]);
    for suite in [
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
    ] {
        let mut only = rustls::crypto::ring::default_provider();
        only.cipher_suites = vec![suite];
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.cert.clone()).unwrap();
        let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(only))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"h2".to_vec()];
        let (mut s, mut c) = connect(Arc::clone(&server), Arc::new(client), 1 << 20).await;
        assert!(s.is_compact(), "{suite:?}");
        assert_eq!(c.get_ref().1.negotiated_cipher_suite(), Some(suite));
        assert_eq!(s.alpn_protocol(), Some(&b"h2"[..]));
        assert_eq!(s.handshake_kind(), Some(rustls::HandshakeKind::Full));
        // Several records each way, a client key update, records past our rotation.
        let (up, down) = (pattern(100_000), pattern(60_000));
        round_trip(&mut s, &mut c, &up, &down).await;
        c.get_mut().1.refresh_traffic_keys().unwrap();
        round_trip(&mut s, &mut c, b"after", b"update").await;
        assert!(holds_no_buffers(&s));
    }
}

#[tokio::test]
async fn client_key_update_with_update_requested_is_answered() {
    let (mut server, mut client) = pair(64 * 1024).await;
    assert!(server.is_compact());
    for i in 0..3u8 {
        // rustls's client asks for ours each time (update_requested).
        client.get_mut().1.refresh_traffic_keys().unwrap();
        round_trip(&mut server, &mut client, &[i; 10], &[i; 20]).await;
        assert_eq!(tx_updates(&server), u32::from(i) + 1);
    }
}

#[tokio::test]
async fn our_key_rotates_at_the_confidentiality_limit() {
    let (mut server, mut client) = pair(1024 * 1024).await;
    assert!(server.is_compact());
    let n = super::record_layer::TEST_ROTATE_AT as usize * 4 + 3;
    // One record per write.
    for i in 0..n {
        server.write_all(&[i as u8; 100]).await.unwrap();
    }
    server.flush().await.unwrap();
    let got = read_n(&mut client, n * 100, 64 * 1024).await;
    let want: Vec<u8> = (0..n).flat_map(|i| [i as u8; 100]).collect();
    assert!(got == want);
    assert_eq!(tx_updates(&server), 4);
    // And the other way, the client's keys (rustls's own limit is far away).
    round_trip(&mut server, &mut client, b"still", b"fine").await;
}

#[tokio::test]
async fn garbage_after_the_handshake_is_fatal_with_an_alert() {
    use crate::error::TlsRecordError;
    let cases: [(&[u8], TlsRecordError, rustls::AlertDescription); 3] = [
        // Application data that does not decrypt.
        (
            &[
                23, 3, 3, 0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
                20,
            ],
            TlsRecordError::BadMac,
            rustls::AlertDescription::BadRecordMac,
        ),
        // A plaintext handshake record.
        (
            &[22, 3, 3, 0, 1, 0],
            TlsRecordError::OuterType(22),
            rustls::AlertDescription::UnexpectedMessage,
        ),
        // Longer than TLS 1.3 allows.
        (
            &[23, 3, 3, 0xff, 0xff],
            TlsRecordError::Overflow(0xffff),
            rustls::AlertDescription::RecordOverflow,
        ),
    ];
    for (garbage, want, alert) in cases {
        let (mut server, mut client) = pair(64 * 1024).await;
        assert!(server.is_compact());
        round_trip(&mut server, &mut client, b"before", b"ok").await;
        // Around the client's record layer, straight onto the pipe.
        client.get_mut().0.write_all(garbage).await.unwrap();
        let mut buf = [0u8; 64];
        let e = server.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        let inner = e.get_ref().and_then(|e| e.downcast_ref::<TlsStreamError>());
        assert!(
            matches!(inner, Some(TlsStreamError::Record(got)) if *got == want),
            "{e}"
        );
        // The client is told why, in a record under our key.
        let e = client.read(&mut buf).await.unwrap_err();
        let inner = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
        assert_eq!(inner, Some(&rustls::Error::AlertReceived(alert)), "{e}");
        // The stream stays failed, both ways.
        assert!(server.read(&mut buf).await.is_err());
        assert!(server.write_all(b"x").await.is_err());
    }
}

/// A rustls client that queues `data` before its handshake: it goes out right behind the
/// client's Finished, in the same flight. Returns once the handshake is done and all sent.
async fn coalescing_client(
    mut io: DuplexStream,
    config: Arc<rustls::ClientConfig>,
    data: &[u8],
) -> (rustls::ClientConnection, DuplexStream) {
    use std::io::Write;
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    conn.writer().write_all(data).unwrap();
    loop {
        let mut out = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut out).unwrap();
        }
        io.write_all(&out).await.unwrap();
        if !conn.is_handshaking() {
            return (conn, io);
        }
        read_tls(&mut conn, &mut io).await;
    }
}

/// One read from the pipe into the rustls client.
async fn read_tls(conn: &mut rustls::ClientConnection, io: &mut DuplexStream) {
    let mut buf = vec![0u8; 16 * 1024];
    let n = tokio::time::timeout(WAIT, io.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(n, 0);
    conn.read_tls(&mut &buf[..n]).unwrap();
    conn.process_new_packets().unwrap();
}

/// A handshake whose client sends `data` with its Finished; what the server held when
/// rustls handed the connection over: (plaintext rustls decrypted, ciphertext left).
async fn coalesced<IO>(
    server_io: IO,
    client_io: DuplexStream,
    pki: &Pki,
    data: &[u8],
) -> (bool, bool)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use std::io::Read;
    let accept = tokio::spawn(TlsStream::accept(server_io, server_config(pki, &[])));
    let client = client_config(pki, &[&rustls::version::TLS13], &[]);
    let (mut conn, mut io) = coalescing_client(client_io, client, data).await;
    let mut server = tokio::time::timeout(WAIT, accept)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(server.is_compact());
    let held = (!server.plain.is_empty(), !server.incoming.is_empty());
    assert!(read_n(&mut server, data.len(), 4096).await == data);
    server.write_all(b"answer").await.unwrap();
    server.flush().await.unwrap();
    let mut got = Vec::new();
    while got.len() < 6 {
        read_tls(&mut conn, &mut io).await;
        let mut buf = [0u8; 64];
        match conn.reader().read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
        }
    }
    assert_eq!(got, b"answer");
    held
}

#[tokio::test]
async fn data_coalesced_with_the_clients_finished() {
    let pki = pki();
    let data = pattern(50_000);
    // Read whole, rustls decrypts what it has during the handshake (into `plain`).
    let (c, s) = tokio::io::duplex(128 * 1024);
    let (plain, _) = coalesced(s, c, &pki, &data).await;
    assert!(plain);
    // Chopped, a record is left half-read when rustls hands over, for our layer to finish.
    let mut saw_incoming = false;
    for seed in 1..=20u64 {
        let (c, s) = tokio::io::duplex(128 * 1024);
        let io = Chopped {
            io: s,
            sizes: choppy(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        };
        saw_incoming |= coalesced(io, c, &pki, &data).await.1;
    }
    assert!(saw_incoming);
}

#[test]
fn the_layer_is_boxed_and_ours_is_the_smaller() {
    use std::mem::size_of;
    // Inline, the stream holds a pointer whichever layer it is on (measured: 152 B with a
    // TcpStream, 16 B of it the layer).
    assert_eq!(size_of::<super::Layer>(), 16);
    assert!(size_of::<TlsStream<tokio::net::TcpStream>>() <= 160);
    // Boxed: rustls's connection (1088 B) or ours (664 B, rustls's KernelConnection 560 B
    // of it, most of that its QUIC state), before what each points to.
    let own = size_of::<super::Own>();
    assert!(
        own < size_of::<rustls::server::UnbufferedServerConnection>(),
        "{own}"
    );
    assert!(own <= 700, "{own}");
}
