//! The subscribers of one stream (the broadcast stream or a channel) and its
//! fan-out.
//!
//! Subscribers come in three sets: `plain` ones get the raw data,
//! `positioned` ones the enveloped variant (see [`crate::position`]), and
//! `pending` ones are resuming: live messages are buffered for them until
//! their replay is queued, then de-duplicated by position. Each variant is
//! encoded once per push and shared by its whole set; the enveloped one is
//! built only when a positioned or pending subscriber exists.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use ws_proto::PreparedMessage;
use ws_server::{Connection, SendError};

use crate::data::Payload;
use crate::history::Replay;
use crate::position::{Position, envelope, gap_notice};

/// Live messages buffered for one resuming connection, at most this many:
/// beyond it the connection is closed (1008) rather than silently trimmed.
const MAX_PENDING: usize = 65_536;

type Buffered = Vec<(Position, Arc<PreparedMessage>)>;

/// Whether a push stands alone or more follow at once: the Nagle rule of the fan-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// More pushes follow at once (a pipelining caller, a burst from the broker): queue,
    /// so each connection task coalesces them into one write.
    Batch,
    /// Nothing follows yet: idle connections get the frame written on the calling thread
    /// (`Connection::send_prepared_now`), with no wake-up in between.
    Now,
}

impl Flush {
    /// [`Flush::Batch`] when more input is already waiting behind this push.
    pub fn after(more_waiting: bool) -> Self {
        if more_waiting {
            Flush::Batch
        } else {
            Flush::Now
        }
    }
}

/// A push this soon after the previous one is part of a burst, whatever its caller said:
/// connection tasks coalescing the burst write less than one write per push would.
const QUIET: std::time::Duration = std::time::Duration::from_millis(1);

/// Turns callers' hints into the [`Flush`] of each push, watching the gaps between pushes
/// (a caller may pipeline without its requests ever queueing up at the server).
#[derive(Debug)]
pub struct Pacer {
    epoch: std::time::Instant,
    /// Nanoseconds after `epoch` (plus [`QUIET`]) of the last push; 0: none yet.
    last: std::sync::atomic::AtomicU64,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            epoch: std::time::Instant::now(),
            last: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Pacer {
    /// The flush for a push happening now.
    pub fn flush(&self, hint: Flush) -> Flush {
        self.flush_at(hint, self.epoch.elapsed())
    }

    /// The flush for a push happening `elapsed` after the pacer was made.
    fn flush_at(&self, hint: Flush, elapsed: std::time::Duration) -> Flush {
        let quiet = QUIET.as_nanos() as u64;
        let now = (elapsed.as_nanos() as u64).saturating_add(quiet);
        let last = self.last.swap(now, std::sync::atomic::Ordering::Relaxed);
        match hint {
            Flush::Now if now.saturating_sub(last) >= quiet => Flush::Now,
            _ => Flush::Batch,
        }
    }
}

/// What one fan-out did, for the hub's counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Frames queued.
    pub queued: u64,
    /// Frame bytes queued.
    pub bytes: u64,
    /// Refused: queue full.
    pub full: u64,
    /// Refused: connection closing.
    pub closed: u64,
    /// Gap notices queued.
    pub gaps: u64,
}

impl Tally {
    /// Queues (or with [`Flush::Now`] writes) `frame` to each of `conns`, counting the
    /// outcomes.
    pub fn send_to<'a>(
        &mut self,
        frame: &Arc<PreparedMessage>,
        conns: impl ExactSizeIterator<Item = &'a Connection>,
        flush: Flush,
    ) {
        let lanes = lanes(conns.len());
        if flush == Flush::Now && lanes > 1 {
            // Each direct write is a system call of several microseconds: spread a large
            // fan-out over the cores, off the tokio worker that called it.
            let conns: Vec<&Connection> = conns.collect();
            off_the_runtime(|| self.send_in_lanes(frame, &conns, lanes));
            return;
        }
        self.send_each(frame, conns, flush);
    }

    /// Direct writes to `conns` from `lanes` threads, the caller taking the first share.
    fn send_in_lanes(&mut self, frame: &Arc<PreparedMessage>, conns: &[&Connection], lanes: usize) {
        let share = conns.len().div_ceil(lanes.max(1)).max(1);
        let mut chunks = conns.chunks(share);
        let first = chunks.next().unwrap_or_default();
        std::thread::scope(|scope| {
            let mut helpers = Vec::new();
            for chunk in chunks {
                let spawned = std::thread::Builder::new()
                    .name("wspush-fan-out".into())
                    .spawn_scoped(scope, move || {
                        let mut t = Tally::default();
                        t.send_each(frame, chunk.iter().copied(), Flush::Now);
                        t
                    });
                match spawned {
                    Ok(helper) => helpers.push(helper),
                    // Out of threads: this share is written here, only later.
                    Err(e) => {
                        tracing::warn!(error = %e, "fan-out thread not started");
                        self.send_each(frame, chunk.iter().copied(), Flush::Now);
                    }
                }
            }
            self.send_each(frame, first.iter().copied(), Flush::Now);
            for helper in helpers {
                match helper.join() {
                    Ok(t) => self.add(t),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        });
    }

    fn add(&mut self, t: Tally) {
        self.queued += t.queued;
        self.bytes += t.bytes;
        self.full += t.full;
        self.closed += t.closed;
        self.gaps += t.gaps;
    }

    fn send_each<'a>(
        &mut self,
        frame: &Arc<PreparedMessage>,
        conns: impl Iterator<Item = &'a Connection>,
        flush: Flush,
    ) {
        let len = frame.plain_frame().len() as u64;
        for conn in conns {
            let sent = match flush {
                Flush::Batch => conn.send_prepared(frame),
                Flush::Now => conn.send_prepared_now(frame),
            };
            match sent {
                Ok(()) => {
                    self.queued += 1;
                    self.bytes += len;
                }
                Err(SendError::Full) => self.full += 1,
                Err(_) => self.closed += 1,
            }
        }
    }
}

