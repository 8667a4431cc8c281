//! The cloneable [`Connection`] handle and the bounded outbound queue behind it.
//!
//! Senders (any task) push into a small mutex-protected `VecDeque`. The queue is bounded in
//! bytes; the bytes of a batch stay counted until they are written, so a stalled socket fills
//! the queue and triggers the [`OverflowPolicy`].
//!
//! Who writes what is queued is decided here, per connection, under the queue lock: a frame
//! that finds the connection idle (nothing queued or being written) may be handed to a direct
//! writer (see [`crate::direct`]), which writes it, and whatever queued behind it meanwhile,
//! to the socket without waking the task; any other frame wakes the task (an `AtomicBool`
//! guards a `Notify`, so a burst costs one wake-up per connection).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use ws_proto::{FrameChoice, Message, PreparedMessage};

use crate::config::OverflowPolicy;
use crate::error::SendError;
use crate::stats::Stats;

/// The close code and reason used by [`OverflowPolicy::Close`]: 1008 (policy violation), because
/// the peer broke the server's policy by not reading; 1013 would blame the server.
pub const SLOW_CONSUMER: (u16, &str) = (1008, "slow consumer");

/// One message waiting to be handed to the protocol core.
#[derive(Debug)]
pub(crate) enum Outbound {
    Message(Message),
    Prepared(Arc<PreparedMessage>),
}

impl Outbound {
    pub(crate) fn size(&self) -> usize {
        match self {
            Outbound::Message(Message::Text(b) | Message::Binary(b)) => b.len(),
            Outbound::Prepared(p) => p.plain_frame().len(),
        }
    }
}

/// What the connection task must do besides sending messages.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Control {
    /// Start the close handshake with this code and reason.
    pub(crate) close: Option<(u16, String)>,
    /// Drop the socket now (shutdown deadline passed).
    pub(crate) abort: bool,
    /// The close is the overflow policy's: drop what waits, so the peer gets the close
    /// frame next instead of after data it is too slow to read.
    pub(crate) discard: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub(crate) items: VecDeque<Outbound>,
    /// Bytes of `items` plus the batch the task took and has not finished writing.
    pub(crate) bytes: usize,
    /// Bytes of a backlog queued beyond the limit ([`Connection::send_backlog`]) and not yet
    /// written: the limit applies to what comes after it.
    pub(crate) allowance: usize,
    pub(crate) close: Option<(u16, String)>,
    /// `close` is the overflow policy's (see [`Control::discard`]).
    pub(crate) discard: bool,
    /// A close was requested (by the application, the overflow policy or shutdown): refuse sends.
    pub(crate) closing: bool,
    pub(crate) abort: bool,
    /// The task ended.
    pub(crate) closed: bool,
    /// The socket, for senders' direct writes (plain TCP only, set once upgraded).
    pub(crate) direct: Option<Direct>,
    /// The task has frames to write (it may have sent part of one): senders must queue, so
    /// their frames go out after the task's.
    pub(crate) writer_busy: bool,
    /// The unwritten rest of a frame a sender wrote in part; the task sends it first.
    /// Its bytes are counted in `bytes`.
    pub(crate) partial: Option<Bytes>,
    /// A direct writer holds this connection in a batch and will write what is queued;
    /// the task was not woken for it. Cleared when the writer or the task takes over.
    pub(crate) direct_pending: bool,
}

#[derive(Debug)]
pub(crate) struct Direct {
    pub(crate) socket: Arc<TcpStream>,
    pub(crate) choice: FrameChoice,
}

/// State shared by the handles of one connection and its task.
#[derive(Debug)]
pub(crate) struct Shared {
    id: u64,
    peer_addr: SocketAddr,
    limit: usize,
    policy: OverflowPolicy,
    queue: Mutex<Queue>,
    /// Set by the first sender of a batch, cleared by the task before it drains the queue.
    notified: AtomicBool,
    notify: Notify,
    dropped: AtomicU64,
    stats: Arc<Stats>,
}

/// A handle to one WebSocket connection: cheap to clone, `Send + Sync`, usable from any task.
///
/// Sending never waits: it queues the message for the connection task and returns. The queue
/// is bounded in bytes ([`ServerConfig::outbound_queue_bytes`](crate::ServerConfig::outbound_queue_bytes));
/// a message arriving at a full queue is refused with [`SendError::Full`] and the
/// [`OverflowPolicy`] applies. A single message larger than the whole limit is accepted only
/// when the queue is empty, so that large messages can be sent at all.
#[derive(Debug, Clone)]
pub struct Connection {
    pub(crate) shared: Arc<Shared>,
}

