//! The task that owns one upgraded connection: it is the only reader and writer of the socket.
//!
//! Each turn of its loop: hand inbound events to the [`Handler`] (at most
//! [`ServerConfig::max_events_per_wake`] per turn), apply close/abort requests, move queued
//! messages into the protocol core, then wait for whichever comes first: socket readable,
//! socket writable (when bytes wait), a sender's wake-up, or a timer (ping, pong deadline,
//! close deadline).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::futures::Notified;
use tokio::time::{Instant, Sleep};
use ws_proto::handshake::DeflateParams;
use ws_proto::{CloseFrame, Event, Role};

use crate::config::ServerConfig;
use crate::connection::{Connection, Outbound};
use crate::handler::{CloseInfo, Handler, Request};
use crate::inner::Inner;
use crate::pump;
use crate::stats::Stats;
use crate::transport::Transport;

/// Stop moving queued messages into the protocol core while this many encoded bytes wait for
/// the socket: the rest stays in the bounded queue, where the overflow policy sees it.
const WRITE_HIGH_WATER: usize = 256 * 1024;
/// Stop reading while this many bytes wait to be written (a peer that sends pings or requests
/// but does not read its answers cannot grow our memory).
const READ_PAUSE: usize = 1024 * 1024;

/// A connection admitted before its `101` is sent: registered, counted, holding its
/// connection-cap permit, already known to the handler through `on_open`.
pub(crate) struct Admitted<H: Handler> {
    inner: Arc<Inner<H>>,
    conn: Connection,
    _permit: OwnedSemaphorePermit,
}

