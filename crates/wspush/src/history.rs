//! Recent messages per stream, and what a resuming client is owed.
//!
//! The embedded broker keeps a [`Ring`] per stream in memory (Redis keeps a
//! stream per channel instead, see `broker::redis`); both answer a resume
//! with a [`HistoryRead`], and [`plan`] turns it plus the client's
//! [`Since`] into exactly the messages it missed, or a gap notice first when
//! the history no longer reaches back that far.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::data::Payload;
use crate::position::Position;
use crate::query::Since;

/// How much history each stream keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// At most this many messages (0: none, positions only).
    pub len: usize,
    /// And none older than this (`None`: no age limit).
    pub max_age: Option<Duration>,
}

/// What a history holds for one stream when a client resumes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryRead {
    /// The stream's epoch now (`""`: the stream has no history at all).
    pub epoch: Arc<str>,
    /// The last sequence number given out in this epoch (0: none yet).
    pub last_seq: u64,
    /// The retained messages, oldest first.
    pub entries: Vec<(u64, Payload)>,
}

/// What a resuming client gets on one stream, in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// A gap notice first, at this position, if history does not cover the client's.
    pub gap: Option<Position>,
    /// The missed messages.
    pub entries: Vec<(u64, Payload)>,
    /// Where the client is after the replay: live messages at or before it are duplicates.
    pub last: Position,
}

/// Decides what a client at `since` missed according to `read`.
pub fn plan(since: &Since, read: HistoryRead) -> Replay {
    let first = read
        .entries
        .first()
        .map_or(read.last_seq.saturating_add(1), |(seq, _)| *seq);
    let same_epoch = *read.epoch == *since.epoch;
    if same_epoch && since.seq <= read.last_seq && first <= since.seq.saturating_add(1) {
        let entries: Vec<_> = read
            .entries
            .into_iter()
            .filter(|(seq, _)| *seq > since.seq)
            .collect();
        let last = entries.last().map_or(since.seq, |(seq, _)| *seq);
        return Replay {
            gap: None,
            entries,
            last: Position::new(read.epoch, last),
        };
    }
    // Another epoch, messages trimmed away, or a position we never gave out.
    let gap = Position::new(read.epoch.clone(), first.saturating_sub(1));
    let last = read.entries.last().map_or(gap.seq, |(seq, _)| *seq);
    Replay {
        gap: Some(gap),
        entries: read.entries,
        last: Position::new(read.epoch, last),
    }
}

/// The history of one stream in the embedded broker.
#[derive(Debug)]
pub struct Ring {
    epoch: Arc<str>,
    last_seq: u64,
    entries: VecDeque<(u64, Instant, Payload)>,
}

impl Ring {
    fn new(epoch: Arc<str>) -> Ring {
        Ring {
            epoch,
            last_seq: 0,
            entries: VecDeque::new(),
        }
    }

    /// Numbers `payload` and keeps it (a shared `Bytes`, no copy).
    pub fn append(&mut self, payload: &Payload, keep: &Retention, now: Instant) -> Position {
        self.last_seq += 1;
        if keep.len > 0 {
            if self.entries.len() >= keep.len {
                self.entries.pop_front();
            }
            self.entries
                .push_back((self.last_seq, now, payload.clone()));
        }
        self.expire(keep, now);
        Position::new(self.epoch.clone(), self.last_seq)
    }

    fn expire(&mut self, keep: &Retention, now: Instant) {
        if let Some(age) = keep.max_age {
            while let Some((_, t, _)) = self.entries.front() {
                if now.saturating_duration_since(*t) <= age {
                    break;
                }
                self.entries.pop_front();
            }
        }
    }

    /// What the ring holds now.
    pub fn read(&mut self, keep: &Retention, now: Instant) -> HistoryRead {
        self.expire(keep, now);
        HistoryRead {
            epoch: self.epoch.clone(),
            last_seq: self.last_seq,
            entries: self
                .entries
                .iter()
                .map(|(s, _, p)| (*s, p.clone()))
                .collect(),
        }
    }

