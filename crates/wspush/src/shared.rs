//! The state every door and transport shares: the hub, the broker, the listeners of
//! browser events, the connect policy and the sources of every counter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use msgpack_rpc::Value;
use ws_server::Connection;

use crate::auth::{Gate, Refusal};
use crate::broker::survey::Identity;
use crate::broker::{Broker, BrokerError, Embedded, RedisBroker, global_id};
use crate::delivery::events::Listeners;
use crate::delivery::history::HistoryRead;
use crate::delivery::hub::Hub;
use crate::stats::Stats;

/// State shared by the WebSocket handler and the RPC methods.
pub struct Shared {
    /// Connections, channels, fan-out (and the embedded broker's history).
    pub hub: Arc<Hub>,
    /// RPC connections that called `listen()`.
    pub listeners: Listeners,
    /// Where every door's pushes and commands go: the embedded broker or Redis.
    pub broker: Arc<dyn Broker>,
    /// The Redis broker (also `broker`); `None` with the embedded one.
    pub redis: Option<Arc<RedisBroker>>,
    /// Who this node is (`info`).
    pub identity: Arc<Identity>,
    /// The cluster-wide sums of the last stats share (Redis mode).
    cluster: std::sync::Mutex<Option<Value>>,
    /// Who may connect and join which channels.
    pub gate: Gate,
    /// RPC calls refused for a missing or wrong `auth(secret)` (counted by the RPC door).
    pub rpc_auth_failures: Arc<AtomicU64>,
    /// What the HTTP API door counts.
    pub api: crate::api::ApiCounters,
    /// Whether the public port serves `/metrics` too (`metrics_public`).
    pub metrics_public: bool,
    started: Instant,
    ws_stats: OnceLock<Arc<ws_server::Stats>>,
    rpc_stats: OnceLock<msgpack_rpc::StatsHandle>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new(Hub::default(), None)
    }
}

impl Shared {
    /// State over `hub`, with the Redis broker if one is configured.
    pub fn new(hub: Hub, redis: Option<RedisBroker>) -> Self {
        let hub = Arc::new(hub);
        let redis = redis.map(Arc::new);
        let identity = match &redis {
            Some(redis) => redis.identity(),
            None => Arc::new(Identity::new(0)),
        };
        let broker: Arc<dyn Broker> = match &redis {
            Some(redis) => Arc::clone(redis) as Arc<dyn Broker>,
            None => Arc::new(Embedded::new(Arc::clone(&hub), Arc::clone(&identity))),
        };
        Shared {
            hub,
            listeners: Listeners::default(),
            broker,
            redis,
            identity,
            cluster: std::sync::Mutex::new(None),
            gate: Gate::open(),
            rpc_auth_failures: Arc::default(),
            api: crate::api::ApiCounters::default(),
            metrics_public: false,
            started: Instant::now(),
            ws_stats: OnceLock::new(),
            rpc_stats: OnceLock::new(),
        }
    }

    /// The same state with this connect policy.
    pub fn with_gate(mut self, gate: Gate) -> Self {
        self.gate = gate;
        self
    }

    /// This node's number (0 with the embedded broker).
    pub fn node(&self) -> u32 {
        self.redis.as_ref().map_or(0, |r| r.node())
    }

    /// The cluster-wide id of a connection of this node.
    pub fn conn_id(&self, conn: &Connection) -> u64 {
        global_id(self.node(), conn.id())
    }

    /// What the broker's history holds for `stream`; an unreadable history
    /// reads as empty, so the client gets a gap notice rather than silence.
    pub async fn read_history(&self, stream: Option<&str>) -> HistoryRead {
        match &self.redis {
            None => self.hub.history().read(stream),
            Some(broker) => broker.read_history(stream).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, ?stream, "history unavailable; client gets a gap notice");
                HistoryRead::default()
            }),
        }
    }

    /// What the broker's history holds for `stream`, or why it cannot be read.
    pub async fn try_read_history(&self, stream: Option<&str>) -> Result<HistoryRead, BrokerError> {
        match &self.redis {
            None => Ok(self.hub.history().read(stream)),
            Some(broker) => broker.read_history(stream).await,
        }
    }

    /// Forgets `stream`'s kept messages in the broker's history; positions go on.
    pub async fn remove_history(&self, stream: Option<&str>) -> Result<(), BrokerError> {
        match &self.redis {
            None => {
                self.hub.history().remove(stream);
                Ok(())
            }
            Some(broker) => broker.remove_history(stream).await,
        }
    }

    /// Attaches the WebSocket server's counters (once, at start).
    pub fn set_ws_stats(&self, stats: Arc<ws_server::Stats>) {
        let _ = self.ws_stats.set(stats);
    }

    /// Attaches the RPC server's counters (once, at start).
    pub fn set_rpc_stats(&self, stats: msgpack_rpc::StatsHandle) {
        let _ = self.rpc_stats.set(stats);
    }

    /// RPC `stats()`: this node's counters, and in Redis mode a `cluster`
    /// map summing every live node's (refreshed every second).
    pub fn stats_value(&self) -> Value {
        let mut value = self.stats().to_value();
        let cluster = self
            .cluster
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let (Value::Map(map), Some(cluster)) = (&mut value, cluster) {
            map.push((Value::from("cluster"), cluster));
        }
        value
    }

    /// Shares this node's counters through the broker and keeps the
    /// cluster-wide sums for `stats()`, every second until `shutdown`.
    pub async fn share_stats(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        const EVERY: std::time::Duration = std::time::Duration::from_secs(1);
        // A node silent for this long has stopped: it drops out of the sums.
        const STALE: std::time::Duration = std::time::Duration::from_secs(5);
        let Some(broker) = &self.redis else {
            return;
        };
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let mine = self.stats().counters();
            match broker.share_stats(&mine, STALE).await {
                Ok(nodes) => {
                    let sums = crate::stats::cluster_value(&nodes);
                    *self.cluster.lock().unwrap_or_else(|e| e.into_inner()) = Some(sums);
                }
                Err(e) => tracing::debug!(error = %e, "cluster stats not shared"),
            }
        }
    }

    /// A snapshot of every counter.
    pub fn stats(&self) -> Stats {
        let ws = self
            .ws_stats
            .get()
            .map(|s| s.snapshot())
            .unwrap_or_default();
        let mut stats = Stats::collect(
            &self.hub,
            &ws,
            &self.listeners,
            self.started.elapsed().as_secs(),
        );
        stats.node = u64::from(self.node());
        stats.refused_bad_request = self.gate.refusals(Refusal::BadRequest);
        stats.refused_unauthorized = self.gate.refusals(Refusal::Unauthorized);
        stats.refused_forbidden = self.gate.refusals(Refusal::Forbidden);
        stats.rpc_auth_failures = self.rpc_auth_failures.load(Ordering::Relaxed);
        stats.add_api(&self.api);
        if let Some(rpc) = self.rpc_stats.get() {
            stats.add_rpc(&rpc.snapshot());
        }
        if let Some(broker) = &self.redis {
            stats.add_broker(broker.counters());
        }
        stats
    }
}
