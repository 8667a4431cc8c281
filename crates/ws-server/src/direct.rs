//! Direct writes: queued frames written to an idle socket by the thread that sent them, or by
//! a writer thread it handed them to, with no wake-up of the connection task.
//!
//! # The invariant
//! A connection's bytes leave in the order they were queued, and one party writes at a time.
//! Under the connection's queue lock exactly one of these holds:
//! - **task**: the task is writing (`writer_busy`) or holds frames it took (`bytes` counts
//!   them): senders queue and wake it;
//! - **direct**: a direct writer holds the connection (`direct_pending`): senders append
//!   prepared frames without waking anyone, and the writer writes them all in one `writev`;
//! - **idle**: nothing queued or being written; the next prepared frame sent through a
//!   [`FanOut`] (or `send_prepared_now`) hands the connection to a direct writer.
//!
//! A direct writer writes only under the lock, only whole prepared frames from the front of
//! the queue, and only while the connection is open (its `CloseState` accepts sends) and the
//! task is not writing. Whatever it cannot finish (a frame the socket took in part, a full
//! socket, a message the task must encode, a close) goes back to the task, woken for it,
//! which writes the rest of a partial frame before anything else. Anything that wakes the task or lets it take the queue clears
//! `direct_pending`, so a writer arriving late finds nothing to do.
//!
//! # Why
//! A fan-out to N idle browsers costs N system calls wherever it happens; done by the
//! connection tasks it also costs N wake-ups. Writer threads made once, one per core (see
//! [`Writers`] for their two pools and priorities), take a fan-out in chunks while it is
//! still being queued, so the first browsers are written at once and the caller (an RPC request) answers as soon as everything is queued. A push that
//! arrives while a writer is still busy with a connection joins that connection's next write:
//! coalescing follows what the sockets have not yet taken, not how the caller pipelines.
//!
//! # Where
//! Everything that writes a socket outside its task is in this file: `send_prepared_now`,
//! [`FanOut`], the [`Writers`] threads and the one `writev` they all use. The connection's
//! queue (`crate::connection`) only records who holds the connection; it never calls here.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ws_proto::PreparedMessage;

use crate::connection::{Connection, Outbound, Queue, Shared};
use crate::error::SendError;
use crate::stats::Stats;

/// Frames per direct `writev`.
const MAX_IOV: usize = 64;
/// Connections per chunk handed to a writer thread: the first browsers of a large fan-out
/// are written while the rest are still being queued.
const CHUNK: usize = 256;
/// A fan-out handing at most this many connections to direct writing writes them on the
/// caller's thread: a hand-off to a writer thread costs about as much as a few writes.
const INLINE_MAX: usize = 4;
/// Burst writers run at a lower priority than the event loop (on Linux niceness 10: the
/// crate's cross-platform scale 0..=99 maps 22 to it): when the cores are busy, the
/// runtime, which reads the next push, goes first, so that push is queued while earlier
/// writes are still in progress and shares their `writev` instead of costing its own. A
/// synchronous publisher's pushes then coalesce as a pipelining one's do; on idle cores
/// the writers run at full speed anyway. See [`Writers`] for why lone fan-outs do not.
const WRITER_PRIORITY: u8 = 22;
/// A fan-out that starts within this long of the writers running out of work is part of a
/// burst too (a synchronous publisher's next push, or several publishers', often arrives just
/// after the last write): far above a loopback round trip, far below a paced push's interval.
const BURST_GAP: Duration = Duration::from_millis(2);
const BURST_GAP_NANOS: u64 = BURST_GAP.as_nanos() as u64;

impl Connection {
    /// Like [`send_prepared`](Self::send_prepared), but when nothing is queued and the
    /// connection task is not writing, writes the frame to the socket on the calling thread:
    /// no wake-up, no task switch, the bytes leave now. Otherwise (TLS, a busy or full
    /// socket) it queues as `send_prepared` does; order is kept either way.
    ///
    /// For one message to many connections, a [`FanOut`] does the same with the writes
    /// moved off the caller's thread.
    pub fn send_prepared_now(&self, msg: &Arc<PreparedMessage>) -> Result<(), SendError> {
        if self.shared.push_for_direct(msg)? {
            let mut tally = WriteTally::default();
            self.shared.write_direct(&mut tally);
            tally.add_to(&self.shared.stats);
        }
        Ok(())
    }
}

