//! The embedded broker's history: a [`Ring`] per stream, in memory, held to
//! the count, age and byte limits of its [`Retention`].
//!
//! ```text
//! publish --> Ring::append (under the stream's lock, held across its fan-out)
//!               |-- keeps the message, trims this stream: count, age, per-stream bytes
//!               `-- over the total? the oldest message of any stream goes (heap `oldest`)
//! sweeper --> expired messages, oldest first (heap `oldest`)
//!         --> streams without messages and idle past the age limit (queue `idle`):
//!             forgotten, and the map shrinks
//! ```
//!
//! Every trimmed position stays numbered: a client resuming from it gets a
//! gap notice (see [`super::plan`]), never silence. A forgotten stream takes
//! its epoch with it, so a later resume also gets a gap notice.
//!
//! Locks, always taken in this order and never across an await: the channel
//! map, a stream's [`Ring`], the `oldest` heap, the `idle` queue, a stream's
//! kept messages. A stream's kept messages are a leaf lock: whoever holds it
//! takes no other, so that the total limit and the sweeper can trim any
//! stream while its publisher holds its `Ring` across a fan-out.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, Weak};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::{HistoryRead, Retention};
use crate::delivery::payload::Payload;
use crate::delivery::position::Position;

/// What one kept message costs beyond its payload bytes: its slot in the
/// stream's queue (sequence number, time, payload handle).
const ENTRY_OVERHEAD: usize = std::mem::size_of::<(u64, Instant, Payload)>();

/// The bytes a kept message is counted for against the byte limits.
fn cost(payload: &Payload) -> usize {
    payload.bytes().len() + ENTRY_OVERHEAD
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic mid-update leaves a ring, a heap or a queue that is still valid.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Shrinks a collection's spare room once it is mostly empty (after a burst
/// of streams expired), so that the memory goes back: at most once per
/// quartering, so the cost stays amortised.
fn sparse(len: usize, capacity: usize) -> bool {
    capacity > 1024 && capacity / 4 > len
}

/// Counters and gauges of the history, for `stats()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of kept messages now (payloads plus a small fixed overhead each).
    pub bytes: u64,
    /// Channels whose numbering (and maybe messages) is kept now.
    pub channels: u64,
    /// Messages dropped, or never kept, because of the per-stream byte limit.
    pub trimmed_stream: u64,
    /// Messages dropped because of the total byte limit.
    pub trimmed_total: u64,
    /// Channels forgotten after being idle past the age limit.
    pub expired_channels: u64,
}

/// A stream in the `oldest` heap, keyed by the time of its oldest kept
/// message when it was pushed (a key only ever lags behind: messages leave
/// from the front, so whoever pops a stale key pushes the stream back).
struct Due {
    at: Instant,
    kept: Weak<Kept>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        // BinaryHeap is a max-heap: the earliest time is the greatest.
        other.at.cmp(&self.at)
    }
}

/// Which queue a stream joins after a change, if any.
enum Join {
    /// The `oldest` heap, with its oldest message's time.
    Oldest(Instant),
    /// The `idle` queue, with the time it was last appended to.
    Idle(Instant),
}

/// What every stream of one history shares: the limits, the totals and the
/// two orders the sweeper and the total limit work in.
struct Ledger {
    keep: Retention,
    bytes: AtomicUsize,
    trimmed_stream: AtomicU64,
    trimmed_total: AtomicU64,
    expired_channels: AtomicU64,
    /// Every stream holding messages, once, oldest message first.
    oldest: Mutex<BinaryHeap<Due>>,
    /// Streams holding no message, once, roughly by last append: forgotten
    /// when that is older than the age limit. Bounded by the streams.
    idle: Mutex<VecDeque<(Instant, Weak<Kept>)>>,
}

impl Ledger {
    fn join(&self, kept: &Arc<Kept>, join: Option<Join>) {
        match join {
            Some(Join::Oldest(at)) => lock(&self.oldest).push(Due {
                at,
                kept: Arc::downgrade(kept),
            }),
            Some(Join::Idle(at)) => lock(&self.idle).push_back((at, Arc::downgrade(kept))),
            None => {}
        }
    }

    /// Over the total limit: drops the oldest message of any stream until
    /// under it. Called after an append, with no kept-messages lock held.
    fn enforce_total(&self) {
        let limit = self.keep.total_bytes;
        if limit == 0 || self.bytes.load(Ordering::Relaxed) <= limit {
            return;
        }
        let mut now_idle = Vec::new();
        let mut heap = lock(&self.oldest);
        while self.bytes.load(Ordering::Relaxed) > limit {
            let Some(due) = heap.pop() else { break };
            let Some(kept) = due.kept.upgrade() else {
                continue;
            };
            let mut e = kept.lock();
            match e.list.front().map(|(_, at, _)| *at) {
                // Its oldest message left meanwhile: back in its real place.
                Some(at) if at > due.at => heap.push(Due { at, ..due }),
                Some(_) => {
                    e.pop_front(self);
                    self.trimmed_total.fetch_add(1, Ordering::Relaxed);
                    match e.list.front() {
                        Some((_, at, _)) => heap.push(Due { at: *at, ..due }),
                        None => now_idle.extend(e.leave_oldest().map(|at| (at, due.kept))),
                    }
                }
                None => now_idle.extend(e.leave_oldest().map(|at| (at, due.kept))),
            }
        }
        drop(heap);
        if !now_idle.is_empty() {
            lock(&self.idle).extend(now_idle);
        }
    }
}