    fn is_stale(&self, keep: &Retention, now: Instant) -> bool {
        let newest = self.entries.back().map(|(_, t, _)| *t);
        match (keep.max_age, newest) {
            (Some(age), Some(t)) => now.saturating_duration_since(t) > age,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// Every stream's [`Ring`]: the broadcast stream and one per channel ever published to.
pub struct MemoryHistory {
    keep: Retention,
    node_epoch: String,
    generation: AtomicU64,
    broadcast: Mutex<Ring>,
    channels: RwLock<HashMap<Arc<str>, Arc<Mutex<Ring>>>>,
    sweep_at: AtomicU64,
}

fn lock(ring: &Mutex<Ring>) -> MutexGuard<'_, Ring> {
    // A panic mid-append leaves a ring that is still a valid ring.
    ring.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryHistory {
    /// Empty histories; the epoch prefix comes from the clock, so a restarted
    /// server never reuses one.
    pub fn new(keep: Retention) -> MemoryHistory {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let node_epoch = format!("{now:x}.{:x}", std::process::id());
        let broadcast = Mutex::new(Ring::new(Arc::from(format!("{node_epoch}.0"))));
        MemoryHistory {
            keep,
            node_epoch,
            generation: AtomicU64::new(1),
            broadcast,
            channels: RwLock::new(HashMap::new()),
            sweep_at: AtomicU64::new(1024),
        }
    }

    /// The retention settings.
    pub fn retention(&self) -> &Retention {
        &self.keep
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
        self.sweep(&mut map);
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let node_epoch = &self.node_epoch;
        Arc::clone(map.entry(Arc::from(name)).or_insert_with(|| {
            Arc::new(Mutex::new(Ring::new(Arc::from(format!(
                "{node_epoch}.{generation:x}"
            )))))
        }))
    }

    /// Forgets channels whose messages all expired, once the map has doubled
    /// since the last sweep (their epoch goes with them: a later resume gets
    /// a gap notice, never a wrong replay).
    fn sweep(&self, map: &mut HashMap<Arc<str>, Arc<Mutex<Ring>>>) {
        if (map.len() as u64) < self.sweep_at.load(Ordering::Relaxed) {
            return;
        }
        let now = Instant::now();
        map.retain(|_, ring| !lock(ring).is_stale(&self.keep, now));
        self.sweep_at
            .store((map.len() as u64 * 2).max(1024), Ordering::Relaxed);
    }

    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Arc<str>, Arc<Mutex<Ring>>>> {
        self.channels.read().unwrap_or_else(|e| e.into_inner())
    }

    /// What a stream holds now (`None`: the broadcast stream).
    pub fn read(&self, stream: Option<&str>) -> HistoryRead {
        let now = Instant::now();
        match stream {
            None => self.broadcast().read(&self.keep, now),
            Some(name) => match self.read_map().get(name) {
                Some(ring) => lock(ring).read(&self.keep, now),
                None => HistoryRead::default(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::Bytes;

    fn text(s: &'static str) -> Payload {
        Payload::Text(Bytes::from_static(s.as_bytes()))
    }

    fn since(epoch: &str, seq: u64) -> Since {
        Since {
            stream: None,
            epoch: epoch.into(),
            seq,
        }
    }

    fn read(epoch: &str, last_seq: u64, seqs: &[u64]) -> HistoryRead {
        HistoryRead {
            epoch: Arc::from(epoch),
            last_seq,
            entries: seqs.iter().map(|s| (*s, text("x"))).collect(),
        }
    }

    #[test]
    fn ring_keeps_the_last_n_and_numbers_from_one() {
        let keep = Retention {
            len: 2,
            max_age: None,
        };
        let mut ring = Ring::new(Arc::from("e"));
        let now = Instant::now();
        for (i, s) in ["a", "b", "c"].into_iter().enumerate() {
            assert_eq!(ring.append(&text(s), &keep, now).seq, i as u64 + 1);
        }
        let r = ring.read(&keep, now);
        assert_eq!(r.last_seq, 3);
        assert_eq!(r.entries, vec![(2, text("b")), (3, text("c"))]);
    }

    #[test]
    fn ring_forgets_old_messages() {
        let keep = Retention {
            len: 10,
            max_age: Some(Duration::from_secs(5)),
        };
        let mut ring = Ring::new(Arc::from("e"));
        let t0 = Instant::now();
        ring.append(&text("old"), &keep, t0);
        ring.append(&text("new"), &keep, t0 + Duration::from_secs(4));
        let r = ring.read(&keep, t0 + Duration::from_secs(6));
        assert_eq!(r.entries, vec![(2, text("new"))]);
    }

    #[test]
    fn plan_replays_exactly_what_was_missed() {
        let r = plan(&since("e", 3), read("e", 6, &[2, 3, 4, 5, 6]));
        assert_eq!(r.gap, None);
        assert_eq!(
            r.entries.iter().map(|e| e.0).collect::<Vec<_>>(),
            vec![4, 5, 6]
        );
        assert_eq!(r.last, Position::new("e", 6));
        let r = plan(&since("e", 6), read("e", 6, &[5, 6]));
        assert_eq!((r.gap, r.entries.len()), (None, 0));
        assert_eq!(r.last, Position::new("e", 6));
    }

    #[test]
    fn plan_reports_gaps() {
        // Trimmed: 4 is gone.
        let r = plan(&since("e", 3), read("e", 9, &[5, 6, 7, 8, 9]));
        assert_eq!(r.gap, Some(Position::new("e", 4)));
        assert_eq!(r.entries.len(), 5);
        assert_eq!(r.last, Position::new("e", 9));
        // Another epoch: everything retained, after a notice.
        let r = plan(&since("old", 30), read("new", 2, &[1, 2]));
        assert_eq!(r.gap, Some(Position::new("new", 0)));
        assert_eq!(r.entries.len(), 2);
        // A position beyond what was given out.
        let r = plan(&since("e", 10), read("e", 9, &[9]));
        assert_eq!(r.gap, Some(Position::new("e", 8)));
        // Nothing retained at all (history disabled) but the client is behind.
        let r = plan(&since("e", 1), read("e", 3, &[]));
        assert_eq!(r.gap, Some(Position::new("e", 3)));
        assert_eq!(r.last, Position::new("e", 3));
    }

    #[test]
    fn memory_history_gives_channels_their_own_epochs() {
        let h = MemoryHistory::new(Retention {
            len: 4,
            max_age: None,
        });
        let now = Instant::now();
        let a = lock(&h.channel("a")).append(&text("1"), h.retention(), now);
        let b = lock(&h.channel("b")).append(&text("1"), h.retention(), now);
        assert_ne!(a.epoch, b.epoch);
        assert_eq!(h.read(Some("a")).entries, vec![(1, text("1"))]);
        assert_eq!(h.read(Some("zzz")), HistoryRead::default());
        assert_eq!(h.broadcast().append(&text("x"), h.retention(), now).seq, 1);
    }
}
