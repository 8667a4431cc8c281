//! Receipts: a push this node would receive itself succeeds only once its
//! own subscription has received it back from Redis.
//!
//! Redis answering the publish is not enough: after a restart the publish
//! connection is back before the subscription, Redis has no subscriber for
//! the message, and the caller would get a success for browsers that got
//! nothing. So every such push carries a ticket (see [`super::bus::Receipt`]),
//! numbered in pipeline order. One publish connection means Redis runs them
//! in that order, and one subscription receives them in that order, so a
//! queue of waiting callers in ticket order is enough: when ticket `t`
//! arrives, every waiter up to `t` is answered.
//!
//! A push is refused while the subscription is down (`subscription not
//! ready`), fails when the subscription is lost before its ticket came back,
//! and times out (`broker did not answer within …`) when it does not come
//! back within the broker timeout.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::BrokerError;

/// Tickets whose message was received but could not be taken in, kept for
/// answers that come after their message (a handful at most in practice).
const FAILED_KEPT: usize = 64;

/// Why a push is refused before it is sent.
pub const NOT_READY: &str = "subscription not ready";

struct Waiter<T> {
    ticket: u64,
    deadline: Instant,
    value: T,
    reply: oneshot::Sender<Result<T, BrokerError>>,
}

struct State<T> {
    /// The subscription's generation while it is up.
    up: Option<u64>,
    generation: u64,
    /// Highest ticket received back.
    seen: u64,
    failed: VecDeque<u64>,
    waiting: VecDeque<Waiter<T>>,
}

/// The callers waiting for their push to come back, in ticket order.
pub struct Receipts<T> {
    timeout: Duration,
    state: Mutex<State<T>>,
}

