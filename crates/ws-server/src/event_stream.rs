//! Event streams: a plain HTTP `200` whose body is fed by a [`Connection`]'s bounded queue,
//! for Server-Sent Events and other long-lived responses.
//!
//! ```text
//! request --Handler::on_stream--> StreamHead --admit (cap, on_open)--> 200 + body
//! senders --Connection::send_chunk / FanOut::send_chunk--> queue --> socket
//! ```
//!
//! The connection is a [`Connection`] like a WebSocket's: the same byte limit, overflow policy
//! and counters; shutdown and `close()` end the body after what was queued before them.
//! Two ways to the socket:
//! - **own socket** (`crate::intake`): the stream is the first request of a plain-TCP
//!   HTTP/1.1 connection (an `EventSource` opens one for itself). The server reads that
//!   request before hyper sees the connection, answers `200` with `Connection: close` (the
//!   body ends when the connection does, RFC 9112 §6.3), and a connection task
//!   (`task::run_stream`) runs it as it runs a WebSocket: direct writes from a fan-out, writes
//!   coalesced while the socket is busy.
//! - **through hyper** (this file, [`EventStreamBody`]): everything else (TLS, HTTP/2, a
//!   stream asked for on a connection that already served a request). hyper owns the socket
//!   (HTTP/1.1 chunked, or HTTP/2), so there are no direct writes: a sender queues and wakes
//!   the body, which hands hyper everything queued at once. The queued bytes are released
//!   when hyper takes them: hyper asks for the next chunk only once it has room, so a client
//!   that stops reading fills the queue and meets the overflow policy.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{Response, StatusCode};
use http_body_util::Either;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::ReusableBoxFuture;

use crate::connection::{Connection, Outbound, Shared};
use crate::handler::{CloseInfo, Handler, StreamHead};
use crate::limits::IpSlot;
use crate::task::Admitted;

/// The body of an accepted event stream.
pub(crate) struct EventStreamBody<H: Handler> {
    admitted: Option<Admitted<H>>,
    /// Keeps the client's address counted (per-IP limit) while the stream lasts.
    _slot: Option<Arc<IpSlot>>,
    preamble: Option<Bytes>,
    wait: ReusableBoxFuture<'static, ()>,
    heartbeat: Option<(Interval, Bytes)>,
    batch: VecDeque<Outbound>,
    /// How the stream ended, once it did (we ended it; else the client went away).
    ended: Option<CloseInfo>,
}

async fn woken(shared: Arc<Shared>) {
    shared.notified().await;
}

/// Answers an accepted stream: `200`, the head's headers, then the body.
pub(crate) fn respond<H: Handler, B>(
    admitted: Admitted<H>,
    slot: Option<Arc<IpSlot>>,
    head: StreamHead,
) -> Response<Either<B, EventStreamBody<H>>> {
    let shared = Arc::clone(&admitted.conn.shared);
    let heartbeat = head.heartbeat.map(|(every, bytes)| {
        let mut interval = tokio::time::interval_at(Instant::now() + every, every);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        (interval, bytes)
    });
    let body = EventStreamBody {
        admitted: Some(admitted),
        _slot: slot,
        preamble: (!head.preamble.is_empty()).then_some(head.preamble),
        wait: ReusableBoxFuture::new(woken(shared)),
        heartbeat,
        batch: VecDeque::new(),
        ended: None,
    };
    let mut resp = Response::new(Either::Right(body));
    *resp.status_mut() = StatusCode::OK;
    *resp.headers_mut() = head.headers;
    resp
}

impl<H: Handler> EventStreamBody<H> {
    fn conn(&self) -> Option<&Connection> {
        self.admitted.as_ref().map(|a| &a.conn)
    }

    /// Everything taken from the queue as one chunk (no copy for a lone shared body).
    fn join_batch(&mut self) -> Bytes {
        if let [Outbound::Chunk(body)] = self.batch.make_contiguous() {
            let body = body.clone();
            self.batch.clear();
            return body;
        }
        let size = self.batch.iter().map(Outbound::size).sum();
        let mut out = BytesMut::with_capacity(size);
        for item in self.batch.drain(..) {
            match item {
                Outbound::Chunk(bytes) | Outbound::Head(bytes) => out.extend_from_slice(&bytes),
                // A text or binary message sent to a stream is written as its bytes.
                Outbound::Message(m) => out.extend_from_slice(m.as_bytes()),
                Outbound::Prepared(p) => out.extend_from_slice(p.message().as_bytes()),
            }
        }
        out.freeze()
    }
}

impl<H: Handler> Body for EventStreamBody<H> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(preamble) = this.preamble.take() {
            return Poll::Ready(Some(Ok(Frame::data(preamble))));
        }
        let Some(shared) = this.conn().map(|c| Arc::clone(&c.shared)) else {
            return Poll::Ready(None);
        };
        if this.ended.is_some() {
            return Poll::Ready(None);
        }
        loop {
            let (bytes, _) = shared.take(&mut this.batch);
            if !this.batch.is_empty() {
                let chunk = this.join_batch();
                shared.release(bytes);
                crate::stats::Stats::add(&shared.stats.messages_sent, 1);
                if let Some((interval, _)) = &mut this.heartbeat {
                    interval.reset();
                }
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            if let Some((code, reason)) = shared.stream_end() {
                // What was queued before the close is out: end the response.
                this.ended = Some(CloseInfo::new(code, reason, true));
                return Poll::Ready(None);
            }
            if let Some((interval, beat)) = &mut this.heartbeat {
                if interval.poll_tick(cx).is_ready() {
                    return Poll::Ready(Some(Ok(Frame::data(beat.clone()))));
                }
            }
            match this.wait.poll(cx) {
                Poll::Ready(()) => {
                    shared.rearm();
                    this.wait.set(woken(Arc::clone(&shared)));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// The stream is over: hyper finished it or the client went away. Unregisters the
/// connection (dropping [`Admitted`]) and tells the handler, exactly once.
impl<H: Handler> Drop for EventStreamBody<H> {
    fn drop(&mut self) {
        let Some(admitted) = self.admitted.take() else {
            return;
        };
        let (inner, conn) = (Arc::clone(&admitted.inner), admitted.conn.clone());
        // Not ended by us: cut off (overflow, shutdown deadline), else the client left.
        let info = self
            .ended
            .take()
            .unwrap_or_else(|| match conn.shared.stream_end() {
                Some((code, reason)) => CloseInfo::new(code, reason, false),
                None => CloseInfo::new(1006, "client went away", false),
            });
        let _ = conn.shared.mark_closed();
        inner.stats.record_close(info.code);
        drop(admitted);
        let tracker = inner.tracker.clone();
        tracker.spawn(async move { inner.handler.on_close(&conn, info).await });
    }
}
