//! A deadline for a hand-written poll loop that may be set and cleared on
//! every read yet touches tokio's timer rarely.
//!
//! The message timeout is set whenever a read ends inside a message, which
//! for a pipelining client is almost every read. Moving a registered timer
//! costs a lock in tokio's timer wheel; here the sleep keeps its (earlier)
//! deadline when the deadline moves later, and when it fires early it is
//! moved to the real one. A client that keeps sending costs about one timer
//! registration per timeout period, not one per read.

use std::future::Future;
use std::pin::Pin;
use std::task::Context;

use tokio::time::{Instant, Sleep};

#[derive(Debug, Default)]
pub(crate) struct Deadline {
    /// The deadline in force, if any.
    at: Option<Instant>,
    /// The wake-up registered with the timer: at `at` or before it. Made at
    /// the first use, then reused for the connection's life.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    pub(crate) fn is_set(&self) -> bool {
        self.at.is_some()
    }

    pub(crate) fn set(&mut self, at: Instant) {
        self.at = Some(at);
    }

    /// No deadline. A wake-up already registered may still come once, which
    /// the poll loop takes as a spurious wake-up.
    pub(crate) fn clear(&mut self) {
        self.at = None;
    }

    /// Whether the deadline has passed; if not, the task is woken when it
    /// may have.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(at) = self.at else {
            return false;
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if sleep.deadline() > at {
            sleep.as_mut().reset(at);
        }
        loop {
            if sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            if sleep.deadline() >= at {
                return true;
            }
            // It fired for an earlier deadline, since moved later.
            sleep.as_mut().reset(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::task::Poll;
    use std::time::Duration;

    use super::*;

    /// Polls once, as the connection's poll loop does.
    async fn expired(d: &mut Deadline) -> bool {
        poll_fn(|cx| Poll::Ready(d.poll_expired(cx))).await
    }

    #[tokio::test(start_paused = true)]
    async fn fires_at_the_latest_deadline_set() {
        let mut d = Deadline::default();
        assert!(!expired(&mut d).await, "no deadline never expires");
        let t0 = Instant::now();
        d.set(t0 + Duration::from_secs(1));
        assert!(!expired(&mut d).await);
        // Moved later before the first one passed: the early wake-up is not
        // an expiry.
        d.set(t0 + Duration::from_secs(3));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!expired(&mut d).await);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(expired(&mut d).await);
        // Cleared, then set earlier than the registered wake-up.
        d.clear();
        assert!(!d.is_set() && !expired(&mut d).await);
        d.set(Instant::now() + Duration::from_secs(10));
        assert!(!expired(&mut d).await);
        d.set(Instant::now() + Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(expired(&mut d).await);
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_is_woken_at_the_deadline() {
        let mut d = Deadline::default();
        d.set(Instant::now() + Duration::from_secs(5));
        // With time paused, tokio advances the clock to the next timer when
        // the task waits, so this completes only if a wake-up was registered.
        let woke = tokio::time::timeout(
            Duration::from_secs(60),
            poll_fn(|cx| {
                if d.poll_expired(cx) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }),
        )
        .await;
        assert!(woke.is_ok());
    }
}
