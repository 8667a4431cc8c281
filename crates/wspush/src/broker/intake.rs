//! The node's intake from the Redis bus: the one queue between the task
//! that reads the subscription and the task that delivers to the hub,
//! bounded in bytes (`--broker-intake-bytes`).
//!
//! The reader never waits: a node that cannot keep up must not stall its
//! socket (Redis would then buffer for it, up to its own output limit, and
//! cut the subscription) nor grow without end. When a message does not fit,
//! the node enters *gap mode*: it drops every data message, counted, until
//! the queue has drained to half, then admits again. Positioned browsers are
//! told by the hub, which sends a gap notice when the next delivered
//! position of a stream does not follow the last one; they can resume from
//! the history. One log line when gap mode starts, one when it ends.
//!
//! Subscribe, unsubscribe and disconnect commands (by connection or by
//! user) and survey queries are small and change or read state a program
//! relies on: they are admitted in gap mode too, within a reserve of a
//! quarter of the bound, and dropped (counted) only beyond it.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;

use super::BrokerCounters;

/// What one queued message costs beyond its bytes (the queue slot, the
/// `Bytes` handle, its allocation), so that a flood of empty messages is
/// bounded too.
pub const ENTRY_OVERHEAD: usize = 64;

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Bytes>,
    /// Cost of what is queued (bytes plus overhead).
    bytes: usize,
    /// Messages dropped since gap mode started; `None` when admitting.
    gap: Option<u64>,
}

/// The byte-bounded queue between the subscription reader and the delivery task.
#[derive(Debug)]
pub struct Intake {
    limit: usize,
    state: Mutex<State>,
    ready: Notify,
    counters: Arc<BrokerCounters>,
}

impl Intake {
    /// An empty intake holding at most `limit` bytes (plus the control reserve).
    pub fn new(limit: usize, counters: Arc<BrokerCounters>) -> Intake {
        Intake {
            limit: limit.max(1),
            state: Mutex::default(),
            ready: Notify::new(),
            counters,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a queue and two numbers, consistent after any panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `msg` if it fits; false when it was dropped (and counted).
    /// Never waits.
    pub fn offer(&self, msg: Bytes, control: bool) -> bool {
        let cost = msg.len() + ENTRY_OVERHEAD;
        let mut s = self.lock();
        let admitted = if control {
            s.bytes + cost <= self.limit + self.limit / 4
        } else {
            self.admits(&mut s, cost)
        };
        if !admitted {
            self.counters.intake_dropped.fetch_add(1, Ordering::Relaxed);
            if let Some(dropped) = &mut s.gap {
                *dropped += 1;
            }
            return false;
        }
        s.bytes += cost;
        s.queue.push_back(msg);
        let c = &self.counters;
        c.intake_bytes.store(s.bytes as u64, Ordering::Relaxed);
        c.intake_peak.fetch_max(s.bytes as u64, Ordering::Relaxed);
        drop(s);
        self.ready.notify_one();
        true
    }

    /// The admission rule for data, entering and leaving gap mode.
    fn admits(&self, s: &mut State, cost: usize) -> bool {
        if let Some(dropped) = s.gap {
            if s.bytes > self.limit / 2 {
                return false;
            }
            s.gap = None;
            tracing::warn!(
                dropped,
                "caught up with the Redis bus: delivering again (positioned browsers got gap notices)"
            );
        }
        // A lone message larger than the bound still passes an empty queue
        // (the reader already skips payloads over the bound).
        if s.bytes > 0 && s.bytes + cost > self.limit {
            s.gap = Some(0);
            self.counters.lag_episodes.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                queued_bytes = s.bytes,
                limit = self.limit,
                "this node lags the Redis bus: intake full, dropping messages until it catches up \
                 (gap notices to positioned browsers; see broker_intake_dropped)"
            );
            return false;
        }
        true
    }

    /// Waits for messages and moves up to `max` of them into `out`; returns
    /// whether more are queued behind them.
    pub async fn take(&self, out: &mut Vec<Bytes>, max: usize) -> bool {
        loop {
            {
                let mut guard = self.lock();
                let s = &mut *guard;
                if !s.queue.is_empty() {
                    let n = s.queue.len().min(max.max(1));
                    for msg in s.queue.drain(..n) {
                        s.bytes -= msg.len() + ENTRY_OVERHEAD;
                        out.push(msg);
                    }
                    self.counters
                        .intake_bytes
                        .store(s.bytes as u64, Ordering::Relaxed);
                    return !s.queue.is_empty();
                }
            }
            // One consumer: a notification sent while we were not waiting is
            // kept as a permit, so none is lost between the check and here.
            self.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    fn intake(limit: usize) -> (Intake, Arc<BrokerCounters>) {
        let counters = Arc::new(BrokerCounters::default());
        (Intake::new(limit, Arc::clone(&counters)), counters)
    }

    fn take_now(i: &Intake) -> Vec<Bytes> {
        let mut out = Vec::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(i.take(&mut out, usize::MAX));
        out
    }

    #[test]
    fn past_the_bound_it_drops_until_half_drained_then_admits_again() {
        let unit = 100 - ENTRY_OVERHEAD;
        let (i, c) = intake(1000);
        for _ in 0..10 {
            assert!(i.offer(msg(unit), false));
        }
        // Full: gap mode, one episode however many are dropped.
        assert!(!i.offer(msg(unit), false));
        assert!(!i.offer(msg(1), false));
        assert_eq!(c.lag_episodes.load(Ordering::Relaxed), 1);
        assert_eq!(c.intake_dropped.load(Ordering::Relaxed), 2);
        assert_eq!(c.intake_peak.load(Ordering::Relaxed), 1000);
        // Control commands still pass, within the reserve.
        assert!(i.offer(msg(unit), true));
        assert!(i.offer(msg(unit), true));
        assert!(!i.offer(msg(unit), true));
        assert_eq!(take_now(&i).len(), 12);
        assert_eq!(c.intake_bytes.load(Ordering::Relaxed), 0);
        // Drained: admitting again, and the bound still holds.
        assert!(i.offer(msg(unit), false));
        assert_eq!(c.lag_episodes.load(Ordering::Relaxed), 1);
        assert_eq!(c.intake_dropped.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_message_larger_than_the_bound_passes_an_empty_queue_only() {
        let (i, c) = intake(100);
        assert!(i.offer(msg(500), false));
        assert!(!i.offer(msg(1), false));
        assert_eq!(take_now(&i).len(), 1);
        assert!(i.offer(msg(1), false));
        assert_eq!(c.lag_episodes.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn take_reports_what_is_left_behind() {
        let (i, _) = intake(10_000);
        for _ in 0..3 {
            assert!(i.offer(msg(1), false));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        assert!(rt.block_on(i.take(&mut out, 2)));
        assert!(!rt.block_on(i.take(&mut out, 2)));
        assert_eq!(out.len(), 3);
    }
}
