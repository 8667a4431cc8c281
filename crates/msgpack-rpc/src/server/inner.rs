//! The state every connection task of one server shares: the methods, the
//! settings, the counters and the connection caps.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::admission::{Admission, Refusal};
use super::config::ServerConfig;
use super::methods::Registry;
use super::stats::Counters;

pub(super) type DisconnectFn = Box<dyn Fn(u64) + Send + Sync>;

pub(crate) struct Inner {
    pub(crate) registry: Registry,
    pub(crate) config: ServerConfig,
    pub(super) on_disconnect: Option<DisconnectFn>,
    pub(super) next_id: AtomicU64,
    pub(crate) counters: Arc<Counters>,
    pub(super) admission: Arc<Admission>,
}

impl Inner {
    /// Counts and logs a connection refused at accept. No MessagePack-RPC
    /// error is sent: there is no request to answer yet, and stock clients
    /// break on messages they did not ask for; they see the socket close.
    pub(super) fn refuse(&self, peer: Option<SocketAddr>, why: Refusal) {
        let (counter, limit, what) = match why {
            Refusal::PerIp => (
                &self.counters.refused_per_ip,
                self.config.max_connections_per_ip,
                "RPC connection refused: its address holds max_connections_per_ip",
            ),
            Refusal::Full => (
                &self.counters.refused_full,
                self.config.max_connections,
                "RPC connection refused: max_connections open",
            ),
        };
        Counters::add(counter, 1);
        tracing::info!(peer = %Peer(peer), limit, "{what}");
    }
}

/// A peer's address for log lines.
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer(pub(super) Option<SocketAddr>);

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_str("unix socket"),
        }
    }
}
