//! [`Inner`]: what the accept loop, the HTTP service and every connection task of one
//! [`Server`](crate::Server) share: settings, the handler, counters, the connection registry
//! and caps, the task tracker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServerConfig;
use crate::connection::Connection;
use crate::limits::IpLimits;
use crate::stats::Stats;

/// Close code and reason sent to every connection at shutdown (RFC 6455 §7.4.1 "going away").
pub const GOING_AWAY: (u16, &str) = (1001, "server shutting down");

pub(crate) struct Inner<H> {
    pub(crate) config: ServerConfig,
    pub(crate) handler: H,
    pub(crate) stats: Arc<Stats>,
    pub(crate) next_id: AtomicU64,
    /// Open WebSocket connections; a permit is taken before the 101 is sent.
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) registry: Mutex<HashMap<u64, Connection>>,
    pub(crate) shutting_down: AtomicBool,
    /// Every task the server spawned (HTTP connections and WebSocket connections).
    pub(crate) tracker: TaskTracker,
    /// Cancelled at shutdown: HTTP connections finish their request and close.
    pub(crate) stop_http: CancellationToken,
    /// Open connections and connection rate per peer address.
    pub(crate) ip_limits: Arc<IpLimits>,
}

impl<H> Inner<H> {
    pub(crate) fn registry(&self) -> MutexGuard<'_, HashMap<u64, Connection>> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn register(&self, conn: &Connection) {
        let mut registry = self.registry();
        registry.insert(conn.id(), conn.clone());
        if self.shutting_down.load(Ordering::SeqCst) {
            conn.close(GOING_AWAY.0, GOING_AWAY.1);
        }
    }

    pub(crate) fn unregister(&self, id: u64) {
        self.registry().remove(&id);
    }
}
