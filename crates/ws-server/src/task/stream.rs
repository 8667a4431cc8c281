//! [`run_stream`]: the task of an event stream on its own socket (see
//! `crate::event_stream`). Like a WebSocket's task without a protocol core: it writes the
//! response head, then what senders queue (chunks as they are) and heartbeats, takes turns
//! with the direct writers under the queue lock as [`super::driver`] does, and reads only to
//! see the client go.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::mem::MaybeUninit;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior};
use ws_proto::Message;

use super::admit::Admitted;
use super::reader;
use super::taken::Taken;
use super::writer::WriteBuf;
use crate::connection::{Control, Outbound, Shared};
use crate::handler::{CloseInfo, Handler};
use crate::limits::IpSlot;
use crate::stats::Stats;
use crate::transport::Transport;

/// Stop moving queued chunks to the write buffer while this many bytes wait for the
/// socket: the rest stays in the bounded queue, where the overflow policy sees it.
const WRITE_HIGH_WATER: usize = 256 * 1024;

enum Wake {
    Io,
    Lost(&'static str),
    Notified,
    Heartbeat,
    CloseTimeout,
}

/// Runs an admitted event stream on `tcp` to its end: `head` (the response head and the
/// stream's preamble) first, then what is queued; a `heartbeat` when the interval passes.
pub(crate) async fn run_stream<H: Handler>(
    admitted: Admitted<H>,
    tcp: TcpStream,
    head: Bytes,
    heartbeat: Option<(Duration, Bytes)>,
    slot: Option<Arc<IpSlot>>,
) {
    // The stream counts against its address until it ends.
    let _slot = slot;
    let inner = Arc::clone(&admitted.inner);
    let conn = admitted.conn.clone();
    let tcp = Arc::new(tcp);
    let mut task = StreamTask {
        io: Transport::Shared(Arc::clone(&tcp)),
        shared: Arc::clone(&conn.shared),
        stats: &inner.stats,
        out: WriteBuf::default(),
        pending: VecDeque::new(),
        taken: Taken::default(),
        attached: false,
    };
    task.out.push(head);
    let end = task.run(tcp, heartbeat, inner.config.close_timeout).await;
    let info = match (end, conn.shared.stream_end()) {
        // We ended it: what was queued before the close is out.
        (None, Some((code, reason))) => CloseInfo::new(code, reason, true),
        (Some(_), Some((code, reason))) => CloseInfo::new(code, reason, false),
        (why, None) => CloseInfo::new(1006, why.unwrap_or("client went away"), false),
    };
    let _ = conn.shared.mark_closed();
    if end.is_none() {
        let shutdown = task.io.shutdown();
        let _ = tokio::time::timeout(inner.config.close_timeout, shutdown).await;
    }
    drop(task);
    super::finish(admitted, info).await;
}

struct StreamTask<'a> {
    io: Transport,
    shared: Arc<Shared>,
    stats: &'a Stats,
    out: WriteBuf,
    /// Taken from the queue, not yet in `out`.
    pending: VecDeque<Outbound>,
    /// Taken from the queue and not yet written, and whether senders were told so.
    taken: Taken,
    /// The head is out: senders may write to the socket directly.
    attached: bool,
}

