//! [`Shared`]: the state behind every handle of one connection and its task: the queue
//! lock, the wake-up, the bounded enqueue with its overflow policy, and the task's side of
//! the queue (take, release, close requests). The direct writers' side is in
//! [`crate::direct`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use ws_proto::{CloseFrame, FrameChoice, PreparedMessage};

use super::close::{CloseState, Control};
use super::queue::{Direct, Items, Outbound, Queue};
use crate::config::OverflowPolicy;
use crate::error::SendError;
use crate::stats::Stats;

/// What [`Shared::take_woken`] took for the task.
#[derive(Debug)]
pub(crate) struct Woken {
    pub(crate) control: Control,
    /// Bytes of the messages moved into the task's batch.
    pub(crate) bytes: usize,
    /// The rest of a frame a sender wrote in part: it goes first.
    pub(crate) partial: Option<Bytes>,
    /// Senders were told the task is writing.
    pub(crate) writing: bool,
}

/// State shared by the handles of one connection and its task.
///
/// In `repr(C)`, with the queue and the counters first: they are all a fan-out's writers
/// read of it, for every recipient in turn (see [`Queue`]'s order).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Shared {
    pub(super) queue: Mutex<Queue>,
    pub(crate) stats: Arc<Stats>,
    /// Set by the first sender of a batch, cleared by the task before it drains the queue.
    pub(super) notified: AtomicBool,
    pub(super) policy: OverflowPolicy,
    pub(super) limit: usize,
    pub(super) id: u64,
    pub(super) peer_addr: SocketAddr,
    pub(super) notify: Notify,
    pub(super) dropped: AtomicU64,
    /// Event streams only (a plain HTTP response fed by this queue): drops the HTTP
    /// connection that carries it. hyper polls the body only when the socket takes more, so
    /// a stalled client is cut off from here (overflow, shutdown deadline), not by the body.
    pub(super) kill: Option<CancellationToken>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock leaves the queue consistent (plain pushes and pops).
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn wake(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            self.notify.notify_one();
        }
    }

    pub(super) fn push(&self, item: Outbound) -> Result<(), SendError> {
        let q = self.lock();
        if !q.close.accepts_sends() {
            return Err(SendError::Closed);
        }
        self.enqueue(q, item, false).map(drop)
    }

    /// Appends `item` under the lock the caller holds. With `may_go_direct`, a prepared
    /// frame that finds the connection idle is handed to a direct writer: `Ok(true)`.
    /// Otherwise whoever already writes the queue takes it too, or the task is woken.
    pub(crate) fn enqueue(
        &self,
        q: MutexGuard<'_, Queue>,
        item: Outbound,
        may_go_direct: bool,
    ) -> Result<bool, SendError> {
        self.enqueue_with_head(q, None, item, may_go_direct)
    }

    /// [`Self::enqueue`], with an event stream's own `head` bytes before `item`: both are
    /// queued, or refused, together.
    fn enqueue_with_head(
        &self,
        mut q: MutexGuard<'_, Queue>,
        head: Option<Bytes>,
        item: Outbound,
        may_go_direct: bool,
    ) -> Result<bool, SendError> {
        let mut then = Then::default();
        let queued = self.enqueue_locked(&mut q, head, item, may_go_direct, &mut then);
        drop(q);
        then.run(self);
        queued
    }

    /// Queues each of `msgs` in order under one lock, as [`Self::enqueue`] would one by one
    /// (a refused frame does not stop the next), reporting each outcome to `sent`. Returns
    /// whether the connection was handed to a direct writer: one hand-over for them all.
    pub(crate) fn push_all<'m>(
        &self,
        msgs: impl IntoIterator<Item = &'m Arc<PreparedMessage>>,
        may_go_direct: bool,
        mut sent: impl FnMut(Result<(), SendError>),
    ) -> bool {
        let mut q = self.lock();
        let mut then = Then::default();
        let mut handed = false;
        for msg in msgs {
            if !q.close.accepts_sends() {
                sent(Err(SendError::Closed));
                continue;
            }
            let item = Outbound::Prepared(Arc::clone(msg));
            let queued = self.enqueue_locked(&mut q, None, item, may_go_direct, &mut then);
            handed |= queued == Ok(true);
            sent(queued.map(drop));
        }
        drop(q);
        then.run(self);
        handed
    }

    /// The enqueue itself, under the lock: what must happen once it is released (a wake-up,
    /// an event stream's kill) is added to `then`. Inlined: it is every send's hot path,
    /// and a call of its own there cost a measurable share of a burst's fan-out.
    #[inline(always)]
    fn enqueue_locked(
        &self,
        q: &mut Queue,
        head: Option<Bytes>,
        item: Outbound,
        may_go_direct: bool,
        then: &mut Then,
    ) -> Result<bool, SendError> {
        let size = item.size() + head.as_ref().map_or(0, Bytes::len);
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
                    let freed = q.items.clear();
                    q.bytes -= freed;
                    q.allowance = 0;
                    q.close.overflow();
                    q.direct_pending = false;
                    then.wake = true;
                    then.kill = true;
                }
            }
            return Err(SendError::Full);
        }
        let idle = q.bytes == 0 && !q.writer_busy;
        let prepared = q.direct.as_ref().is_some_and(|d| d.writes(&item));
        q.bytes += size;
        if let Some(head) = head {
            q.items.push_back(Outbound::Head(head));
        }
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
        then.wake = true;
        Ok(false)
    }

    /// Event streams: queues `head` then `body` (see `Connection::send_chunk`); with
    /// `may_go_direct`, as [`Self::enqueue`].
    pub(crate) fn push_chunk(
        &self,
        head: Bytes,
        body: &Bytes,
        backlog: bool,
        may_go_direct: bool,
    ) -> Result<bool, SendError> {
        if self.kill.is_none() {
            return Err(SendError::NotAStream);
        }
        let mut q = self.lock();
        if !q.close.accepts_sends() {
            return Err(SendError::Closed);
        }
        let item = Outbound::Chunk(body.clone());
        if backlog {
            q.allowance += item.size() + head.len();
        }
        let head = (!head.is_empty()).then_some(head);
        self.enqueue_with_head(q, head, item, may_go_direct)
    }

    pub(crate) fn request_close(&self, code: u16, reason: &str) {
        if self.lock().close.request(code, reason) {
            self.wake();
        }
    }

    /// Shutdown deadline passed: the task drops the socket at its next wake-up.
    pub(crate) fn abort(&self) {
        self.lock().close.abort();
        self.wake();
        if let Some(kill) = &self.kill {
            kill.cancel();
        }
    }

    #[cfg(test)]
    pub(crate) fn is_notified(&self) -> bool {
        self.notified.load(Ordering::Acquire)
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

    /// Task side: the socket is plain TCP; senders may write to it directly from now on
    /// (`choice`: see [`Direct`]).
    pub(crate) fn attach_direct(&self, socket: Arc<TcpStream>, choice: Option<FrameChoice>) {
        self.lock().direct = Some(Direct { socket, choice });
    }

    /// Task side: the task has frames to write; senders queue until [`Self::finish_write`].
    /// Returns the rest of a frame a sender wrote in part, which must be written first.
    pub(crate) fn begin_write(&self) -> Option<Bytes> {
        let mut q = self.lock();
        q.writer_busy = true;
        q.partial.take()
    }

    /// Task side: everything the task had is written, `bytes` of it taken from the queue
    /// (their count leaves it, as [`Self::release`]); with `writing`, senders may write
    /// directly again. One lock for both: a connection task pays it once per batch.
    pub(crate) fn finish_write(&self, bytes: usize, writing: bool) {
        let mut q = self.lock();
        if writing {
            q.writer_busy = false;
        }
        release_locked(&mut q, bytes);
    }

    /// Task side, on a wake-up: the close or abort asked for through the handle (each handed
    /// out once) and every queued message (as [`Self::take`]), under one lock. With `direct`, a non-empty
    /// batch also tells senders the task is writing (as [`Self::begin_write`]).
    pub(crate) fn take_woken(&self, into: &mut VecDeque<Outbound>, direct: bool) -> Woken {
        let mut q = self.lock();
        let control = q.close.take_request();
        let (bytes, partial) = take_locked(&mut q, into);
        let writing = direct && (bytes > 0 || partial.is_some());
        if writing {
            q.writer_busy = true;
        }
        Woken {
            control,
            bytes,
            partial,
            writing,
        }
    }

    /// Task side: takes every queued message; their bytes stay counted until [`Self::release`].
    /// The rest of a partly written frame, if any, comes back separately: it goes first.
    pub(crate) fn take(&self, into: &mut VecDeque<Outbound>) -> (usize, Option<Bytes>) {
        take_locked(&mut self.lock(), into)
    }

    /// Task side: a taken batch is fully written.
    pub(crate) fn release(&self, bytes: usize) {
        release_locked(&mut self.lock(), bytes);
    }

    /// A close or abort asked for through the handle (each handed out once).
    #[cfg(test)]
    pub(crate) fn take_control(&self) -> Control {
        self.lock().close.take_request()
    }

    /// Task side: the close taken with [`Self::take_woken`] is due now (the messages before
    /// it are encoded); `send` gets its code and reason once.
    pub(crate) fn send_close(&self, send: impl FnOnce(u16, &str)) {
        self.lock().close.send_close(send);
    }

    /// Task side: ws-proto saw the peer's close and echoed it; refuse every later send.
    pub(crate) fn peer_closing(&self) {
        self.lock().close.peer_closing();
    }

    /// Task side: the peer's close frame, read from the protocol core.
    pub(crate) fn peer_closed(&self, frame: CloseFrame) {
        self.lock().close.peer_closed(frame);
    }

    /// Task side: we fail the connection for a protocol violation or limit.
    pub(crate) fn fail(&self, code: u16, reason: String) {
        self.lock().close.fail(code, reason);
    }

    /// Event-stream side: the close that ends the stream, once one was asked for (by the
    /// handle, the overflow policy or shutdown), as the handler's `on_close` reports it.
    pub(crate) fn stream_end(&self) -> Option<(u16, String)> {
        match &self.lock().close {
            CloseState::Open => None,
            CloseState::Requested { code, reason }
            | CloseState::Closing { code, reason }
            | CloseState::CloseSent { code, reason }
            | CloseState::Failed { code, reason }
            | CloseState::Aborted { code, reason } => Some((*code, reason.clone())),
            CloseState::Overflowed => {
                let (code, reason) = crate::SLOW_CONSUMER;
                Some((code, reason.to_owned()))
            }
            CloseState::PeerClosed(_) | CloseState::Closed => Some((1006, String::new())),
        }
    }

    /// Task side: the connection is gone; free what is still queued, stop direct writes and
    /// return how far the close got.
    pub(crate) fn mark_closed(&self) -> CloseState {
        let mut q = self.lock();
        q.items = Items::default();
        q.bytes = 0;
        q.allowance = 0;
        q.partial = None;
        q.direct = None;
        q.direct_pending = false;
        std::mem::replace(&mut q.close, CloseState::Closed)
    }
}

/// What an enqueue left to do once the queue lock is released.
#[derive(Default)]
struct Then {
    /// Wake the task.
    wake: bool,
    /// Drop an event stream's HTTP connection (its queue overflowed under the close policy).
    kill: bool,
}

impl Then {
    #[inline(always)]
    fn run(self, shared: &Shared) {
        if self.wake {
            shared.wake();
        }
        if let (true, Some(kill)) = (self.kill, &shared.kill) {
            kill.cancel();
        }
    }
}

fn take_locked(q: &mut Queue, into: &mut VecDeque<Outbound>) -> (usize, Option<Bytes>) {
    q.direct_pending = false;
    let partial = q.partial.take();
    let taken: usize = q.items.iter().map(Outbound::size).sum();
    q.items.move_into(into);
    (taken, partial)
}

fn release_locked(q: &mut Queue, bytes: usize) {
    q.bytes = q.bytes.saturating_sub(bytes);
    // A backlog is at the front of what was queued: it is written first.
    q.allowance = q.allowance.saturating_sub(bytes);
}
