//! The subscribers of one stream (the broadcast stream or a channel) and its
//! fan-out.
//!
//! Subscribers come in three sets: `plain` ones get the raw data,
//! `positioned` ones the enveloped variant (see [`crate::delivery::position`]), and
//! `pending` ones are resuming: live messages are buffered for them until
//! their replay is queued, then de-duplicated by position. Each variant is
//! encoded once per push and shared by its whole set; the enveloped one is
//! built only when a positioned or pending subscriber exists.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use ws_proto::PreparedMessage;
use ws_server::{Connection, FanOut, SendError};

use crate::delivery::history::Replay;
use crate::delivery::payload::Payload;
use crate::delivery::position::{Position, envelope, gap_notice};

/// Live messages buffered for one resuming connection while its history is read, at most
/// this many frame bytes and this many messages: beyond either the connection is closed
/// (1008) at once rather than silently trimmed.
const MAX_PENDING_BYTES: usize = 16 << 20;
const MAX_PENDING: usize = 65_536;

/// What a resuming connection buffered.
struct Buffered {
    conn: Connection,
    frames: Vec<(Position, Arc<PreparedMessage>)>,
    bytes: usize,
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
    /// Queues `frame` to `conn` as part of a backlog it asked for (see
    /// [`Connection::send_backlog`]).
    pub fn backlog(&mut self, frame: &Arc<PreparedMessage>, conn: &Connection) {
        let sent = conn.send_backlog(frame);
        self.count(sent, frame);
    }

    fn count(&mut self, sent: Result<(), SendError>, frame: &PreparedMessage) {
        match sent {
            Ok(()) => {
                self.queued += 1;
                self.bytes += frame.plain_frame().len() as u64;
            }
            Err(SendError::Full) => self.full += 1,
            Err(_) => self.closed += 1,
        }
    }

    /// Queues `frame` to each of `conns` through `out` (which writes it to the idle ones
    /// when it ends), counting the outcomes.
    pub fn send_to<'a>(
        &mut self,
        frame: &Arc<PreparedMessage>,
        conns: impl Iterator<Item = &'a Connection>,
        out: &mut FanOut<'_>,
    ) {
        for conn in conns {
            let sent = out.send(conn, frame);
            self.count(sent, frame);
        }
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
    /// Positioned subscribers that resumed up to a position the live stream may not have
    /// reached yet (a node lagging its broker): live messages they already have are skipped
    /// for them, until the stream passes their floor. Usually empty.
    floors: Mutex<HashMap<u64, Position>>,
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
                .insert(
                    id,
                    Buffered {
                        conn,
                        frames: Vec::new(),
                        bytes: 0,
                    },
                );
        } else if positioned {
            self.positioned.insert(id, conn);
        } else {
            self.plain.insert(id, conn);
        }
    }

    /// Removes a subscriber; false if it was not one.
    pub fn remove(&mut self, id: u64) -> bool {
        let pending = self.pending.get_mut().unwrap_or_else(|e| e.into_inner());
        self.floors
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
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
    /// `pos` does not follow the last position delivered. A subscriber that resumed
    /// past `pos` (its node lags the broker) does not get it twice.
    pub fn fan_out(
        &self,
        stream: Option<&str>,
        pos: Option<&Position>,
        payload: Payload,
        check_order: bool,
        out: &mut FanOut<'_>,
    ) -> Tally {
        let mut tally = Tally::default();
        let mut pending = lock(&self.pending);
        let mut skip_positioned = false;
        let mut node_gap = false;
        if let (true, Some(pos)) = (check_order, pos) {
            let mut last = lock(&self.last);
            match &*last {
                Some(l) if l.covers(pos) => skip_positioned = true,
                Some(l) if !l.is_followed_by(pos) => node_gap = true,
                _ => {}
            }
            if !skip_positioned {
                *last = Some(pos.clone());
            }
        }
        // Resumed subscribers that already have `pos` (they get nothing now), and those
        // that missed messages before it (they get a gap notice first).
        let mut have = Vec::new();
        let mut behind = Vec::new();
        if let (false, Some(pos)) = (skip_positioned, pos) {
            let mut floors = lock(&self.floors);
            floors.retain(|id, floor| {
                if floor.covers(pos) {
                    have.push(*id);
                    return true;
                }
                if !floor.is_followed_by(pos) {
                    behind.push(*id);
                }
                false
            });
            if node_gap {
                let floored: Vec<u64> = have.iter().chain(&behind).copied().collect();
                behind.extend(self.positioned.keys().filter(|id| !floored.contains(id)));
            }
            if !behind.is_empty() {
                let before = Position::new(pos.epoch.clone(), pos.seq.saturating_sub(1));
                let notice = prepare(gap_notice(stream, &before));
                let conns = behind.iter().filter_map(|id| self.positioned.get(id));
                tally.send_to(&notice, conns, out);
                tally.gaps += behind.len() as u64;
            }
        }
        let wants_envelope =
            !skip_positioned && (!self.positioned.is_empty() || !pending.is_empty());
        let enveloped = wants_envelope.then(|| prepare(envelope(&payload, stream, pos)));
        if !self.plain.is_empty() {
            tally.send_to(&prepare(payload), self.plain.values(), out);
        }
        if let Some(frame) = enveloped {
            if have.is_empty() {
                tally.send_to(&frame, self.positioned.values(), out);
            } else {
                let conns = self.positioned.iter().filter(|(id, _)| !have.contains(id));
                tally.send_to(&frame, conns.map(|(_, c)| c), out);
            }
            if let Some(pos) = pos {
                let mut overflowed = Vec::new();
                let size = frame.plain_frame().len();
                for (id, buffer) in pending.iter_mut() {
                    if buffer.frames.len() >= MAX_PENDING || buffer.bytes + size > MAX_PENDING_BYTES
                    {
                        overflowed.push(*id);
                    } else {
                        buffer.frames.push((pos.clone(), Arc::clone(&frame)));
                        buffer.bytes += size;
                    }
                }
                for id in overflowed {
                    if let Some(buffer) = pending.remove(&id) {
                        tracing::warn!(conn = id, "resume backlog full; closing");
                        buffer.conn.close(1008, "resume backlog");
                    }
                }
            }
        }
        tally
    }

    /// Queues a resuming subscriber's replay, then the live messages buffered
    /// meanwhile that the replay did not already cover, and makes it live. The whole
    /// backlog is queued beyond the connection's limit (it is bounded by the history's),
    /// so a replay larger than one queue's worth is delivered, paced by the socket.
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
        if let Some(gap) = &replay.gap {
            tally.backlog(&prepare(gap_notice(stream, gap)), conn);
            tally.gaps += 1;
        }
        let mut last = replay.last;
        for (seq, payload) in replay.entries {
            let pos = Position::new(last.epoch.clone(), seq);
            tally.backlog(&prepare(envelope(&payload, stream, Some(&pos))), conn);
        }
        for (pos, frame) in buffered.frames {
            if last.covers(&pos) {
                continue;
            }
            if !last.is_followed_by(&pos) {
                let before = Position::new(pos.epoch.clone(), pos.seq.saturating_sub(1));
                tally.backlog(&prepare(gap_notice(stream, &before)), conn);
                tally.gaps += 1;
            }
            tally.backlog(&frame, conn);
            last = pos;
        }
        self.floors
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, last);
        self.positioned.insert(id, conn.clone());
        tally
    }
}