/// Unregisters the connection even if a handler panics.
impl<H: Handler> Drop for Admitted<H> {
    fn drop(&mut self) {
        self.conn.shared.mark_closed();
        self.inner.unregister(self.conn.id());
        self.inner
            .stats
            .connections_open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Admits a connection whose upgrade was accepted and calls `on_open`, all before the `101`
/// goes out: a client that sees its connection open is already registered, so a message
/// sent to it from then on is never missed. What `on_open` sends is queued and written
/// right after the `101`.
pub(crate) async fn admit<H: Handler>(
    inner: &Arc<Inner<H>>,
    req: &Request,
    permit: OwnedSemaphorePermit,
) -> Admitted<H> {
    let cfg = &inner.config;
    let conn = Connection::new(
        inner.next_id(),
        req.peer_addr(),
        cfg.outbound_queue_bytes,
        cfg.overflow,
        Arc::clone(&inner.stats),
    );
    inner.register(&conn);
    Stats::add(&inner.stats.connections_open, 1);
    Stats::add(&inner.stats.connections_total, 1);
    let admitted = Admitted {
        inner: Arc::clone(inner),
        conn,
        _permit: permit,
    };
    inner.handler.on_open(&admitted.conn, req).await;
    admitted
}

/// The upgrade failed after `on_open` (the client left before the `101` was written, or the
/// handshake timed out): the handler still gets its `on_close`.
pub(crate) async fn abandon<H: Handler>(admitted: Admitted<H>, why: &'static str) {
    let info = CloseInfo::new(1006, why, false);
    admitted.inner.stats.record_close(info.code);
    let (inner, conn) = (Arc::clone(&admitted.inner), admitted.conn.clone());
    drop(admitted);
    inner.handler.on_close(&conn, info).await;
}

/// Runs one upgraded connection to its end, then reports it to the handler.
pub(crate) async fn run<H: Handler>(
    admitted: Admitted<H>,
    io: Transport,
    read_buf: Bytes,
    deflate: Option<DeflateParams>,
) {
    let inner = Arc::clone(&admitted.inner);
    let conn = admitted.conn.clone();
    let cfg = &inner.config;
    let proto = ws_proto::Connection::new(Role::Server, cfg.proto.clone(), deflate);
    let io = match io {
        Transport::Plain(tcp) => {
            let tcp = Arc::new(tcp);
            conn.shared
                .attach_direct(Arc::clone(&tcp), proto.frame_choice());
            Transport::Shared(tcp)
        }
        other => other,
    };
    let mut driver = Driver::new(io, proto, conn.clone(), cfg, &inner.stats);
    if !read_buf.is_empty() {
        driver.input(&read_buf);
    }
    drop(read_buf);
    let info = driver.run(&inner.handler).await;
    tracing::debug!(
        id = conn.id(),
        code = info.code,
        clean = info.clean,
        "connection closed"
    );
    inner.stats.record_close(info.code);
    drop(driver);
    drop(admitted);
    inner.handler.on_close(&conn, info).await;
}

/// What woke the connection task.
pub(crate) enum Wake {
    /// Bytes were read or written (or the socket ended / failed).
    Io,
    /// A sender queued something or asked for a close.
    Notified,
    /// The armed deadline passed.
    Timer,
}

pub(crate) struct Driver<'a> {
    pub(crate) io: Transport,
    pub(crate) proto: ws_proto::Connection,
    conn: Connection,
    cfg: &'a ServerConfig,
    pub(crate) stats: &'a Stats,
    /// Encoded chunks waiting for the socket, in order.
    pub(crate) out: VecDeque<Bytes>,
    /// The front chunk of `out` is partly on the wire: it must be finished before anything.
    pub(crate) front_started: bool,
    pub(crate) out_bytes: usize,
    pub(crate) needs_flush: bool,
    /// Senders may write to the socket directly (see `Connection::send_prepared_now`).
    direct: bool,
    /// The task told senders it is writing (`Shared::begin_write`).
    writing: bool,
    /// Messages taken from the connection's queue, not yet encoded.
    pending: VecDeque<Outbound>,
    /// Payload bytes taken from the queue and still counted there until written.
    in_flight: usize,
    /// A close requested through the handle (or by overflow / shutdown), sent once `pending`
    /// is encoded.
    close_requested: bool,
    local_close: Option<(u16, String)>,
    peer_close: Option<CloseFrame>,
    /// We failed the connection for a protocol violation.
    failure: Option<(u16, String)>,
    /// The connection ended without a close handshake (EOF, I/O error, timeout, abort).
    pub(crate) lost: Option<&'static str>,
    pub(crate) last_rx: Instant,
    ping_check: Option<Instant>,
    pong_deadline: Option<Instant>,
    close_deadline: Option<Instant>,
}

impl<'a> Driver<'a> {
    fn new(
        io: Transport,
        proto: ws_proto::Connection,
        conn: Connection,
        cfg: &'a ServerConfig,
        stats: &'a Stats,
    ) -> Self {
        let now = Instant::now();
        Self {
            direct: matches!(io, Transport::Shared(_)),
            writing: false,
            io,
            proto,
            conn,
            cfg,
            stats,
            out: VecDeque::new(),
            front_started: false,
            out_bytes: 0,
            needs_flush: false,
            pending: VecDeque::new(),
            in_flight: 0,
            close_requested: false,
            local_close: None,
            peer_close: None,
            failure: None,
            lost: None,
            last_rx: now,
            ping_check: cfg.ping_interval.map(|i| now + i),
            pong_deadline: None,
            close_deadline: None,
        }
    }

    async fn run<H: Handler>(&mut self, handler: &H) -> CloseInfo {
        let shared = Arc::clone(&self.conn.shared);
        let mut notified = pin!(shared.notified());
        let mut sleep = pin!(tokio::time::sleep_until(Instant::now()));
        let mut armed: Option<Instant> = None;
        // A close may have been requested before the loop started (on_open, shutdown).
        let mut woken = true;
        loop {
            let handled = self.dispatch(handler).await;
            if woken {
                woken = false;
                shared.rearm();
                if self.apply_control() {
                    break;
                }
                self.pull();
            }
            self.encode_pending();
            self.release_written();
            if self.lost.is_some() || (self.out.is_empty() && self.finished()) {
                break;
            }
            if handled == self.cfg.max_events_per_wake {
                tokio::task::yield_now().await;
                continue;
            }
            let deadline = self.next_deadline();
            if deadline != armed {
                if let Some(d) = deadline {
                    sleep.as_mut().reset(d);
                }
                armed = deadline;
            }
            let wake = poll_fn(|cx| {
                let timer = armed.map(|_| sleep.as_mut());
                self.poll_wait(cx, notified.as_mut(), timer)
            })
            .await;
            match wake {
                Wake::Io => {}
                Wake::Notified => {
                    notified.set(shared.notified());
                    woken = true;
                }
                Wake::Timer => {
                    armed = None;
                    self.handle_timer();
                }
            }
        }
        self.finish().await
    }