impl Shared {
    /// Queues a prepared frame for a direct writer's batch: `Ok(true)` when the connection
    /// was idle and the caller must now call [`Self::write_direct`] (itself or through a
    /// writer thread); `Ok(false)` when the frame joined a queue someone already writes.
    pub(crate) fn push_for_direct(&self, msg: &Arc<PreparedMessage>) -> Result<bool, SendError> {
        let q = self.lock();
        if !q.close.accepts_sends() {
            return Err(SendError::Closed);
        }
        self.enqueue(q, Outbound::Prepared(Arc::clone(msg)), true)
    }

    /// Direct writer side: writes what is queued to the socket on the calling thread, as one
    /// vectored write, if this connection is still handed to it. What it cannot write (the
    /// socket is full, the task began writing, a message the task must encode) is left to
    /// the task, woken for it.
    pub(crate) fn write_direct(&self, tally: &mut WriteTally) {
        let mut q = self.lock();
        if !q.direct_pending {
            return;
        }
        q.direct_pending = false;
        while write_queued(&mut q, tally) {}
        if q.items.is_empty() && q.partial.is_none() {
            return;
        }
        drop(q);
        self.wake();
    }
}

/// What direct writes did (and the items they wrote), added to the server's counters once
/// per batch of connections: the counters are shared by every writer thread, and one atomic
/// add per counter per socket would make the threads contend for their cache lines on
/// every write.
#[derive(Debug, Default)]
pub(crate) struct WriteTally {
    writes: u64,
    bytes: u64,
    messages: u64,
    /// A writer thread's items written, dropped together with the counts: each holds a
    /// reference to a message the whole fan-out shares, whose count the sender raises on
    /// another core while the writers work; one decrement per socket would pull that cache
    /// line across at every write. A tally without room (the caller's own few writes)
    /// drops each item at once, with no allocation.
    spent: Vec<Outbound>,
}

impl WriteTally {
    /// A tally that batches its drops, for a writer thread to keep across its chunks.
    fn batching() -> Self {
        WriteTally {
            spent: Vec::with_capacity(CHUNK),
            ..WriteTally::default()
        }
    }

    fn add_to(&mut self, stats: &Stats) {
        if self.writes > 0 {
            Stats::add(&stats.direct_writes, self.writes);
            Stats::add(&stats.write_calls, self.writes);
            Stats::add(&stats.bytes_sent, self.bytes);
            Stats::add(&stats.messages_sent, self.messages);
        }
        (self.writes, self.bytes, self.messages) = (0, 0, 0);
        self.spent.clear();
    }
}

/// One `writev` of the prepared frames at the front of `q`, under its lock. Returns `true`
/// when every frame it tried went out and more wait (call it again).
fn write_queued(q: &mut Queue, tally: &mut WriteTally) -> bool {
    if q.writer_busy || !q.close.accepts_sends() || q.partial.is_some() {
        return false;
    }
    let Some(direct) = &q.direct else {
        return false;
    };
    let mut slices = [IoSlice::new(&[]); MAX_IOV];
    let mut tried = 0;
    for (slot, item) in slices.iter_mut().zip(q.items.iter()) {
        let Some(bytes) = direct.bytes(item) else {
            break;
        };
        *slot = IoSlice::new(bytes);
        tried += 1;
    }
    if tried == 0 {
        return false;
    }
    // Written past tokio's readiness (see `crate::transport`): its state lives in an
    // allocation of its own, a cache miss per browser of a fan-out. WouldBlock: the task
    // waits for the socket. Any other error the task meets on its own I/O and reports as
    // the connection's end.
    let socket = socket2::SockRef::from(&*direct.socket);
    let sent = match &slices[..tried] {
        [one] => socket.send(one),
        many => socket.send_vectored(many),
    };
    let Ok(written) = sent else {
        return false;
    };
    tally.writes += 1;
    tally.bytes += written as u64;
    let mut left = written;
    let mut sent = 0;
    while sent < tried && left > 0 {
        let Some(bytes) = q.items.front().and_then(|item| direct.bytes(item)) else {
            break;
        };
        let rest = (left < bytes.len()).then(|| bytes.slice(left..));
        left = left.saturating_sub(bytes.len());
        if let Some(item) = q.items.pop_front() {
            q.bytes = q.bytes.saturating_sub(item.size());
            q.allowance = q.allowance.saturating_sub(item.size());
            if tally.spent.capacity() > 0 {
                tally.spent.push(item);
            }
        }
        sent += 1;
        if let Some(rest) = rest {
            q.bytes += rest.len();
            q.partial = Some(rest);
        }
    }
    tally.messages += sent as u64;
    q.partial.is_none() && sent == tried && !q.items.is_empty()
}

