//! Stock MessagePack-RPC clients, installed from PyPI and npm as users install
//! them, drive the real `wspush` binary; Rust WebSocket clients play the browsers.
//!
//! - `msgpack-rpc-python` 0.4.1 (tornado 4, msgpack-python 0.5): the pre-2013
//!   format, strings as raw (`a0-bf`, `da`), checked on the wire through a
//!   recording proxy.
//! - `msgpack-rpc-lite` 1.0.2 (npm, msgpack-lite): the 2013 format with str8 (`d9`).
//!
//! The packages are installed by `scripts/test-deps.sh` into `tests/stock/`
//! (`.venv`, `node_modules`); without them these tests fail and say so.
#![allow(clippy::unwrap_used)]

#[path = "stock/harness.rs"]
mod harness;

#[allow(dead_code)]
#[path = "../examples/seed.rs"]
mod seed;

use std::net::SocketAddr;

use harness::{Recorder, Script, WAIT, Wspush, contains, require, stock_dir};
use msgpack_rpc::{Client as Rpc, Notification, Value};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::timeout;
use ws_server::Message;
use ws_server::client::{self, Client as Ws};

/// The seed contract: `[0, 0, "push_data", ["{\"hello\":\"world\"}"]]` ...
const SEED_REQUEST: &[u8] = b"\x94\x00\x00\xa9push_data\x91\xb1{\"hello\":\"world\"}";
/// ... answered `[1, 0, nil, nil]`.
const SEED_REPLY: &[u8] = b"\x94\x01\x00\xc0\xc0";
const PYTHON_LONG: &str = "raw16 string from msgpack-rpc-python....";
const NODE_LONG: &str = "str8 string from msgpack-rpc-lite ......";

fn python() -> std::path::PathBuf {
    let python = stock_dir().join(".venv/bin/python");
    require(&python, "the msgpack-rpc-python virtualenv");
    python
}

/// Two "browsers" (one on channel `news`) and a listening RPC client that
/// knows their ids; each browser has sent `ready`, which the server handles
/// after registering it, so pushes from now on reach both.
struct Browsers {
    plain: Ws,
    news: Ws,
    ids: Vec<u64>,
    _rpc: Rpc,
    _events: mpsc::Receiver<Notification>,
}

impl Browsers {
    async fn open(ws: SocketAddr, rpc: SocketAddr) -> Browsers {
        let rpc = Rpc::connect_tcp(rpc).await.unwrap();
        let mut events = rpc.notifications();
        assert_eq!(
            rpc.call("listen", vec![]).await.unwrap(),
            Value::Boolean(true)
        );
        let mut plain = client::connect(&format!("ws://{ws}/")).await.unwrap();
        let mut news = client::connect(&format!("ws://{ws}/?channel=news"))
            .await
            .unwrap();
        plain.send_text("ready").await.unwrap();
        news.send_text("ready").await.unwrap();
        let mut ids = Vec::new();
        while ids.len() < 2 {
            let event = timeout(WAIT, events.recv()).await.unwrap().unwrap();
            if &event.method[..] == b"on_message" {
                ids.push(event.params[0].as_u64().unwrap());
            }
        }
        ids.sort_unstable();
        Browsers {
            plain,
            news,
            ids,
            _rpc: rpc,
            _events: events,
        }
    }
}