/// Direct writes per thread below which a fan-out stays on the caller's thread: starting
/// a thread costs about as much as a few dozen writes.
const WRITES_PER_LANE: usize = 128;

/// Threads a direct fan-out to `n` connections uses.
fn lanes(n: usize) -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |c| c.get()));
    (n / WRITES_PER_LANE).clamp(1, cores)
}

/// Runs `work`, which keeps its thread for milliseconds, without stalling the tokio worker
/// it is called on: on a multi-thread runtime the worker's other tasks move to another
/// thread meanwhile (`block_in_place`). Elsewhere, or where tokio refuses (a `LocalSet`),
/// it simply runs.
fn off_the_runtime(work: impl FnOnce()) {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let mut work = Some(work);
    let multi_thread =
        Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
    if multi_thread {
        let moved = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            tokio::task::block_in_place(|| {
                if let Some(work) = work.take() {
                    work();
                }
            });
        }));
        if let Err(panic) = moved {
            if work.is_none() {
                // The work itself panicked.
                std::panic::resume_unwind(panic);
            }
        }
    }
    if let Some(work) = work.take() {
        work();
    }
}

/// Encodes a payload into a frame shared by every recipient.
pub fn prepare(payload: Payload) -> Arc<PreparedMessage> {
    Arc::new(PreparedMessage::new(payload.into_message()))
}

/// The subscribers of one stream.
#[derive(Default)]
pub struct Subs {
    plain: HashMap<u64, Connection>,
    positioned: HashMap<u64, Connection>,
    pending: Mutex<HashMap<u64, Buffered>>,
    /// The last position delivered live (broker mode: detects missed messages).
    last: Mutex<Option<Position>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Subs {
    /// Adds a subscriber; a `resuming` one buffers live messages until
    /// [`Subs::finish_resume`].
    pub fn insert(&mut self, id: u64, conn: Connection, positioned: bool, resuming: bool) {
        if resuming {
            self.pending
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, Vec::new());
        } else if positioned {
            self.positioned.insert(id, conn);
        } else {
            self.plain.insert(id, conn);
        }
    }

    /// Removes a subscriber; false if it was not one.
    pub fn remove(&mut self, id: u64) -> bool {
        let pending = self.pending.get_mut().unwrap_or_else(|e| e.into_inner());
        self.plain.remove(&id).is_some()
            | self.positioned.remove(&id).is_some()
            | pending.remove(&id).is_some()
    }

    /// Whether no one subscribes any more.
    pub fn is_empty(&mut self) -> bool {
        let pending = self.pending.get_mut().unwrap_or_else(|e| e.into_inner());
        self.plain.is_empty() && self.positioned.is_empty() && pending.is_empty()
    }

    /// Number of subscribers (shared access).
    pub fn count(&self) -> usize {
        self.plain.len() + self.positioned.len() + lock(&self.pending).len()
    }

    /// Queues `payload` to every subscriber: raw to plain ones, enveloped with
    /// `pos` to positioned ones, buffered for resuming ones. With
    /// `check_order`, positioned subscribers get a gap notice first when
    /// `pos` does not follow the last position delivered.
    pub fn fan_out(
        &self,
        stream: Option<&str>,
        pos: Option<&Position>,
        payload: Payload,
        check_order: bool,
        flush: Flush,
    ) -> Tally {
        let mut tally = Tally::default();
        let mut pending = lock(&self.pending);
        let mut skip_positioned = false;
        if let (true, Some(pos)) = (check_order, pos) {
            let mut last = lock(&self.last);
            match &*last {
                Some(l) if l.covers(pos) => skip_positioned = true,
                Some(l) if !l.is_followed_by(pos) && !self.positioned.is_empty() => {
                    let before = Position::new(pos.epoch.clone(), pos.seq.saturating_sub(1));
                    let notice = prepare(gap_notice(stream, &before));
                    tally.send_to(&notice, self.positioned.values(), Flush::Batch);
                    tally.gaps += self.positioned.len() as u64;
                }
                _ => {}
            }
            if !skip_positioned {
                *last = Some(pos.clone());
            }
        }
        let wants_envelope =
            !skip_positioned && (!self.positioned.is_empty() || !pending.is_empty());
        let enveloped = wants_envelope.then(|| prepare(envelope(&payload, stream, pos)));
        if !self.plain.is_empty() {
            tally.send_to(&prepare(payload), self.plain.values(), flush);
        }
        if let Some(frame) = enveloped {
            tally.send_to(&frame, self.positioned.values(), flush);
            if let Some(pos) = pos {
                let mut overflowed = Vec::new();
                for (id, buffer) in pending.iter_mut() {
                    if buffer.len() >= MAX_PENDING {
                        overflowed.push(*id);
                    } else {
                        buffer.push((pos.clone(), Arc::clone(&frame)));
                    }
                }
                for id in overflowed {
                    pending.remove(&id);
                    tracing::warn!(conn = id, "resume backlog full; closing");
                }
            }
        }
        tally
    }