/// Writer threads made once (lazily, at the first fan-out that needs them), one per core
/// in each of two pools, each thread taking chunks of connections in order. Dropping it lets
/// the threads finish what they hold and end.
///
/// A fan-out that starts while none handed over earlier is still being written, nor was a
/// moment ago ([`BURST_GAP`]), is *lone* (a paced push): nothing waits to join its writes,
/// so its writers run at the process's own priority. At a lower one, every browser its writes wake (or any other busy process)
/// would preempt them: a context switch per socket, paid in the fan-out's latency. A fan-out
/// that starts while earlier writes are in hand (or just were) is part of a *burst* (a synchronous
/// publisher's next push arrives in the previous one's writes): its writers yield to the
/// event loop ([`WRITER_PRIORITY`]), so the push after it is read and queued while they are
/// still writing, and shares their writes. Which pool writes a connection does not touch
/// the order: a connection is handed over only when idle, to one writer at a time.
#[derive(Debug)]
pub struct Writers {
    threads: usize,
    own_priority: Pool,
    yielding: Pool,
    /// Chunks handed to either pool and not yet written, and when that last fell to zero.
    in_hand: Arc<InHand>,
}

#[derive(Debug)]
struct InHand {
    chunks: AtomicUsize,
    since: Instant,
    /// Nanoseconds from `since` to when `chunks` last fell to zero.
    drained_at: AtomicU64,
}

impl InHand {
    fn new() -> Self {
        InHand {
            chunks: AtomicUsize::new(0),
            since: Instant::now(),
            drained_at: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn handed(&self) {
        self.chunks.fetch_add(1, Ordering::Relaxed);
    }

    fn written(&self) {
        if self.chunks.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.drained_at.store(self.now().max(1), Ordering::Relaxed);
        }
    }

    /// Whether a fan-out starting now is part of a burst (see [`Writers`]).
    fn in_burst(&self) -> bool {
        if self.chunks.load(Ordering::Relaxed) > 0 {
            return true;
        }
        // 0: nothing was ever written.
        let drained_at = self.drained_at.load(Ordering::Relaxed);
        drained_at > 0 && self.now().saturating_sub(drained_at) < BURST_GAP_NANOS
    }
}

/// One pool of writer threads.
#[derive(Debug, Default)]
struct Pool {
    lanes: OnceLock<Vec<Arc<Lane>>>,
    next: AtomicUsize,
}

#[derive(Debug, Default)]
struct Lane {
    queue: Mutex<LaneQueue>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct LaneQueue {
    chunks: VecDeque<Vec<Connection>>,
    closed: bool,
}

impl Lane {
    fn lock(&self) -> MutexGuard<'_, LaneQueue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self, in_hand: &InHand) {
        let mut tally = WriteTally::batching();
        loop {
            let mut q = self.lock();
            let chunk = loop {
                if let Some(chunk) = q.chunks.pop_front() {
                    break chunk;
                }
                if q.closed {
                    return;
                }
                q = self.ready.wait(q).unwrap_or_else(|p| p.into_inner());
            };
            drop(q);
            write_chunk(&chunk, &mut tally);
            in_hand.written();
        }
    }
}

impl Default for Writers {
    /// One writer thread per core.
    fn default() -> Self {
        Writers::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

impl Writers {
    /// `threads` writer threads per pool, started at the first fan-out that needs them.
    pub fn new(threads: usize) -> Self {
        Writers {
            threads: threads.max(1),
            own_priority: Pool::default(),
            yielding: Pool::default(),
            in_hand: Arc::new(InHand::new()),
        }
    }

    /// Starts a fan-out: frames sent through it are queued now and written by these writers,
    /// by the pool that yields when it is part of a burst (see [`Writers`]).
    pub fn fan_out(&self) -> FanOut<'_> {
        let yielding = self.in_hand.in_burst();
        FanOut {
            writers: self,
            yielding,
            chunk: Vec::new(),
            handed_off: false,
            burst: false,
        }
    }

    /// Starts a fan-out that the caller knows is followed at once by more (a pipelining
    /// caller with requests already waiting): its frames wake the connection tasks, which
    /// take everything queued by the time they run, as a burst is best written. Idle
    /// connections are not handed to the writers; connections a writer already holds get
    /// the frame in that writer's next write, so order is kept either way.
    pub fn burst(&self) -> FanOut<'_> {
        let mut fan_out = self.fan_out();
        fan_out.burst = true;
        fan_out
    }

