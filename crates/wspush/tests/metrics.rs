//! `/metrics` of a running server as Prometheus reads it: `promtool check metrics` (Debian's
//! `prometheus` package, installed by `scripts/test-deps.sh`) finds nothing to say.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;

use common::{Harness, WAIT, http_get, local_settings};
use msgpack_rpc::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::time::timeout;

async fn metrics(addr: std::net::SocketAddr) -> String {
    let out = http_get(addr, "/metrics").await;
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

#[tokio::test]
async fn metrics_pass_promtool_check() {
    let mut h = Harness::start(local_settings()).await;
    // Something in every kind of family: counters, gauges, labels (a close code).
    let (mut ws, _) = h.open("/?channel=news").await;
    h.call("publish", vec![Value::from("news"), Value::from("x")])
        .await;
    ws.close(1000, "").await.unwrap();
    h.next_event("on_close").await;
    let body = metrics(h.server.api_addr).await;
    assert!(
        body.contains("wspush_closes_total{code=\"1000\"} 1\n"),
        "{body}"
    );
    assert!(body.contains("wspush_pushes_total 1\n"), "{body}");

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("promtool not found: run scripts/test-deps.sh (Debian package prometheus)");
    let mut stdin = promtool.stdin.take().unwrap();
    stdin.write_all(body.as_bytes()).await.unwrap();
    drop(stdin);
    let out = timeout(WAIT, promtool.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{body}"
    );
}