    /// Queues a resuming subscriber's replay, then the live messages buffered
    /// meanwhile that the replay did not already cover, and makes it live.
    pub fn finish_resume(
        &mut self,
        id: u64,
        conn: &Connection,
        stream: Option<&str>,
        replay: Replay,
    ) -> Tally {
        let mut tally = Tally::default();
        let pending = self.pending.get_mut().unwrap_or_else(|e| e.into_inner());
        let Some(buffered) = pending.remove(&id) else {
            // Closed for a too-large backlog, or gone: nothing may be skipped silently.
            conn.close(1008, "resume backlog");
            return tally;
        };
        let one = std::iter::once(conn);
        if let Some(gap) = &replay.gap {
            tally.send_to(&prepare(gap_notice(stream, gap)), one.clone(), Flush::Batch);
            tally.gaps += 1;
        }
        let mut last = replay.last;
        for (seq, payload) in replay.entries {
            let pos = Position::new(last.epoch.clone(), seq);
            tally.send_to(
                &prepare(envelope(&payload, stream, Some(&pos))),
                one.clone(),
                Flush::Batch,
            );
        }
        for (pos, frame) in buffered {
            if last.covers(&pos) {
                continue;
            }
            if !last.is_followed_by(&pos) {
                let before = Position::new(pos.epoch.clone(), pos.seq.saturating_sub(1));
                tally.send_to(
                    &prepare(gap_notice(stream, &before)),
                    one.clone(),
                    Flush::Batch,
                );
                tally.gaps += 1;
            }
            tally.send_to(&frame, one.clone(), Flush::Batch);
            last = pos;
        }
        self.positioned.insert(id, conn.clone());
        tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_caller_that_pipelines_is_batched() {
        assert_eq!(Flush::after(true), Flush::Batch);
        assert_eq!(Flush::after(false), Flush::Now);
    }

    #[test]
    fn only_a_push_after_a_quiet_gap_is_written_now() {
        let p = Pacer::default();
        let ms = Duration::from_millis;
        // The first push ever stands alone.
        assert_eq!(p.flush_at(Flush::Now, ms(0)), Flush::Now);
        // Within the quiet gap of the previous push: part of a burst.
        assert_eq!(p.flush_at(Flush::Now, ms(0) + QUIET / 2), Flush::Batch);
        // The gap counts from the latest push, batched or not.
        assert_eq!(p.flush_at(Flush::Now, ms(0) + QUIET), Flush::Batch);
        assert_eq!(p.flush_at(Flush::Now, ms(5)), Flush::Now);
        // A caller's Batch is never turned into Now.
        assert_eq!(p.flush_at(Flush::Batch, ms(50)), Flush::Batch);
    }

    /// Calls `off_the_runtime` once through `call` and checks the work ran exactly once.
    fn runs_once(label: &str, call: impl FnOnce(Arc<std::sync::atomic::AtomicUsize>)) {
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        call(Arc::clone(&count));
        assert_eq!(
            count.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "{label}"
        );
    }

    fn bump(count: Arc<std::sync::atomic::AtomicUsize>) {
        off_the_runtime(move || {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
    }

    #[test]
    fn blocking_fan_out_work_runs_once_wherever_it_is_called() {
        runs_once("no runtime", bump);
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        runs_once("current-thread runtime", |c| {
            current.block_on(async { bump(c) })
        });
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        runs_once("multi-thread block_on", |c| {
            multi.block_on(async { bump(c) })
        });
        runs_once("multi-thread worker", |c| {
            let task = multi.spawn(async move { bump(c) });
            multi.block_on(task).unwrap_or_else(|e| panic!("{e}"));
        });
        runs_once("LocalSet on a multi-thread runtime", |c| {
            let local = tokio::task::LocalSet::new();
            multi.block_on(local.run_until(async { bump(c) }));
        });
    }

    #[test]
    #[should_panic(expected = "fan-out work failed")]
    fn a_panic_in_the_work_is_not_swallowed() {
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        multi.block_on(async { off_the_runtime(|| panic!("fan-out work failed")) });
    }

    #[test]
    fn large_direct_fan_outs_use_every_core_small_ones_one() {
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        assert_eq!(lanes(0), 1);
        assert_eq!(lanes(WRITES_PER_LANE - 1), 1);
        assert_eq!(lanes(WRITES_PER_LANE * 2), 2.min(cores));
        assert_eq!(lanes(usize::MAX), cores);
    }
}
