//! What a fan-out did, counted as it queues: the hub adds it to its counters.

use ws_server::{FanOut, SendError};

use super::outlet::{At, Frame, Outlet};

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
    /// Queues `frame` to `outlet` as part of a backlog it asked for (see
    /// [`Outlet::queue_backlog`]).
    pub fn backlog(&mut self, frame: &Frame, outlet: &Outlet, at: At<'_>) {
        let sent = outlet.queue_backlog(frame, at);
        self.count(sent, frame);
    }

    fn count(&mut self, sent: Result<(), SendError>, frame: &Frame) {
        match sent {
            Ok(()) => {
                self.queued += 1;
                self.bytes += frame.len() as u64;
            }
            Err(SendError::Full) => self.full += 1,
            Err(_) => self.closed += 1,
        }
    }

    /// Queues `frame` (at `at` in its stream) to each of `outlets` through `out` (which
    /// writes it to the idle ones when it ends), counting the outcomes.
    pub fn send_to<'a>(
        &mut self,
        frame: &Frame,
        outlets: impl Iterator<Item = &'a Outlet>,
        at: At<'_>,
        out: &mut FanOut<'_>,
    ) {
        for outlet in outlets {
            let sent = outlet.queue(frame, at, out);
            self.count(sent, frame);
        }
    }
}

/// Queues the frames of several pushes (`frames[i]` is push `i`'s, at `at[i]` in its
/// stream), in push order, to each of `outlets`, each outlet's queue taken once for all of
/// them; push `i`'s outcomes are counted in `tallies[i]`.
pub fn send_each_to<'a>(
    tallies: &mut [Tally],
    frames: &[Frame],
    at: &[At<'_>],
    outlets: impl Iterator<Item = &'a Outlet>,
    out: &mut FanOut<'_>,
) {
    for outlet in outlets {
        outlet.queue_all(frames, at, out, |i, sent| {
            if let (Some(tally), Some(frame)) = (tallies.get_mut(i), frames.get(i)) {
                tally.count(sent, frame);
            }
        });
    }
}