impl Connection {
    pub(crate) fn new(
        id: u64,
        peer_addr: SocketAddr,
        limit: usize,
        policy: OverflowPolicy,
        stats: Arc<Stats>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                id,
                peer_addr,
                limit,
                policy,
                queue: Mutex::default(),
                notified: AtomicBool::new(false),
                notify: Notify::new(),
                dropped: AtomicU64::new(0),
                stats,
            }),
        }
    }

    /// The connection's number, unique within one server.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The TCP peer.
    pub fn peer_addr(&self) -> SocketAddr {
        self.shared.peer_addr
    }

    /// Queues a text message. The bytes must be UTF-8, else [`SendError::InvalidUtf8`].
    pub fn send_text(&self, text: impl Into<Bytes>) -> Result<(), SendError> {
        let text = text.into();
        if std::str::from_utf8(&text).is_err() {
            return Err(SendError::InvalidUtf8);
        }
        self.shared.push(Outbound::Message(Message::Text(text)))
    }

    /// Queues a binary message.
    pub fn send_binary(&self, data: impl Into<Bytes>) -> Result<(), SendError> {
        self.shared
            .push(Outbound::Message(Message::Binary(data.into())))
    }

    /// Queues a message encoded once for many connections (no copy, no re-encoding).
    pub fn send_prepared(&self, msg: &Arc<PreparedMessage>) -> Result<(), SendError> {
        self.shared.push(Outbound::Prepared(Arc::clone(msg)))
    }

    /// Like [`send_prepared`](Self::send_prepared), but when nothing is queued and the
    /// connection task is not writing, writes the frame to the socket on the calling thread:
    /// no wake-up, no task switch, the bytes leave now. Otherwise (TLS, a busy or full
    /// socket) it queues as `send_prepared` does; order is kept either way.
    ///
    /// For one message to many connections, a [`FanOut`](crate::FanOut) does the same with
    /// the writes moved off the caller's thread.
    pub fn send_prepared_now(&self, msg: &Arc<PreparedMessage>) -> Result<(), SendError> {
        self.shared.push_now(msg)
    }

    /// Queues a message that is part of a backlog the peer asked for (a replay of missed
    /// messages): it is accepted whatever the limit, and the limit then applies to what is
    /// queued beyond the backlog until the backlog is written. The caller bounds the backlog.
    pub fn send_backlog(&self, msg: &Arc<PreparedMessage>) -> Result<(), SendError> {
        let mut q = self.shared.lock();
        if q.closing || q.closed {
            return Err(SendError::Closed);
        }
        let item = Outbound::Prepared(Arc::clone(msg));
        q.allowance += item.size();
        self.shared.enqueue(q, item, false).map(drop)
    }

    /// Starts the close handshake after the messages already queued. Later sends are refused.
    /// Does nothing if a close was already requested.
    pub fn close(&self, code: u16, reason: &str) {
        self.shared.request_close(code, reason);
    }

    /// Bytes queued and not yet written to the socket.
    pub fn queued_bytes(&self) -> usize {
        self.shared.lock().bytes
    }

    /// Messages refused on this connection because its queue was full.
    pub fn dropped_messages(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Whether the connection accepts no more messages (closing or closed).
    pub fn is_closed(&self) -> bool {
        let q = self.shared.lock();
        q.closing || q.closed
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock leaves the queue consistent (plain pushes and pops).
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            self.notify.notify_one();
        }
    }

    fn push(&self, item: Outbound) -> Result<(), SendError> {
        let q = self.lock();
        if q.closing || q.closed {
            return Err(SendError::Closed);
        }
        self.enqueue(q, item, false).map(drop)
    }

    fn push_now(&self, msg: &Arc<PreparedMessage>) -> Result<(), SendError> {
        if self.push_for_direct(msg)? {
            self.write_direct();
        }
        Ok(())
    }

    /// Queues a prepared frame for a direct writer's batch: `Ok(true)` when the connection
    /// was idle and the caller must now call [`Self::write_direct`] (itself or through a
    /// writer thread); `Ok(false)` when the frame joined a queue someone already writes.
    pub(crate) fn push_for_direct(&self, msg: &Arc<PreparedMessage>) -> Result<bool, SendError> {
        let q = self.lock();
        if q.closing || q.closed {
            return Err(SendError::Closed);
        }
        self.enqueue(q, Outbound::Prepared(Arc::clone(msg)), true)
    }

    /// Direct writer side: writes what is queued to the socket on the calling thread, as one
    /// vectored write, if this connection is still handed to it (see [`crate::direct`]). What
    /// it cannot write (the socket is full, the task began writing, a message the task must
    /// encode) is left to the task, woken for it.
    pub(crate) fn write_direct(&self) {
        let mut q = self.lock();
        if !q.direct_pending {
            return;
        }
        q.direct_pending = false;
        while crate::direct::write_queued(&mut q, &self.stats) {}
        if q.items.is_empty() && q.partial.is_none() {
            return;
        }
        drop(q);
        self.wake();
    }

    /// Appends `item` under the lock the caller holds. With `may_go_direct`, a prepared
    /// frame that finds the connection idle is handed to a direct writer: `Ok(true)`.
    /// Otherwise whoever already writes the queue takes it too, or the task is woken.
    fn enqueue(
        &self,
        mut q: MutexGuard<'_, Queue>,
        item: Outbound,
        may_go_direct: bool,
    ) -> Result<bool, SendError> {
        let size = item.size();
        if q.bytes > 0 && q.bytes + size > self.limit + q.allowance {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            match self.policy {
                OverflowPolicy::Drop => Stats::add(&self.stats.dropped_messages, 1),
                OverflowPolicy::Close => {
                    Stats::add(&self.stats.overflow_closes, 1);
                    tracing::info!(
                        id = self.id,
                        queued = q.bytes,
                        limit = self.limit,
                        "outbound queue full: closing 1008"
                    );
                    let freed: usize = q.items.drain(..).map(|i| i.size()).sum();
                    q.bytes -= freed;
                    q.allowance = 0;
                    q.closing = true;
                    q.direct_pending = false;
                    q.discard = true;
                    q.close = Some((SLOW_CONSUMER.0, SLOW_CONSUMER.1.to_owned()));
                    drop(q);
                    self.wake();
                }
            }
            return Err(SendError::Full);
        }
        let idle = q.bytes == 0 && !q.writer_busy && q.direct.is_some();
        let prepared = matches!(item, Outbound::Prepared(_));
        q.bytes += size;
        q.items.push_back(item);
        if prepared && q.direct_pending {
            // The direct writer that holds this connection writes this frame too.
            return Ok(false);
        }
        if prepared && idle && may_go_direct {
            q.direct_pending = true;
            return Ok(true);
        }
        // The task takes over everything queued, in order.
        q.direct_pending = false;
        drop(q);
        self.wake();
        Ok(false)
    }

    pub(crate) fn request_close(&self, code: u16, reason: &str) {
        let mut q = self.lock();
        if q.closing || q.closed {
            return;
        }
        q.closing = true;
        q.close = Some((code, reason.to_owned()));
        drop(q);
        self.wake();
    }

    /// Shutdown deadline passed: the task drops the socket at its next wake-up.
    pub(crate) fn abort(&self) {
        self.lock().abort = true;
        self.wake();
    }

    /// Task side: wait for a sender. Clears the flag first so a push racing with the drain
    /// that follows leaves a stored permit and a later wake-up, never a lost one.
    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// Task side: called after `notified()` fired, before draining.
    pub(crate) fn rearm(&self) {
        self.notified.store(false, Ordering::Release);
    }

    /// Task side: the socket is plain TCP; senders may write to it directly from now on.
    pub(crate) fn attach_direct(&self, socket: Arc<TcpStream>, choice: FrameChoice) {
        self.lock().direct = Some(Direct { socket, choice });
    }

    /// Task side: no more direct writes (the task is about to shut the socket down).
    pub(crate) fn detach_direct(&self) {
        self.lock().direct = None;
    }

    /// Task side: the task has frames to write; senders queue until [`Self::end_write`]. Returns
    /// the rest of a frame a sender wrote in part, which must be written first.
    pub(crate) fn begin_write(&self) -> Option<Bytes> {
        let mut q = self.lock();
        q.writer_busy = true;
        q.partial.take()
    }

    /// Task side: everything the task had is written.
    pub(crate) fn end_write(&self) {
        self.lock().writer_busy = false;
    }

    /// Task side: takes every queued message; their bytes stay counted until [`Self::release`].
    /// The rest of a partly written frame, if any, comes back separately: it goes first.
    pub(crate) fn take(&self, into: &mut VecDeque<Outbound>) -> (usize, Option<Bytes>) {
        let mut q = self.lock();
        q.direct_pending = false;
        let partial = q.partial.take();
        let taken: usize = q.items.iter().map(Outbound::size).sum();
        if into.is_empty() {
            std::mem::swap(into, &mut q.items);
        } else {
            into.extend(q.items.drain(..));
        }
        (taken, partial)
    }

    /// Task side: a taken batch is fully written.
    pub(crate) fn release(&self, bytes: usize) {
        let mut q = self.lock();
        q.bytes = q.bytes.saturating_sub(bytes);
        // A backlog is at the front of what was queued: it is written first.
        q.allowance = q.allowance.saturating_sub(bytes);
    }

    /// Task side: pending close / abort requests (the close is handed out once).
    pub(crate) fn take_control(&self) -> Control {
        let mut q = self.lock();
        Control {
            close: q.close.take(),
            abort: q.abort,
            discard: std::mem::take(&mut q.discard),
        }
    }

    /// Task side: refuse every later send (the peer closed, or we are closing for a protocol reason).
    pub(crate) fn mark_closing(&self) {
        self.lock().closing = true;
    }

    /// Task side: the connection is gone; free what is still queued.
    pub(crate) fn mark_closed(&self) {
        let mut q = self.lock();
        q.closed = true;
        q.items = VecDeque::new();
        q.bytes = 0;
        q.allowance = 0;
        q.partial = None;
        q.direct = None;
        q.direct_pending = false;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn conn(limit: usize, policy: OverflowPolicy) -> Connection {
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        Connection::new(7, addr, limit, policy, Arc::new(Stats::default()))
    }

    #[test]
    fn queue_is_bounded_in_bytes_and_drop_policy_counts() {
        let c = conn(10, OverflowPolicy::Drop);
        c.send_binary(vec![0; 6]).unwrap();
        c.send_binary(vec![0; 4]).unwrap();
        assert_eq!(c.send_binary(vec![0; 1]), Err(SendError::Full));
        assert_eq!(c.queued_bytes(), 10);
        assert_eq!(c.dropped_messages(), 1);
        assert_eq!(c.shared.stats.snapshot().dropped_messages, 1);
        let mut batch = VecDeque::new();
        assert_eq!(c.shared.take(&mut batch).0, 10);
        assert_eq!(batch.len(), 2);
        // Taken but not yet written: still counted.
        assert_eq!(c.send_binary(vec![0; 1]), Err(SendError::Full));
        c.shared.release(10);
        c.send_binary(vec![0; 1]).unwrap();
    }

    #[test]
    fn close_policy_clears_the_queue_and_requests_1008() {
        let c = conn(4, OverflowPolicy::Close);
        c.send_text("abcd").unwrap();
        assert_eq!(c.send_text("e"), Err(SendError::Full));
        assert_eq!(c.queued_bytes(), 0);
        assert_eq!(c.send_text("f"), Err(SendError::Closed));
        let ctl = c.shared.take_control();
        assert_eq!(ctl.close, Some((1008, "slow consumer".to_owned())));
        assert_eq!(c.shared.stats.snapshot().overflow_closes, 1);
    }

    #[test]
    fn one_oversized_message_fits_an_empty_queue() {
        let c = conn(4, OverflowPolicy::Drop);
        c.send_binary(vec![0; 100]).unwrap();
        assert_eq!(c.send_binary(vec![0; 1]), Err(SendError::Full));
    }

    #[test]
    fn invalid_utf8_text_is_refused() {
        let c = conn(100, OverflowPolicy::Drop);
        assert_eq!(c.send_text(vec![0xff]), Err(SendError::InvalidUtf8));
    }

    #[test]
    fn only_the_first_send_of_a_batch_wakes() {
        let c = conn(100, OverflowPolicy::Drop);
        c.send_text("a").unwrap();
        assert!(c.shared.notified.load(Ordering::Acquire));
        c.send_text("b").unwrap();
        c.shared.rearm();
        assert!(!c.shared.notified.load(Ordering::Acquire));
    }

    #[test]
    fn close_after_close_and_after_end_are_ignored() {
        let c = conn(100, OverflowPolicy::Drop);
        c.close(1000, "bye");
        c.close(1001, "again");
        assert_eq!(
            c.shared.take_control().close,
            Some((1000, "bye".to_owned()))
        );
        assert!(c.is_closed());
        c.shared.mark_closed();
        assert_eq!(c.send_text("x"), Err(SendError::Closed));
    }
}
