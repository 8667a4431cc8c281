//! Test support: a server on 127.0.0.1:0 with a handler that records every event, and helpers
//! to wait for events with a timeout (never sleeps).
#![allow(clippy::unwrap_used, dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use ws_proto::frame::{FrameHeader, OpCode, apply_mask};
use ws_server::{
    CloseInfo, Connection, Handler, Message, Request, Server, ServerConfig, StreamHead,
};

/// Upper bound for any single wait in a test.
pub const WAIT: Duration = Duration::from_secs(10);

/// What the recording handler saw.
#[derive(Debug)]
pub enum Ev {
    Open {
        conn: Connection,
        path: String,
        query: Option<String>,
        header: Option<String>,
    },
    Message {
        id: u64,
        msg: Message,
    },
    Close {
        id: u64,
        info: CloseInfo,
    },
}

/// Echoes messages (unless `echo` is off) and reports every event.
pub struct Recorder {
    tx: mpsc::UnboundedSender<Ev>,
    echo: bool,
}

impl Handler for Recorder {
    async fn on_open(&self, conn: &Connection, req: &Request) {
        let header = req
            .headers()
            .get("x-test")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let _ = self.tx.send(Ev::Open {
            conn: conn.clone(),
            path: req.path().to_owned(),
            query: req.query().map(str::to_owned),
            header,
        });
    }

    async fn on_message(&self, conn: &Connection, msg: Message) {
        if self.echo {
            let _ = match &msg {
                Message::Text(t) => conn.send_text(t.clone()),
                Message::Binary(b) => conn.send_binary(b.clone()),
            };
        }
        let _ = self.tx.send(Ev::Message { id: conn.id(), msg });
    }

    async fn on_close(&self, conn: &Connection, info: CloseInfo) {
        let _ = self.tx.send(Ev::Close {
            id: conn.id(),
            info,
        });
    }

    fn on_upgrade(&self, req: &Request) -> Result<Option<String>, http::StatusCode> {
        if req.path() == "/forbidden" {
            return Err(http::StatusCode::FORBIDDEN);
        }
        let offered = req
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|p| p.trim() == "chat"));
        Ok(offered.then(|| "chat".to_owned()))
    }

    fn on_http(&self, req: &Request) -> Option<http::Response<Bytes>> {
        (req.path() == "/health").then(|| http::Response::new(Bytes::from_static(b"ok")))
    }

    /// `/events` is an event stream (`?hb` adds a 50 ms heartbeat); `/events-refused` is 401.
    fn on_stream(&self, req: &Request) -> Result<Option<StreamHead>, Box<http::Response<Bytes>>> {
        match req.path() {
            "/events" => {
                let mut head = StreamHead {
                    preamble: Bytes::from_static(b"retry: 1000\n\n"),
                    ..StreamHead::default()
                };
                head.headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/event-stream"),
                );
                if req.query() == Some("hb") {
                    head.heartbeat =
                        Some((Duration::from_millis(50), Bytes::from_static(b": hb\n\n")));
                }
                Ok(Some(head))
            }
            "/events-refused" => {
                let mut resp = http::Response::new(Bytes::from_static(b"no token"));
                *resp.status_mut() = http::StatusCode::UNAUTHORIZED;
                Err(Box::new(resp))
            }
            _ => Ok(None),
        }
    }
}

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub server: Server<Recorder>,
    pub events: mpsc::UnboundedReceiver<Ev>,
    shutdown: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start(config: ServerConfig) -> Self {
        Self::start_with(config, true).await
    }

    pub async fn start_with(config: ServerConfig, echo: bool) -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        let server = Server::new(config, Recorder { tx, echo });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.clone().serve(listener, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            server,
            events,
            shutdown: Some(stop),
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Triggers graceful shutdown.
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
    }

    pub async fn next(&mut self) -> Ev {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("no event in time")
            .expect("server gone")
    }

    pub async fn next_open(&mut self) -> Connection {
        match self.next().await {
            Ev::Open { conn, .. } => conn,
            other => panic!("expected open, got {other:?}"),
        }
    }

    /// Waits for the close event of connection `id`, skipping other events.
    pub async fn close_of(&mut self, id: u64) -> CloseInfo {
        loop {
            if let Ev::Close { id: got, info } = self.next().await {
                if got == id {
                    return info;
                }
            }
        }
    }
}

/// A default config with short timeouts for tests.
pub fn config() -> ServerConfig {
    let mut c = ServerConfig::default();
    c.close_timeout = Duration::from_secs(2);
    c.shutdown_timeout = Duration::from_secs(5);
    c
}

/// A masked client frame built by hand.
pub fn frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let key = [0x12, 0x34, 0x56, 0x78];
    let header = FrameHeader {
        fin,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode,
        mask: Some(key),
        payload_len: payload.len() as u64,
    };
    let mut out = Vec::new();
    header.encode(&mut out);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], key, 0);
    out
}

/// Runs `f` with the test's time bound.
pub async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.expect("timed out")
}

/// Runs a Python script from `tests/py/` and returns its output. A missing interpreter or
/// package fails the test with the script's message (run `scripts/test-deps.sh`).
pub async fn python(script: &str, args: &[&str]) -> std::process::Output {
    let path = format!("{}/tests/py/{script}", env!("CARGO_MANIFEST_DIR"));
    let child = tokio::process::Command::new("python3")
        .arg(&path)
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .expect("python script timed out")
        .expect("python3 not found: run scripts/test-deps.sh");
    assert!(
        out.status.success(),
        "{script} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Expects the server's close frame, then the end of the TCP connection (the client's echo
/// goes out from `recv`).
pub async fn expect_close(ws: &mut ws_server::Client) -> ws_proto::CloseFrame {
    let Some(ws_proto::Event::Close(close)) = within(ws.recv()).await.unwrap() else {
        panic!("no close frame")
    };
    assert_eq!(within(ws.recv()).await.unwrap(), None);
    close
}