/// The messages one stream keeps. Behind a leaf lock (see the module docs).
struct Kept {
    /// The channel (`None`: the broadcast stream, never forgotten).
    name: Option<Arc<str>>,
    ledger: Arc<Ledger>,
    state: Mutex<Entries>,
}

struct Entries {
    list: VecDeque<(u64, Instant, Payload)>,
    /// What `list` is counted for (see [`cost`]).
    bytes: usize,
    last_append: Instant,
    /// Whether the stream has its one place in the `oldest` heap.
    in_oldest: bool,
    /// Whether the stream has its one place in the `idle` queue.
    in_idle: bool,
}

impl Kept {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        lock(&self.state)
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        let e = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        self.ledger.bytes.fetch_sub(e.bytes, Ordering::Relaxed);
    }
}

impl Entries {
    fn push(&mut self, seq: u64, at: Instant, payload: &Payload, ledger: &Ledger) {
        let c = cost(payload);
        if self.list.capacity() == 0 {
            // Room for one, not the four a first push makes: most channels of
            // a server with many hold a single message.
            self.list.reserve_exact(1);
        }
        self.list.push_back((seq, at, payload.clone()));
        self.bytes += c;
        ledger.bytes.fetch_add(c, Ordering::Relaxed);
    }

    fn pop_front(&mut self, ledger: &Ledger) {
        if let Some((_, _, payload)) = self.list.pop_front() {
            let c = cost(&payload);
            self.bytes -= c;
            ledger.bytes.fetch_sub(c, Ordering::Relaxed);
        }
    }

    /// Drops messages older than `cutoff` (expiry is not a trim: not counted).
    fn expire(&mut self, cutoff: Option<Instant>, ledger: &Ledger) {
        let Some(cutoff) = cutoff else { return };
        while self.list.front().is_some_and(|(_, at, _)| *at < cutoff) {
            self.pop_front(ledger);
        }
    }

    /// Holds the stream to its count, per-stream bytes and age.
    fn trim(&mut self, keep: &Retention, now: Instant, ledger: &Ledger) {
        while self.list.len() > keep.len {
            self.pop_front(ledger);
        }
        while keep.stream_bytes > 0 && self.bytes > keep.stream_bytes {
            self.pop_front(ledger);
            ledger.trimmed_stream.fetch_add(1, Ordering::Relaxed);
        }
        self.expire(keep.cutoff(now), ledger);
    }

    /// The queue the stream must join now that it changed, if it is in
    /// neither of the places its state calls for.
    fn join(&mut self, idle_at: Instant) -> Option<Join> {
        match self.list.front() {
            Some((_, at, _)) if !self.in_oldest => {
                self.in_oldest = true;
                Some(Join::Oldest(*at))
            }
            None if !self.in_oldest && !self.in_idle => {
                self.in_idle = true;
                Some(Join::Idle(idle_at))
            }
            _ => None,
        }
    }

    /// Leaves the `oldest` heap (the stream holds nothing); returns the key
    /// to join the `idle` queue with, unless it is there already.
    fn leave_oldest(&mut self) -> Option<Instant> {
        self.in_oldest = false;
        (!self.in_idle).then(|| {
            self.in_idle = true;
            self.last_append
        })
    }
}

/// The numbering and history of one stream in the embedded broker.
pub struct Ring {
    epoch: Arc<str>,
    last_seq: u64,
    kept: Arc<Kept>,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("epoch", &self.epoch)
            .field("last_seq", &self.last_seq)
            .finish_non_exhaustive()
    }
}

impl Ring {
    fn new(epoch: Arc<str>, name: Option<Arc<str>>, ledger: &Arc<Ledger>) -> Ring {
        let state = Mutex::new(Entries {
            list: VecDeque::new(),
            bytes: 0,
            last_append: Instant::now(),
            in_oldest: false,
            in_idle: false,
        });
        Ring {
            epoch,
            last_seq: 0,
            kept: Arc::new(Kept {
                name,
                ledger: Arc::clone(ledger),
                state,
            }),
        }
    }

    /// Numbers `payload` and keeps it (a shared `Bytes`, no copy), within
    /// `keep` ([`MemoryHistory::retention`], the limits this ring was made
    /// with) and the history's total. A message larger than the per-stream
    /// byte limit is numbered but not kept, and nothing before it either.
    pub fn append(&mut self, payload: &Payload, keep: &Retention, now: Instant) -> Position {
        self.last_seq += 1;
        let ledger = &self.kept.ledger;
        let join = {
            let mut e = self.kept.lock();
            e.last_append = now;
            if keep.len > 0 {
                e.push(self.last_seq, now, payload, ledger);
            }
            // A message larger than the per-stream limit takes everything
            // with it: kept messages stay one run up to the last number, as
            // `plan` reads them (a hole would be skipped silently).
            e.trim(keep, now, ledger);
            e.join(now)
        };
        ledger.join(&self.kept, join);
        ledger.enforce_total();
        Position::new(self.epoch.clone(), self.last_seq)
    }

