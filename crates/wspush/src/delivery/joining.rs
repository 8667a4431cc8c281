//! Pushes that meet: one that arrives while a fan-out of its stream is in progress joins the
//! stream's next pass instead of waiting for the stream's order lock.
//!
//! Why: a fan-out to thousands of browsers takes a while, and several programs (or one
//! program's RPC connections) push at once. A push that waited for the lock would hold a
//! runtime worker doing nothing, and then touch every subscriber's queue again for its one
//! frame. Joined, the pushes that met go out in one pass, every queue touched once for all
//! of their frames; their callers are answered when the pass has queued them. One caller
//! at a time pays no more than before: it finds no pass in progress and leads its own.
//!
//! This is the bookkeeping only (who leads, what waits, in arrival order); the hub runs the
//! passes (`Hub::publish`).

use std::sync::{Mutex, MutexGuard};

use tokio::sync::oneshot;

use super::flush::Flush;
use super::payload::Payload;
use super::position::Position;

/// A push waiting for its stream's next pass, and how its caller is answered.
#[derive(Debug)]
pub struct JoinedPush {
    /// What was pushed.
    pub payload: Payload,
    /// Its caller's hint of what follows.
    pub flush: Flush,
    /// To how many connections it was queued, at which position.
    pub answer: oneshot::Sender<(usize, Position)>,
}

/// One stream's pushes waiting for its next pass, and whether a pass is in progress.
#[derive(Debug)]
pub struct Joining<J> {
    state: Mutex<State<J>>,
}

#[derive(Debug)]
struct State<J> {
    /// A caller runs passes now; it takes `waiting` when its pass is done.
    leading: bool,
    /// In arrival order. Empty whenever no one leads.
    waiting: Vec<J>,
}

impl<J> Default for Joining<J> {
    fn default() -> Self {
        Joining {
            state: Mutex::new(State {
                leading: false,
                waiting: Vec::new(),
            }),
        }
    }
}

impl<J> Joining<J> {
    fn lock(&self) -> MutexGuard<'_, State<J>> {
        // Plain pushes and takes: a panic elsewhere leaves the state whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// With no pass in progress, `job` is handed back and its caller leads: it runs the
    /// pass, then takes [`Joining::next`] until that gives `None`. Otherwise `job` waits
    /// for the next pass (`None`).
    pub fn join(&self, job: J) -> Option<J> {
        let mut state = self.lock();
        if state.leading {
            state.waiting.push(job);
            return None;
        }
        state.leading = true;
        Some(job)
    }

    /// Held by the leader through each pass: should the pass panic, the lead is given up and
    /// the pushes waiting for it are dropped (their callers are answered with an error),
    /// so the stream's later pushes do not join a pass that never comes.
    pub fn lead(&self) -> Lead<'_, J> {
        Lead { joining: self }
    }

    /// The leader, after a pass: the jobs that joined meanwhile, in arrival order, for its
    /// next pass; or `None`, and it leads no more.
    pub fn next(&self) -> Option<Vec<J>> {
        let mut state = self.lock();
        if state.waiting.is_empty() {
            state.leading = false;
            return None;
        }
        Some(std::mem::take(&mut state.waiting))
    }
}

/// See [`Joining::lead`].
#[derive(Debug)]
pub struct Lead<'a, J> {
    joining: &'a Joining<J>,
}

impl<J> Drop for Lead<'_, J> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut state = self.joining.lock();
            state.leading = false;
            state.waiting.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Joining;

    #[test]
    fn a_pass_that_panics_gives_up_the_lead_and_fails_those_waiting() {
        let j = Joining::default();
        assert_eq!(j.join(1), Some(1));
        assert_eq!(j.join(2), None);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _lead = j.lead();
            panic!("a pass went wrong");
        }));
        assert!(panicked.is_err());
        assert_eq!(j.next(), None, "nothing waits any more");
        assert_eq!(j.join(3), Some(3), "the next push leads");
    }

    #[test]
    fn the_first_leads_the_rest_wait_in_order_and_the_lead_ends_when_none_wait() {
        let j = Joining::default();
        assert_eq!(j.join(1), Some(1));
        assert_eq!(j.join(2), None);
        assert_eq!(j.join(3), None);
        assert_eq!(j.next(), Some(vec![2, 3]));
        assert_eq!(j.join(4), None);
        assert_eq!(j.next(), Some(vec![4]));
        assert_eq!(j.next(), None);
        // Nobody leads now: the next push leads its own pass.
        assert_eq!(j.join(5), Some(5));
        assert_eq!(j.next(), None);
    }
}
