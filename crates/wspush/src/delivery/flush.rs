//! Who writes a push: the hint a caller gives about what follows it.

/// Whether more pushes follow this one at once, as the caller knows: a pipelining program
/// with requests already waiting, a broker burst. The hint only picks who writes; order and
/// delivery are the same either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// More follow at once: the connection tasks write, each taking the whole burst queued
    /// by the time it runs.
    Burst,
    /// Nothing is known to follow: idle browsers are written at once by the fan-out
    /// writers, and a push that arrives while they write joins them (`ws_server::direct`).
    Now,
}

impl Flush {
    /// [`Flush::Burst`] when more input is already waiting behind this push.
    pub fn after(more_waiting: bool) -> Self {
        if more_waiting {
            Flush::Burst
        } else {
            Flush::Now
        }
    }
}
