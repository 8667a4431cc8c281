//! One server connection: a hand-written poll loop that reads, dispatches,
//! collects handler results and writes, all on one task.
//!
//! Every wake-up drains whatever is ready (notifications queued by
//! [`Notifier`]s, finished handlers, requests in the read buffer) into one
//! output buffer, then writes that buffer with as few writes as the socket
//! takes: replies are coalesced, which is where the throughput comes from.
//!
//! Two deadlines can end a connection: a message that started arriving and
//! is not complete within `message_timeout`, and (with `auth` configured) a
//! connection that has not authenticated within its timeout. Until it has,
//! its decoder runs under the smaller pre-authentication size limit.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::context::Context;
use super::deadline::Deadline;
use super::inner::Inner;
use super::methods::{CallFuture, Dispatch, Reply};
use super::stats::Counters;
use crate::codec::Decoder;
use crate::encode::encode;
use crate::error::{DecodeError, RpcError};
use crate::message::Message;

/// Rounds of the poll loop before yielding to other tasks.
const BUDGET: usize = 32;
/// Free space kept in the read buffer for each read.
const READ_CHUNK: usize = 64 << 10;

/// What one read brought.
enum Read {
    Bytes,
    Eof,
    Nothing,
}

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    #[error("malformed message: {0}")]
    Decode(#[from] DecodeError),
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("message incomplete after the {0:?} message timeout")]
    MessageTimeout(std::time::Duration),
    #[error("not authenticated within {0:?}")]
    AuthTimeout(std::time::Duration),
}

pub(crate) struct Connection<R, W> {
    id: u64,
    read: R,
    write: W,
    server: Arc<Inner>,
    ctx: Context,
    decoder: Decoder,
    rbuf: BytesMut,
    out: BytesMut,
    inflight: FuturesUnordered<CallFuture>,
    /// An ordered call's reply still to come: nothing more is dispatched (or read) until it
    /// is in.
    barrier: Option<CallFuture>,
    notes: mpsc::Receiver<Bytes>,
    stop: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// False after EOF or once graceful shutdown began.
    reading: bool,
    stopping: bool,
    /// Reading is paused by backpressure (counted once per pause).
    paused: bool,
    /// The connection authenticated (or the server asks for no auth): the
    /// full decoder limits apply and `auth_deadline` is off.
    authed: bool,
    /// Set while the read buffer holds part of a message the server is
    /// waiting for.
    message_deadline: Deadline,
    auth_deadline: Deadline,
}

