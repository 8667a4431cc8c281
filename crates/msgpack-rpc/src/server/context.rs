//! What a handler knows about its caller: the connection id and a
//! [`Notifier`] to push notifications to that connection later.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};
use rmpv::Value;
use tokio::sync::mpsc;

use crate::encode::encode;
use crate::message::Message;

/// Why a notification was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// The connection's notification queue is full (the client reads too
    /// slowly); this notification is dropped, the connection stays.
    #[error("notification queue full")]
    Full,
    /// The connection is gone.
    #[error("connection closed")]
    Closed,
}

/// A cloneable handle that sends notifications (`[2, method, params]`) to
/// one connected client.
///
/// The queue is bounded (`ServerConfig::notification_queue` messages) and
/// sending never waits: a full queue is [`NotifyError::Full`]. Stock
/// clients break on messages they did not ask for, so only send to clients
/// that asked (e.g. by calling a `listen` method).
#[derive(Debug, Clone)]
pub struct Notifier {
    id: u64,
    tx: mpsc::Sender<Bytes>,
}

impl Notifier {
    pub(crate) fn new(id: u64, tx: mpsc::Sender<Bytes>) -> Self {
        Notifier { id, tx }
    }

    /// The connection this notifier sends to.
    #[must_use]
    pub fn connection_id(&self) -> u64 {
        self.id
    }

    /// Encodes and queues a notification.
    pub fn notify(&self, method: &str, params: Vec<Value>) -> Result<(), NotifyError> {
        let mut out = BytesMut::new();
        encode(
            &Message::notification(Bytes::copy_from_slice(method.as_bytes()), params),
            &mut out,
        );
        self.send_encoded(out.freeze())
    }

    /// Queues an already encoded message (see [`encode`](crate::encode)):
    /// encode once, send the same `Bytes` to many connections.
    pub fn send_encoded(&self, frame: Bytes) -> Result<(), NotifyError> {
        self.tx.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => NotifyError::Full,
            mpsc::error::TrySendError::Closed(_) => NotifyError::Closed,
        })
    }

    /// Whether the connection has ended.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Completes when the connection ends (to drop its listeners).
    pub async fn closed(&self) {
        self.tx.closed().await;
    }
}

/// Calls a connection counts as pipelining after the last one that had more buffered
/// behind it (see [`Context::pipelines`]).
const PIPELINING_MEMORY: u8 = 16;

/// Per-call context handed to every handler.
#[derive(Debug, Clone)]
pub struct Context {
    notifier: Notifier,
    more_buffered: bool,
    /// Calls left before the connection counts as no longer pipelining (see
    /// [`Context::pipelines`]).
    pipelining: u8,
    notification: bool,
    /// Set once the connection authenticated; None when the server asks
    /// for no authentication (every connection counts as authenticated).
    authenticated: Option<Arc<AtomicBool>>,
}

impl Context {
    pub(crate) fn new(notifier: Notifier, needs_auth: bool) -> Self {
        Context {
            notifier,
            more_buffered: false,
            pipelining: 0,
            notification: false,
            authenticated: needs_auth.then(Arc::default),
        }
    }

    /// Marks the caller's connection authenticated, for the rest of its
    /// life: the pre-authentication limits of
    /// [`ServerConfig::auth`](crate::ServerConfig::auth) stop applying to
    /// it (the message size limit is lifted, the timeout cancelled). Called
    /// from a sync method, it takes effect before the next message is
    /// decoded, so a client may pipeline a large call right after `auth`;
    /// from an async one, once the call finished. Does nothing when the
    /// server asks for no authentication.
    pub fn set_authenticated(&self) {
        if let Some(flag) = &self.authenticated {
            flag.store(true, Ordering::Release);
        }
    }

    /// Whether the caller's connection has authenticated (always true when
    /// the server asks for no authentication).
    #[must_use]
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
            .as_ref()
            .is_none_or(|flag| flag.load(Ordering::Acquire))
    }

    pub(crate) fn set_more_buffered(&mut self, more: bool) {
        self.more_buffered = more;
        self.pipelining = if more {
            PIPELINING_MEMORY
        } else {
            self.pipelining.saturating_sub(1)
        };
    }

    pub(crate) fn set_notification(&mut self, notification: bool) {
        self.notification = notification;
    }

    /// Whether this call is a notification: the caller waits for no reply, so nothing it
    /// does next is held back by this call's answer.
    #[must_use]
    pub fn is_notification(&self) -> bool {
        self.notification
    }

    /// Whether the caller had already sent more (part of a next message) when this call
    /// was dispatched: it is pipelining. A handler may then leave its output to be
    /// batched with what the next calls produce, as Nagle's algorithm does, and flush
    /// at once otherwise.
    #[must_use]
    pub fn more_buffered(&self) -> bool {
        self.more_buffered
    }

    /// Whether the caller pipelines: it had more buffered on this call or on one of the 16
    /// before it. The last call of each batch a pipelining caller sends has nothing behind
    /// it yet, but the next batch follows as surely; a caller that waits for each answer
    /// never counts.
    #[must_use]
    pub fn pipelines(&self) -> bool {
        self.pipelining > 0
    }

    /// The id of the caller's connection, unique per [`Server`](crate::Server).
    #[must_use]
    pub fn connection_id(&self) -> u64 {
        self.notifier.id
    }

    /// Sends notifications to the caller's connection, now or later.
    #[must_use]
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }
}

#[cfg(test)]
mod tests {
    use super::{Context, Notifier, PIPELINING_MEMORY};

    #[test]
    fn a_caller_pipelines_from_its_first_buffered_call_until_that_many_calls_without() {
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let mut ctx = Context::new(Notifier::new(1, tx), false);
        ctx.set_more_buffered(false);
        assert!(!ctx.pipelines(), "one call at a time: never pipelining");
        ctx.set_more_buffered(true);
        assert!(ctx.pipelines() && ctx.more_buffered());
        for call in 1..PIPELINING_MEMORY {
            ctx.set_more_buffered(false);
            assert!(ctx.pipelines(), "call {call} after the last buffered one");
        }
        ctx.set_more_buffered(false);
        assert!(
            !ctx.pipelines(),
            "so many calls without: one at a time again"
        );
    }
}