    /// Hands queued inbound events to the handler; returns how many.
    async fn dispatch<H: Handler>(&mut self, handler: &H) -> usize {
        let mut handled = 0;
        while handled < self.cfg.max_events_per_wake {
            let Some(event) = self.proto.poll_event() else {
                break;
            };
            handled += 1;
            match event {
                Event::Message(msg) => {
                    Stats::add(&self.stats.messages_received, 1);
                    handler.on_message(&self.conn, msg).await;
                    // Replies the handler queued go out before anything read later.
                    self.pull();
                }
                // The pong is already queued by ws-proto; any input proves liveness.
                Event::Ping(_) | Event::Pong(_) => {}
                Event::Close(frame) => {
                    self.conn.shared.mark_closing();
                    self.peer_close = Some(frame);
                }
            }
        }
        handled
    }

    /// Takes close / abort requests; `true` means drop the connection now.
    fn apply_control(&mut self) -> bool {
        let control = self.conn.shared.take_control();
        if control.abort {
            self.lost = Some("shutdown deadline passed");
            return true;
        }
        if control.discard {
            self.discard_unsent();
        }
        if let Some(close) = control.close {
            if self.local_close.is_none() && self.peer_close.is_none() && self.failure.is_none() {
                self.local_close = Some(close);
                self.close_requested = true;
                self.close_deadline = Some(Instant::now() + self.cfg.close_timeout);
            }
        }
        false
    }

    /// Drops every frame not yet begun (a frame partly on the wire is finished first): the
    /// overflow policy's close goes out next. Their bytes leave the queue's count with the
    /// rest of the batch.
    fn discard_unsent(&mut self) {
        self.pending.clear();
        let keep = usize::from(self.front_started).min(self.out.len());
        let dropped: usize = self.out.drain(keep..).map(|c| c.len()).sum();
        self.out_bytes -= dropped;
    }

    fn pull(&mut self) {
        let (taken, partial) = self.conn.shared.take(&mut self.pending);
        self.in_flight += taken;
        self.claim_partial(partial);
    }

    /// The rest of a frame a sender wrote in part: nothing of `out` is written yet (senders
    /// write only while the task does not), and the rest must be next on the wire.
    fn claim_partial(&mut self, rest: Option<Bytes>) {
        if let Some(rest) = rest {
            self.in_flight += rest.len();
            self.out_bytes += rest.len();
            self.out.push_front(rest);
            self.front_started = true;
        }
    }

    /// The task has frames to write: stop senders' direct writes (and put what one left
    /// first). Called as soon as `out` gets a frame, not only when writing starts.
    pub(crate) fn begin_write(&mut self) {
        if self.direct && !self.writing {
            self.writing = true;
            let rest = self.conn.shared.begin_write();
            self.claim_partial(rest);
        }
    }

    /// Everything in `out` is written: senders may write directly again.
    pub(crate) fn end_write(&mut self) {
        if self.writing {
            self.writing = false;
            self.conn.shared.end_write();
        }
    }

    /// Moves pending messages into the protocol core while the socket keeps up.
    fn encode_pending(&mut self) {
        while self.out_bytes < WRITE_HIGH_WATER {
            let Some(item) = self.pending.pop_front() else {
                break;
            };
            let sent = match item {
                Outbound::Message(msg) => self.proto.send(msg),
                Outbound::Prepared(prepared) => self.proto.send_prepared(&prepared),
            };
            // Refused only when the connection is closing: the message is dropped.
            if sent.is_ok() {
                Stats::add(&self.stats.messages_sent, 1);
            }
            self.transmit();
        }
        if self.close_requested && self.pending.is_empty() {
            self.close_requested = false;
            if let Some((code, reason)) = &self.local_close {
                if let Err(e) = self.proto.close(*code, reason) {
                    tracing::debug!(id = self.conn.id(), error = %e, "close not sent");
                }
            }
        }
        self.transmit();
    }

    pub(crate) fn transmit(&mut self) {
        let before = self.out.len();
        self.proto.poll_transmit(&mut self.out);
        if self.out.len() > before {
            self.out_bytes += self.out.iter().skip(before).map(Bytes::len).sum::<usize>();
            // Frames go out in the order they were made: a pong made before a handler's
            // reply must not be overtaken by that reply written directly.
            self.begin_write();
        }
    }

