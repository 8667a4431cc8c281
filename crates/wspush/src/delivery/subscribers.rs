//! The subscribers of one stream (the broadcast stream or a channel) and its fan-out.
//!
//! Members are [`Outlet`]s grouped by wire format; a push is encoded once per format
//! that has a recipient and shared by all of them. Resuming subscribers are `pending`:
//! live messages are buffered for them until their replay is queued, then
//! de-duplicated by position.
//!
//! Locks, and why a fan-out never blocks a connect: a fan-out holds only this stream's
//! `order` lock, from numbering its push to its last enqueue, so one stream's pushes
//! reach every subscriber in position order. It reads its recipients from a snapshot
//! (`Arc<Recipients>`, rebuilt at the first fan-out after a change) and never holds the
//! hub's lock, the history's lock or the members' lock while it queues; subscribing and
//! unsubscribing take the members' lock only. A subscriber added during a fan-out gets
//! the pushes after it, one removed gets those before; a resume going live takes the
//! `order` lock, so no push is half-queued around it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use ws_server::{Connection, FanOut};

use super::history::Replay;
use super::joining::{JoinedPush, Joining};
use super::outlet::{At, Encoded, FORMATS, Format, Frame, Outlet};
use super::payload::Payload;
use super::position::Position;
use super::tally::{self, Tally};

/// Live messages buffered for one resuming connection while its history is read, at most
/// this many frame bytes and this many messages: beyond either the connection is closed
/// (1008) at once rather than silently trimmed.
const MAX_PENDING_BYTES: usize = 16 << 20;
const MAX_PENDING: usize = 65_536;

/// What a resuming subscriber buffered.
struct Buffered {
    outlet: Outlet,
    frames: Vec<(Position, Frame)>,
    bytes: usize,
}

/// The live members by format, as one fan-out sees them.
#[derive(Default)]
struct Recipients {
    by_format: [Vec<Outlet>; FORMATS],
}

#[derive(Default)]
struct Members {
    outlets: HashMap<u64, Outlet>,
    /// `None` after a change; rebuilt by the next fan-out.
    snapshot: Option<Arc<Recipients>>,
}

/// The subscribers of one stream.
#[derive(Default)]
pub struct Subs {
    members: Mutex<Members>,
    /// Held for a whole fan-out; the last position delivered live (broker mode: detects
    /// missed messages).
    order: Mutex<Option<Position>>,
    pending: Mutex<HashMap<u64, Buffered>>,
    /// Pushes that arrived while a pass of this stream was in progress (the hub's).
    pub(super) joining: Joining<JoinedPush>,
    /// Positioned subscribers that resumed up to a position the live stream may not have
    /// reached yet (a node lagging its broker): live messages they already have are skipped
    /// for them, until the stream passes their floor. Usually empty.
    floors: Mutex<HashMap<u64, Position>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these cannot leave a half-updated map that matters more
    // than stopping delivery, so poisoning is ignored.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Subs {
    /// Adds a subscriber; a `resuming` one buffers live messages until
    /// [`Subs::finish_resume`].
    pub fn insert(&self, outlet: Outlet, resuming: bool) {
        if resuming {
            let buffered = Buffered {
                outlet,
                frames: Vec::new(),
                bytes: 0,
            };
            lock(&self.pending).insert(buffered.outlet.id, buffered);
        } else {
            let mut members = lock(&self.members);
            members.outlets.insert(outlet.id, outlet);
            members.snapshot = None;
        }
    }

    /// Removes a subscriber; false if it was not one.
    pub fn remove(&self, id: u64) -> bool {
        lock(&self.floors).remove(&id);
        let pending = lock(&self.pending).remove(&id).is_some();
        let mut members = lock(&self.members);
        let member = members.outlets.remove(&id).is_some();
        if member {
            members.snapshot = None;
        }
        member || pending
    }

    /// Number of subscribers, resuming ones included.
    pub fn count(&self) -> usize {
        lock(&self.members).outlets.len() + lock(&self.pending).len()
    }

    /// Whether no one subscribes any more.
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    fn recipients(&self) -> Arc<Recipients> {
        let mut members = lock(&self.members);
        let members = &mut *members;
        let outlets = &members.outlets;
        Arc::clone(members.snapshot.get_or_insert_with(|| {
            let mut r = Recipients::default();
            for outlet in outlets.values() {
                r.by_format[outlet.format.index()].push(outlet.clone());
            }
            Arc::new(r)
        }))
    }

    /// Numbers a push with `number` (under this stream's order lock, so numbers and
    /// deliveries agree) and queues `payload` to every subscriber in its format, buffered
    /// for resuming ones. With `check_order`, positioned subscribers get a gap notice
    /// first when the position does not follow the last one delivered. A subscriber that
    /// resumed past the position (its node lags the broker) does not get it twice.
    pub fn fan_out(
        &self,
        stream: Option<&str>,
        number: impl FnOnce() -> Option<Position>,
        payload: &Payload,
        check_order: bool,
        out: &mut FanOut<'_>,
    ) -> Tally {
        let mut last = lock(&self.order);
        let recipients = self.recipients();
        let pos = number();
        self.fan_out_locked(
            &mut last,
            &recipients,
            stream,
            pos,
            payload,
            check_order,
            out,
        )
    }

