//! What every subscriber of one benchmark point reports, shared by all of them
//! and read by the runner: counters, the latency histogram, per-subscriber
//! progress, and a [`Notify`] that wakes the runner when a milestone moves.
//!
//! Subscribers write only atomics here, so the runner can abort their tasks at
//! the end of a point and still read everything they saw.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::histogram::{Histogram, thread_shard};

const SHARDS: usize = 8;

/// A counter that many threads bump without sharing a cache line.
#[derive(Default)]
pub struct ShardedCounter {
    shards: [PaddedU64; SHARDS],
}

#[derive(Default)]
#[repr(align(64))]
struct PaddedU64(AtomicU64);

impl ShardedCounter {
    /// Adds `n` on the calling thread's shard.
    pub fn add(&self, n: u64) {
        self.shards[thread_shard(SHARDS)]
            .0
            .fetch_add(n, Ordering::Relaxed);
    }

    /// The sum of every shard.
    pub fn sum(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}

/// Shared state of one benchmark point.
pub struct Tally {
    /// Publish→receive latency, nanoseconds.
    pub latency: Histogram,
    /// Data messages received by well-behaved subscribers.
    pub delivered: ShardedCounter,
    /// Subscribers whose upgrade completed.
    pub connected: AtomicUsize,
    /// Subscribers that failed to connect or lost their connection.
    pub failed: AtomicUsize,
    /// Subscribers that have seen a warm-up message.
    pub ready: AtomicUsize,
    /// Subscribers that have seen their channel's last message.
    pub done: AtomicUsize,
    /// Sequence gaps (messages skipped), summed over subscribers.
    pub lost: AtomicU64,
    /// Messages older than one already seen, summed over subscribers.
    pub out_of_order: AtomicU64,
    /// Subscribers with at least one gap or reorder.
    pub bad_clients: AtomicUsize,
    /// The first error a subscriber hit, for the report.
    pub first_error: std::sync::Mutex<Option<String>>,
    /// The fewest deliveries a waiting publisher needs (`u64::MAX`: none waits; see
    /// [`Tally::add_delivered`]).
    wake_at: AtomicU64,
    delivery: Notify,
    /// Next expected sequence number, per subscriber.
    progress: Vec<AtomicU64>,
    changed: Notify,
}

impl Tally {
    /// State for `subscribers` subscribers.
    pub fn new(subscribers: usize) -> Self {
        Tally {
            latency: Histogram::default(),
            delivered: ShardedCounter::default(),
            connected: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            ready: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            lost: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            bad_clients: AtomicUsize::new(0),
            first_error: std::sync::Mutex::new(None),
            wake_at: AtomicU64::new(u64::MAX),
            delivery: Notify::new(),
            progress: (0..subscribers).map(|_| AtomicU64::new(0)).collect(),
            changed: Notify::new(),
        }
    }

    /// Bumps a milestone counter and wakes the runner.
    pub fn bump(&self, counter: &AtomicUsize) {
        counter.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// Counts `n` deliveries; wakes the publishers only once the total reaches what one
    /// of them waits for. A publisher woken for nothing costs the generator a task switch
    /// and a check, at every read of every subscriber while the brake holds, and that CPU
    /// is taken from the server under test; with several publishers, several times over.
    pub fn add_delivered(&self, n: u64) {
        self.delivered.add(n);
        let wake_at = self.wake_at.load(Ordering::Relaxed);
        if wake_at != u64::MAX
            && self.delivered.sum() >= wake_at
            && self.wake_at.swap(u64::MAX, Ordering::Relaxed) != u64::MAX
        {
            // Every waiter: those still short of their need wait again.
            self.delivery.notify_waiters();
        }
    }

    /// Returns once `needed` deliveries have been counted, or after `limit` (the wake-up
    /// is best effort: the caller re-checks and waits again).
    pub async fn wait_delivered(&self, limit: Duration, needed: u64) {
        let woken = self.delivery.notified();
        tokio::pin!(woken);
        // Registered before the need is posted and the count checked, so a delivery after
        // the check wakes it.
        woken.as_mut().enable();
        self.wake_at.fetch_min(needed, Ordering::Relaxed);
        if self.delivered.sum() >= needed {
            return;
        }
        let _ = tokio::time::timeout(limit, woken).await;
    }

    /// Records a subscriber's failure (kept: the first message).
    pub fn fail(&self, error: String) {
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(error);
        }
        self.bump(&self.failed);
    }

    /// Publishes subscriber `i`'s next expected sequence number.
    pub fn set_progress(&self, i: usize, next: u64) {
        if let Some(p) = self.progress.get(i) {
            p.store(next, Ordering::Relaxed);
        }
    }

    /// Subscriber `i`'s next expected sequence number.
    pub fn progress(&self, i: usize) -> u64 {
        self.progress
            .get(i)
            .map_or(0, |p| p.load(Ordering::Relaxed))
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::Relaxed)
    }

    /// Waits until `cond` holds or `limit` passes; returns whether it holds.
    /// Woken by [`Tally::bump`], so no polling interval is involved.
    pub async fn wait_until(&self, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before the check, so a bump between check and await is not lost.
            notified.as_mut().enable();
            if cond() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return cond();
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::Tally;

    /// A publisher waiting for deliveries is woken when they reach its need, and not by
    /// every delivery before (each wake-up would cost the generator CPU the server needs).
    #[tokio::test]
    async fn a_waiting_publisher_wakes_once_its_need_is_met() {
        let tally = Arc::new(Tally::new(0));
        let waiter = {
            let tally = Arc::clone(&tally);
            tokio::spawn(async move { tally.wait_delivered(Duration::from_secs(60), 10).await })
        };
        // Until it has posted its need nothing can be checked; it posts it at its first poll.
        while tally.wake_at.load(Ordering::Relaxed) != 10 {
            tokio::task::yield_now().await;
        }
        tally.add_delivered(9);
        assert_eq!(tally.wake_at.load(Ordering::Relaxed), 10);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "woken short of its need");
        tally.add_delivered(1);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            tally.wake_at.load(Ordering::Relaxed),
            u64::MAX,
            "nobody waits any more"
        );
        // A need already met returns at once.
        tally.wait_delivered(Duration::from_secs(60), 10).await;
    }
}