    /// A batch taken from the queue is written: its bytes leave the queue's count.
    fn release_written(&mut self) {
        if self.out.is_empty() && self.pending.is_empty() {
            if self.in_flight > 0 {
                self.conn.shared.release(self.in_flight);
                self.in_flight = 0;
            }
            // Give back what a burst grew; an idle connection holds no spare capacity.
            if self.out.capacity() > 16 {
                self.out = VecDeque::new();
            }
            if self.pending.capacity() > 16 {
                self.pending = VecDeque::new();
            }
        }
    }

    /// Nothing more will happen once what is queued is written.
    fn finished(&self) -> bool {
        self.proto.is_closed() || self.failure.is_some()
    }

    /// Bytes read from the socket.
    pub(crate) fn input(&mut self, data: &[u8]) {
        Stats::add(&self.stats.bytes_received, data.len() as u64);
        self.last_rx = Instant::now();
        self.pong_deadline = None;
        if let Err(e) = self.proto.handle_input(data) {
            tracing::info!(id = self.conn.id(), code = e.close_code(), error = %e, "protocol violation or limit: closing");
            self.conn.shared.mark_closing();
            self.failure = Some((e.close_code(), e.to_string()));
        } else if self.proto.state() != ws_proto::State::Open && !self.conn.is_closed() {
            // The peer's close is echoed: no data frame may follow ours, direct ones included.
            self.conn.shared.mark_closing();
        }
        self.transmit();
    }

    pub(crate) fn read_allowed(&self) -> bool {
        !self.proto.is_closed() && self.failure.is_none() && self.out_bytes < READ_PAUSE
    }

