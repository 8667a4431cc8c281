//! Browser-to-browser chat on `ws_server`: every message a browser sends goes to every browser.
//!
//! ```text
//! cargo run -p wspush --example chat -- [ADDR]        # default 127.0.0.1:8080
//! ```
//!
//! Open `http://ADDR/` in two tabs. The page (`chat.html`, served at `GET /`, no external
//! assets) sends `{"name", "text"}` as text; the server relays each message unchanged,
//! encoded once as a [`PreparedMessage`] whose bytes every connection shares, and tells
//! everyone `{"online": n}` when someone joins or leaves.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::net::TcpListener;
use ws_server::{
    CloseInfo, Connection, Handler, Message, PreparedMessage, Request, Server, ServerConfig,
};

/// The page, compiled in.
const PAGE: &str = include_str!("chat.html");

/// Everyone in the room, by connection id.
#[derive(Default)]
pub struct Chat {
    room: Mutex<BTreeMap<u64, Connection>>,
}

impl Chat {
    fn room(&self) -> MutexGuard<'_, BTreeMap<u64, Connection>> {
        self.room.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Encodes `msg` once and queues the same bytes to everyone; never waits on a slow
    /// browser (a full queue is the server's overflow policy: close 1008).
    fn broadcast(&self, msg: Message) {
        let frame = Arc::new(PreparedMessage::new(msg));
        for conn in self.room().values() {
            let _ = conn.send_prepared(&frame);
        }
    }

    fn announce_online(&self) {
        let online = self.room().len();
        self.broadcast(Message::text(format!("{{\"online\":{online}}}")));
    }
}

impl Handler for Chat {
    async fn on_open(&self, conn: &Connection, _req: &Request) {
        self.room().insert(conn.id(), conn.clone());
        self.announce_online();
    }

    async fn on_message(&self, _conn: &Connection, msg: Message) {
        self.broadcast(msg);
    }

    async fn on_close(&self, conn: &Connection, _close: CloseInfo) {
        self.room().remove(&conn.id());
        self.announce_online();
    }

    fn on_http(&self, req: &Request) -> Option<http::Response<Bytes>> {
        (req.path() == "/").then(|| {
            let mut response = http::Response::new(Bytes::from_static(PAGE.as_bytes()));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        })
    }
}

/// Serves the chat on `listener` until `shutdown` completes (browsers get close 1001).
pub async fn serve(listener: TcpListener, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    Server::new(ServerConfig::default(), Chat::default())
        .serve(listener, shutdown)
        .await
}

#[tokio::main]
async fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("chat: open http://{}/ in two tabs", listener.local_addr()?);
    serve(listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