impl<T> Receipts<T> {
    /// No subscription yet; waits end after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Receipts {
            timeout,
            state: Mutex::new(State {
                up: None,
                generation: 0,
                seen: 0,
                failed: VecDeque::new(),
                waiting: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Every update leaves the state consistent; a panic elsewhere does not matter.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The generation of the subscription if it is up: pushes may be sent.
    pub fn up(&self) -> Option<u64> {
        self.lock().up
    }

    /// The subscription is in place: what is published from now on comes back.
    pub fn subscribed(&self) {
        let mut s = self.lock();
        s.generation += 1;
        s.up = Some(s.generation);
    }

    /// The subscription is gone: every waiter fails, later pushes are refused.
    pub fn lost(&self) {
        let mut s = self.lock();
        s.up = None;
        for w in s.waiting.drain(..) {
            let _ = w.reply.send(Err(BrokerError::Unavailable(
                "subscription lost before the push came back".into(),
            )));
        }
    }

    /// Ticket `ticket` came back on the subscription; `taken` is false when
    /// this node could not take it in (larger than its intake).
    pub fn received(&self, ticket: u64, taken: bool) {
        let mut s = self.lock();
        s.seen = s.seen.max(ticket);
        if !taken {
            if s.failed.len() == FAILED_KEPT {
                s.failed.pop_front();
            }
            s.failed.push_back(ticket);
        }
        while s.waiting.front().is_some_and(|w| w.ticket <= ticket) {
            let Some(w) = s.waiting.pop_front() else {
                break;
            };
            let result = match (w.ticket == ticket, taken) {
                (true, true) => Ok(w.value),
                (true, false) => Err(too_large()),
                // Tickets come back in order: one passed over never will.
                (false, _) => Err(BrokerError::Unavailable(
                    "the push did not come back on this node's subscription".into(),
                )),
            };
            let _ = w.reply.send(result);
        }
    }

    /// Redis answered `value` to the push with `ticket`, sent while the
    /// subscription had `generation`: answers `reply` once it comes back.
    pub fn wait(
        &self,
        ticket: u64,
        generation: u64,
        value: T,
        reply: oneshot::Sender<Result<T, BrokerError>>,
    ) {
        let mut s = self.lock();
        let result = if s.up != Some(generation) {
            Err(BrokerError::Unavailable(
                "subscription lost before the push came back".into(),
            ))
        } else if ticket <= s.seen {
            match s.failed.contains(&ticket) {
                true => Err(too_large()),
                false => Ok(value),
            }
        } else {
            let deadline = Instant::now() + self.timeout;
            s.waiting.push_back(Waiter {
                ticket,
                deadline,
                value,
                reply,
            });
            return;
        };
        let _ = reply.send(result);
    }

    /// Fails the waiters whose time is up; returns when the next one's is.
    pub fn expire(&self, now: Instant) -> Option<Instant> {
        let mut s = self.lock();
        // Deadlines grow with tickets: the oldest waiter is always first.
        while s.waiting.front().is_some_and(|w| w.deadline <= now) {
            if let Some(w) = s.waiting.pop_front() {
                let _ = w.reply.send(Err(BrokerError::Timeout(self.timeout)));
            }
        }
        s.waiting.front().map(|w| w.deadline)
    }

    /// Callers waiting now.
    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }
}

fn too_large() -> BrokerError {
    BrokerError::Unavailable("this node dropped the push: larger than its intake".into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    type R = Receipts<u64>;

    fn waiter(r: &R, ticket: u64, generation: u64) -> oneshot::Receiver<Result<u64, BrokerError>> {
        let (tx, rx) = oneshot::channel();
        r.wait(ticket, generation, ticket * 10, tx);
        rx
    }

    fn answer(rx: &mut oneshot::Receiver<Result<u64, BrokerError>>) -> Option<Result<u64, String>> {
        rx.try_recv().ok().map(|r| r.map_err(|e| e.to_string()))
    }

    #[test]
    fn a_push_succeeds_when_it_comes_back_before_or_after_its_answer() {
        let r = R::new(Duration::from_secs(1));
        assert_eq!(r.up(), None);
        r.subscribed();
        let g = r.up().unwrap();
        r.received(1, true);
        let mut early = waiter(&r, 1, g);
        assert_eq!(answer(&mut early), Some(Ok(10)));
        let mut late = waiter(&r, 2, g);
        assert_eq!(answer(&mut late), None);
        r.received(2, true);
        assert_eq!(answer(&mut late), Some(Ok(20)));
        assert_eq!(r.waiting(), 0);
    }

    #[test]
    fn a_push_fails_when_the_subscription_is_lost_or_replaced() {
        let r = R::new(Duration::from_secs(1));
        r.subscribed();
        let g = r.up().unwrap();
        let mut waiting = waiter(&r, 1, g);
        r.lost();
        assert!(answer(&mut waiting).unwrap().unwrap_err().contains("lost"));
        assert_eq!(r.up(), None);
        // Sent on the old subscription, answered after the new one came up.
        r.subscribed();
        let mut stale = waiter(&r, 2, g);
        assert!(answer(&mut stale).unwrap().is_err());
    }

    #[test]
    fn passed_over_and_untaken_tickets_fail() {
        let r = R::new(Duration::from_secs(1));
        r.subscribed();
        let g = r.up().unwrap();
        let (mut a, mut b) = (waiter(&r, 1, g), waiter(&r, 2, g));
        r.received(2, false);
        assert!(answer(&mut a).unwrap().is_err());
        assert!(answer(&mut b).unwrap().unwrap_err().contains("intake"));
        let mut c = waiter(&r, 2, g);
        assert!(answer(&mut c).unwrap().is_err());
    }

    #[test]
    fn a_push_that_never_comes_back_times_out() {
        let r = R::new(Duration::from_secs(1));
        r.subscribed();
        let g = r.up().unwrap();
        let mut w = waiter(&r, 1, g);
        let next = r.expire(Instant::now()).unwrap();
        assert_eq!(answer(&mut w), None);
        assert_eq!(r.expire(next), None);
        assert!(
            answer(&mut w)
                .unwrap()
                .unwrap_err()
                .contains("did not answer")
        );
    }
}
