//! `publish`'s `idempotency_key`: the same key on the same channel within the window
//! answers the first publish's result and publishes nothing.
//!
//! Kept on this node, in memory, for the history window (`history_secs`; 5 minutes when
//! history has no age limit, Centrifugo's default) and for at most [`MAX_KEYS`] keys,
//! the oldest forgotten first. With the Redis broker a retry must reach the same node
//! to be recognised (documented in the README).
//!
//! A second request with a key whose first publish is still in flight waits for it
//! (`OnceCell`); a publish that failed leaves the key free, so a retry publishes.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use super::wire::ApiError;
use crate::broker::interface::Done;

/// The most keys remembered at once: about 100 bytes each.
pub const MAX_KEYS: usize = 100_000;

/// The window when history has no age limit.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

type Slot = Arc<OnceCell<Done>>;

/// Remembered publishes by (channel, key).
pub struct Idempotency {
    window: Duration,
    max: usize,
    state: Mutex<Keys>,
}

#[derive(Default)]
struct Keys {
    slots: HashMap<(String, String), (Instant, Slot)>,
    /// Keys in the order they were first seen, for expiry and the count bound.
    order: VecDeque<(Instant, (String, String))>,
}

impl Idempotency {
    /// Keys live for `window`; at most `max` at once.
    pub fn new(window: Duration, max: usize) -> Idempotency {
        Idempotency {
            window,
            max: max.max(1),
            state: Mutex::default(),
        }
    }

    fn slot(&self, channel: &str, key: &str, now: Instant) -> Slot {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let k = (channel.to_owned(), key.to_owned());
        if let Some((made, slot)) = s.slots.get(&k) {
            if now.duration_since(*made) < self.window {
                return Arc::clone(slot);
            }
        }
        // Room for a new key: the expired ones go, and the oldest beyond the count.
        while let Some((at, _)) = s.order.front() {
            if now.duration_since(*at) < self.window && s.order.len() < self.max {
                break;
            }
            if let Some((at, old)) = s.order.pop_front() {
                // Only the entry this queue slot made (a key made again has its own).
                if s.slots.get(&old).is_some_and(|(made, _)| *made == at) {
                    s.slots.remove(&old);
                }
            }
        }
        let slot = Slot::default();
        s.slots.insert(k.clone(), (now, Arc::clone(&slot)));
        s.order.push_back((now, k));
        slot
    }

    /// Runs `publish` unless (channel, key) already published within the window; either
    /// way answers the first successful publish's result.
    pub async fn once<F, Fut>(&self, channel: &str, key: &str, publish: F) -> Result<Done, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Done, ApiError>>,
    {
        let slot = self.slot(channel, key, Instant::now());
        slot.get_or_try_init(publish).await.cloned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::delivery::position::Position;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn done(seq: u64) -> Done {
        Done {
            count: 1,
            position: Some(Position::new("e", seq)),
        }
    }

    #[tokio::test]
    async fn a_key_publishes_once_per_channel() {
        let idem = Idempotency::new(Duration::from_secs(60), 10);
        let runs = AtomicU64::new(0);
        let publish = || async {
            let n = runs.fetch_add(1, Ordering::Relaxed) + 1;
            Ok(done(n))
        };
        assert_eq!(idem.once("a", "k", publish).await.unwrap(), done(1));
        assert_eq!(idem.once("a", "k", publish).await.unwrap(), done(1));
        assert_eq!(idem.once("b", "k", publish).await.unwrap(), done(2));
        assert_eq!(runs.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn a_failed_publish_leaves_the_key_free() {
        let idem = Idempotency::new(Duration::from_secs(60), 10);
        let failed = idem
            .once("a", "k", || async { Err(ApiError::BadRequest("no")) })
            .await;
        assert!(failed.is_err());
        let ok = idem.once("a", "k", || async { Ok(done(7)) }).await;
        assert_eq!(ok.unwrap(), done(7));
    }

    #[test]
    fn keys_expire_and_are_bounded() {
        let idem = Idempotency::new(Duration::from_secs(10), 2);
        let t0 = Instant::now();
        let a = idem.slot("c", "a", t0);
        assert!(Arc::ptr_eq(&a, &idem.slot("c", "a", t0)));
        // Past the window: a fresh slot.
        let later = t0 + Duration::from_secs(11);
        assert!(!Arc::ptr_eq(&a, &idem.slot("c", "a", later)));
        // Beyond the count, the oldest goes, not the others.
        let b = idem.slot("c", "b", later);
        idem.slot("c", "x", later);
        assert!(Arc::ptr_eq(&b, &idem.slot("c", "b", later)));
        assert_eq!(idem.state.lock().unwrap().slots.len(), 2);
    }
}