    fn next_deadline(&self) -> Option<Instant> {
        let liveness = match self.pong_deadline {
            Some(deadline) => Some(deadline),
            None if self.proto.state() == ws_proto::State::Open => self.ping_check,
            None => None,
        };
        match (liveness, self.close_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn handle_timer(&mut self) {
        let now = Instant::now();
        if self.close_deadline.is_some_and(|d| d <= now) {
            self.lost = Some("close handshake timed out");
            return;
        }
        if self.pong_deadline.is_some_and(|d| d <= now) {
            Stats::add(&self.stats.ping_timeouts, 1);
            tracing::info!(id = self.conn.id(), "no pong before the deadline: dropping");
            self.lost = Some("no pong before the deadline");
            return;
        }
        let Some(interval) = self.cfg.ping_interval else {
            return;
        };
        if self.ping_check.is_some_and(|d| d <= now) {
            if now.duration_since(self.last_rx) >= interval {
                if self.proto.ping(Bytes::new()).is_ok() {
                    self.pong_deadline = Some(now + self.cfg.pong_timeout);
                    self.transmit();
                }
                self.ping_check = Some(now + interval);
            } else {
                // Input arrived since the timer was armed: check again one interval after it.
                self.ping_check = Some(self.last_rx + interval);
            }
        }
    }

    fn poll_wait(
        &mut self,
        cx: &mut Context<'_>,
        notified: Pin<&mut Notified<'_>>,
        timer: Option<Pin<&mut Sleep>>,
    ) -> Poll<Wake> {
        if pump::poll_io(self, cx).is_ready() {
            return Poll::Ready(Wake::Io);
        }
        if notified.poll(cx).is_ready() {
            return Poll::Ready(Wake::Notified);
        }
        if let Some(timer) = timer {
            if timer.poll(cx).is_ready() {
                return Poll::Ready(Wake::Timer);
            }
        }
        Poll::Pending
    }

    /// Closes the socket (after a completed or failed close handshake: FIN first, as RFC 6455
    /// §7.1.1 asks of servers) and describes the end.
    async fn finish(&mut self) -> CloseInfo {
        self.conn.shared.detach_direct();
        if self.lost.is_none() {
            let close = self.io.shutdown();
            let _ = tokio::time::timeout(self.cfg.close_timeout, close).await;
        }
        let clean = self.lost.is_none() && self.proto.is_closed() && self.failure.is_none();
        if let Some(frame) = self.peer_close.take() {
            return CloseInfo::new(frame.code, frame.reason, clean);
        }
        if let Some((code, reason)) = self.failure.take().or(self.local_close.take()) {
            return CloseInfo::new(code, reason, false);
        }
        CloseInfo::new(1006, self.lost.unwrap_or("connection lost"), false)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::OverflowPolicy;
    use ws_proto::{Message, PreparedMessage};

    /// A connected pair on loopback: (client side, server side, the client's address).
    async fn socket_pair() -> (
        tokio::net::TcpStream,
        tokio::net::TcpStream,
        std::net::SocketAddr,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        (client, server, peer)
    }

    /// A frame the task produced (a pong) but has not started writing, then a sender's
    /// direct write taken only in part: the rest of that frame must go out first.
    #[tokio::test]
    async fn the_rest_of_a_direct_write_goes_before_unwritten_task_frames() {
        let (_client, tcp, peer) = socket_pair().await;
        let cfg = ServerConfig::default();
        let stats = Arc::new(Stats::default());
        let conn = Connection::new(1, peer, 64 << 20, OverflowPolicy::Close, stats.clone());
        let tcp = Arc::new(tcp);
        let proto = ws_proto::Connection::new(Role::Server, cfg.proto.clone(), None);
        conn.shared
            .attach_direct(Arc::clone(&tcp), proto.frame_choice());
        let mut d = Driver::new(Transport::Shared(tcp), proto, conn.clone(), &cfg, &stats);
        let task_frame = Bytes::from_static(b"\x8a\x00");
        d.out.push_back(task_frame.clone());
        d.out_bytes += task_frame.len();

        let big = Arc::new(PreparedMessage::new(Message::binary(vec![1u8; 16 << 20])));
        conn.send_prepared_now(&big).unwrap();
        let rest = conn.queued_bytes();
        assert!(rest > 0, "16 MiB must not fit the socket buffers");
        d.pull();
        assert_eq!(d.out.len(), 2);
        assert_eq!(
            d.out[0],
            big.plain_frame().slice(big.plain_frame().len() - rest..)
        );
        assert_eq!(d.out[1], task_frame);

        // While the task writes, senders queue instead of writing.
        d.begin_write();
        let small = Arc::new(PreparedMessage::new(Message::text("queued")));
        conn.send_prepared_now(&small).unwrap();
        assert_eq!(conn.queued_bytes(), rest + small.plain_frame().len());
    }

    /// Issue 12.10: when the overflow policy closes a slow reader, what waits is dropped and
    /// the close frame goes next (after the rest of a frame already partly on the wire), so
    /// the reader sees 1008 instead of a timeout.
    #[tokio::test]
    async fn the_overflow_close_goes_before_unsent_data() {
        let (_client, tcp, peer) = socket_pair().await;
        let cfg = ServerConfig::default();
        let stats = Arc::new(Stats::default());
        let conn = Connection::new(1, peer, 1000, OverflowPolicy::Close, stats.clone());
        let proto = ws_proto::Connection::new(Role::Server, cfg.proto.clone(), None);
        let mut d = Driver::new(Transport::Plain(tcp), proto, conn.clone(), &cfg, &stats);
        // A frame partly written, then whole frames not begun.
        d.out.extend([
            Bytes::from_static(b"rest of a frame"),
            Bytes::from_static(b"\x82\x03abc"),
        ]);
        d.out_bytes = d.out.iter().map(Bytes::len).sum();
        d.front_started = true;
        conn.send_binary(vec![0u8; 600]).unwrap();
        d.pull();
        assert_eq!(d.pending.len(), 1);
        assert_eq!(
            conn.send_binary(vec![0u8; 600]),
            Err(crate::SendError::Full)
        );

        assert!(!d.apply_control());
        d.encode_pending();
        assert!(d.pending.is_empty());
        assert_eq!(d.out[0], Bytes::from_static(b"rest of a frame"));
        let rest: Vec<u8> = d.out.iter().skip(1).flat_map(|c| c.to_vec()).collect();
        assert_eq!(
            &rest[..4],
            b"\x88\x0f\x03\xf0",
            "the close frame (1008) comes next"
        );
        assert_eq!(&rest[4..], b"slow consumer");
        assert_eq!(d.out_bytes, d.out.iter().map(Bytes::len).sum::<usize>());
    }
}
