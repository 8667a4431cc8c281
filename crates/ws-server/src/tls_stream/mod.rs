//! [`TlsStream`]: server-side TLS over any byte stream, where the caller owns every buffer.
//! rustls's unbuffered API (`UnbufferedServerConnection`) runs the handshake; a finished
//! TLS 1.3 connection then moves to our own record layer (`record_layer.rs`), and TLS 1.2
//! (or a config without `enable_secret_extraction`) stays on rustls for its whole life.
//!
//! Why: rustls's buffered `ServerConnection` keeps a 4 KiB deframer buffer per connection for
//! its whole life, and `tokio-rustls` sits on it; at 10k idle `wss://` connections that buffer
//! alone was more than the whole of a plain connection. Here an idle connection owns no
//! buffer at all:
//!
//! ```text
//!  socket --read--> per-thread read buffer --decrypt--> reader's ReadBuf
//!                   (lent for one call)                 `plain`: what it had no room for
//!                   `incoming`: a record still incomplete when the call ends
//!  writer's slices --(made contiguous)--> encrypt --> per-thread ciphertext --write--> socket
//!                                                     `outgoing`: what the socket did not take
//!
//!  decrypt/encrypt: rustls's `process_tls_records` / `WriteTraffic` (handshake, TLS 1.2),
//!                   or our record layer over rustls's AEAD (TLS 1.3 after the handshake)
//! ```
//!
//! `incoming`, `outgoing` and `plain` are allocated only while they hold something and are
//! freed as soon as they are empty, so what stays per connection is the record protection.
//!
//! Two modes, because rustls's connection keeps more than an idle TLS 1.3 connection needs
//! (its handshake deframer's buffer, internal queues, handshake state: ~1.1 KiB inline and
//! ~0.8 KiB on the heap). Once the handshake reaches `WriteTraffic` with nothing left to
//! send, `dangerous_into_kernel_connection` hands over the traffic secrets, the sequence
//! numbers and a `KernelConnection` (rustls's key schedule, for key updates); the
//! `UnbufferedServerConnection` is dropped. What stays is the suite's encrypter and
//! decrypter (rustls's own, built from those secrets), the `KernelConnection`, the ALPN
//! protocol and the handshake kind. Our layer does only the framing (headers, limits,
//! sequence numbers, content types after the handshake, KeyUpdate, the confidentiality
//! limit), see `record_layer.rs`. What rustls had already decrypted when it handed over (the
//! client's first request can come in the flight of its Finished) is in `plain`; what it had
//! not looked at (a record not yet whole) stays in `incoming` for our layer.
//!
//! Order on the wire: every record rustls encodes itself (handshake, tickets, a key update
//! answering the peer's, alerts, close_notify) is appended to `outgoing` in the order rustls
//! hands it over, and application records are written only once `outgoing` is empty or are
//! appended behind it. So `TransmitTlsData::done` is called as soon as bytes are in
//! `outgoing`: they go out before anything encrypted after them. Our layer keeps the same
//! rule: a KeyUpdate answering the peer's, an alert or our close_notify is appended to
//! `outgoing`, so it follows everything queued before it (the answer sealed under the old
//! key, as the peer expects), and our own rotation at the confidentiality limit is sealed in
//! line with the application records.
//!
//! Ends: the peer's close_notify is end of file (`Ok(0)`); the TCP connection ending without
//! one is an `UnexpectedEof` error ([`TlsStreamError::Truncated`]), as rustls's buffered
//! reader reports it; `poll_shutdown` sends our close_notify, then shuts the socket down.
//! Any other alert, or a record our layer refuses ([`TlsRecordError`](crate::TlsRecordError)),
//! fails the connection (with an alert to the peer where one is due).
//! Early data (0-RTT) is refused ([`TlsStreamError::EarlyData`]): leave
//! `ServerConfig::max_early_data_size` at 0.

mod buffers;
mod record_layer;
mod records;
#[cfg(test)]
mod tests;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use record_layer::fuzz_open;

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustls::kernel::KernelConnection;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, UnbufferedStatus, WriteTraffic};
use rustls::{CipherSuite, HandshakeKind, ProtocolVersion};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::TlsStreamError;
use buffers::{Incoming, MAX_WRITE, Outgoing, Plain, Scratch, with_write_scratch};
use record_layer::{Content, RecordLayer};
use records::{close_notify, deliver, encode, encrypt, handle};