    /// Numbers each of `payloads` in order with `number` and queues them all, as
    /// [`Subs::fan_out`] would one by one (without `check_order`), but touching each
    /// subscriber's queue once for all of them: pushes that met while this stream's
    /// previous fan-out was in progress. Returns each push's tally and position.
    pub fn fan_out_all(
        &self,
        stream: Option<&str>,
        payloads: &[Payload],
        mut number: impl FnMut(&Payload) -> Option<Position>,
        out: &mut FanOut<'_>,
    ) -> Vec<(Tally, Option<Position>)> {
        let mut last = lock(&self.order);
        let recipients = self.recipients();
        let positions: Vec<Option<Position>> = payloads.iter().map(&mut number).collect();
        // A resumed subscriber may need a gap notice or a skip between two of them: each
        // push on its own then (rare: only until the stream passes its floor).
        if payloads.len() == 1 || !lock(&self.floors).is_empty() {
            return payloads
                .iter()
                .zip(positions)
                .map(|(payload, pos)| {
                    let at = pos.clone();
                    let tally = self.fan_out_locked(
                        &mut last,
                        &recipients,
                        stream,
                        pos,
                        payload,
                        false,
                        out,
                    );
                    (tally, at)
                })
                .collect();
        }
        let mut tallies = vec![Tally::default(); payloads.len()];
        let mut encoded: Vec<Encoded<'_>> = payloads
            .iter()
            .zip(&positions)
            .map(|(payload, pos)| Encoded::new(payload, stream, pos.as_ref()))
            .collect();
        let at: Vec<At<'_>> = positions
            .iter()
            .map(|p| p.as_ref().map(|p| (stream, p)))
            .collect();
        for format in Format::ALL {
            let outlets = &recipients.by_format[format.index()];
            if outlets.is_empty() {
                continue;
            }
            let frames: Vec<Frame> = encoded
                .iter_mut()
                .map(|e| e.frame(format).clone())
                .collect();
            tally::send_each_to(&mut tallies, &frames, &at, outlets.iter(), out);
        }
        for ((tally, encoded), pos) in tallies.iter_mut().zip(&mut encoded).zip(&positions) {
            if let Some(pos) = pos {
                self.buffer_pending(pos, encoded);
            }
            tally.encodes = encoded.encodes();
        }
        tallies.into_iter().zip(positions).collect()
    }

    /// [`Subs::fan_out`] of one numbered push, under the order lock (`last`).
    #[allow(clippy::too_many_arguments)]
    fn fan_out_locked(
        &self,
        last: &mut Option<Position>,
        recipients: &Recipients,
        stream: Option<&str>,
        pos: Option<Position>,
        payload: &Payload,
        check_order: bool,
        out: &mut FanOut<'_>,
    ) -> Tally {
        let mut tally = Tally::default();
        let mut skip_positioned = false;
        let mut node_gap = false;
        if let (true, Some(pos)) = (check_order, &pos) {
            match &*last {
                Some(l) if l.covers(pos) => skip_positioned = true,
                Some(l) if !l.is_followed_by(pos) => node_gap = true,
                _ => {}
            }
            if !skip_positioned {
                *last = Some(pos.clone());
            }
        }
        // Resumed subscribers that already have `pos` (they get nothing now).
        let mut have = Vec::new();
        if let (false, Some(pos)) = (skip_positioned, &pos) {
            have = self.notify_gaps(recipients, stream, pos, node_gap, &mut tally, out);
        }
        let mut encoded = Encoded::new(payload, stream, pos.as_ref());
        for format in Format::ALL {
            let outlets = &recipients.by_format[format.index()];
            if outlets.is_empty() || (skip_positioned && format.positioned()) {
                continue;
            }
            let frame = encoded.frame(format).clone();
            let to = outlets.iter().filter(|o| !have.contains(&o.id));
            tally.send_to(&frame, to, pos.as_ref().map(|p| (stream, p)), out);
        }
        if let (false, Some(pos)) = (skip_positioned, &pos) {
            self.buffer_pending(pos, &mut encoded);
        }
        tally.encodes = encoded.encodes();
        tally
    }

