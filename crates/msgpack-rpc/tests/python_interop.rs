//! Interop with an independent implementation: Python peers on raw sockets
//! using the `msgpack` package (installed by `scripts/test-deps.sh`).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use common::{WAIT, remote, start};
use futures_util::future::{BoxFuture, join_all};
use msgpack_rpc::{CallError, Client, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::time::timeout;

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
}

/// Fails (never skips) when the Python peer cannot run.
fn require_python_msgpack() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import msgpack"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3 with the `msgpack` package is required: run scripts/test-deps.sh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_peer_drives_the_rust_server() {
    require_python_msgpack();
    let srv = start().await;
    let run = Command::new("python3")
        .arg(script("drive_server.py"))
        .arg(srv.addr.to_string())
        .kill_on_drop(true)
        .output();
    let out = timeout(std::time::Duration::from_secs(120), run)
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python peer failed\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

#[tokio::test]
async fn rust_client_drives_a_python_server() {
    require_python_msgpack();
    let mut child = Command::new("python3")
        .arg(script("rpc_server.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port: u16 = timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    let addr = ("127.0.0.1", port);
    let c = Client::connect_tcp(addr).await.unwrap();

    // Replies written one byte per write.
    assert_eq!(
        c.call("echo", vec![Value::from("split")]).await.unwrap(),
        Value::from("split")
    );

    // 50 pipelined calls answered in reverse, after a later call.
    let mut calls: Vec<BoxFuture<'_, Result<Value, CallError>>> = (0..50)
        .map(|i| Box::pin(c.call("hold", vec![Value::from(i)])) as BoxFuture<'_, _>)
        .collect();
    calls.push(Box::pin(c.call("flush", vec![])));
    let results = join_all(calls).await;
    for (i, r) in results[..50].iter().enumerate() {
        assert_eq!(r.as_ref().unwrap(), &Value::from(i));
    }
    assert_eq!(results[50].as_ref().unwrap(), &Value::from(50));

    // Old raw format replies, error replies, unknown methods.
    let long = "y".repeat(40);
    assert_eq!(
        c.call("old_echo", vec![Value::from(long.as_str())])
            .await
            .unwrap(),
        Value::from(long)
    );
    assert_eq!(remote(c.call("err", vec![]).await.unwrap_err()), "bad");
    assert_eq!(
        remote(c.call("zzz", vec![]).await.unwrap_err()),
        "method `zzz' is not accepted"
    );

    // A server notification arrives on the stream, before the reply.
    let mut notes = c.notifications();
    assert_eq!(
        c.call("notify_me", vec![Value::from(5)]).await.unwrap(),
        Value::from(true)
    );
    let n = notes.try_recv().unwrap();
    assert_eq!(
        (&n.method[..], n.params),
        (&b"note"[..], vec![Value::from(5)])
    );
    c.notify("ignored", vec![]).unwrap();

    // The server hangs up with calls pending: all fail at once.
    let d = Client::connect_tcp(addr).await.unwrap();
    let mut calls: Vec<BoxFuture<'_, Result<Value, CallError>>> = (0..3)
        .map(|i| Box::pin(d.call("hold", vec![Value::from(i)])) as BoxFuture<'_, _>)
        .collect();
    calls.push(Box::pin(d.call("hang_up", vec![])));
    for r in timeout(WAIT, join_all(calls)).await.unwrap() {
        assert!(matches!(r, Err(CallError::Closed(_))), "{r:?}");
    }
    // The first connection is unaffected.
    assert_eq!(c.call("echo", vec![Value::Nil]).await.unwrap(), Value::Nil);
    drop(child.stdin.take());
    timeout(WAIT, child.wait()).await.unwrap().unwrap();
}
