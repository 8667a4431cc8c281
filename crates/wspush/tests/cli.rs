//! The `wspush` binary as a user runs it: signals, the command-line tools, settings from the
//! environment and a TOML file.
#![allow(clippy::unwrap_used)]

#[path = "stock/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::process::Stdio;

use harness::{WAIT, Wspush};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::time::timeout;
use ws_proto::Event;
use ws_server::Message;
use ws_server::client::{self, Client};

fn wspush() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wspush"));
    cmd.kill_on_drop(true);
    cmd
}

/// Runs a tool to completion: (success, stdout, stderr).
async fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = timeout(WAIT, cmd.stdin(Stdio::null()).output())
        .await
        .expect("tool hung")
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn recv_text(ws: &mut Client) -> String {
    match timeout(WAIT, ws.recv_message()).await.unwrap().unwrap() {
        Some(Message::Text(t)) => String::from_utf8(t.to_vec()).unwrap(),
        other => panic!("expected text, got {other:?}"),
    }
}

#[tokio::test]
async fn sigterm_closes_browsers_with_1001_and_exits_0() {
    let server = Wspush::spawn().await;
    let mut ws = client::connect(&format!("ws://{}/", server.ws))
        .await
        .unwrap();
    let status = tokio::spawn(server.terminate());
    let close = timeout(WAIT, async {
        loop {
            match ws.recv().await.unwrap() {
                Some(Event::Close(frame)) => break frame,
                Some(_) => continue,
                None => panic!("connection ended without a close frame"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(close.code, 1001);
    drop(ws);
    let status = status.await.unwrap();
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn push_stats_connections_tail_and_listen() {
    let server = Wspush::spawn().await;
    let rpc = server.rpc.to_string();
    let mut listen = wspush()
        .args(["listen", "--rpc", &rpc])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut listen_err = BufReader::new(listen.stderr.take().unwrap()).lines();
    let line = timeout(WAIT, listen_err.next_line())
        .await
        .unwrap()
        .unwrap();
    assert!(line.unwrap().contains("listening"), "listen did not start");
    let mut events = BufReader::new(listen.stdout.take().unwrap()).lines();

    let mut ws = client::connect(&format!("ws://{}/page?channel=news", server.ws))
        .await
        .unwrap();
    let opened = timeout(WAIT, events.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(opened.starts_with("on_open "), "{opened}");

    // `tail` is a browser too; it says when it is connected.
    let mut tail = wspush()
        .args(["tail", &format!("ws://{}/", server.ws), "-n", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut tail_err = BufReader::new(tail.stderr.take().unwrap()).lines();
    let line = timeout(WAIT, tail_err.next_line()).await.unwrap().unwrap();
    assert!(line.unwrap().starts_with("connected to"));
    timeout(WAIT, events.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let (ok, _, err) = run(wspush().args(["push", "--rpc", &rpc, r#"{"hello":"world"}"#])).await;
    assert!(ok, "{err}");
    assert_eq!(recv_text(&mut ws).await, r#"{"hello":"world"}"#);

    // DATA from stdin, to a channel.
    let mut push = wspush()
        .args(["push", "--rpc", &rpc, "--channel", "news"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    push.stdin
        .take()
        .unwrap()
        .write_all(b"from stdin")
        .await
        .unwrap();
    let out = timeout(WAIT, push.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("pushed to channel news: queued to 1 connection(s)")
    );
    assert_eq!(recv_text(&mut ws).await, "from stdin");

    // The environment names the RPC address too.
    let (ok, _, err) = run(wspush().args(["push", "second"]).env("WSPUSH_RPC", &rpc)).await;
    assert!(ok, "{err}");
    let tail_out = timeout(WAIT, tail.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(tail_out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&tail_out.stdout),
        "{\"hello\":\"world\"}\nsecond\n"
    );

    let (ok, stats, _) = run(wspush().args(["stats", "--rpc", &rpc])).await;
    assert!(ok);
    assert!(
        stats
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["pushes", "3"]),
        "{stats}"
    );
    let (ok, conns, _) = run(wspush().args(["connections", "--rpc", &rpc])).await;
    assert!(ok);
    assert!(conns.contains("/page") && conns.contains("news"), "{conns}");

    ws.send_text("hi from the browser").await.unwrap();
    let mut saw = false;
    while let Ok(Ok(Some(line))) = timeout(WAIT, events.next_line()).await {
        if line.starts_with("on_message ") && line.ends_with(" hi from the browser") {
            saw = true;
            break;
        }
    }
    assert!(saw, "listen did not print the browser's message");
    listen.kill().await.unwrap();
}

#[tokio::test]
async fn a_refused_connection_says_where_and_what_to_start() {
    // Bind then release a port, so nothing listens there.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (ok, _, err) = run(wspush().args(["push", "--rpc", &free.to_string(), "x"])).await;
    assert!(!ok);
    assert!(
        err.contains(&free.to_string()) && err.contains("wspush serve"),
        "{err}"
    );
}

#[tokio::test]
async fn settings_come_from_a_toml_file_and_the_environment() {
    let dir = std::env::temp_dir().join(format!("wspush-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("wspush.toml");
    // The file picks the RPC address, the environment the WebSocket one.
    std::fs::write(
        &file,
        "rpc = \"127.0.0.1:0\"\nws = \"127.0.0.2:0\"\nqueue_bytes = 4096\n",
    )
    .unwrap();
    let server = Wspush::spawn_with(
        &["--config", file.to_str().unwrap()],
        &[("WSPUSH_WS", "127.0.0.1:0")],
    )
    .await;
    assert!(server.rpc.ip().is_loopback());
    assert_eq!(server.ws.ip().to_string(), "127.0.0.1");
    let (ok, stats, err) = run(wspush().args(["stats", "--rpc", &server.rpc.to_string()])).await;
    assert!(ok, "{err}");
    assert!(stats.contains("pushes"));

    std::fs::write(&file, "bogus_setting = 1\n").unwrap();
    let (ok, _, err) = run(wspush().args(["serve", "--config", file.to_str().unwrap()])).await;
    assert!(!ok);
    assert!(err.contains("bogus_setting"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `wspush stats | head -1`: the reader leaving early is not a panic, and the tool exits 0.
/// Every push prints one line saying where it went.
#[tokio::test]
async fn a_closed_pipe_ends_a_tool_quietly_and_every_push_says_where_it_went() {
    let server = Wspush::spawn().await;
    let rpc = server.rpc.to_string();
    let mut stats = wspush()
        .args(["stats", "--rpc", &rpc])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader is gone before the tool writes its first line.
    drop(stats.stdout.take());
    let out = timeout(WAIT, stats.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let (ok, stdout, err) = run(wspush().args(["push", "--rpc", &rpc, "hello"])).await;
    assert!(ok, "{err}");
    assert_eq!(stdout, "pushed to every connection\n");
    let (ok, stdout, err) =
        run(wspush().args(["push", "--rpc", &rpc, "--channel", "c", "x"])).await;
    assert!(ok, "{err}");
    assert_eq!(stdout, "pushed to channel c: queued to 0 connection(s)\n");
}

/// `wspush stats` prints its counters in groups, aligned; `| head -3` ends it quietly; a
/// push to one connection says where it went like the others.
#[tokio::test]
async fn stats_come_in_aligned_groups_and_head_ends_them_quietly() {
    let server = Wspush::spawn().await;
    let rpc = server.rpc.to_string();
    let (ok, stats, err) = run(wspush().args(["stats", "--rpc", &rpc])).await;
    assert!(ok, "{err}");
    let headers: Vec<&str> = stats.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(
        headers,
        ["connections", "delivery", "rpc", "limits", "api", "broker"],
        "{stats}"
    );
    // Every value starts in the same column.
    let columns: std::collections::BTreeSet<usize> = stats
        .lines()
        .filter(|l| l.starts_with(' '))
        .map(|l| {
            let key_end = 2 + l[2..].find(' ').unwrap();
            key_end + l[key_end..].find(|c: char| c != ' ').unwrap()
        })
        .collect();
    assert_eq!(columns.len(), 1, "{stats}");

    let (ok, head, err) = run(Command::new("bash").args([
        "-o",
        "pipefail",
        "-c",
        &format!(
            "{} stats --rpc {rpc} | head -3",
            env!("CARGO_BIN_EXE_wspush")
        ),
    ]))
    .await;
    assert!(ok, "{err}");
    assert_eq!((head.lines().count(), err.as_str()), (3, ""), "{head}");

    let _ws = client::connect(&format!("ws://{}/", server.ws))
        .await
        .unwrap();
    let program = msgpack_rpc::Client::connect_tcp(server.rpc).await.unwrap();
    let id = timeout(WAIT, async {
        loop {
            let list = program.call("connections", vec![]).await.unwrap();
            if let Some(conn) = list.as_array().and_then(|a| a.first()) {
                break conn
                    .as_map()
                    .unwrap()
                    .iter()
                    .find(|(k, _)| k.as_str() == Some("id"))
                    .unwrap()
                    .1
                    .as_u64()
                    .unwrap();
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    let (ok, stdout, err) =
        run(wspush().args(["push", "--rpc", &rpc, "--conn", &id.to_string(), "x"])).await;
    assert!(ok, "{err}");
    assert_eq!(
        stdout,
        format!("pushed to connection {id}: queued to 1 connection(s)\n")
    );
}

/// `wspush push --api URL`: the same pushes through the HTTP API, with its key.
#[tokio::test]
async fn push_through_the_http_api() {
    let server = Wspush::spawn_with(
        &["--ws", "127.0.0.1:0", "--rpc", "127.0.0.1:0"],
        &[("WSPUSH_API_KEY", "cli-key")],
    )
    .await;
    // Registered once a listening RPC client saw its on_open.
    let rpc = msgpack_rpc::Client::connect_tcp(server.rpc).await.unwrap();
    let mut events = rpc.notifications();
    rpc.call("listen", vec![]).await.unwrap();
    let mut ws = client::connect(&format!("ws://{}/?channel=news", server.ws))
        .await
        .unwrap();
    let id = loop {
        let event = timeout(WAIT, events.recv()).await.unwrap().unwrap();
        if &event.method[..] == b"on_open" {
            break event.params[0].as_u64().unwrap();
        }
    };
    let url = format!("http://{}", server.api);
    let push = |args: &[&str]| {
        let mut cmd = wspush();
        cmd.args(["push", "--api", &url, "--api-key", "cli-key"])
            .args(args);
        cmd
    };
    let (ok, stdout, err) = run(&mut push(&["--channel", "news", "not json"])).await;
    assert!(ok, "{err}");
    assert!(
        stdout.starts_with("pushed to channel news: offset 1 in epoch "),
        "{stdout}"
    );
    assert_eq!(recv_text(&mut ws).await, "not json");
    let (ok, _, err) = run(&mut push(&["everyone"])).await;
    assert!(ok, "{err}");
    assert_eq!(recv_text(&mut ws).await, "everyone");
    let (ok, stdout, err) = run(&mut push(&["--conn", &id.to_string(), r#"{"to":"you"}"#])).await;
    assert!(ok, "{err}");
    assert_eq!(stdout, format!("pushed to connection {id}\n"));
    assert_eq!(recv_text(&mut ws).await, r#"{"to":"you"}"#);
    let (ok, _, err) = run(wspush().args(["push", "--api", &url, "--api-key", "wrong", "x"])).await;
    assert!(!ok);
    assert!(err.contains("refused the API key"), "{err}");
}