    fn pool(&self, yielding: bool) -> &Pool {
        if yielding {
            &self.yielding
        } else {
            &self.own_priority
        }
    }

    fn lanes(&self, yielding: bool) -> &[Arc<Lane>] {
        self.pool(yielding).lanes.get_or_init(|| {
            (0..self.threads)
                .filter_map(|i| {
                    let lane = Arc::new(Lane::default());
                    let runner = Arc::clone(&lane);
                    let in_hand = Arc::clone(&self.in_hand);
                    let name = if yielding { "ws-burst" } else { "ws-writer" };
                    let spawned = std::thread::Builder::new()
                        .name(format!("{name}-{i}"))
                        .spawn(move || {
                            if yielding {
                                lower_priority();
                            }
                            runner.run(&in_hand)
                        });
                    match spawned {
                        Ok(_) => Some(lane),
                        Err(e) => {
                            tracing::warn!(error = %e, "writer thread not started");
                            None
                        }
                    }
                })
                .collect()
        })
    }

    fn hand_off(&self, chunk: Vec<Connection>, yielding: bool) {
        let lanes = self.lanes(yielding);
        if lanes.is_empty() {
            // No thread could be started: the caller writes, only later than it could have.
            write_chunk(&chunk, &mut WriteTally::default());
            return;
        }
        let next = &self.pool(yielding).next;
        let lane = &lanes[next.fetch_add(1, Ordering::Relaxed) % lanes.len()];
        self.in_hand.handed();
        lane.lock().chunks.push_back(chunk);
        lane.ready.notify_one();
    }
}

/// Writes each connection of `chunk` handed to direct writing, counting once per run of
/// connections of one server (a fan-out may mix servers' connections; they rarely do).
fn write_chunk(chunk: &[Connection], tally: &mut WriteTally) {
    let mut counted: Option<&Arc<Stats>> = None;
    for conn in chunk {
        let stats = &conn.shared.stats;
        if let Some(prev) = counted.filter(|prev| !Arc::ptr_eq(prev, stats)) {
            tally.add_to(prev);
        }
        counted = Some(stats);
        conn.shared.write_direct(tally);
    }
    if let Some(stats) = counted {
        tally.add_to(stats);
    }
}

/// Gives the calling thread [`WRITER_PRIORITY`]; where the OS refuses, it keeps its own.
fn lower_priority() {
    use thread_priority::{ThreadPriority, ThreadPriorityValue};
    let set = ThreadPriorityValue::try_from(WRITER_PRIORITY)
        .map_err(|e| format!("{e:?}"))
        .and_then(|p| {
            thread_priority::set_current_thread_priority(ThreadPriority::Crossplatform(p))
                .map_err(|e| format!("{e:?}"))
        });
    if let Err(e) = set {
        tracing::debug!(error = ?e, "writer thread keeps the default priority");
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        let pools = [self.pool(false), self.pool(true)];
        for lane in pools.into_iter().flat_map(|p| p.lanes.get()).flatten() {
            lane.lock().closed = true;
            lane.ready.notify_one();
        }
    }
}

/// One fan-out in progress: [`FanOut::send`] queues a prepared frame to a connection at once
/// (the caller may answer "queued everywhere" when it is done); connections that were idle
/// are written by the writer threads, in chunks handed over while the fan-out goes on, and
/// the rest when it ends (it is dropped). A fan-out that hands over only a few connections
/// writes them on the caller's thread when it ends.
///
/// End it after releasing locks the writes need not hold.
#[derive(Debug)]
pub struct FanOut<'w> {
    writers: &'w Writers,
    /// Part of a burst (see [`Writers`]): the pool that yields writes it.
    yielding: bool,
    chunk: Vec<Connection>,
    handed_off: bool,
    /// More fan-outs follow at once: leave the writes to the connection tasks.
    burst: bool,
}

