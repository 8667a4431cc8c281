//! Server-wide counters, updated with relaxed atomics on the hot paths and read as a snapshot.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters shared by every connection of one [`Server`](crate::Server).
///
/// Reading them never blocks a connection: each field is its own atomic, so a
/// [`StatsSnapshot`] is not a single consistent cut, which is fine for metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub(crate) connections_open: AtomicU64,
    pub(crate) connections_total: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) direct_writes: AtomicU64,
    pub(crate) write_calls: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) dropped_messages: AtomicU64,
    pub(crate) overflow_closes: AtomicU64,
    pub(crate) rejected_full: AtomicU64,
    pub(crate) rejected_per_ip: AtomicU64,
    pub(crate) rejected_rate: AtomicU64,
    pub(crate) rejected_head: AtomicU64,
    pub(crate) handshake_timeouts: AtomicU64,
    pub(crate) ping_timeouts: AtomicU64,
    /// Close codes are few and closes are rare compared to messages: a small locked list is enough.
    closes_by_code: Mutex<Vec<(u16, u64)>>,
}

/// A copy of [`Stats`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// WebSocket connections currently open (upgraded and not yet finished).
    pub connections_open: u64,
    /// WebSocket connections accepted since the server started.
    pub connections_total: u64,
    /// Messages handed to the protocol core for sending (including prepared ones).
    pub messages_sent: u64,
    /// Write calls made by direct writers (a [`FanOut`](crate::FanOut)'s writer threads or
    /// `send_prepared_now` on an idle connection), with no wake-up of the connection task;
    /// one call may carry many frames.
    pub direct_writes: u64,
    /// Write calls to browser sockets that took bytes, by the tasks and direct writers
    /// together: `messages_sent / write_calls` is how well bursts were coalesced.
    pub write_calls: u64,
    /// Bytes written to sockets after the upgrade (frame headers and compression included).
    pub bytes_sent: u64,
    /// Whole messages received from peers.
    pub messages_received: u64,
    /// Bytes read from sockets after the upgrade.
    pub bytes_received: u64,
    /// Messages refused because an outbound queue was full ([`OverflowPolicy::Drop`](crate::OverflowPolicy::Drop)).
    pub dropped_messages: u64,
    /// Connections closed because their outbound queue overflowed ([`OverflowPolicy::Close`](crate::OverflowPolicy::Close)).
    pub overflow_closes: u64,
    /// Upgrade requests answered 503 because `max_connections` was reached.
    pub rejected_full: u64,
    /// TCP connections answered 429 because their address held `max_connections_per_ip`.
    pub rejected_per_ip: u64,
    /// TCP connections answered 429 because their address exceeded `connects_per_ip_per_sec`.
    pub rejected_rate: u64,
    /// Requests answered 431 (head larger than `max_header_bytes` or too many headers).
    pub rejected_head: u64,
    /// Connections dropped because the TLS handshake or request head missed `handshake_timeout`.
    pub handshake_timeouts: u64,
    /// Connections dropped because they did not answer a ping within `pong_timeout`.
    pub ping_timeouts: u64,
    /// How many connections ended with each close code (1006 for an abnormal end), sorted by code.
    pub closes_by_code: Vec<(u16, u64)>,
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub(crate) fn record_close(&self, code: u16) {
        let mut closes = self
            .closes_by_code
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match closes.binary_search_by_key(&code, |&(c, _)| c) {
            Ok(i) => closes[i].1 += 1,
            Err(i) => closes.insert(i, (code, 1)),
        }
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            connections_open: self.connections_open.load(Relaxed),
            connections_total: self.connections_total.load(Relaxed),
            messages_sent: self.messages_sent.load(Relaxed),
            direct_writes: self.direct_writes.load(Relaxed),
            write_calls: self.write_calls.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            messages_received: self.messages_received.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
            dropped_messages: self.dropped_messages.load(Relaxed),
            overflow_closes: self.overflow_closes.load(Relaxed),
            rejected_full: self.rejected_full.load(Relaxed),
            rejected_per_ip: self.rejected_per_ip.load(Relaxed),
            rejected_rate: self.rejected_rate.load(Relaxed),
            rejected_head: self.rejected_head.load(Relaxed),
            handshake_timeouts: self.handshake_timeouts.load(Relaxed),
            ping_timeouts: self.ping_timeouts.load(Relaxed),
            closes_by_code: self
                .closes_by_code
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_are_counted_per_code_in_order() {
        let stats = Stats::default();
        stats.record_close(1001);
        stats.record_close(1000);
        stats.record_close(1001);
        assert_eq!(stats.snapshot().closes_by_code, vec![(1000, 1), (1001, 2)]);
    }
}
