//! Recent messages per stream, and what a resuming client is owed.
//!
//! The embedded broker keeps a [`Ring`] per stream in memory, within count,
//! age and byte limits (see [`MemoryHistory`]; Redis keeps a stream per
//! channel instead, see `broker::redis`); both answer a resume
//! with a [`HistoryRead`], and [`plan`] turns it plus the client's
//! [`Since`] into exactly the messages it missed, or a gap notice first when
//! the history no longer reaches back that far.

mod memory;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use self::memory::{MemoryHistory, Ring, Usage};
use crate::delivery::payload::Payload;
use crate::delivery::position::Position;
use crate::delivery::query::Since;

/// Default per-stream byte limit: 4 MiB, a hundred messages of 40 KiB, four
/// times a browser's default queue; one stream cannot take the total.
pub const DEFAULT_STREAM_BYTES: usize = 4 << 20;

/// Default byte limit over all streams: 64 MiB, sized for a small server
/// (a 512 MiB machine keeps most of its memory for connections).
pub const DEFAULT_TOTAL_BYTES: usize = 64 << 20;

/// How much history each stream keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// At most this many messages (0: none, positions only).
    pub len: usize,
    /// And none older than this (`None`: no age limit).
    pub max_age: Option<Duration>,
    /// And at most this many bytes per stream, oldest dropped first; a larger
    /// message is numbered but not kept (0: no limit). The embedded broker
    /// only: Redis keeps its own.
    pub stream_bytes: usize,
    /// And at most this many bytes over all streams, the oldest message of
    /// any stream dropped first (0: no limit). The embedded broker only.
    pub total_bytes: usize,
}

impl Default for Retention {
    /// 100 messages, no age limit, the default byte limits.
    fn default() -> Self {
        Retention {
            len: 100,
            max_age: None,
            stream_bytes: DEFAULT_STREAM_BYTES,
            total_bytes: DEFAULT_TOTAL_BYTES,
        }
    }
}

impl Retention {
    /// Messages from before this instant are too old (`None`: none is).
    pub fn cutoff(&self, now: Instant) -> Option<Instant> {
        self.max_age.and_then(|age| now.checked_sub(age))
    }
}

/// What a history holds for one stream when a client resumes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryRead {
    /// The stream's epoch now (`""`: the stream has no history at all).
    pub epoch: Arc<str>,
    /// The last sequence number given out in this epoch (0: none yet).
    pub last_seq: u64,
    /// The retained messages, oldest first: one run of sequence numbers
    /// ending at `last_seq`, or none ([`plan`] relies on it: a hole would be
    /// replayed over without a gap notice).
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

/// The most payload bytes one resume replays. A resume is queued beyond the browser's queue
/// limit (it is a backlog the browser asked for), so it needs a bound of its own: history
/// kept in Redis has no byte limit, and even the embedded one may keep more per stream than
/// is wise to queue to each of many resuming browsers. Older missed messages are announced
/// as a gap instead.
pub const MAX_REPLAY_BYTES: usize = 16 << 20;

/// Decides what a client at `since` missed according to `read`.
pub fn plan(since: &Since, read: HistoryRead) -> Replay {
    within_budget(plan_all(since, read), MAX_REPLAY_BYTES)
}

/// Keeps the newest entries of `replay` that fit `budget` bytes; what it drops becomes (or
/// widens) the gap before them.
fn within_budget(mut replay: Replay, budget: usize) -> Replay {
    let mut kept_bytes = 0;
    let keep = replay
        .entries
        .iter()
        .rev()
        .take_while(|(_, p)| {
            kept_bytes += p.bytes().len();
            kept_bytes <= budget
        })
        .count();
    let drop = replay.entries.len() - keep;
    if drop > 0 {
        let last_dropped = replay.entries[drop - 1].0;
        replay.entries.drain(..drop);
        replay.gap = Some(Position::new(replay.last.epoch.clone(), last_dropped));
    }
    replay
}

fn plan_all(since: &Since, read: HistoryRead) -> Replay {
    let first = read
        .entries
        .first()
        .map_or(read.last_seq.saturating_add(1), |(seq, _)| *seq);
    // A client at the start of a stream that had no history (empty epoch, 0) continues in
    // whatever epoch the stream then began, as `Position::is_followed_by` says.
    let from_nothing = since.epoch.is_empty() && since.seq == 0;
    let same_epoch = *read.epoch == *since.epoch || from_nothing;
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
    fn plan_from_a_stream_that_had_no_history() {
        let read = HistoryRead {
            epoch: "E".into(),
            last_seq: 2,
            entries: vec![(1, text("a")), (2, text("b"))],
        };
        let replay = plan(&since("", 0), read.clone());
        assert_eq!((replay.gap, replay.entries.len()), (None, 2));
        let trimmed = HistoryRead {
            entries: vec![(2, text("b"))],
            ..read
        };
        assert!(plan(&since("", 0), trimmed).gap.is_some());
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
    fn a_replay_beyond_its_byte_budget_keeps_the_newest_and_says_gap() {
        let replay = plan(&since("e", 2), read("e", 6, &[1, 2, 3, 4, 5, 6]));
        assert_eq!(replay.gap, None);
        let cut = within_budget(replay, 2);
        assert_eq!(cut.gap, Some(Position::new(Arc::from("e"), 4)));
        let seqs: Vec<u64> = cut.entries.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, [5, 6]);
        assert_eq!(cut.last, Position::new(Arc::from("e"), 6));
        // Within the budget nothing changes.
        let whole = within_budget(plan(&since("e", 2), read("e", 6, &[3, 4, 5, 6])), 4);
        assert_eq!((whole.gap, whole.entries.len()), (None, 4));
    }
}
