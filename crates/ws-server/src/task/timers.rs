//! [`Timers`]: a connection task's deadlines: the next liveness check (ping after
//! [`ServerConfig::ping_interval`] of silence), the pong deadline, the close deadline.

use tokio::time::Instant;

use crate::config::ServerConfig;

#[derive(Debug)]
pub(crate) struct Timers {
    /// The last time bytes came in.
    last_rx: Instant,
    /// When to check for silence next.
    ping_check: Option<Instant>,
    /// A ping is out: input must come by then.
    pong_deadline: Option<Instant>,
    /// Our close is under way: the peer's must come by then.
    close_deadline: Option<Instant>,
}

/// What a passed deadline asks of the task.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Due {
    Nothing,
    /// Silent for a whole interval: send a ping (then [`Timers::ping_sent`]).
    Ping,
    /// The peer did not answer our close in time.
    CloseTimeout,
    /// No input came after a ping in time.
    PongTimeout,
}

impl Timers {
    pub(crate) fn new(cfg: &ServerConfig, now: Instant) -> Self {
        Timers {
            last_rx: now,
            ping_check: cfg.ping_interval.map(|i| now + i),
            pong_deadline: None,
            close_deadline: None,
        }
    }

    /// Bytes came in: the peer is alive.
    pub(crate) fn input(&mut self, now: Instant) {
        self.last_rx = now;
        self.pong_deadline = None;
    }

    /// Our close handshake starts: the peer has `close_timeout` to answer.
    pub(crate) fn start_close(&mut self, cfg: &ServerConfig, now: Instant) {
        self.close_deadline = Some(now + cfg.close_timeout);
    }

    /// Whether our close handshake has started.
    pub(crate) fn closing(&self) -> bool {
        self.close_deadline.is_some()
    }

    /// A ping went out: input must follow within `pong_timeout`.
    pub(crate) fn ping_sent(&mut self, cfg: &ServerConfig, now: Instant) {
        self.pong_deadline = Some(now + cfg.pong_timeout);
    }

    /// The earliest deadline; liveness counts only while the connection is `open`.
    pub(crate) fn next_deadline(&self, open: bool) -> Option<Instant> {
        let liveness = match self.pong_deadline {
            Some(deadline) => Some(deadline),
            None if open => self.ping_check,
            None => None,
        };
        match (liveness, self.close_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The armed deadline passed (or seemed to): what to do now.
    pub(crate) fn due(&mut self, cfg: &ServerConfig, now: Instant) -> Due {
        if self.close_deadline.is_some_and(|d| d <= now) {
            return Due::CloseTimeout;
        }
        if self.pong_deadline.is_some_and(|d| d <= now) {
            return Due::PongTimeout;
        }
        let Some(interval) = cfg.ping_interval else {
            return Due::Nothing;
        };
        if self.ping_check.is_none_or(|d| d > now) {
            return Due::Nothing;
        }
        if now.duration_since(self.last_rx) >= interval {
            self.ping_check = Some(now + interval);
            Due::Ping
        } else {
            // Input arrived since the timer was armed: check again one interval after it.
            self.ping_check = Some(self.last_rx + interval);
            Due::Nothing
        }
    }
}