/// One server-side TLS connection over `IO` (a `TcpStream` in the server): [`AsyncRead`] and
/// [`AsyncWrite`] of the plaintext, on rustls's unbuffered API (TLS 1.3: on our own record
/// layer after the handshake), holding no buffer while idle (see the [module docs](self)). [`Server`](crate::Server) makes one per `wss://`
/// connection; it is public for tools that serve TLS themselves or measure it.
pub struct TlsStream<IO> {
    io: IO,
    layer: Layer,
    /// Ciphertext received and not processed when the last call ended (a record still
    /// incomplete, or whole records a full reader's buffer left); empty, unallocated, between.
    incoming: Vec<u8>,
    /// Ciphertext encoded, not yet taken by the socket.
    outgoing: Outgoing,
    /// Plaintext decrypted, not yet read.
    plain: Plain,
    /// The peer's close_notify came: reads are at end of file.
    peer_closed: bool,
    /// Our close_notify is encoded: writes are refused.
    sent_close: bool,
    /// A TLS error ended the connection (its alert is in `outgoing`).
    failed: bool,
}

/// Who protects the records: rustls until a TLS 1.3 handshake is done, then (when the
/// config allows secret extraction) our own record layer. Each is boxed: the idle
/// footprint is what an idle connection keeps, and the two differ a lot in size.
enum Layer {
    /// The handshake, and the whole life of a TLS 1.2 connection.
    Rustls(Box<UnbufferedServerConnection>),
    /// After a TLS 1.3 handshake.
    Own(Box<Own>),
}

/// A TLS 1.3 connection on our record layer: what rustls would still answer about it.
struct Own {
    /// rustls's `KernelConnection` inside: it derives the next traffic secrets.
    records: RecordLayer<KernelConnection<ServerConnectionData>>,
    alpn: Option<Box<[u8]>>,
    kind: Option<HandshakeKind>,
}

/// The TLS 1.3 suites whose secrets rustls can hand over (`ConnectionTrafficSecrets`).
fn extractable(suite: CipherSuite) -> bool {
    matches!(
        suite,
        CipherSuite::TLS13_AES_128_GCM_SHA256
            | CipherSuite::TLS13_AES_256_GCM_SHA384
            | CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
    )
}

impl<IO> std::fmt::Debug for TlsStream<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("handshaking", &self.is_handshaking())
            .field("own_record_layer", &self.is_compact())
            .field("alpn", &self.alpn_protocol())
            .field("incoming", &self.incoming.len())
            .field("peer_closed", &self.peer_closed)
            .field("sent_close", &self.sent_close)
            .finish_non_exhaustive()
    }
}

