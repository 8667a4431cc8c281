//! [`Driver`]: one connection task's event loop over the protocol core, the socket, the
//! handle's queue and the timers.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::mem::MaybeUninit;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, ReadBuf};
use tokio::sync::futures::Notified;
use tokio::time::{Instant, Sleep};
use ws_proto::Event;

use super::reader;
use super::taken::Taken;
use super::timers::{Due, Timers};
use super::writer::WriteBuf;
use crate::config::ServerConfig;
use crate::connection::{CloseState, Connection, Control, Outbound};
use crate::handler::{CloseInfo, Handler};
use crate::stats::Stats;
use crate::transport::Transport;

/// Stop moving queued messages into the protocol core while this many encoded bytes wait for
/// the socket: the rest stays in the bounded queue, where the overflow policy sees it.
const WRITE_HIGH_WATER: usize = 256 * 1024;
/// Stop reading while this many bytes wait to be written (a peer that sends pings or requests
/// but does not read its answers cannot grow our memory).
const READ_PAUSE: usize = 1024 * 1024;

/// What woke the connection task.
enum Wake {
    /// Bytes were read or written.
    Io,
    /// The socket ended or failed, for this reason.
    Lost(&'static str),
    /// A sender queued something or asked for a close.
    Notified,
    /// The armed deadline passed.
    Timer,
}

pub(super) struct Driver<'a> {
    io: Transport,
    proto: ws_proto::Connection,
    conn: Connection,
    cfg: &'a ServerConfig,
    stats: &'a Stats,
    /// Encoded chunks waiting for the socket.
    out: WriteBuf,
    /// Senders may write to the socket directly (see `Connection::send_prepared_now`).
    direct: bool,
    /// Messages taken from the connection's queue, not yet encoded.
    pending: VecDeque<Outbound>,
    /// Taken from the queue and not yet written, and whether senders were told so.
    taken: Taken,
    timers: Timers,
}

impl<'a> Driver<'a> {
    pub(super) fn new(
        io: Transport,
        proto: ws_proto::Connection,
        conn: Connection,
        cfg: &'a ServerConfig,
        stats: &'a Stats,
    ) -> Self {
        Self {
            direct: matches!(io, Transport::Shared(_)),
            io,
            proto,
            conn,
            cfg,
            stats,
            out: WriteBuf::default(),
            pending: VecDeque::new(),
            taken: Taken::default(),
            timers: Timers::new(cfg, Instant::now()),
        }
    }

