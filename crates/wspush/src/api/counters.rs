//! What the API door counts, read into [`crate::stats::Stats`] (`stats()`, `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};

use http::StatusCode;

/// Counters of the HTTP API listener.
#[derive(Debug, Default)]
pub struct ApiCounters {
    /// Requests answered (every status).
    pub requests: AtomicU64,
    /// Answers 400 (unreadable JSON, a broken body).
    pub status_400: AtomicU64,
    /// Answers 401 (missing or wrong key).
    pub status_401: AtomicU64,
    /// Answers 404 (unknown method or path).
    pub status_404: AtomicU64,
    /// Answers 405 (not POST).
    pub status_405: AtomicU64,
    /// Answers 413 (body over `api_max_body_bytes`).
    pub status_413: AtomicU64,
    /// Answers 431 (head over `max_header_bytes`; hyper answers, we count).
    pub status_431: AtomicU64,
    /// Answers 503 (the broker is unavailable).
    pub status_503: AtomicU64,
    /// Answers 200 carrying an error body (Centrifugo-level errors), batch replies included.
    pub method_errors: AtomicU64,
    /// Connections open now.
    pub connections: AtomicU64,
    /// Connections closed: no complete request head within `api_header_timeout`.
    pub header_timeouts: AtomicU64,
    /// Connections closed: idle (no request) for `api_idle_timeout`.
    pub idle_timeouts: AtomicU64,
}

impl ApiCounters {
    /// Counts an answer with `status`.
    pub fn answered(&self, status: StatusCode) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = self.by_status(status) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn by_status(&self, status: StatusCode) -> Option<&AtomicU64> {
        Some(match status.as_u16() {
            400 => &self.status_400,
            401 => &self.status_401,
            404 => &self.status_404,
            405 => &self.status_405,
            413 => &self.status_413,
            431 => &self.status_431,
            503 => &self.status_503,
            _ => return None,
        })
    }

    /// Adds one to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
