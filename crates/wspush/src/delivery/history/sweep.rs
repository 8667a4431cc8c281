//! Expiry of the embedded broker's history on a timer: bounded steps over
//! the `oldest` heap and the `idle` queue, never a scan of every stream (see
//! the parent module for the locks and their order).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Due, Kept, MemoryHistory, lock, sparse};

impl MemoryHistory {
    /// Runs expiry until `shutdown`: every tick (a quarter of the age limit,
    /// 0.1 to 1 s) bounded steps of [`MemoryHistory::sweep`] until nothing is
    /// due, yielding between them. Returns at once without an age limit.
    pub async fn expire_until(&self, shutdown: tokio_util::sync::CancellationToken) {
        /// Streams one step looks at: a step holds the locks for well under
        /// a millisecond, so publishers barely wait for it.
        const BUDGET: usize = 1024;
        let Some(age) = self.ledger.keep.max_age else {
            return;
        };
        let every = (age / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            while self.sweep(Instant::now(), BUDGET) && !shutdown.is_cancelled() {
                tokio::task::yield_now().await;
            }
        }
    }

    /// One bounded step of expiry, for a timer: drops messages older than the
    /// age limit and forgets channels idle past it, looking at no more than
    /// `budget` streams of each queue. Returns whether more are due already.
    pub fn sweep(&self, now: Instant, budget: usize) -> bool {
        let Some(cutoff) = self.ledger.keep.cutoff(now) else {
            return false;
        };
        let mut stale = Vec::new();
        let more_old = self.sweep_oldest(cutoff, budget, &mut stale);
        let more_idle = self.sweep_idle(cutoff, budget, &mut stale);
        self.forget(stale, cutoff, now);
        more_old || more_idle
    }

    /// Expires the messages of the streams whose oldest one is too old.
    fn sweep_oldest(&self, cutoff: Instant, budget: usize, stale: &mut Vec<Arc<Kept>>) -> bool {
        let ledger = &self.ledger;
        let mut now_idle = Vec::new();
        let mut heap = lock(&ledger.oldest);
        for _ in 0..budget {
            match heap.peek() {
                Some(d) if d.at < cutoff => {}
                _ => break,
            }
            let Some(due) = heap.pop() else { break };
            let Some(kept) = due.kept.upgrade() else {
                continue;
            };
            let mut e = kept.lock();
            e.expire(Some(cutoff), ledger);
            if let Some((_, at, _)) = e.list.front() {
                heap.push(Due { at: *at, ..due });
            } else if e.last_append < cutoff && !e.in_idle {
                e.in_oldest = false;
                drop(e);
                stale.push(kept);
            } else {
                now_idle.extend(e.leave_oldest().map(|at| (at, due.kept)));
            }
        }
        let more = heap.peek().is_some_and(|d| d.at < cutoff);
        let len = heap.len();
        if sparse(len, heap.capacity()) {
            heap.shrink_to(len * 2);
        }
        drop(heap);
        lock(&ledger.idle).extend(now_idle);
        more
    }

    /// Picks the streams without messages whose last append is too old.
    fn sweep_idle(&self, cutoff: Instant, budget: usize, stale: &mut Vec<Arc<Kept>>) -> bool {
        let mut idle = lock(&self.ledger.idle);
        for _ in 0..budget {
            match idle.front() {
                Some((at, _)) if *at < cutoff => {}
                _ => break,
            }
            let Some((_, weak)) = idle.pop_front() else {
                break;
            };
            let Some(kept) = weak.upgrade() else { continue };
            let mut e = kept.lock();
            e.in_idle = false;
            if !e.list.is_empty() {
                // It holds messages again: the `oldest` heap has it.
                continue;
            }
            if e.last_append < cutoff {
                drop(e);
                stale.push(kept);
            } else {
                e.in_idle = true;
                idle.push_back((e.last_append, weak));
            }
        }
        let more = idle.front().is_some_and(|(at, _)| *at < cutoff);
        let len = idle.len();
        if sparse(len, idle.capacity()) {
            idle.shrink_to(len * 2);
        }
        more
    }

    /// Removes stale channels from the map unless a publisher holds one right
    /// now (it then joins a queue again); `stale` streams are in no queue.
    fn forget(&self, stale: Vec<Arc<Kept>>, cutoff: Instant, now: Instant) {
        if stale.is_empty() {
            return;
        }
        let mut busy = Vec::new();
        {
            let mut map = self.channels.write().unwrap_or_else(|e| e.into_inner());
            for kept in stale {
                // The broadcast stream is never forgotten; its next append
                // puts it in a queue again.
                let Some(name) = &kept.name else { continue };
                // Only `stale` holds it: its ring is gone already.
                if Arc::strong_count(&kept) == 1 {
                    continue;
                }
                let Some(ring) = map.get(name) else { continue };
                // A publisher holds the ring (maybe across a long fan-out).
                // New holders need the map lock, so with only the map holding
                // it, no one is between looking it up and appending.
                if Arc::strong_count(ring) > 1 {
                    busy.push(kept);
                    continue;
                }
                if !Arc::ptr_eq(&lock(ring).kept, &kept) {
                    continue;
                }
                let idle = {
                    let e = kept.lock();
                    e.list.is_empty() && e.last_append < cutoff
                };
                if idle {
                    map.remove(name);
                    self.ledger.expired_channels.fetch_add(1, Ordering::Relaxed);
                } else {
                    busy.push(kept);
                }
            }
            let len = map.len();
            if sparse(len, map.capacity()) {
                map.shrink_to(len * 2);
            }
        }
        for kept in busy {
            let join = kept.lock().join(now);
            self.ledger.join(&kept, join);
        }
    }
}
