//! What a fan-out did, counted as it queues: the hub adds it to its counters.

use std::sync::Arc;

use ws_proto::PreparedMessage;
use ws_server::{Connection, FanOut, SendError};

/// What one fan-out did, for the hub's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
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
    /// Wire formats the push was encoded in (at most one encode per format in use).
    pub encodes: u64,
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