/// What one step (a `process_tls_records` call, or a record our layer opened) left to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Something was encoded or acknowledged: call again.
    Again,
    /// A record's plaintext was delivered (to the reader's buffer and/or `plain`).
    Data,
    /// More ciphertext from the peer is needed (handshake blocked, or traffic caught up).
    NeedInput,
    /// The peer sent close_notify.
    PeerClosed,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> TlsStream<IO> {
    /// Runs the server side of a TLS handshake over `io`. The caller bounds its duration.
    pub async fn accept(io: IO, config: Arc<rustls::ServerConfig>) -> Result<Self, TlsStreamError> {
        let mut stream = Self {
            io,
            layer: Layer::Rustls(Box::new(UnbufferedServerConnection::new(Arc::clone(
                &config,
            ))?)),
            incoming: Vec::new(),
            outgoing: Outgoing::default(),
            plain: Plain::default(),
            peer_closed: false,
            sent_close: false,
            failed: false,
        };
        poll_fn(|cx| stream.poll_handshake(cx)).await?;
        stream.hand_over(&config)
    }

    /// Moves a finished TLS 1.3 connection onto our record layer (see the module docs);
    /// anything else stays with rustls.
    fn hand_over(self, config: &rustls::ServerConfig) -> Result<Self, TlsStreamError> {
        let layer = match self.layer {
            Layer::Rustls(conn)
                if !self.failed && !self.peer_closed && can_hand_over(&conn, config) =>
            {
                Layer::Own(Box::new(own_layer(*conn)?))
            }
            other => other,
        };
        Ok(Self { layer, ..self })
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TlsStreamError>> {
        let mut incoming = Incoming::take(&std::mem::take(&mut self.incoming));
        let done = self.handshake_records(cx, &mut incoming);
        self.incoming = incoming.give_back();
        done
    }

    fn handshake_records(
        &mut self,
        cx: &mut Context<'_>,
        incoming: &mut Incoming,
    ) -> Poll<Result<(), TlsStreamError>> {
        loop {
            let step = match self.step(incoming, None) {
                Ok(step) => step,
                Err(e) => {
                    // The alert rustls queued for the peer, if the socket takes it now.
                    let _ = self.poll_write_outgoing(cx);
                    return Poll::Ready(Err(e));
                }
            };
            match step {
                Step::Again | Step::Data => {}
                Step::PeerClosed => return Poll::Ready(Err(TlsStreamError::HandshakeEof)),
                Step::NeedInput if !self.is_handshaking() => {
                    return self.poll_write_outgoing(cx).map_err(TlsStreamError::Io);
                }
                Step::NeedInput => {
                    // Our flight goes out before we wait for the peer's answer to it.
                    if let Poll::Ready(Err(e)) = self.poll_write_outgoing(cx) {
                        return Poll::Ready(Err(TlsStreamError::Io(e)));
                    }
                    if ready!(self.poll_read_io(cx, incoming)).map_err(TlsStreamError::Io)? == 0 {
                        return Poll::Ready(Err(TlsStreamError::HandshakeEof));
                    }
                }
            }
        }
    }

    fn poll_read_plain(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.plain.drain_into(out) || self.peer_closed {
            return Poll::Ready(Ok(()));
        }
        if self.failed {
            return Poll::Ready(Err(TlsStreamError::Failed.into()));
        }
        // A key update answering the peer's (or a ticket) encoded by an earlier read.
        if let Poll::Ready(Err(e)) = self.poll_write_outgoing(cx) {
            return Poll::Ready(Err(e));
        }
        let mut incoming = Incoming::take(&std::mem::take(&mut self.incoming));
        let read = self.read_records(cx, &mut incoming, out);
        self.incoming = incoming.give_back();
        read
    }

    fn read_records(
        &mut self,
        cx: &mut Context<'_>,
        incoming: &mut Incoming,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = out.filled().len();
        loop {
            let delivered = out.filled().len() > before || !self.plain.is_empty();
            if delivered && (out.remaining() == 0 || !self.plain.is_empty()) {
                return Poll::Ready(Ok(()));
            }
            let step = match self.step(incoming, Some(out)) {
                Ok(step) => step,
                Err(e) => {
                    let _ = self.poll_write_outgoing(cx);
                    return Poll::Ready(Err(e.into()));
                }
            };
            match step {
                Step::Again | Step::Data => {}
                Step::PeerClosed => return Poll::Ready(Ok(())),
                Step::NeedInput if delivered => return Poll::Ready(Ok(())),
                Step::NeedInput => {
                    if let Poll::Ready(Err(e)) = self.poll_write_outgoing(cx) {
                        return Poll::Ready(Err(e));
                    }
                    if ready!(self.poll_read_io(cx, incoming))? == 0 {
                        let why = if self.is_handshaking() {
                            TlsStreamError::HandshakeEof
                        } else {
                            TlsStreamError::Truncated
                        };
                        return Poll::Ready(Err(why.into()));
                    }
                }
            }
        }
    }

    /// Reads what the socket has into `incoming`'s spare room; `Ok(0)` is the TCP end.
    fn poll_read_io(
        &mut self,
        cx: &mut Context<'_>,
        incoming: &mut Incoming,
    ) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(incoming.spare_mut());
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
        let n = buf.filled().len();
        incoming.filled(n);
        Poll::Ready(Ok(n))
    }

    /// Writes `outgoing` until it is empty (then it is freed) or the socket is full.
    fn poll_write_outgoing(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.outgoing.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, self.outgoing.unwritten()))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.outgoing.advance(n);
        }
        Poll::Ready(Ok(()))
    }

    fn poll_write_plain(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.failed {
            return Poll::Ready(Err(TlsStreamError::Failed.into()));
        }
        if self.sent_close {
            return Poll::Ready(Err(TlsStreamError::Closed.into()));
        }
        // What is already encoded goes first; a socket that takes nothing takes no more.
        ready!(self.poll_write_outgoing(cx))?;
        let total = bufs.iter().map(|b| b.len()).sum::<usize>().min(MAX_WRITE);
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        with_write_scratch(|scratch| self.encrypt_and_write(cx, bufs, total, scratch))?;
        Poll::Ready(Ok(total))
    }

    /// Encrypts the first `total` bytes of `bufs` (as few records as they fill) and writes
    /// what the socket takes now; the rest waits in `outgoing`.
    fn encrypt_and_write(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
        total: usize,
        scratch: &mut Scratch,
    ) -> io::Result<()> {
        let Scratch { plain, cipher, .. } = scratch;
        let data: &[u8] = match bufs.iter().find(|b| !b.is_empty()) {
            Some(first) if first.len() >= total => &first[..total],
            _ => {
                let mut at = 0;
                for b in bufs {
                    let n = b.len().min(total - at);
                    plain[at..at + n].copy_from_slice(&b[..n]);
                    at += n;
                    if at == total {
                        break;
                    }
                }
                &plain[..total]
            }
        };
        let n = if let Layer::Own(own) = &mut self.layer {
            cipher.clear();
            if let Err(e) = own.records.seal(data, cipher) {
                self.failed = true;
                return Err(e.into());
            }
            cipher.len()
        } else {
            self.with_write_traffic(|wt, _| encrypt(wt, data, cipher))
                .map_err(io::Error::from)?
        };
        let mut written = 0;
        if self.outgoing.is_empty() {
            while written < n {
                match Pin::new(&mut self.io).poll_write(cx, &cipher[written..n]) {
                    Poll::Ready(Ok(0)) => {
                        self.failed = true;
                        return Err(io::ErrorKind::WriteZero.into());
                    }
                    Poll::Ready(Ok(k)) => written += k,
                    Poll::Ready(Err(e)) => {
                        // The records are numbered: what was encrypted cannot be dropped.
                        self.failed = true;
                        return Err(e);
                    }
                    Poll::Pending => break,
                }
            }
        }
        self.outgoing.extend(&cipher[written..n]);
        Ok(())
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.sent_close && !self.failed {
            ready!(self.poll_write_outgoing(cx))?;
            let closed = if let Layer::Own(own) = &mut self.layer {
                own.records.close_notify(self.outgoing.back())
            } else {
                self.with_write_traffic(close_notify)
            };
            match closed {
                Ok(()) | Err(TlsStreamError::Closed) => {}
                Err(e) => return Poll::Ready(Err(e.into())),
            }
            self.sent_close = true;
        }
        ready!(self.poll_write_outgoing(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Whether rustls can hand `conn` over to our record layer: a finished TLS 1.3 handshake
/// (its last flight encoded: the handshake ended in `WriteTraffic`) under a config that
/// allows secret extraction, on a suite whose secrets it can extract. Checked before, as
/// the conversion consumes the connection.
fn can_hand_over(conn: &UnbufferedServerConnection, config: &rustls::ServerConfig) -> bool {
    config.enable_secret_extraction
        && !conn.is_handshaking()
        && conn.protocol_version() == Some(ProtocolVersion::TLSv1_3)
        && conn
            .negotiated_cipher_suite()
            .and_then(|s| s.tls13())
            .is_some_and(|s| extractable(s.common.suite))
}

/// rustls's secrets and sequence numbers, under our record layer. What rustls decrypted
/// already is in `plain`; ciphertext it has not looked at (a record still incomplete) is in
/// `incoming`, for our layer to open.
fn own_layer(conn: UnbufferedServerConnection) -> Result<Own, TlsStreamError> {
    let alpn = conn.alpn_protocol().map(Box::from);
    let kind = conn.handshake_kind();
    let suite = conn
        .negotiated_cipher_suite()
        .and_then(|s| s.tls13())
        .ok_or(TlsStreamError::UnknownState)?;
    let (secrets, kernel) = conn.dangerous_into_kernel_connection()?;
    Ok(Own {
        records: RecordLayer::new(kernel, suite, secrets.tx, secrets.rx)?,
        alpn,
        kind,
    })
}

impl<IO> TlsStream<IO> {
    /// Bytes of the box a connection on our record layer keeps (rustls's
    /// `KernelConnection` is most of it), for tools that measure memory.
    #[doc(hidden)]
    pub const OWN_LAYER_SIZE: usize = std::mem::size_of::<Own>();

    /// The protocol the client and we agreed on through ALPN (`h2`, `http/1.1`), if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        match &self.layer {
            Layer::Rustls(conn) => conn.alpn_protocol(),
            Layer::Own(own) => own.alpn.as_deref(),
        }
    }

    /// The TLS version in use.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        match &self.layer {
            Layer::Rustls(conn) => conn.protocol_version(),
            Layer::Own(_) => Some(ProtocolVersion::TLSv1_3),
        }
    }

    /// What kind of handshake this connection had (full, resumed, with a retry).
    pub fn handshake_kind(&self) -> Option<HandshakeKind> {
        match &self.layer {
            Layer::Rustls(conn) => conn.handshake_kind(),
            Layer::Own(own) => own.kind,
        }
    }

    /// Whether the records are on our own TLS 1.3 record layer (rustls's state dropped)
    /// rather than rustls's: true after a TLS 1.3 handshake when the config allows secret
    /// extraction (as [`TlsConfig`](crate::TlsConfig) sets it).
    pub fn is_compact(&self) -> bool {
        matches!(self.layer, Layer::Own(_))
    }

    /// The byte stream underneath.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }

    fn is_handshaking(&self) -> bool {
        match &self.layer {
            Layer::Rustls(conn) => conn.is_handshaking(),
            Layer::Own(_) => false,
        }
    }

    /// One step over what `incoming` holds: one `process_tls_records` and its state, or
    /// one record opened by our layer.
    fn step(
        &mut self,
        incoming: &mut Incoming,
        out: Option<&mut ReadBuf<'_>>,
    ) -> Result<Step, TlsStreamError> {
        let step = match &mut self.layer {
            Layer::Rustls(_) => self.rustls_step(incoming, out),
            Layer::Own(own) => match own
                .records
                .open(incoming.filled_mut(), self.outgoing.back())
            {
                Ok(None) => Ok(Step::NeedInput),
                Ok(Some((used, content))) => {
                    let step = match content {
                        Content::Data(payload) => {
                            deliver(payload, out, &mut self.plain);
                            Step::Data
                        }
                        Content::CloseNotify => Step::PeerClosed,
                        Content::Nothing => Step::Again,
                    };
                    incoming.discard(used);
                    Ok(step)
                }
                Err(e) => {
                    own.records.alert_for(&e, self.outgoing.back());
                    Err(e)
                }
            },
        };
        match step {
            Ok(Step::PeerClosed) => self.peer_closed = true,
            Err(_) => self.fail(),
            Ok(_) => {}
        }
        step
    }

    /// One `process_tls_records` over what `incoming` holds, its state handled.
    fn rustls_step(
        &mut self,
        incoming: &mut Incoming,
        out: Option<&mut ReadBuf<'_>>,
    ) -> Result<Step, TlsStreamError> {
        let Layer::Rustls(conn) = &mut self.layer else {
            return Err(TlsStreamError::UnknownState);
        };
        let UnbufferedStatus { mut discard, state } =
            conn.process_tls_records(incoming.filled_mut());
        let step = match state {
            Err(e) => Err(e.into()),
            Ok(state) => handle(
                state,
                &mut self.outgoing,
                &mut self.plain,
                out,
                &mut discard,
            ),
        };
        incoming.discard(discard);
        step
    }

    /// Runs `f` in the `WriteTraffic` state, handling whatever comes before it (records
    /// rustls wants to send go to `outgoing` first, so they precede what `f` encrypts).
    fn with_write_traffic<R>(
        &mut self,
        f: impl FnOnce(
            &mut WriteTraffic<'_, ServerConnectionData>,
            &mut Outgoing,
        ) -> Result<R, TlsStreamError>,
    ) -> Result<R, TlsStreamError> {
        let mut f = Some(f);
        loop {
            let Layer::Rustls(conn) = &mut self.layer else {
                return Err(TlsStreamError::UnknownState);
            };
            let UnbufferedStatus { state, .. } = conn.process_tls_records(&mut []);
            let done = match state {
                Err(e) => Err(e.into()),
                Ok(ConnectionState::WriteTraffic(mut wt)) => match f.take() {
                    Some(f) => f(&mut wt, &mut self.outgoing).map(Some),
                    None => Err(TlsStreamError::Failed),
                },
                Ok(ConnectionState::Closed) => Err(TlsStreamError::Closed),
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_closed = true;
                    Ok(None)
                }
                Ok(other) => {
                    match handle(other, &mut self.outgoing, &mut self.plain, None, &mut 0) {
                        Ok(Step::NeedInput) => Err(TlsStreamError::HandshakeIncomplete),
                        Ok(_) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            };
            match done {
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(TlsStreamError::Closed) => return Err(TlsStreamError::Closed),
                Err(e) => {
                    self.fail();
                    return Err(e);
                }
            }
        }
    }

    /// Marks the connection failed and encodes the alert rustls queued for the peer (our
    /// own layer encodes its alert where it finds the error).
    fn fail(&mut self) {
        self.failed = true;
        let Layer::Rustls(conn) = &mut self.layer else {
            return;
        };
        for _ in 0..4 {
            let UnbufferedStatus { state, .. } = conn.process_tls_records(&mut []);
            match state {
                Ok(ConnectionState::EncodeTlsData(mut enc)) => {
                    if encode(&mut enc, &mut self.outgoing).is_err() {
                        return;
                    }
                }
                Ok(ConnectionState::TransmitTlsData(t)) => t.done(),
                _ => return,
            }
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().poll_read_plain(cx, buf)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_plain(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_plain(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_outgoing(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_close(cx)
    }
}
