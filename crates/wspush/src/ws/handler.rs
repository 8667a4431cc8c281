//! The public port's handler: browsers into and out of the hub, their events to
//! listening programs, and plain HTTP (demo page, health, metrics).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use msgpack_rpc::Value;
use ws_server::{CloseInfo, Connection, Handler, Message, Request, StreamHead};

use crate::delivery::events::info_value;
use crate::delivery::history::plan;
use crate::delivery::hub::{ConnInfo, Transport};
use crate::delivery::query::{ClientOptions, Since};
use crate::shared::Shared;

/// The [`Handler`] of the push server.
pub struct App {
    shared: Arc<Shared>,
    /// A comment on an idle event stream this often (the WebSocket ping interval).
    sse_heartbeat: Option<Duration>,
}

impl App {
    /// A handler over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        App {
            shared,
            sse_heartbeat: Some(Duration::from_secs(30)),
        }
    }

    /// The same handler keeping idle event streams alive this often (`None`: never).
    pub fn with_sse_heartbeat(mut self, every: Option<Duration>) -> Self {
        self.sse_heartbeat = every;
        self
    }
}

impl Handler for App {
    async fn on_open(&self, conn: &Connection, req: &Request) {
        let query = req.query().unwrap_or("");
        // Decided in on_upgrade; only an expiry in between can fail here, and
        // then the closing connection joins nothing.
        let (mut opts, user) = match self.shared.gate.admit(req) {
            Ok(admission) => (admission.options, admission.claims.and_then(|c| c.sub)),
            Err(why) => {
                conn.close(ws_proto::close::POLICY, why.reason());
                (ClientOptions::default(), None)
            }
        };
        let transport = match (conn.is_event_stream(), req.path()) {
            (false, _) => Transport::WebSocket,
            (true, crate::poll::PATH) => Transport::Poll(Arc::default()),
            (true, _) => {
                opts = crate::sse::options(req, opts);
                Transport::Sse
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
            transport: transport.name(),
        };
        tracing::info!(conn = info.id, peer = %info.peer, path = %info.path, ?channels, "open");
        // Subscribe first, then read history: messages published in between
        // are buffered by the hub and de-duplicated by position.
        let info_for_event = info.clone();
        let resumes = self
            .shared
            .hub
            .add(conn.clone(), info, &opts, transport.clone());
        for resume in resumes {
            let stream = resume.stream.as_deref();
            let read = self.shared.read_history(stream).await;
            // No `since` (an event stream joining): from where the stream is now.
            let since = resume.since.unwrap_or_else(|| Since {
                stream: resume.stream.clone(),
                epoch: read.epoch.to_string(),
                seq: read.last_seq,
            });
            self.shared
                .hub
                .finish_resume(id, stream, plan(&since, read));
        }
        self.shared.hub.announce_ids(id);
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
        if let Transport::Poll(wake) = transport {
            crate::poll::serve(&self.shared, conn, req, &opts, wake).await;
        }
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

    fn on_stream(&self, req: &Request) -> Result<Option<StreamHead>, Box<http::Response<Bytes>>> {
        if let Some(head) = crate::poll::decide(req, &self.shared.gate)? {
            return Ok(Some(head));
        }
        crate::sse::decide(req, &self.shared.gate, self.sse_heartbeat)
    }

    fn on_http(&self, req: &Request) -> Option<http::Response<Bytes>> {
        if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
            return None;
        }
        crate::ws::web::respond(req.path(), self.shared.metrics_public, || {
            self.shared.stats()
        })
    }
}
