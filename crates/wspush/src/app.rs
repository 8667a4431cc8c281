//! The WebSocket side of the push server: browsers into and out of the hub,
//! their events to listening programs, and plain HTTP (demo page, health,
//! metrics) on the same port.

use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use msgpack_rpc::Value;
use ws_server::{CloseInfo, Connection, Handler, Message, Request};

use crate::events::Listeners;
use crate::hub::{ConnInfo, ConnSnapshot, Hub, channels_from_query};
use crate::stats::Stats;

/// State shared by the WebSocket handler and the RPC methods.
pub struct Shared {
    /// Connections, channels, fan-out.
    pub hub: Hub,
    /// RPC connections that called `listen()`.
    pub listeners: Listeners,
    started: Instant,
    ws_stats: OnceLock<Arc<ws_server::Stats>>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            hub: Hub::new(),
            listeners: Listeners::default(),
            started: Instant::now(),
            ws_stats: OnceLock::new(),
        }
    }
}

impl Shared {
    /// Attaches the WebSocket server's counters (once, at start).
    pub fn set_ws_stats(&self, stats: Arc<ws_server::Stats>) {
        let _ = self.ws_stats.set(stats);
    }

    /// A snapshot of every counter.
    pub fn stats(&self) -> Stats {
        let ws = self
            .ws_stats
            .get()
            .map(|s| s.snapshot())
            .unwrap_or_default();
        Stats::collect(
            &self.hub,
            &ws,
            &self.listeners,
            self.started.elapsed().as_secs(),
        )
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
        (Value::from("peer"), Value::from(info.peer.to_string())),
        (Value::from("path"), Value::from(info.path.as_str())),
        (Value::from("query"), Value::from(info.query.as_str())),
        (
            Value::from("channels"),
            Value::Array(channels.iter().map(|c| Value::from(c.as_str())).collect()),
        ),
        (Value::from("opened"), Value::from(unix_secs(info.opened))),
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
        let channels = channels_from_query(query);
        let info = ConnInfo {
            id: conn.id(),
            peer: conn.peer_addr(),
            path: req.path().to_owned(),
            query: query.to_owned(),
            opened: SystemTime::now(),
        };
        tracing::info!(conn = info.id, peer = %info.peer, path = %info.path, ?channels, "open");
        self.shared.listeners.emit("on_open", || {
            let mut map = info_value(&info, &channels);
            let headers = req
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((Value::from(k.as_str()), Value::from(v.to_str().ok()?))))
                .collect();
            map.push((Value::from("headers"), Value::Map(headers)));
            vec![Value::from(info.id), Value::Map(map)]
        });
        self.shared.hub.add(conn.clone(), info, &channels);
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
        tracing::debug!(conn = conn.id(), len, "message");
        self.shared
            .listeners
            .emit("on_message", || vec![Value::from(conn.id()), value]);
    }

    async fn on_close(&self, conn: &Connection, close: CloseInfo) {
        self.shared.hub.remove(conn.id());
        tracing::info!(
            conn = conn.id(),
            peer = %conn.peer_addr(),
            code = close.code,
            reason = %close.reason,
            clean = close.clean,
            "close"
        );
        self.shared.listeners.emit("on_close", || {
            vec![
                Value::from(conn.id()),
                Value::from(close.code),
                Value::from(close.reason.as_str()),
            ]
        });
    }

    fn on_http(&self, req: &Request) -> Option<http::Response<Bytes>> {
        if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
            return None;
        }
        crate::web::respond(req.path(), || self.shared.stats())
    }
}