    /// Sends gap notices to positioned members that missed messages before `pos`: those
    /// whose resume floor does not reach it, and with `node_gap` (this node missed some)
    /// every other one. Returns the members whose floor already covers `pos`.
    fn notify_gaps(
        &self,
        recipients: &Recipients,
        stream: Option<&str>,
        pos: &Position,
        node_gap: bool,
        tally: &mut Tally,
        out: &mut FanOut<'_>,
    ) -> Vec<u64> {
        let (mut have, mut behind) = (Vec::new(), Vec::new());
        lock(&self.floors).retain(|id, floor| {
            if floor.covers(pos) {
                have.push(*id);
                return true;
            }
            if !floor.is_followed_by(pos) {
                behind.push(*id);
            }
            false
        });
        if behind.is_empty() && !node_gap {
            return have;
        }
        let before = Position::new(pos.epoch.clone(), pos.seq.saturating_sub(1));
        let misses = |id: &u64| behind.contains(id) || (node_gap && !have.contains(id));
        for format in Format::ALL {
            let outlets = &recipients.by_format[format.index()];
            let mut conns = outlets.iter().filter(|o| misses(&o.id)).peekable();
            if conns.peek().is_none() {
                continue;
            }
            let Some(notice) = format.gap_notice(stream, &before) else {
                continue;
            };
            let queued = tally.queued;
            tally.send_to(&notice, conns, Some((stream, &before)), out);
            tally.gaps += tally.queued - queued;
        }
        have
    }

    /// Buffers a live push for every resuming subscriber; one whose buffer is full is
    /// closed at once (1008), not silently trimmed.
    fn buffer_pending(&self, pos: &Position, encoded: &mut Encoded<'_>) {
        let mut pending = lock(&self.pending);
        if pending.is_empty() {
            return;
        }
        let mut overflowed = Vec::new();
        for (id, buffer) in pending.iter_mut() {
            let frame = encoded.frame(buffer.outlet.format);
            let size = frame.len();
            if buffer.frames.len() >= MAX_PENDING || buffer.bytes + size > MAX_PENDING_BYTES {
                overflowed.push(*id);
            } else {
                buffer.frames.push((pos.clone(), frame.clone()));
                buffer.bytes += size;
            }
        }
        for id in overflowed {
            if let Some(buffer) = pending.remove(&id) {
                tracing::warn!(conn = id, "resume backlog full; closing");
                buffer.outlet.conn.close(1008, "resume backlog");
            }
        }
    }

    /// Queues a resuming subscriber's replay, then the live messages buffered meanwhile
    /// that the replay did not already cover, and makes it live. The whole backlog is
    /// queued beyond the connection's limit (it is bounded by the history's), so a replay
    /// larger than one queue's worth is delivered, paced by the socket. `conn` is closed
    /// (1008) if its buffer was dropped for overflowing: nothing is skipped silently.
    pub fn finish_resume(
        &self,
        id: u64,
        conn: &Connection,
        stream: Option<&str>,
        replay: Replay,
    ) -> Tally {
        let mut tally = Tally::default();
        let format = match lock(&self.pending).get(&id) {
            Some(buffered) => buffered.outlet.format,
            None => return gone(conn, tally),
        };
        // Encoded before taking the order lock: live pushes go on meanwhile (buffered).
        let replay_frames: Vec<(Position, Frame)> = replay
            .entries
            .iter()
            .map(|(seq, payload)| {
                let pos = Position::new(replay.last.epoch.clone(), *seq);
                let frame = format.encode(payload, stream, Some(&pos));
                (pos, frame)
            })
            .collect();
        let _order = lock(&self.order);
        let Some(buffered) = lock(&self.pending).remove(&id) else {
            return gone(conn, tally);
        };
        let outlet = &buffered.outlet;
        let gap = |tally: &mut Tally, before: &Position| {
            if let Some(notice) = format.gap_notice(stream, before) {
                tally.backlog(&notice, outlet, Some((stream, before)));
                tally.gaps += 1;
            }
        };
        if let Some(before) = &replay.gap {
            gap(&mut tally, before);
        }
        for (pos, frame) in &replay_frames {
            tally.backlog(frame, outlet, Some((stream, pos)));
        }
        let mut last = replay.last;
        if let Some(ids) = &outlet.ids {
            // An SSE id names this stream from now on, even before its next event.
            ids.advance(stream, &last, drop);
        }
        for (pos, frame) in &buffered.frames {
            if last.covers(pos) {
                continue;
            }
            if !last.is_followed_by(pos) {
                gap(
                    &mut tally,
                    &Position::new(pos.epoch.clone(), pos.seq.saturating_sub(1)),
                );
            }
            tally.backlog(frame, outlet, Some((stream, pos)));
            last = pos.clone();
        }
        lock(&self.floors).insert(id, last);
        let mut members = lock(&self.members);
        members.outlets.insert(id, buffered.outlet.clone());
        members.snapshot = None;
        tally
    }
}

/// A resume whose buffer is gone: closed for overflowing it, or the connection left.
fn gone(conn: &Connection, tally: Tally) -> Tally {
    conn.close(1008, "resume backlog");
    tally
}

#[cfg(test)]
#[path = "subscribers_tests.rs"]
mod tests;
