//! Counters of a [`Server`](crate::Server): what its connections did, read
//! with [`Server::stats`](crate::Server::stats).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::error::DecodeError;

/// Live counters shared by every connection of one server.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections_open: AtomicU64,
    pub(crate) connections_total: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) notifications: AtomicU64,
    pub(crate) malformed_closes: AtomicU64,
    pub(crate) limit_closes: AtomicU64,
    pub(crate) backpressure_pauses: AtomicU64,
    pub(crate) refused_full: AtomicU64,
    pub(crate) refused_per_ip: AtomicU64,
    pub(crate) message_timeouts: AtomicU64,
    pub(crate) auth_timeouts: AtomicU64,
    pub(crate) auth_limit_closes: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Counts a connection closed for malformed input, and separately the
    /// closes caused by a limit, and of those the ones before the connection
    /// authenticated.
    pub(crate) fn record_decode_error(&self, error: &DecodeError, authenticated: bool) {
        Self::add(&self.malformed_closes, 1);
        if error.is_limit() {
            Self::add(&self.limit_closes, 1);
            if !authenticated {
                Self::add(&self.auth_limit_closes, 1);
            }
        }
    }

    pub(crate) fn snapshot(&self) -> ServerStats {
        ServerStats {
            connections_open: self.connections_open.load(Relaxed),
            connections_total: self.connections_total.load(Relaxed),
            requests: self.requests.load(Relaxed),
            notifications: self.notifications.load(Relaxed),
            malformed_closes: self.malformed_closes.load(Relaxed),
            limit_closes: self.limit_closes.load(Relaxed),
            backpressure_pauses: self.backpressure_pauses.load(Relaxed),
            refused_full: self.refused_full.load(Relaxed),
            refused_per_ip: self.refused_per_ip.load(Relaxed),
            message_timeouts: self.message_timeouts.load(Relaxed),
            auth_timeouts: self.auth_timeouts.load(Relaxed),
            auth_limit_closes: self.auth_limit_closes.load(Relaxed),
        }
    }
}

/// A snapshot of a server's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Connections open now.
    pub connections_open: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Requests received.
    pub requests: u64,
    /// Notifications received.
    pub notifications: u64,
    /// Connections closed for malformed input (including limits).
    pub malformed_closes: u64,
    /// Of those, connections closed because a message broke a size, depth or
    /// element-count limit.
    pub limit_closes: u64,
    /// Times a connection stopped reading because it reached its cap on
    /// requests in flight or unsent output (backpressure, not an error).
    pub backpressure_pauses: u64,
    /// Connections refused at accept: `max_connections` were open.
    pub refused_full: u64,
    /// Connections refused at accept: their address held
    /// `max_connections_per_ip`.
    pub refused_per_ip: u64,
    /// Connections closed because a message was not complete within
    /// `message_timeout`.
    pub message_timeouts: u64,
    /// Connections closed because they had not authenticated within
    /// `auth.timeout`.
    pub auth_timeouts: u64,
    /// Of `limit_closes`, connections that had not authenticated (most
    /// often a message over `auth.max_message_size`).
    pub auth_limit_closes: u64,
}

/// Reads a server's counters; see [`Server::stats_handle`](crate::Server::stats_handle).
#[derive(Debug, Clone)]
pub struct StatsHandle(pub(crate) Arc<Counters>);

impl StatsHandle {
    /// A snapshot of the counters.
    #[must_use]
    pub fn snapshot(&self) -> ServerStats {
        self.0.snapshot()
    }
}