async fn recv_text(ws: &mut Ws) -> String {
    match timeout(WAIT, ws.recv_message()).await.unwrap().unwrap() {
        Some(Message::Text(t)) => String::from_utf8(t.to_vec()).unwrap(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

async fn expect_texts(ws: &mut Ws, expected: &[&str]) {
    for want in expected {
        assert_eq!(recv_text(ws).await, *want);
    }
}

/// The steps both scripts run, in order, and what each must report.
async fn expect_common_steps(script: &mut Script, ids: &[u64]) {
    assert_eq!(script.step("push_data").await["result"], json!(null));
    assert_eq!(script.step("push_long").await["result"], json!(null));
    assert_eq!(script.step("publish").await["result"], json!(1));
    assert_eq!(
        script.step("nope").await["error"],
        json!("method `nope' is not accepted")
    );
    assert_eq!(
        script.step("arity").await["error"],
        json!("wrong number of arguments (given 0, expected 1)")
    );
    assert_eq!(script.step("connections").await["ids"], json!(ids));
}

async fn expect_common_pushes(b: &mut Browsers, long: &str) {
    let hello = r#"{"hello":"world"}"#;
    let note = "sent as a notification";
    expect_texts(&mut b.plain, &[hello, long, note]).await;
    expect_texts(&mut b.news, &[hello, long, "for news only", note]).await;
}

#[tokio::test]
async fn msgpack_rpc_python_sends_raw_strings_and_gets_nil() {
    let python = python();
    let server = Wspush::spawn().await;
    let mut browsers = Browsers::open(server.ws, server.rpc).await;
    let wire = Recorder::start(server.rpc).await;

    let mut script = Script::spawn(
        &python,
        &[
            "msgpack_rpc_python.py".into(),
            "127.0.0.1".into(),
            wire.addr.port().to_string(),
        ],
    );
    expect_common_steps(&mut script, &browsers.ids).await;
    script.finish().await;
    expect_common_pushes(&mut browsers, PYTHON_LONG).await;

    let sent = wire.from_client.lock().unwrap().clone();
    let answered = wire.from_server.lock().unwrap().clone();
    assert!(sent.starts_with(SEED_REQUEST), "{sent:02x?}");
    assert!(answered.starts_with(SEED_REPLY), "{answered:02x?}");
    // The 40-byte string as raw16, the pre-2013 encoding; never as str8.
    let raw16 = [b"\xda\x00\x28", PYTHON_LONG.as_bytes()].concat();
    let str8 = [b"\xd9\x28", PYTHON_LONG.as_bytes()].concat();
    assert!(contains(&sent, &raw16), "no raw16 string: {sent:02x?}");
    // And the server answers it in kind: a 47-byte error string as raw16, not str8.
    let error = b"\xda\x00\x2fwrong number of arguments (given 0, expected 1)";
    assert!(contains(&answered, error), "{answered:02x?}");
    assert!(
        !contains(&sent, &str8),
        "str8 from an old client: {sent:02x?}"
    );
}

#[tokio::test]
async fn msgpack_rpc_lite_sends_str8_and_holds_a_conversation() {
    let node_module = stock_dir().join("node_modules/msgpack-rpc-lite");
    require(&node_module, "the npm package msgpack-rpc-lite");
    let server = Wspush::spawn().await;
    let mut browsers = Browsers::open(server.ws, server.rpc).await;
    let wire = Recorder::start(server.rpc).await;

    let mut script = Script::spawn(
        "node".as_ref(),
        &[
            "msgpack_rpc_lite.js".into(),
            "127.0.0.1".into(),
            wire.addr.port().to_string(),
        ],
    );
    expect_common_steps(&mut script, &browsers.ids).await;
    expect_common_pushes(&mut browsers, NODE_LONG).await;

    // listen(): a browser message reaches the Node program, which answers it.
    assert_eq!(script.step("listen").await["result"], json!(true));
    browsers.plain.send_text("hi").await.unwrap();
    assert_eq!(recv_text(&mut browsers.plain).await, "echo: hi");
    assert_eq!(script.step("echo").await["result"], json!(true));
    script.finish().await;

    let sent = wire.from_client.lock().unwrap().clone();
    let str8 = [b"\xd9\x28", NODE_LONG.as_bytes()].concat();
    assert!(contains(&sent, &str8), "no str8 string: {sent:02x?}");
}

/// The seed's handler, telling the test when a socket joined `$sockets`.
struct Observed {
    seed: seed::MyConnection,
    opened: mpsc::UnboundedSender<()>,
}

impl ws_server::Handler for Observed {
    async fn on_open(&self, conn: &ws_server::Connection, req: &ws_server::Request) {
        self.seed.on_open(conn, req).await;
        let _ = self.opened.send(());
    }
    async fn on_message(&self, conn: &ws_server::Connection, msg: Message) {
        self.seed.on_message(conn, msg).await;
    }
    async fn on_close(&self, conn: &ws_server::Connection, close: ws_server::CloseInfo) {
        self.seed.on_close(conn, close).await;
    }
}

#[tokio::test]
async fn seed_example_serves_the_stock_python_client() {
    let python = python();
    let ws = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (ws_addr, rpc_addr) = (ws.local_addr().unwrap(), rpc.local_addr().unwrap());
    // seed::run with the handler observed; the same two servers on this runtime.
    let sockets = seed::Sockets::default();
    let rpc_server = seed::rpc_server(sockets.clone());
    let (opened, mut open_events) = mpsc::unbounded_channel();
    let handler = Observed {
        seed: seed::MyConnection { sockets },
        opened,
    };
    let ws_server = ws_server::Server::new(ws_server::ServerConfig::default(), handler);
    let servers = tokio::spawn(async move {
        tokio::try_join!(
            rpc_server.serve_tcp(rpc, std::future::pending()),
            ws_server.serve(ws, std::future::pending()),
        )
    });

    let mut browser = client::connect(&format!("ws://{ws_addr}/")).await.unwrap();
    timeout(WAIT, open_events.recv()).await.unwrap().unwrap();
    let mut script = Script::spawn(
        &python,
        &[
            "msgpack_rpc_python.py".into(),
            "127.0.0.1".into(),
            rpc_addr.port().to_string(),
            "seed".into(),
        ],
    );
    assert_eq!(script.step("push_data").await["result"], json!(null));
    script.finish().await;
    assert_eq!(recv_text(&mut browser).await, r#"{"hello":"world"}"#);
    servers.abort();
}