impl StreamTask<'_> {
    /// `None`: we ended the stream (close, overflow) after writing what preceded the close;
    /// `Some(why)`: the client went away or the socket failed.
    /// A close writes what was queued before it, within `close_timeout`.
    async fn run(
        &mut self,
        tcp: Arc<TcpStream>,
        heartbeat: Option<(Duration, Bytes)>,
        close_timeout: Duration,
    ) -> Option<&'static str> {
        let shared = Arc::clone(&self.shared);
        let mut notified = pin!(shared.notified());
        let mut beat = heartbeat.map(|(every, bytes)| {
            let mut interval = tokio::time::interval_at(Instant::now() + every, every);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            (interval, bytes)
        });
        let mut closing = false;
        let mut close_by = pin!(tokio::time::sleep(close_timeout));
        // on_open may have queued (a replay) before the task started.
        let mut woken = true;
        loop {
            if woken {
                woken = false;
                shared.rearm();
                let woken = shared.take_woken(&mut self.pending, self.attached);
                match self.taken.absorb(woken, &mut self.out) {
                    Control::None => {}
                    Control::Abort => return Some("shutdown deadline passed"),
                    // The overflow policy: a stream has no close frame to wait for, and
                    // its client is not reading: drop it now.
                    Control::DiscardAndClose => return Some("slow consumer"),
                    Control::Close => {
                        closing = true;
                        close_by.as_mut().reset(Instant::now() + close_timeout);
                    }
                }
            }
            if self.move_pending() {
                if let Some((interval, _)) = &mut beat {
                    interval.reset();
                }
            }
            if self.out.is_done() && self.pending.is_empty() {
                self.taken.finish(&self.shared);
                if closing {
                    return None;
                }
                if !self.attached {
                    shared.attach_direct(Arc::clone(&tcp), None);
                    self.attached = true;
                }
            }
            let wake = poll_fn(|cx| {
                if !self.out.is_empty() {
                    match self.out.poll_write(&mut self.io, self.stats, cx) {
                        Poll::Ready(Ok(true)) => return Poll::Ready(Wake::Io),
                        Poll::Ready(Ok(false)) | Poll::Pending => {}
                        Poll::Ready(Err(e)) => {
                            tracing::debug!(error = %e, "write failed");
                            return Poll::Ready(Wake::Lost("write failed"));
                        }
                    }
                }
                // The client has nothing to say: what it sends is read and dropped, so the
                // socket's end is seen.
                let mut buf = [MaybeUninit::<u8>::uninit(); 512];
                let mut read_buf = ReadBuf::uninit(&mut buf);
                match reader::poll_read(&mut self.io, cx, &mut read_buf) {
                    Poll::Ready(Ok(())) => return Poll::Ready(Wake::Io),
                    Poll::Ready(Err(why)) => return Poll::Ready(Wake::Lost(why)),
                    Poll::Pending => {}
                }
                if notified.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Wake::Notified);
                }
                if let Some((interval, _)) = &mut beat {
                    if interval.poll_tick(cx).is_ready() {
                        return Poll::Ready(Wake::Heartbeat);
                    }
                }
                if closing && close_by.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Wake::CloseTimeout);
                }
                Poll::Pending
            })
            .await;
            match wake {
                Wake::Io => {}
                Wake::Lost(why) => return Some(why),
                Wake::CloseTimeout => return Some("close timed out"),
                Wake::Notified => {
                    notified.set(shared.notified());
                    woken = true;
                }
                Wake::Heartbeat => {
                    if let Some((_, bytes)) = &beat {
                        // Through the queue, after whatever senders queued: order is kept.
                        // A full queue drops it (or closes, by the policy), as any send.
                        let _ = shared.push_chunk(Bytes::new(), bytes, false, false);
                    }
                }
            }
        }
    }

    /// Moves taken chunks to the write buffer while the socket keeps up; `true` if any.
    fn move_pending(&mut self) -> bool {
        let mut moved = false;
        while self.out.bytes() < WRITE_HIGH_WATER {
            let Some(item) = self.pending.pop_front() else {
                break;
            };
            match item {
                Outbound::Head(bytes) => {
                    // Counted with the chunk it goes with.
                    self.out.push(bytes);
                    continue;
                }
                Outbound::Chunk(bytes) => self.out.push(bytes),
                // A text or binary message sent to a stream is written as its bytes.
                Outbound::Message(Message::Text(bytes) | Message::Binary(bytes)) => {
                    self.out.push(bytes);
                }
                Outbound::Prepared(p) => match p.message() {
                    Message::Text(bytes) | Message::Binary(bytes) => self.out.push(bytes),
                },
            }
            Stats::add(&self.stats.messages_sent, 1);
            moved = true;
        }
        moved
    }
}
