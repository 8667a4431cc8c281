//! End to end over 127.0.0.1: the real push server, Rust WebSocket clients as
//! browsers, MessagePack-RPC clients as programs.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, WAIT, http_get, local_settings, recv, recv_text};

use msgpack_rpc::{Client as Rpc, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use ws_server::Message;
use ws_server::client::{self};
use wspush::config::{Overflow, Settings};

fn settings() -> Settings {
    local_settings()
}

fn map_get<'a>(map: &'a Value, key: &str) -> &'a Value {
    map.as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {key} in {map}"))
}

/// A browser that completes the handshake and then never reads (a tiny receive buffer so the
/// server's queue fills soon).
async fn stalled_browser(addr: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream
        .write_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    stream
}

#[tokio::test]
async fn seed_contract_on_the_wire() {
    let mut h = Harness::start(settings()).await;
    let (mut browser, _) = h.open("/").await;
    let mut program = TcpStream::connect(h.server.rpc_addr).await.unwrap();
    // Exactly what a stock Ruby client sends for call(:push_data, '{"hello":"world"}').
    let request = b"\x94\x00\x00\xa9push_data\x91\xb1{\"hello\":\"world\"}";
    program.write_all(request).await.unwrap();
    let mut reply = [0u8; 5];
    timeout(WAIT, program.read_exact(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, [0x94, 0x01, 0x00, 0xc0, 0xc0]);
    assert_eq!(recv_text(&mut browser).await, r#"{"hello":"world"}"#);
}

#[tokio::test]
async fn push_data_maps_values_to_frames_for_everyone() {
    let mut h = Harness::start(settings()).await;
    let mut browsers = Vec::new();
    for _ in 0..5 {
        browsers.push(h.open("/").await.0);
    }
    assert_eq!(
        h.call("push_data", vec![Value::from("text")]).await,
        Value::Nil
    );
    h.call("push_data", vec![Value::Binary(vec![1, 2, 3])])
        .await;
    let map = Value::Map(vec![(Value::from("a"), Value::from(1))]);
    h.call("push_data", vec![map]).await;
    for b in &mut browsers {
        assert_eq!(recv_text(b).await, "text");
        assert_eq!(
            recv(b).await,
            Message::Binary(bytes::Bytes::from_static(&[1, 2, 3]))
        );
        assert_eq!(recv_text(b).await, r#"{"a":1}"#);
    }
}

#[tokio::test]
async fn channels_from_the_url_and_from_rpc() {
    let mut h = Harness::start(settings()).await;
    let (mut news, _) = h.open("/app?channel=news").await;
    let (mut both, _) = h.open("/?channel=sports&channel=news").await;
    let (mut none, none_id) = h.open("/").await;

    let n = h
        .call("publish", vec![Value::from("news"), Value::from("n1")])
        .await;
    assert_eq!(n, Value::from(2));
    let n = h
        .call("publish", vec![Value::from("sports"), Value::from("s1")])
        .await;
    assert_eq!(n, Value::from(1));
    assert_eq!(
        h.call("publish", vec![Value::from("nobody"), Value::from("x")])
            .await,
        Value::from(0)
    );
    h.call("push_data", vec![Value::from("all")]).await;

    assert_eq!(recv_text(&mut news).await, "n1");
    assert_eq!(recv_text(&mut news).await, "all");
    assert_eq!(recv_text(&mut both).await, "n1");
    assert_eq!(recv_text(&mut both).await, "s1");
    assert_eq!(recv_text(&mut both).await, "all");
    // A connection without a channel receives broadcasts only.
    assert_eq!(recv_text(&mut none).await, "all");

    // The backend subscribes a connection.
    let id = Value::from(none_id);
    assert_eq!(
        h.call("subscribe", vec![id.clone(), Value::from("sports")])
            .await,
        Value::from(true)
    );
    let channels = h.call("channels", vec![]).await;
    assert_eq!(map_get(&channels, "sports"), &Value::from(2));
    assert_eq!(map_get(&channels, "news"), &Value::from(2));
    h.call("publish", vec![Value::from("sports"), Value::from("s2")])
        .await;
    assert_eq!(recv_text(&mut none).await, "s2");
    assert_eq!(
        h.call("unsubscribe", vec![id.clone(), Value::from("sports")])
            .await,
        Value::from(true)
    );
    assert_eq!(
        h.call("unsubscribe", vec![id, Value::from("sports")]).await,
        Value::from(false)
    );
    assert_eq!(
        h.call("subscribe", vec![Value::from(999_999), Value::from("x")])
            .await,
        Value::from(false)
    );
    h.call("publish", vec![Value::from("sports"), Value::from("s3")])
        .await;
    h.call("push_data", vec![Value::from("marker")]).await;
    assert_eq!(recv_text(&mut none).await, "marker");
}

#[tokio::test]
async fn send_reaches_one_connection_and_connections_lists_them() {
    let mut h = Harness::start(settings()).await;
    let (mut a, a_id) = h.open("/a?channel=c1").await;
    let (mut b, _) = h.open("/b").await;
    let sent = h
        .call("send", vec![Value::from(a_id), Value::from("only a")])
        .await;
    assert_eq!(sent, Value::from(true));
    assert_eq!(
        h.call("send", vec![Value::from(123_456), Value::from("x")])
            .await,
        Value::from(false)
    );
    h.call("push_data", vec![Value::from("both")]).await;
    assert_eq!(recv_text(&mut a).await, "only a");
    assert_eq!(recv_text(&mut a).await, "both");
    assert_eq!(recv_text(&mut b).await, "both");

    let list = h.call("connections", vec![]).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let first = &list[0];
    assert_eq!(map_get(first, "id"), &Value::from(a_id));
    assert_eq!(map_get(first, "path"), &Value::from("/a"));
    assert_eq!(
        map_get(first, "channels"),
        &Value::Array(vec![Value::from("c1")])
    );
    assert!(
        map_get(first, "peer")
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
}

#[tokio::test]
async fn listen_reports_browser_events_and_others_get_none() {
    let mut h = Harness::start(settings()).await;
    let bystander = Rpc::connect_tcp(h.server.rpc_addr).await.unwrap();
    let mut bystander_events = bystander.notifications();

    let ws = client::connect(&h.url("/room?channel=x")).await.unwrap();
    let open = h.next_event("on_open").await;
    let id = open.params[0].as_u64().unwrap();
    assert_eq!(map_get(&open.params[1], "path"), &Value::from("/room"));
    assert_eq!(
        map_get(&open.params[1], "channels"),
        &Value::Array(vec![Value::from("x")])
    );

    let mut ws = ws;
    ws.send_text("hello server").await.unwrap();
    let msg = h.next_event("on_message").await;
    assert_eq!(
        msg.params,
        vec![Value::from(id), Value::from("hello server")]
    );
    ws.send_binary(vec![0u8, 255]).await.unwrap();
    let msg = h.next_event("on_message").await;
    assert_eq!(
        msg.params,
        vec![Value::from(id), Value::Binary(vec![0, 255])]
    );

    ws.close(4001, "bye").await.unwrap();
    let close = h.next_event("on_close").await;
    assert_eq!(
        close.params,
        vec![Value::from(id), Value::from(4001), Value::from("bye")]
    );

    // The bystander never called listen(): it must get nothing unsolicited.
    assert!(bystander.call("stats", vec![]).await.is_ok());
    assert!(bystander_events.try_recv().is_err());
    let stats = h.call("stats", vec![]).await;
    assert_eq!(map_get(&stats, "listeners"), &Value::from(1));
    assert_eq!(map_get(&stats, "messages_in"), &Value::from(2));
}

#[tokio::test]
async fn pushes_from_one_program_arrive_in_call_order() {
    let mut h = Harness::start(settings()).await;
    let mut browsers = Vec::new();
    for _ in 0..3 {
        browsers.push(h.open("/?channel=c").await.0);
    }
    const N: usize = 2000;
    let program = Rpc::connect_tcp(h.server.rpc_addr).await.unwrap();
    // Notifications pipelined on one connection, with a call now and then.
    for i in 0..N {
        let data = Value::from(i.to_string());
        if i % 500 == 499 {
            program
                .call("publish", vec![Value::from("c"), data])
                .await
                .unwrap();
        } else if i % 2 == 0 {
            program.notify("push_data", vec![data]).unwrap();
        } else {
            program
                .notify("publish", vec![Value::from("c"), data])
                .unwrap();
        }
    }
    for b in &mut browsers {
        for i in 0..N {
            assert_eq!(recv_text(b).await, i.to_string());
        }
    }
}

#[tokio::test]
async fn a_stalled_browser_is_closed_by_policy_and_slows_no_one() {
    let mut h = Harness::start(Settings {
        queue_bytes: 64 << 10,
        ..settings()
    })
    .await;
    let (mut healthy, _) = h.open("/").await;
    let stalled = stalled_browser(h.server.ws_addr).await;
    let stalled_id = h.next_event("on_open").await.params[0].as_u64().unwrap();

    const N: usize = 3000;
    let payload = "x".repeat(4096);
    let reader = tokio::spawn(async move {
        for i in 0..N {
            let text = recv_text(&mut healthy).await;
            assert!(
                text.starts_with(&format!("{i} ")),
                "message {i} out of order"
            );
        }
        healthy
    });
    for i in 0..N {
        h.call("push_data", vec![Value::from(format!("{i} {payload}"))])
            .await;
    }
    let healthy = timeout(WAIT, reader).await.unwrap().unwrap();

    let close = h.next_event("on_close").await;
    assert_eq!(close.params[0], Value::from(stalled_id));
    assert_eq!(close.params[1], Value::from(1008));
    let stats = h.call("stats", vec![]).await;
    assert_eq!(map_get(&stats, "overflow_closes"), &Value::from(1));
    assert_eq!(
        h.call("connections", vec![])
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    drop((stalled, healthy));
}

#[tokio::test]
async fn closed_and_dropped_connections_leave_nothing_behind() {
    let mut h = Harness::start(settings()).await;
    let mut browsers = Vec::new();
    for i in 0..20 {
        browsers.push(h.open(&format!("/?channel=c{}", i % 3)).await.0);
    }
    assert_eq!(
        h.call("connections", vec![])
            .await
            .as_array()
            .unwrap()
            .len(),
        20
    );
    for (i, mut b) in browsers.into_iter().enumerate() {
        if i % 2 == 0 {
            b.close(1000, "").await.unwrap();
        } else {
            drop(b); // abrupt: TCP closes without a close frame
        }
    }
    for _ in 0..20 {
        h.next_event("on_close").await;
    }
    assert_eq!(h.call("connections", vec![]).await, Value::Array(vec![]));
    assert_eq!(h.call("channels", vec![]).await, Value::Map(vec![]));
}

#[tokio::test]
async fn disconnect_closes_with_the_given_code() {
    let mut h = Harness::start(settings()).await;
    let (mut ws, id) = h.open("/").await;
    let done = h
        .call(
            "disconnect",
            vec![Value::from(id), Value::from(4000), Value::from("kicked")],
        )
        .await;
    assert_eq!(done, Value::from(true));
    let event = timeout(WAIT, async {
        loop {
            match ws.recv().await.unwrap() {
                Some(ws_proto::Event::Close(frame)) => break frame,
                Some(_) => continue,
                None => panic!("no close frame"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!((event.code, event.reason.as_str()), (4000, "kicked"));
    assert_eq!(
        h.call("disconnect", vec![Value::from(id)]).await,
        Value::from(false)
    );
}

#[tokio::test]
async fn rpc_errors_are_plain_strings() {
    let h = Harness::start(settings()).await;
    let err = |r: Result<Value, msgpack_rpc::CallError>| match r {
        Err(msgpack_rpc::CallError::Remote(v)) => v.as_str().unwrap().to_owned(),
        other => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(
        err(h.rpc.call("nope", vec![]).await),
        "method `nope' is not accepted"
    );
    assert_eq!(
        err(h.rpc.call("push_data", vec![]).await),
        "wrong number of arguments (given 0, expected 1)"
    );
    assert_eq!(
        err(h
            .rpc
            .call("publish", vec![Value::from(1), Value::from("x")])
            .await),
        "channel must be a string"
    );
    assert_eq!(
        err(h
            .rpc
            .call("send", vec![Value::from("x"), Value::from("x")])
            .await),
        "conn_id must be a non-negative integer"
    );
    assert!(
        err(h
            .rpc
            .call("disconnect", vec![Value::from(1), Value::from(1005)])
            .await)
        .contains("invalid close code")
    );
    // The connection is still fine after errors.
    assert_eq!(
        h.call("push_data", vec![Value::from("ok")]).await,
        Value::Nil
    );
}

#[tokio::test]
async fn shutdown_closes_browsers_with_1001() {
    let mut h = Harness::start(settings()).await;
    let (mut ws, _) = h.open("/").await;
    let Harness { server, .. } = h;
    let stop = tokio::spawn(server.shutdown());
    let frame = timeout(WAIT, async {
        loop {
            match ws.recv().await {
                Ok(Some(ws_proto::Event::Close(frame))) => break frame,
                Ok(Some(_)) => continue,
                other => panic!("no close frame: {other:?}"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(frame.code, 1001);
    drop(ws);
    timeout(WAIT, stop).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn demo_page_health_and_metrics() {
    let h = Harness::start(settings()).await;
    h.call("push_data", vec![Value::from("x")]).await;
    let page = http_get(h.server.ws_addr, "/").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("new WebSocket("), "{page}");
    let health = http_get(h.server.ws_addr, "/health").await;
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"),
        "{health}"
    );
    // Counters are on the API listener; on the public port only with --metrics-public.
    let metrics = http_get(h.server.api_addr, "/metrics").await;
    assert!(metrics.contains("\nwspush_pushes_total 1\n"), "{metrics}");
    let hidden = http_get(h.server.ws_addr, "/metrics").await;
    assert!(hidden.starts_with("HTTP/1.1 404"), "{hidden}");
    let missing = http_get(h.server.ws_addr, "/nope").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let public = Harness::start(Settings {
        metrics_public: true,
        ..settings()
    })
    .await;
    let metrics = http_get(public.server.ws_addr, "/metrics").await;
    assert!(metrics.contains("\nwspush_pushes_total 0\n"), "{metrics}");
}

#[tokio::test]
async fn overflow_drop_policy_counts_and_keeps_the_connection() {
    let mut h = Harness::start(Settings {
        queue_bytes: 16 << 10,
        overflow: Overflow::Drop,
        ..settings()
    })
    .await;
    let _stalled = stalled_browser(h.server.ws_addr).await;
    h.next_event("on_open").await;
    let payload = Value::from("y".repeat(8192));
    for _ in 0..2000 {
        h.call("push_data", vec![payload.clone()]).await;
    }
    let stats = h.call("stats", vec![]).await;
    assert!(
        map_get(&stats, "overflows").as_u64().unwrap() > 0,
        "{stats}"
    );
    assert_eq!(map_get(&stats, "overflow_closes"), &Value::from(0));
    assert_eq!(map_get(&stats, "connections"), &Value::from(1));
}

/// A paced program (one push, a pause, the next): each push is written at once to idle
/// browsers by the fan-out writers, with no wake-up of their connections; a pipelined burst
/// right after is coalesced. Every browser gets everything, in order, either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_pushes_are_written_at_once_to_many_browsers_in_order() {
    const BROWSERS: usize = 300;
    const PACED: usize = 5;
    const BURST: usize = 200;
    let mut h = Harness::start(settings()).await;
    let mut browsers = Vec::new();
    for _ in 0..BROWSERS {
        browsers.push(h.open("/").await.0);
    }
    let program = Rpc::connect_tcp(h.server.rpc_addr).await.unwrap();
    for i in 0..PACED {
        // The pause is the scenario (a paced publisher), not a synchronisation.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        program
            .call("push_data", vec![Value::from(format!("paced {i}"))])
            .await
            .unwrap();
    }
    for i in 0..BURST {
        program
            .notify("push_data", vec![Value::from(format!("burst {i}"))])
            .unwrap();
    }
    let readers: Vec<_> = browsers
        .into_iter()
        .map(|mut b| {
            tokio::spawn(async move {
                for i in 0..PACED {
                    assert_eq!(recv_text(&mut b).await, format!("paced {i}"));
                }
                for i in 0..BURST {
                    assert_eq!(recv_text(&mut b).await, format!("burst {i}"));
                }
            })
        })
        .collect();
    for r in readers {
        r.await.unwrap();
    }
    // A writer counts its frames after its write returns, which may be after the browser
    // read them: wait for the count to settle (bounded) rather than read it once.
    let want = (BROWSERS * (PACED + BURST)) as u64;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let stats = loop {
        let stats = h.call("stats", vec![]).await;
        let written = map_get(&stats, "messages_written").as_u64().unwrap();
        if written >= want || std::time::Instant::now() > deadline {
            break stats;
        }
        tokio::task::yield_now().await;
    };
    let direct = map_get(&stats, "direct_writes").as_u64().unwrap();
    let written = map_get(&stats, "messages_written").as_u64().unwrap();
    assert_eq!(written, want);
    assert!(
        direct >= (BROWSERS * (PACED - 1)) as u64,
        "paced pushes should be written directly: {direct} of {written}"
    );
    assert!(
        direct < written,
        "a pipelined burst should be queued and coalesced: {direct} of {written}"
    );
}

/// Reads `n` messages `"{tag} {i}"`, i = 0.., from every browser, each on its own task.
async fn expect_in_order(browsers: Vec<ws_server::Client>, tag: &'static str, n: usize) {
    let readers: Vec<_> = browsers
        .into_iter()
        .map(|mut b| {
            tokio::spawn(async move {
                for i in 0..n {
                    assert_eq!(recv_text(&mut b).await, format!("{tag} {i}"));
                }
            })
        })
        .collect();
    for r in readers {
        r.await.unwrap();
    }
}

/// The seed's publisher: one `call` at a time, the next sent when the reply arrives. Its
/// back-to-back pushes to many browsers must be coalesced as a pipelining caller's are
/// (each browser's socket gets several frames per write), not written one system call per
/// browser per push: the reply means "queued everywhere", and a push that finds a browser's
/// previous frames still unwritten joins them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synchronous_caller_is_coalesced_like_a_pipelining_one() {
    const BROWSERS: usize = 2000;
    const PUSHES: usize = 100;
    let mut h = Harness::start(settings()).await;
    let mut browsers = Vec::new();
    for _ in 0..BROWSERS {
        browsers.push(h.open("/").await.0);
    }
    // Not the harness's listening client: the closes at the end fill its event queue.
    let program = Rpc::connect_tcp(h.server.rpc_addr).await.unwrap();
    let before = program.call("stats", vec![]).await.unwrap();
    for i in 0..PUSHES {
        program
            .call("push_data", vec![Value::from(format!("sync {i}"))])
            .await
            .unwrap();
    }
    expect_in_order(browsers, "sync", PUSHES).await;
    // A writer thread counts its writes once per batch of connections, after the batch: the
    // browsers may have their frames a moment before the counters do.
    let expected = (BROWSERS * PUSHES) as u64;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (written, writes) = loop {
        let stats = program.call("stats", vec![]).await.unwrap();
        let delta = |key: &str| {
            map_get(&stats, key).as_u64().unwrap() - map_get(&before, key).as_u64().unwrap()
        };
        let (written, writes) = (delta("messages_written"), delta("write_calls"));
        if written >= expected || std::time::Instant::now() > deadline {
            break (written, writes);
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(written, expected);
    assert!(
        writes * 2 <= written,
        "a synchronous caller's pushes were not coalesced: {writes} writes for {written} frames"
    );
}

/// Several programs push to the same browsers at once. A push that meets a fan-out in
/// progress joins the next pass rather than waiting for it: every browser still gets every
/// push exactly once, each program's in its call order, and each program's next call
/// follows its push's effects (a `publish` sent right behind a `push_data` notification,
/// before that push went out, never overtakes it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_synchronous_programs_join_one_anothers_fan_outs() {
    const BROWSERS: usize = 1000;
    const PROGRAMS: usize = 8;
    const PUSHES: usize = 60;
    let mut h = Harness::start(settings()).await;
    let mut browsers = Vec::new();
    for _ in 0..BROWSERS {
        browsers.push(h.open("/?channel=news").await.0);
    }
    let rpc_addr = h.server.rpc_addr;
    let programs: Vec<_> = (0..PROGRAMS)
        .map(|p| {
            tokio::spawn(async move {
                let program = Rpc::connect_tcp(rpc_addr).await.unwrap();
                for i in 0..PUSHES {
                    // Not awaited: the publish right behind it must not overtake it.
                    program
                        .notify("push_data", vec![Value::from(format!("{p} {i} all"))])
                        .unwrap();
                    let news = vec![Value::from("news"), Value::from(format!("{p} {i} news"))];
                    let queued = program.call("publish", news).await.unwrap();
                    assert_eq!(queued.as_u64(), Some(BROWSERS as u64));
                }
            })
        })
        .collect();
    let readers: Vec<_> = browsers
        .into_iter()
        .map(|mut b| {
            tokio::spawn(async move {
                let mut next = [0usize; PROGRAMS];
                let mut news = [false; PROGRAMS];
                for _ in 0..PROGRAMS * PUSHES * 2 {
                    let text = recv_text(&mut b).await;
                    let mut parts = text.split(' ');
                    let p: usize = parts.next().unwrap().parse().unwrap();
                    let i: usize = parts.next().unwrap().parse().unwrap();
                    let stream = parts.next().unwrap();
                    assert_eq!(i, next[p], "program {p}: {text} out of order");
                    // Each program's push_data i, then its publish i, then i + 1.
                    assert_eq!(stream == "news", news[p], "program {p}: {text}");
                    if news[p] {
                        next[p] += 1;
                    }
                    news[p] = !news[p];
                }
            })
        })
        .collect();
    for p in programs {
        p.await.unwrap();
    }
    for r in readers {
        r.await.unwrap();
    }
    let stats = h.call("stats", vec![]).await;
    let joined = map_get(&stats, "joined_pushes").as_u64().unwrap();
    let pushes = map_get(&stats, "pushes").as_u64().unwrap();
    assert_eq!(pushes, (PROGRAMS * PUSHES * 2) as u64);
    eprintln!("joined {joined} of {pushes}");
    assert!(joined > 0, "no push met another's fan-out among {pushes}");
}
