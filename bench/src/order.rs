//! What a subscriber checks of the messages it receives, whatever the transport: order per
//! publisher connection (across publishers none is defined), loss, latency, and when it has
//! everything.

use crate::payload::{self, Parsed};
use crate::subscriber::{SubError, SubSpec};
use crate::tally::Tally;

/// Per-subscriber sequence state.
pub(crate) struct Order {
    /// Next expected sequence number, per publisher.
    next: Box<[u64]>,
    /// Publishers whose last message has come.
    finished: usize,
    bad: bool,
    ready: bool,
}

impl Order {
    pub(crate) fn new(spec: &SubSpec, tally: &Tally) -> Order {
        let order = Order {
            next: vec![0; spec.expected.len()].into_boxed_slice(),
            finished: spec.expected.iter().filter(|n| **n == 0).count(),
            bad: false,
            ready: false,
        };
        if order.finished == spec.expected.len() {
            // Nothing will come on this channel.
            tally.bump(&tally.done);
        }
        order
    }
}

/// Messages counted during one read, added to the tally once (one atomic add per read, not
/// per message), whatever the transport that carried them.
#[derive(Default)]
pub(crate) struct Batch {
    delivered: u64,
    finished: bool,
}

impl Batch {
    /// One message's payload as the server sent it (a frame's, or an event's `data`).
    pub(crate) fn message(
        &mut self,
        body: &[u8],
        now: u64,
        spec: &SubSpec,
        tally: &Tally,
        order: &mut Order,
    ) -> Result<(), SubError> {
        match payload::parse(body) {
            Some(Parsed::Data {
                seq,
                sent_ns,
                publisher,
            }) => {
                tally.latency.record(now.saturating_sub(sent_ns));
                self.delivered += 1;
                self.finished |= check_order(seq, publisher, spec, tally, order)?;
            }
            Some(Parsed::Warmup) if !order.ready => {
                order.ready = true;
                tally.bump(&tally.ready);
            }
            _ => {}
        }
        Ok(())
    }

    /// Adds the batch to the tally.
    pub(crate) fn flush(self, tally: &Tally) {
        if self.delivered > 0 {
            tally.add_delivered(self.delivered);
        }
        // Only after the deliveries are counted: the runner reads them once all are done.
        if self.finished {
            tally.bump(&tally.done);
        }
    }
}

/// Returns whether this message completed the subscriber: the last message
/// of the last publisher still to finish.
pub(crate) fn check_order(
    seq: u64,
    publisher: u32,
    spec: &SubSpec,
    tally: &Tally,
    order: &mut Order,
) -> Result<bool, SubError> {
    use std::sync::atomic::Ordering::Relaxed;
    let p = publisher as usize;
    let (Some(next), Some(&expected)) = (order.next.get_mut(p), spec.expected.get(p)) else {
        return Err(SubError::Frame(format!("a message from publisher {p}")));
    };
    let before = *next;
    if seq == *next {
        *next += 1;
    } else if seq > *next {
        tally.lost.fetch_add(seq - *next, Relaxed);
        *next = seq + 1;
        mark_bad(tally, order);
    } else {
        tally.out_of_order.fetch_add(1, Relaxed);
        mark_bad(tally, order);
    }
    tally.set_progress(spec.index, order.next.iter().sum());
    let last = order.next.get(p).copied() == Some(expected) && seq + 1 == expected;
    if last && before < expected {
        order.finished += 1;
        return Ok(order.finished == spec.expected.len());
    }
    Ok(false)
}

pub(crate) fn mark_bad(tally: &Tally, order: &mut Order) {
    if !order.bad {
        order.bad = true;
        tally
            .bad_clients
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