    /// Forgets the kept messages; the numbering goes on (`history_remove`).
    pub fn clear(&mut self) {
        let ledger = &self.kept.ledger;
        let mut e = self.kept.lock();
        while !e.list.is_empty() {
            e.pop_front(ledger);
        }
    }

    /// What the ring holds now.
    pub fn read(&self, now: Instant) -> HistoryRead {
        let ledger = &self.kept.ledger;
        let mut e = self.kept.lock();
        e.expire(ledger.keep.cutoff(now), ledger);
        HistoryRead {
            epoch: self.epoch.clone(),
            last_seq: self.last_seq,
            entries: e.list.iter().map(|(s, _, p)| (*s, p.clone())).collect(),
        }
    }
}

type Channels = HashMap<Arc<str>, Arc<Mutex<Ring>>>;

/// Every stream's [`Ring`]: the broadcast stream and one per channel published
/// to within the age limit.
pub struct MemoryHistory {
    ledger: Arc<Ledger>,
    node_epoch: String,
    generation: AtomicU64,
    broadcast: Mutex<Ring>,
    channels: RwLock<Channels>,
}

impl MemoryHistory {
    /// Empty histories; the epoch prefix comes from the clock, so a restarted
    /// server never reuses one.
    pub fn new(keep: Retention) -> MemoryHistory {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let node_epoch = format!("{now:x}.{:x}", std::process::id());
        let ledger = Arc::new(Ledger {
            keep,
            bytes: AtomicUsize::new(0),
            trimmed_stream: AtomicU64::new(0),
            trimmed_total: AtomicU64::new(0),
            expired_channels: AtomicU64::new(0),
            oldest: Mutex::new(BinaryHeap::new()),
            idle: Mutex::new(VecDeque::new()),
        });
        let broadcast = Ring::new(Arc::from(format!("{node_epoch}.0")), None, &ledger);
        MemoryHistory {
            ledger,
            node_epoch,
            generation: AtomicU64::new(1),
            broadcast: Mutex::new(broadcast),
            channels: RwLock::new(HashMap::new()),
        }
    }

    /// The retention settings.
    pub fn retention(&self) -> &Retention {
        &self.ledger.keep
    }

    /// The broadcast stream's ring, locked: hold it across numbering and
    /// fan-out so that positions reach every browser in order.
    pub fn broadcast(&self) -> MutexGuard<'_, Ring> {
        lock(&self.broadcast)
    }

    /// A channel's ring (created on first use, with a fresh epoch).
    pub fn channel(&self, name: &str) -> Arc<Mutex<Ring>> {
        if let Some(ring) = self.read_map().get(name) {
            return Arc::clone(ring);
        }
        let mut map = self.channels.write().unwrap_or_else(|e| e.into_inner());
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let (node_epoch, ledger) = (&self.node_epoch, &self.ledger);
        let name: Arc<str> = Arc::from(name);
        Arc::clone(map.entry(Arc::clone(&name)).or_insert_with(|| {
            let epoch = Arc::from(format!("{node_epoch}.{generation:x}"));
            Arc::new(Mutex::new(Ring::new(epoch, Some(name), ledger)))
        }))
    }

    fn read_map(&self) -> RwLockReadGuard<'_, Channels> {
        self.channels.read().unwrap_or_else(|e| e.into_inner())
    }

    /// What a stream holds now (`None`: the broadcast stream).
    pub fn read(&self, stream: Option<&str>) -> HistoryRead {
        let now = Instant::now();
        match stream {
            None => self.broadcast().read(now),
            // Not under the map lock: the ring may be held by a long fan-out.
            Some(name) => match self.read_map().get(name).cloned() {
                Some(ring) => lock(&ring).read(now),
                None => HistoryRead::default(),
            },
        }
    }

    /// Forgets a stream's kept messages, keeping its position (`None`: the broadcast
    /// stream).
    pub fn remove(&self, stream: Option<&str>) {
        match stream {
            None => self.broadcast().clear(),
            Some(name) => {
                if let Some(ring) = self.read_map().get(name).cloned() {
                    lock(&ring).clear();
                }
            }
        }
    }

    /// The counters and gauges of the history.
    pub fn usage(&self) -> Usage {
        let l = &self.ledger;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Usage {
            bytes: l.bytes.load(Ordering::Relaxed) as u64,
            channels: self.read_map().len() as u64,
            trimmed_stream: get(&l.trimmed_stream),
            trimmed_total: get(&l.trimmed_total),
            expired_channels: get(&l.expired_channels),
        }
    }
}

#[path = "sweep.rs"]
mod sweep;

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