impl FanOut<'_> {
    /// Queues `msg` to `conn`, refused as [`Connection::send_prepared`] refuses (full,
    /// closed). Order with every other send to `conn` is kept.
    pub fn send(&mut self, conn: &Connection, msg: &Arc<PreparedMessage>) -> Result<(), SendError> {
        if self.burst {
            return conn.send_prepared(msg);
        }
        let handed = conn.shared.push_for_direct(msg)?;
        self.collect(conn, handed);
        Ok(())
    }

    /// Queues each of `msgs` to `conn`, in order and under one lock of its queue (several
    /// pushes met in one fan-out), reporting each outcome to `sent` as [`FanOut::send`]
    /// would return it. An idle connection is handed to a writer once, for them all.
    pub fn send_all<'m>(
        &mut self,
        conn: &Connection,
        msgs: impl IntoIterator<Item = &'m Arc<PreparedMessage>>,
        sent: impl FnMut(Result<(), SendError>),
    ) {
        let handed = conn.shared.push_all(msgs, !self.burst, sent);
        self.collect(conn, handed);
    }

    /// Event streams: queues `head` then `body` to `conn` as [`Connection::send_chunk`]
    /// does; a stream served on its own socket (not through hyper) is written as
    /// [`FanOut::send`] writes a WebSocket.
    pub fn send_chunk(
        &mut self,
        conn: &Connection,
        head: Bytes,
        body: &Bytes,
    ) -> Result<(), SendError> {
        let handed = conn.shared.push_chunk(head, body, false, !self.burst)?;
        self.collect(conn, handed);
        Ok(())
    }

    /// `conn` was handed to direct writing (`handed`): it joins the chunk for a writer.
    fn collect(&mut self, conn: &Connection, handed: bool) {
        if handed {
            self.chunk.push(conn.clone());
            if self.chunk.len() >= CHUNK {
                self.hand_off();
            }
        }
    }

    fn hand_off(&mut self) {
        self.handed_off = true;
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        self.writers.hand_off(chunk, self.yielding);
    }
}

impl Drop for FanOut<'_> {
    fn drop(&mut self) {
        if self.chunk.is_empty() {
            return;
        }
        if !self.handed_off && self.chunk.len() <= INLINE_MAX {
            write_chunk(&std::mem::take(&mut self.chunk), &mut WriteTally::default());
        } else {
            let chunk = std::mem::take(&mut self.chunk);
            self.writers.hand_off(chunk, self.yielding);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
#[allow(clippy::unwrap_used)]
mod tests {
    /// The niceness of the calling thread (field 19 of its `stat`).
    fn niceness() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // The command name (field 2) may hold spaces; the fields after it do not.
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(16).unwrap().parse().unwrap()
    }

    #[test]
    fn writer_threads_yield_to_the_event_loop() {
        let (before, after) = std::thread::spawn(|| {
            let before = niceness();
            super::lower_priority();
            (before, niceness())
        })
        .join()
        .unwrap();
        assert_eq!(after, before.max(10), "niceness {before} -> {after}");
    }

    #[test]
    fn a_fan_out_that_starts_in_or_just_after_earlier_writes_goes_to_the_writers_that_yield() {
        use std::sync::atomic::Ordering;
        use std::time::Duration;
        let mut writers = super::Writers::new(1);
        // A clock that started a second ago, so "long ago" exists at once.
        let in_hand = std::sync::Arc::get_mut(&mut writers.in_hand).unwrap();
        in_hand.since = in_hand.since.checked_sub(Duration::from_secs(1)).unwrap();
        assert!(
            !writers.fan_out().yielding,
            "nothing written yet: a lone fan-out"
        );
        writers.in_hand.handed();
        assert!(
            writers.fan_out().yielding,
            "a chunk in hand: part of a burst"
        );
        writers.in_hand.written();
        assert!(
            writers.fan_out().yielding,
            "drained a moment ago: still the burst"
        );
        // Drained longer ago than the gap: the next fan-out is lone again.
        let long_ago = writers
            .in_hand
            .now()
            .saturating_sub(super::BURST_GAP_NANOS + 1);
        writers
            .in_hand
            .drained_at
            .store(long_ago.max(1), Ordering::Relaxed);
        assert!(
            !writers.fan_out().yielding,
            "drained long ago: a lone fan-out"
        );
    }
}
