//! Stock Centrifugo server-API clients, installed as users install them (`cent` 5.2.0
//! from PyPI in `tests/stock/.venv-cent`, `cent.js` 6.1.0 from npm in
//! `tests/stock/node_modules`, both by `scripts/test-deps.sh`), drive the real `wspush`
//! binary's HTTP API while a Rust WebSocket client plays the browser on channel `news`.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "stock/harness.rs"]
mod harness;

use harness::{WAIT, Wspush, require, stock_dir};
use serde_json::{Value, json};
use tokio::time::timeout;
use ws_server::Message;
use ws_server::client::{self, Client as Ws};

const KEY: &str = "stock-key";

async fn server() -> Wspush {
    Wspush::spawn_with(
        &["--ws", "127.0.0.1:0", "--rpc", "127.0.0.1:0"],
        &[("WSPUSH_API_KEY", KEY)],
    )
    .await
}

/// A browser on channel `news`, registered: a listening RPC client saw its `on_open`.
async fn browser(server: &Wspush) -> (Ws, u64, msgpack_rpc::Client) {
    let rpc = msgpack_rpc::Client::connect_tcp(server.rpc).await.unwrap();
    let mut events = rpc.notifications();
    rpc.call("listen", vec![]).await.unwrap();
    let ws = client::connect(&format!("ws://{}/?channel=news", server.ws))
        .await
        .unwrap();
    loop {
        let event = timeout(WAIT, events.recv()).await.unwrap().unwrap();
        if &event.method[..] == b"on_open" {
            return (ws, event.params[0].as_u64().unwrap(), rpc);
        }
    }
}

async fn texts(ws: &mut Ws, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < n {
        match timeout(WAIT, ws.recv_message()).await.unwrap().unwrap() {
            Some(Message::Text(t)) => got.push(String::from_utf8(t.to_vec()).unwrap()),
            other => panic!("expected text, got {other:?}"),
        }
    }
    got
}

/// Runs `program args` with the API's URL and key; its one line of JSON results.
async fn run(server: &Wspush, program: &std::path::Path, args: &[&str]) -> Value {
    let out = tokio::process::Command::new(program)
        .args(args)
        .current_dir(stock_dir())
        .env("WSPUSH_API_URL", format!("http://{}/api", server.api))
        .env("WSPUSH_API_KEY", KEY)
        .kill_on_drop(true)
        .output();
    let out = timeout(WAIT, out).await.expect("the client hung").unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What both clients report alike: publish at 1, broadcast at 2 (and 1 on `other`), the
/// browser present, both in history, one node, a wrong key refused.
fn expect_common(out: &Value, id: u64, history: Value) {
    let epoch = out["publish"][1].clone();
    assert!(epoch.as_str().is_some_and(|e| !e.is_empty()), "{out}");
    assert_eq!(out["publish"], json!([1, epoch]));
    assert_eq!(out["broadcast"], json!([2, 1]));
    assert_eq!(out["presence"], json!([id.to_string()]));
    assert_eq!(out["history"], history);
    assert_eq!(out["top"], json!([2, epoch]));
    assert_eq!(out["info"], json!([true]));
    assert_eq!(out["wrong_key"], "refused");
}

#[tokio::test]
async fn stock_cent_python_drives_the_api() {
    let python = stock_dir().join(".venv-cent/bin/python");
    require(&python, "the cent virtualenv");
    let server = server().await;
    let (mut ws, id, _rpc) = browser(&server).await;
    let out = run(&server, &python, &["cent_python.py"]).await;
    expect_common(&out, id, json!([[1, {"from": "cent"}], [2, {"n": 2}]]));
    assert_eq!(out["num_clients"], 1);
    assert_eq!(out["batch"], json!([3, 1]));
    assert_eq!(out["unrecoverable"], 112);
    // What cent sent, as the browser received it (json.dumps' spacing).
    assert_eq!(
        texts(&mut ws, 3).await,
        [r#"{"from": "cent"}"#, r#"{"n": 2}"#, r#""batched""#]
            .map(str::to_owned)
            .to_vec()
    );
}

#[tokio::test]
async fn stock_cent_js_drives_the_api_and_its_pipeline() {
    let module = stock_dir().join("node_modules/cent.js");
    require(&module, "cent.js from npm");
    let server = server().await;
    let (mut ws, id, _rpc) = browser(&server).await;
    let out = run(&server, std::path::Path::new("node"), &["cent_js.mjs"]).await;
    expect_common(
        &out,
        id,
        json!([[1, {"from": "cent.js"}], [2, {"n": "js"}]]),
    );
    assert_eq!(out["pipeline"], json!([3, 1]));
    assert_eq!(
        texts(&mut ws, 3).await,
        [r#"{"from":"cent.js"}"#, r#"{"n":"js"}"#, r#""piped""#]
            .map(str::to_owned)
            .to_vec()
    );
}
