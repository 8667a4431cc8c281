//! The WebSocket side of the push server: browsers into and out of the hub,
//! their events to listening programs, and plain HTTP (demo page, health,
//! metrics) on the same port.

use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use msgpack_rpc::Value;
use ws_server::{CloseInfo, Connection, Handler, Message, Request};

use crate::auth::{Gate, Refusal};
use crate::broker::{RedisBroker, global_id, node_of};
use crate::events::Listeners;
use crate::history::{HistoryRead, plan};
use crate::hub::{ConnInfo, ConnSnapshot, Hub};
use crate::query::ClientOptions;
use crate::rpc_auth::RpcAuth;
use crate::stats::Stats;

/// State shared by the WebSocket handler and the RPC methods.
pub struct Shared {
    /// Connections, channels, fan-out (and the embedded broker's history).
    pub hub: Arc<Hub>,
    /// RPC connections that called `listen()`.
    pub listeners: Listeners,
    /// The Redis broker; `None` with the embedded one.
    pub broker: Option<RedisBroker>,
    /// The cluster-wide sums of the last stats share (Redis mode).
    cluster: std::sync::Mutex<Option<Value>>,
    /// Who may connect and join which channels.
    pub gate: Gate,
    /// Which RPC connections have given the shared secret.
    pub rpc_auth: Arc<RpcAuth>,
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
    pub fn new(hub: Hub, broker: Option<RedisBroker>) -> Self {
        Shared {
            hub: Arc::new(hub),
            listeners: Listeners::default(),
            broker,
            cluster: std::sync::Mutex::new(None),
            gate: Gate::open(),
            rpc_auth: Arc::new(RpcAuth::new(None)),
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

    /// The same state requiring `auth(secret)` from RPC clients.
    pub fn with_rpc_secret(mut self, secret: Option<String>) -> Self {
        self.rpc_auth = Arc::new(RpcAuth::new(secret));
        self
    }

    /// This node's number (0 with the embedded broker).
    pub fn node(&self) -> u32 {
        self.broker.as_ref().map_or(0, RedisBroker::node)
    }

    /// The cluster-wide id of a connection of this node.
    pub fn conn_id(&self, conn: &Connection) -> u64 {
        global_id(self.node(), conn.id())
    }

    /// What the broker's history holds for `stream`; an unreadable history
    /// reads as empty, so the client gets a gap notice rather than silence.
    pub async fn read_history(&self, stream: Option<&str>) -> HistoryRead {
        match &self.broker {
            None => self.hub.history().read(stream),
            Some(broker) => broker.read_history(stream).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, ?stream, "history unavailable; client gets a gap notice");
                HistoryRead::default()
            }),
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
        let Some(broker) = &self.broker else {
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
        stats.rpc_auth_failures = self.rpc_auth.failures();
        if let Some(rpc) = self.rpc_stats.get() {
            stats.add_rpc(&rpc.snapshot());
        }
        if let Some(broker) = &self.broker {
            stats.add_broker(broker.counters());
        }
        stats
    }

    /// `connections()`: one map per open connection.
    pub fn connections_value(&self) -> Value {
        Value::Array(self.hub.connections().iter().map(snapshot_value).collect())
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn info_value(info: &ConnInfo, channels: &[String]) -> Vec<(Value, Value)> {
    vec![
        (Value::from("id"), Value::from(info.id)),
        (Value::from("node"), Value::from(node_of(info.id))),
        (Value::from("peer"), Value::from(info.peer.to_string())),
        (Value::from("path"), Value::from(info.path.as_str())),
        (Value::from("query"), Value::from(info.query.as_str())),
        (
            Value::from("channels"),
            Value::Array(channels.iter().map(|c| Value::from(c.as_str())).collect()),
        ),
        (Value::from("opened"), Value::from(unix_secs(info.opened))),
        (
            Value::from("user"),
            info.user.as_deref().map_or(Value::Nil, Value::from),
        ),
    ]
}

fn snapshot_value(s: &ConnSnapshot) -> Value {
    let mut map = info_value(&s.info, &s.channels);
    map.push((Value::from("queued_bytes"), Value::from(s.queued_bytes)));
    Value::Map(map)
}

/// The [`Handler`] of the push server.
pub struct App {
    shared: Arc<Shared>,
}

impl App {
    /// A handler over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        App { shared }
    }
}

impl Handler for App {
    async fn on_open(&self, conn: &Connection, req: &Request) {
        let query = req.query().unwrap_or("");
        // Decided in on_upgrade; only an expiry in between can fail here, and
        // then the closing connection joins nothing.
        let (opts, user) = match self.shared.gate.admit(req) {
            Ok(admission) => (admission.options, admission.claims.and_then(|c| c.sub)),
            Err(why) => {
                conn.close(ws_proto::close::POLICY, why.reason());
                (ClientOptions::default(), None)
            }
        };
        let channels = &opts.channels;
        let id = self.shared.conn_id(conn);
        let info = ConnInfo {
            id,
            peer: conn.peer_addr(),
            path: req.path().to_owned(),
            // connections() and on_open show the query: not the bearer token.
            query: crate::auth::redact_token(query),
            opened: SystemTime::now(),
            user,
        };
        tracing::info!(conn = info.id, peer = %info.peer, path = %info.path, ?channels, "open");
        // Subscribe first, then read history: messages published in between
        // are buffered by the hub and de-duplicated by position.
        let info_for_event = info.clone();
        let since = self.shared.hub.add(conn.clone(), info, &opts);
        for s in since {
            let stream = s.stream.as_deref();
            let read = self.shared.read_history(stream).await;
            self.shared.hub.finish_resume(id, stream, plan(&s, read));
        }
        // After registering: a program reacting to on_open can reach the connection.
        self.shared.listeners.emit("on_open", || {
            let mut map = info_value(&info_for_event, channels);
            let headers = req
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((Value::from(k.as_str()), Value::from(v.to_str().ok()?))))
                .collect();
            map.push((Value::from("headers"), Value::Map(headers)));
            vec![Value::from(id), Value::Map(map)]
        });
    }

    async fn on_message(&self, conn: &Connection, msg: Message) {
        let (value, len) = match msg {
            Message::Text(b) => (
                Value::from(String::from_utf8_lossy(&b).into_owned()),
                b.len(),
            ),
            Message::Binary(b) => (Value::Binary(b.to_vec()), b.len()),
        };
        self.shared.hub.count_inbound(len);
        let id = self.shared.conn_id(conn);
        tracing::debug!(conn = id, len, "message");
        self.shared
            .listeners
            .emit("on_message", || vec![Value::from(id), value]);
    }

    async fn on_close(&self, conn: &Connection, close: CloseInfo) {
        let id = self.shared.conn_id(conn);
        self.shared.hub.remove(id);
        tracing::info!(
            conn = id,
            peer = %conn.peer_addr(),
            code = close.code,
            reason = %close.reason,
            clean = close.clean,
            "close"
        );
        self.shared.listeners.emit("on_close", || {
            vec![
                Value::from(id),
                Value::from(close.code),
                Value::from(close.reason.as_str()),
            ]
        });
    }

    fn on_upgrade(&self, req: &Request) -> Result<Option<String>, http::StatusCode> {
        match self.shared.gate.admit(req) {
            Ok(admission) => Ok(admission.protocol),
            Err(refusal) => {
                tracing::info!(peer = %req.peer_addr(), path = req.path(), ?refusal, "upgrade refused");
                Err(refusal.status())
            }
        }
    }

    fn on_http(&self, req: &Request) -> Option<http::Response<Bytes>> {
        if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
            return None;
        }
        crate::web::respond(req.path(), || self.shared.stats())
    }
}