    pub(super) async fn run<H: Handler>(&mut self, handler: &H) -> CloseInfo {
        let shared = Arc::clone(&self.conn.shared);
        let mut notified = pin!(shared.notified());
        let mut sleep = pin!(tokio::time::sleep_until(Instant::now()));
        let mut armed: Option<Instant> = None;
        // Why the connection ended without a close handshake (EOF, I/O error, timeout, abort).
        let mut lost: Option<&'static str> = None;
        // A close may have been requested before the loop started (on_open, shutdown).
        let mut woken = true;
        loop {
            let handled = self.dispatch(handler).await;
            if woken {
                woken = false;
                shared.rearm();
                if let Some(why) = self.take_woken() {
                    lost = Some(why);
                    break;
                }
            }
            self.encode_pending();
            self.release_written();
            if lost.is_some() || (self.out.is_empty() && self.proto.is_closed()) {
                break;
            }
            if handled == self.cfg.max_events_per_wake {
                tokio::task::yield_now().await;
                continue;
            }
            let deadline = self
                .timers
                .next_deadline(self.proto.state() == ws_proto::State::Open);
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
                Wake::Lost(why) => lost = Some(why),
                Wake::Notified => {
                    notified.set(shared.notified());
                    woken = true;
                }
                Wake::Timer => {
                    armed = None;
                    lost = self.handle_timer();
                }
            }
        }
        self.finish(lost).await
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
                Event::Close(frame) => self.conn.shared.peer_closed(frame),
            }
        }
        handled
    }

    /// After a wake-up: takes close / abort requests and everything queued, in one lock.
    /// `Some(why)` means drop the connection now.
    fn take_woken(&mut self) -> Option<&'static str> {
        let woken = self.conn.shared.take_woken(&mut self.pending, self.direct);
        match self.taken.absorb(woken, &mut self.out) {
            Control::None => {}
            Control::Abort => return Some("shutdown deadline passed"),
            Control::DiscardAndClose => {
                // Nothing is queued after an overflow (sends are refused), so what was just
                // taken is older than the close too.
                self.discard_unsent();
                self.timers.start_close(self.cfg, Instant::now());
            }
            Control::Close => self.timers.start_close(self.cfg, Instant::now()),
        }
        None
    }

    /// Drops every frame not yet begun (a frame partly on the wire is finished first): the
    /// overflow policy's close goes out next. Their bytes leave the queue's count with the
    /// rest of the batch.
    fn discard_unsent(&mut self) {
        self.pending.clear();
        self.out.discard_unsent();
    }

    fn pull(&mut self) {
        let (taken, partial) = self.conn.shared.take(&mut self.pending);
        self.taken.add(taken);
        self.taken.claim_partial(partial, &mut self.out);
    }

    /// The task has frames to write: stop senders' direct writes (and put what one left
    /// first). Called as soon as `out` gets a frame, not only when writing starts.
    fn begin_write(&mut self) {
        if self.direct && !self.taken.is_writing() {
            self.taken.set_writing();
            let rest = self.conn.shared.begin_write();
            self.taken.claim_partial(rest, &mut self.out);
        }
    }

    /// Moves pending messages into the protocol core while the socket keeps up.
    fn encode_pending(&mut self) {
        while self.out.bytes() < WRITE_HIGH_WATER {
            let Some(item) = self.pending.pop_front() else {
                break;
            };
            let sent = match item {
                Outbound::Message(msg) => self.proto.send(msg),
                Outbound::Prepared(prepared) => self.proto.send_prepared(&prepared),
                // `Connection::send_chunk` refuses WebSocket connections: never queued here.
                Outbound::Chunk(_) | Outbound::Head(_) => continue,
            };
            // Refused only when the connection is closing: the message is dropped.
            if sent.is_ok() {
                Stats::add(&self.stats.messages_sent, 1);
            }
            self.transmit();
        }
        // Our close is due once what was queued before it is encoded; after the peer's close
        // (the protocol core is no longer open) there is none to send.
        if self.timers.closing()
            && self.pending.is_empty()
            && self.proto.state() == ws_proto::State::Open
        {
            let (proto, id) = (&mut self.proto, self.conn.id());
            self.conn.shared.send_close(|code, reason| {
                if let Err(e) = proto.close(code, reason) {
                    tracing::debug!(id, error = %e, "close not sent");
                }
            });
        }
        self.transmit();
    }

    fn transmit(&mut self) {
        if self.out.transmit(&mut self.proto) {
            // Frames go out in the order they were made: a pong made before a handler's
            // reply must not be overtaken by that reply written directly.
            self.begin_write();
        }
    }

    /// A batch taken from the queue is written: its bytes leave the queue's count.
    fn release_written(&mut self) {
        if self.out.is_done() && self.pending.is_empty() {
            self.taken.finish(&self.conn.shared);
            // Give back what a burst grew; an idle connection holds no spare capacity.
            self.out.shrink_if_empty();
            if self.pending.capacity() > 16 {
                self.pending = VecDeque::new();
            }
        }
    }

    /// Bytes read from the socket.
    pub(super) fn input(&mut self, data: &[u8]) {
        Stats::add(&self.stats.bytes_received, data.len() as u64);
        self.timers.input(Instant::now());
        if let Err(e) = self.proto.handle_input(data) {
            tracing::info!(id = self.conn.id(), code = e.close_code(), error = %e, "protocol violation or limit: closing");
            self.conn.shared.fail(e.close_code(), e.to_string());
        } else if self.proto.state() != ws_proto::State::Open {
            // The peer's close is echoed: no data frame may follow ours, direct ones included.
            self.conn.shared.peer_closing();
        }
        self.transmit();
    }

    fn read_allowed(&self) -> bool {
        // A failed connection's core is closed too.
        !self.proto.is_closed() && self.out.bytes() < READ_PAUSE
    }

    /// A deadline passed: `Some(why)` when the connection is lost.
    fn handle_timer(&mut self) -> Option<&'static str> {
        let now = Instant::now();
        match self.timers.due(self.cfg, now) {
            Due::Nothing => {}
            Due::CloseTimeout => return Some("close handshake timed out"),
            Due::PongTimeout => {
                Stats::add(&self.stats.ping_timeouts, 1);
                tracing::info!(id = self.conn.id(), "no pong before the deadline: dropping");
                return Some("no pong before the deadline");
            }
            Due::Ping => {
                if self.proto.ping(Bytes::new()).is_ok() {
                    self.timers.ping_sent(self.cfg, now);
                    self.transmit();
                }
            }
        }
        None
    }

    fn poll_wait(
        &mut self,
        cx: &mut Context<'_>,
        notified: Pin<&mut Notified<'_>>,
        timer: Option<Pin<&mut Sleep>>,
    ) -> Poll<Wake> {
        if let Poll::Ready(wake) = self.poll_io(cx) {
            return Poll::Ready(wake);
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

    /// Writes what waits, then reads once. `Ready` when something happened (progress, end
    /// of stream or error); `Pending` with wake-ups registered otherwise.
    fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<Wake> {
        if !self.out.is_empty() {
            self.begin_write();
        }
        let written = self.out.poll_write(&mut self.io, self.stats, cx);
        if self.out.is_done() && self.pending.is_empty() {
            self.taken.finish(&self.conn.shared);
        }
        match written {
            Poll::Ready(Ok(true)) => return Poll::Ready(Wake::Io),
            Poll::Ready(Ok(false)) | Poll::Pending => {}
            Poll::Ready(Err(e)) => {
                tracing::debug!(error = %e, "write failed");
                return Poll::Ready(Wake::Lost("write failed"));
            }
        }
        if !self.read_allowed() {
            return Poll::Pending;
        }
        // On the stack of this call, never in the task: see `reader`.
        let mut buf = [MaybeUninit::<u8>::uninit(); reader::READ_CHUNK];
        let mut read_buf = ReadBuf::uninit(&mut buf);
        match reader::poll_read(&mut self.io, cx, &mut read_buf) {
            Poll::Ready(Ok(())) => {
                self.input(read_buf.filled());
                Poll::Ready(Wake::Io)
            }
            Poll::Ready(Err(why)) => Poll::Ready(Wake::Lost(why)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Closes the socket (after a completed or failed close handshake: FIN first, as RFC 6455
    /// §7.1.1 asks of servers) and describes the end.
    async fn finish(&mut self, lost: Option<&'static str>) -> CloseInfo {
        // From here senders are refused and nobody writes directly: the socket is ours alone.
        let close = self.conn.shared.mark_closed();
        if lost.is_none() {
            let shutdown = self.io.shutdown();
            let _ = tokio::time::timeout(self.cfg.close_timeout, shutdown).await;
        }
        match close {
            CloseState::PeerClosed(Some(frame)) => {
                let clean = lost.is_none() && self.proto.is_closed();
                CloseInfo::new(frame.code, frame.reason, clean)
            }
            CloseState::Closing { code, reason }
            | CloseState::CloseSent { code, reason }
            | CloseState::Failed { code, reason }
            | CloseState::Aborted { code, reason } => CloseInfo::new(code, reason, false),
            CloseState::Open
            | CloseState::Requested { .. }
            | CloseState::Overflowed
            | CloseState::PeerClosed(None)
            | CloseState::Closed => CloseInfo::new(1006, lost.unwrap_or("connection lost"), false),
        }
    }
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
