//! [`Taken`]: what a connection task took from its queue and has not finished writing, and
//! whether it told the senders it is writing. Both go back to the queue under one lock
//! once everything is written ([`Taken::finish`]).

use bytes::Bytes;

use super::writer::WriteBuf;
use crate::connection::{Control, Shared, Woken};

#[derive(Debug, Default)]
pub(super) struct Taken {
    /// Bytes taken from the queue and still counted there until written.
    in_flight: usize,
    /// Senders were told the task is writing (direct writes wait).
    writing: bool,
}

impl Taken {
    /// Counts what a wake-up took; the rest of a frame a sender wrote in part goes first in
    /// `out`. Returns the close request that came with it.
    pub(super) fn absorb(&mut self, woken: Woken, out: &mut WriteBuf) -> Control {
        self.in_flight += woken.bytes;
        self.writing |= woken.writing;
        self.claim_partial(woken.partial, out);
        woken.control
    }

    /// Counts `bytes` more taken from the queue.
    pub(super) fn add(&mut self, bytes: usize) {
        self.in_flight += bytes;
    }

    /// The rest of a frame a sender wrote in part: it must be next on the wire.
    pub(super) fn claim_partial(&mut self, rest: Option<Bytes>, out: &mut WriteBuf) {
        if let Some(rest) = rest {
            self.in_flight += rest.len();
            out.push_started_front(rest);
        }
    }

    pub(super) fn is_writing(&self) -> bool {
        self.writing
    }

    /// The senders were told the task is writing (`Shared::begin_write`).
    pub(super) fn set_writing(&mut self) {
        self.writing = true;
    }

    /// Everything taken is written: its bytes leave the queue's count and senders may write
    /// directly again, under one lock.
    pub(super) fn finish(&mut self, shared: &Shared) {
        if self.writing || self.in_flight > 0 {
            shared.finish_write(self.in_flight, self.writing);
            *self = Taken::default();
        }
    }
}
