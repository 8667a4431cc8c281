//! The cloneable [`Connection`] handle and the bounded outbound queue behind it.
//!
//! ```text
//! mod.rs     Connection: the public handle (send_*, close, counters)
//! shared.rs  Shared: what every handle and the task share; enqueue, overflow, wake-up
//! queue.rs   Queue: the messages, their bytes, the writer hand-off, under one lock
//! close.rs   CloseState: where the connection is in its ending, one enum
//! ```
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

mod close;
mod queue;
mod shared;

pub use close::SLOW_CONSUMER;
pub(crate) use close::{CloseState, Control};
pub(crate) use queue::{Outbound, Queue};
pub(crate) use shared::{Shared, Woken};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use ws_proto::{Message, PreparedMessage};

use crate::config::OverflowPolicy;
use crate::error::SendError;
use crate::stats::Stats;

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
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn new(
        id: u64,
        peer_addr: SocketAddr,
        limit: usize,
        policy: OverflowPolicy,
        stats: Arc<Stats>,
    ) -> Self {
        Self::with_kind(id, peer_addr, limit, policy, stats, None)
    }

    /// A WebSocket connection, or with `kill` (the switch that drops the HTTP connection
    /// carrying it) one whose queue feeds an event stream (see [`crate::event_stream`]).
    pub(crate) fn with_kind(
        id: u64,
        peer_addr: SocketAddr,
        limit: usize,
        policy: OverflowPolicy,
        stats: Arc<Stats>,
        kill: Option<CancellationToken>,
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
                kill,
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

    /// Queues a message that is part of a backlog the peer asked for (a replay of missed
    /// messages): it is accepted whatever the limit, and the limit then applies to what is
    /// queued beyond the backlog until the backlog is written. The caller bounds the backlog.
    pub fn send_backlog(&self, msg: &Arc<PreparedMessage>) -> Result<(), SendError> {
        let mut q = self.shared.lock();
        if !q.close.accepts_sends() {
            return Err(SendError::Closed);
        }
        let item = Outbound::Prepared(Arc::clone(msg));
        q.allowance += item.size();
        self.shared.enqueue(q, item, false).map(drop)
    }

    /// Event streams: queues `head` (this connection's own bytes, may be empty) then `body`
    /// (shared by many connections, not copied), to be written as they are. With `backlog`,
    /// accepted beyond the limit as [`Connection::send_backlog`] is. A WebSocket connection
    /// refuses it ([`SendError::NotAStream`]).
    pub fn send_chunk(&self, head: Bytes, body: &Bytes, backlog: bool) -> Result<(), SendError> {
        self.shared.push_chunk(head, body, backlog, false).map(drop)
    }

    /// Whether this connection is an event stream (a plain HTTP response fed by its queue,
    /// see [`Handler::on_stream`](crate::Handler::on_stream)) rather than a WebSocket.
    pub fn is_event_stream(&self) -> bool {
        self.shared.kill.is_some()
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
        !self.shared.lock().close.accepts_sends()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn conn(limit: usize, policy: OverflowPolicy) -> Connection {
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        Connection::new(7, addr, limit, policy, Arc::new(Stats::default()))
    }

    fn assert_closing(c: &Connection, code: u16, reason: &str) {
        let reason = reason.to_owned();
        assert_eq!(c.shared.lock().close, CloseState::Closing { code, reason });
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
        assert_eq!(c.shared.take_control(), Control::DiscardAndClose);
        assert_closing(&c, 1008, "slow consumer");
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
        assert!(c.shared.is_notified());
        c.send_text("b").unwrap();
        c.shared.rearm();
        assert!(!c.shared.is_notified());
    }

    /// Several frames queued under one lock: each is refused or taken as it would be alone,
    /// and the task is woken once for them all.
    #[test]
    fn frames_queued_together_meet_the_limit_one_by_one() {
        let frame = |text: &str| Arc::new(PreparedMessage::new(Message::text(text.to_owned())));
        let frames = [frame("abcd"), frame("efgh"), frame("ij"), frame("k")];
        let c = conn(10, OverflowPolicy::Drop);
        let mut outcomes = Vec::new();
        assert!(!c.shared.push_all(&frames, true, |r| outcomes.push(r)));
        // A frame takes its text and 2 header bytes: 6 + 6 overflows 10, 6 + 4 fits, then 3 not.
        let full = Err(SendError::Full);
        assert_eq!(outcomes, [Ok(()), full, Ok(()), full]);
        assert_eq!(c.queued_bytes(), 10);
        assert_eq!(c.dropped_messages(), 2);
        assert!(c.shared.is_notified());

        let c = conn(10, OverflowPolicy::Close);
        outcomes.clear();
        c.shared.push_all(&frames, true, |r| outcomes.push(r));
        let closed = Err(SendError::Closed);
        assert_eq!(outcomes, [Ok(()), Err(SendError::Full), closed, closed]);
        assert_eq!(c.queued_bytes(), 0);
        assert_eq!(c.shared.take_control(), Control::DiscardAndClose);
    }

    #[test]
    fn close_after_close_and_after_end_are_ignored() {
        let c = conn(100, OverflowPolicy::Drop);
        c.close(1000, "bye");
        c.close(1001, "again");
        assert_eq!(c.shared.take_control(), Control::Close);
        assert_closing(&c, 1000, "bye");
        assert!(c.is_closed());
        c.shared.mark_closed();
        assert_eq!(c.send_text("x"), Err(SendError::Closed));
    }
}