impl<R, W> Connection<R, W>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    pub(crate) fn new(
        id: u64,
        (read, write): (R, W),
        server: Arc<Inner>,
        ctx: Context,
        notes: mpsc::Receiver<Bytes>,
        stop: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Self {
        let config = server.config;
        let decoder = Decoder::with_limits(config.pre_auth_limits());
        let mut auth_deadline = Deadline::default();
        if let Some(at) = config.auth.and_then(|a| a.timeout).and_then(after) {
            auth_deadline.set(at);
        }
        Connection {
            id,
            read,
            write,
            server,
            ctx,
            decoder,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            out: BytesMut::new(),
            inflight: FuturesUnordered::new(),
            barrier: None,
            notes,
            stop,
            reading: true,
            stopping: false,
            paused: false,
            authed: config.auth.is_none(),
            message_deadline: Deadline::default(),
            auth_deadline,
        }
    }

    /// Whether the connection authenticated (true when no auth is asked).
    pub(crate) fn is_authenticated(&self) -> bool {
        self.authed
    }

    /// Drives the connection until it ends: EOF or shutdown with nothing
    /// left in flight and everything written, or an error.
    pub(crate) fn poll_run(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), ConnError>> {
        for _ in 0..BUDGET {
            if !self.stopping && self.stop.as_mut().poll(cx).is_ready() {
                // Graceful shutdown: take no new requests, finish the rest.
                self.stopping = true;
                self.reading = false;
            }
            let mut progress = self.poll_notifications(cx);
            progress |= self.poll_handlers(cx);
            progress |= self.poll_requests(cx)?;
            progress |= self.poll_flush(cx)?;
            if !self.reading
                && self.inflight.is_empty()
                && self.barrier.is_none()
                && self.out.is_empty()
            {
                // A peer that already left may refuse the FIN; nothing is lost.
                return Pin::new(&mut self.write).poll_shutdown(cx).map(|_| Ok(()));
            }
            if !progress {
                // Only before waiting: a busy connection comes back here
                // soon, and polling a timer costs coop budget and a clock read.
                self.poll_deadlines(cx)?;
                return Poll::Pending;
            }
        }
        // Also here, or a peer that keeps the connection busy (calls before
        // `auth`, say) would never meet its deadline.
        self.poll_deadlines(cx)?;
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Ends the connection when a deadline passed; otherwise the task is
    /// woken at the next one.
    fn poll_deadlines(&mut self, cx: &mut TaskContext<'_>) -> Result<(), ConnError> {
        self.update_message_deadline();
        let config = &self.server.config;
        if let Some(timeout) = config.message_timeout {
            if self.message_deadline.poll_expired(cx) {
                return Err(ConnError::MessageTimeout(timeout));
            }
        }
        if let Some(timeout) = config.auth.and_then(|a| a.timeout) {
            self.refresh_auth();
            if !self.authed && self.auth_deadline.poll_expired(cx) {
                return Err(ConnError::AuthTimeout(timeout));
            }
        }
        Ok(())
    }

    /// Lifts the pre-authentication limits once a method authenticated
    /// this connection.
    fn refresh_auth(&mut self) {
        if !self.authed && self.ctx.is_authenticated() {
            self.authed = true;
            self.decoder.set_limits(self.server.config.limits);
            self.auth_deadline.clear();
            tracing::debug!(conn = self.id, "authenticated");
        }
    }

    /// The message timeout runs while the server waits for the rest of a
    /// message: bytes buffered, not decodable yet, and reading not paused
    /// (time spent in backpressure is the server's, not the peer's).
    fn update_message_deadline(&mut self) {
        let Some(timeout) = self.server.config.message_timeout else {
            return;
        };
        let waiting = self.reading && !self.is_full() && !self.rbuf.is_empty();
        if !waiting {
            self.message_deadline.clear();
        } else if !self.message_deadline.is_set() {
            if let Some(at) = after(timeout) {
                self.message_deadline.set(at);
            }
        }
    }

    fn poll_notifications(&mut self, cx: &mut TaskContext<'_>) -> bool {
        let mut progress = false;
        // Past the high-water mark notifications stay in their bounded
        // queue, so a client that does not read makes `notify` fail with
        // Full instead of growing this buffer.
        while self.out.len() < self.server.config.write_high_water {
            let Poll::Ready(Some(frame)) = self.notes.poll_recv(cx) else {
                break;
            };
            self.out.extend_from_slice(&frame);
            progress = true;
        }
        progress
    }

    fn poll_handlers(&mut self, cx: &mut TaskContext<'_>) -> bool {
        let mut progress = false;
        if let Some(call) = &mut self.barrier {
            if let Poll::Ready(reply) = call.as_mut().poll(cx) {
                self.barrier = None;
                self.handle_reply(reply);
                progress = true;
            }
        }
        while let Poll::Ready(Some(reply)) = self.inflight.poll_next_unpin(cx) {
            self.handle_reply(reply);
            progress = true;
        }
        progress
    }

    /// Dispatches buffered requests, then reads once more if there is room.
    fn poll_requests(&mut self, cx: &mut TaskContext<'_>) -> Result<bool, ConnError> {
        let mut progress = self.handle_buffered(cx)?;
        if self.barrier.is_some() {
            // What comes next waits in the socket until the ordered call's reply is in.
            return Ok(progress);
        }
        if !self.reading || self.is_full() {
            // Backpressure: a flooding client waits in its own send buffer.
            if self.reading && !self.paused {
                self.paused = true;
                Counters::add(&self.server.counters.backpressure_pauses, 1);
                tracing::debug!(
                    conn = self.id,
                    "reading paused: in-flight or output cap reached"
                );
            }
            return Ok(progress);
        }
        self.paused = false;
        match self.read_more(cx)? {
            Read::Eof => progress = true,
            Read::Bytes => {
                self.handle_buffered(cx)?;
                progress = true;
            }
            Read::Nothing => {}
        }
        Ok(progress)
    }

    /// One read into `rbuf`, without waiting (a wake-up is registered when nothing came).
    fn read_more(&mut self, cx: &mut TaskContext<'_>) -> Result<Read, ConnError> {
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
            self.rbuf.reserve(READ_CHUNK);
        }
        match pin!(self.read.read_buf(&mut self.rbuf)).poll(cx) {
            Poll::Ready(Ok(0)) => {
                self.reading = false;
                if !self.rbuf.is_empty() {
                    tracing::debug!(
                        conn = self.id,
                        bytes = self.rbuf.len(),
                        "EOF inside a message"
                    );
                }
                Ok(Read::Eof)
            }
            Poll::Ready(Ok(_)) => Ok(Read::Bytes),
            Poll::Ready(Err(e)) => Err(e.into()),
            Poll::Pending => Ok(Read::Nothing),
        }
    }

    fn is_full(&self) -> bool {
        let config = &self.server.config;
        self.inflight.len() >= config.max_in_flight || self.out.len() >= config.write_high_water
    }

    fn handle_buffered(&mut self, cx: &mut TaskContext<'_>) -> Result<bool, ConnError> {
        let mut progress = false;
        while self.reading && !self.is_full() && self.barrier.is_none() {
            // Before each message: `auth` may have been the one before.
            self.refresh_auth();
            let Some(msg) = self.decoder.decode(&mut self.rbuf)? else {
                break;
            };
            // The next message, if begun, gets a timeout of its own.
            self.message_deadline.clear();
            if self.rbuf.is_empty() {
                // A pipelining caller's next request may be waiting in the socket while this
                // one was decoded: look (without waiting), so `more_buffered` sees it.
                self.read_more(cx)?;
            }
            self.ctx.set_more_buffered(!self.rbuf.is_empty());
            self.handle_message(msg, cx);
            progress = true;
        }
        Ok(progress)
    }

    fn handle_message(&mut self, msg: Message, cx: &mut TaskContext<'_>) {
        let (msgid, method, params) = match msg {
            Message::Request {
                msgid,
                method,
                params,
            } => {
                Counters::add(&self.server.counters.requests, 1);
                (Some(msgid), method, params)
            }
            Message::Notification { method, params } => {
                Counters::add(&self.server.counters.notifications, 1);
                (None, method, params)
            }
            Message::Response { msgid, .. } => {
                tracing::debug!(
                    conn = self.id,
                    msgid,
                    "ignoring a response: this server sends no requests"
                );
                return;
            }
        };
        self.ctx.set_notification(msgid.is_none());
        match self
            .server
            .registry
            .dispatch(&self.ctx, &method, params, msgid)
        {
            Dispatch::Done(result) => self.handle_reply(Reply { msgid, result }),
            // Most handlers finish without waiting: poll once here and skip
            // the in-flight set. A pending one registered this task's
            // waker, which costs at most one spurious wake-up.
            Dispatch::Running(mut call) => match call.as_mut().poll(cx) {
                Poll::Ready(reply) => self.handle_reply(reply),
                Poll::Pending => self.inflight.push(call),
            },
            Dispatch::Barrier(mut call) => match call.as_mut().poll(cx) {
                Poll::Ready(reply) => self.handle_reply(reply),
                Poll::Pending => self.barrier = Some(call),
            },
        }
    }

    fn handle_reply(&mut self, reply: Reply) {
        match (reply.msgid, reply.result) {
            (Some(msgid), Ok(result)) => {
                encode(&Message::response_ok(msgid, result), &mut self.out)
            }
            (Some(msgid), Err(e)) => {
                encode(&Message::response_err(msgid, e.into_value()), &mut self.out)
            }
            // Notifications are never answered, even on error.
            (None, Ok(_)) => {}
            (None, Err(e)) => log_notification_error(self.id, &e),
        }
    }

    fn poll_flush(&mut self, cx: &mut TaskContext<'_>) -> Result<bool, ConnError> {
        let mut progress = false;
        while !self.out.is_empty() {
            match Pin::new(&mut self.write).poll_write(cx, &self.out) {
                Poll::Ready(Ok(0)) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Poll::Ready(Ok(n)) => {
                    self.out.advance(n);
                    progress = true;
                }
                Poll::Ready(Err(e)) => return Err(e.into()),
                Poll::Pending => break,
            }
        }
        Ok(progress)
    }
}

/// Now plus `timeout`; None (no deadline) for a timeout too long to add.
fn after(timeout: std::time::Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

fn log_notification_error(conn: u64, e: &RpcError) {
    let error = match e {
        RpcError::Message(m) => m.clone(),
        RpcError::Value(v) => v.to_string(),
    };
    tracing::debug!(conn, %error, "notification failed (not answered)");
}
