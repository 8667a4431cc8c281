//! Shared by the integration tests: the push server on 127.0.0.1:0 with a
//! listening RPC client (so tests wait on events, not time), and bounded waits.
#![allow(clippy::unwrap_used, dead_code)]

pub mod http;
pub mod redis_server;
pub mod sse;

use std::time::Duration;

use msgpack_rpc::{Client as Rpc, Notification, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::timeout;
use ws_server::Message;
use ws_server::client::{self, Client as Ws};
use wspush::config::Settings;
use wspush::serve::{Running, start};

/// Upper bound for any single wait.
pub const WAIT: Duration = Duration::from_secs(10);

/// Defaults, with both listeners on 127.0.0.1 ports the kernel picks.
pub fn local_settings() -> Settings {
    Settings {
        ws: "127.0.0.1:0".parse().unwrap(),
        rpc: "127.0.0.1:0".parse().unwrap(),
        api: "127.0.0.1:0".parse().unwrap(),
        ..Settings::default()
    }
}

/// A server plus an RPC client that called `listen()`.
pub struct Harness {
    pub server: Running,
    pub rpc: Rpc,
    pub events: mpsc::Receiver<Notification>,
}

impl Harness {
    pub async fn start(settings: Settings) -> Harness {
        let server = start(&settings).await.unwrap();
        let rpc = Rpc::connect_tcp(server.rpc_addr).await.unwrap();
        let events = rpc.notifications();
        assert_eq!(
            rpc.call("listen", vec![]).await.unwrap(),
            Value::Boolean(true)
        );
        Harness {
            server,
            rpc,
            events,
        }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("ws://{}{}", self.server.ws_addr, path_and_query)
    }

    /// Opens a browser and waits for its `on_open` event (sent once the
    /// server has registered it and queued any replay); returns its id.
    pub async fn open(&mut self, path_and_query: &str) -> (Ws, u64) {
        let ws = client::connect(&self.url(path_and_query)).await.unwrap();
        loop {
            let event = self.next().await;
            if &event.method[..] == b"on_open" {
                return (ws, event.params[0].as_u64().unwrap());
            }
        }
    }

    /// The next event, whatever it is.
    pub async fn next(&mut self) -> Notification {
        timeout(WAIT, self.events.recv())
            .await
            .expect("no event in time")
            .expect("event stream ended")
    }

    /// The next event, which must be `method`.
    pub async fn next_event(&mut self, method: &str) -> Notification {
        let event = self.next().await;
        assert_eq!(&event.method[..], method.as_bytes(), "{event:?}");
        event
    }

    pub async fn call(&self, method: &str, params: Vec<Value>) -> Value {
        self.rpc.call(method, params).await.unwrap()
    }
}

/// The next data message, within [`WAIT`].
pub async fn recv(ws: &mut Ws) -> Message {
    timeout(WAIT, ws.recv_message())
        .await
        .expect("no message in time")
        .unwrap()
        .expect("closed")
}

/// The next message, which must be text.
pub async fn recv_text(ws: &mut Ws) -> String {
    match recv(ws).await {
        Message::Text(t) => String::from_utf8(t.to_vec()).unwrap(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// A plain HTTP GET on `addr` (the WebSocket port): the whole response, head and body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    timeout(WAIT, s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

/// A token signed (HS256) with `secret` for `sub`, allowed `channels`, expiring in 10 minutes.
pub fn jwt(secret: &str, sub: &str, channels: &[&str]) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let claims = serde_json::json!({ "sub": sub, "exp": exp, "channels": channels });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}
