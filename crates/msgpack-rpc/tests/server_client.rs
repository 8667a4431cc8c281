//! The Rust client against the Rust server over real sockets.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;

use common::{WAIT, remote, start, start_with};
use futures_util::future::join_all;
use msgpack_rpc::{CallError, Client, ClientConfig, ServerConfig, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

#[tokio::test]
async fn calls_and_reference_error_strings() {
    let srv = start().await;
    let c = Client::connect_tcp(srv.addr).await.unwrap();
    assert_eq!(
        c.call("echo", vec![Value::from("hi")]).await.unwrap(),
        Value::from("hi")
    );
    assert_eq!(
        c.call("push_data", vec![Value::from("{}")]).await.unwrap(),
        Value::Nil
    );
    assert_eq!(
        c.call("count", vec![Value::Nil; 3]).await.unwrap(),
        Value::from(3)
    );
    assert_eq!(c.call("any", vec![]).await.unwrap(), Value::Array(vec![]));
    let e = c.call("nope", vec![]).await.unwrap_err();
    assert_eq!(remote(e), "method `nope' is not accepted");
    let e = c
        .call("echo", vec![Value::Nil, Value::Nil])
        .await
        .unwrap_err();
    assert_eq!(remote(e), "wrong number of arguments (given 2, expected 1)");
    let e = c.call("count", vec![]).await.unwrap_err();
    assert_eq!(
        remote(e),
        "wrong number of arguments (given 0, expected 1..3)"
    );
    assert_eq!(remote(c.call("fail", vec![]).await.unwrap_err()), "boom");
    assert_eq!(remote(c.call("panic", vec![]).await.unwrap_err()), "kaboom");
    assert_eq!(
        remote(c.call("panic_sync", vec![]).await.unwrap_err()),
        "sync kaboom"
    );
    // The connection survived all of that.
    assert_eq!(
        c.call("echo", vec![Value::from(1)]).await.unwrap(),
        Value::from(1)
    );
}

#[tokio::test]
async fn typed_calls() {
    let srv = start().await;
    let c = Client::connect_tcp(srv.addr).await.unwrap();
    let s: String = c.call_typed("echo", &("typed",)).await.unwrap();
    assert_eq!(s, "typed");
    let n: u32 = c.call_typed("count", &(1, "two")).await.unwrap();
    assert_eq!(n, 2);
    let v: Vec<i32> = c.call_typed("any", &[1, 2, 3]).await.unwrap();
    assert_eq!(v, [1, 2, 3]);
    let e = c
        .call_typed::<_, u32>("echo", &("not a number",))
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::Decode(_)), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_pipelined_calls_answered_out_of_order() {
    let srv = start().await;
    let c = Client::connect_tcp(srv.addr).await.unwrap();
    let calls = (0..10_000u32).map(|i| {
        let c = c.clone();
        async move { (i, c.call("shuffle", vec![Value::from(i)]).await) }
    });
    for (i, result) in join_all(calls).await {
        assert_eq!(result.unwrap(), Value::from(i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_connections_at_once() {
    let srv = start().await;
    let clients = join_all((0..100).map(|_| Client::connect_tcp(srv.addr))).await;
    let work = clients.into_iter().enumerate().map(|(k, c)| async move {
        let c = c.unwrap();
        for i in 0..10 {
            let v = Value::from(format!("{k}-{i}"));
            assert_eq!(c.call("echo", vec![v.clone()]).await.unwrap(), v);
        }
    });
    join_all(work).await;
}

#[tokio::test]
async fn in_flight_cap_bounds_running_handlers() {
    let config = ServerConfig {
        max_in_flight: 4,
        ..ServerConfig::default()
    };
    let srv = start_with(config).await;
    let c = Client::connect_tcp(srv.addr).await.unwrap();
    let results = join_all((0..500).map(|_| c.call("gate", vec![]))).await;
    assert!(results.iter().all(Result::is_ok));
    let max = srv.probe.max_running.load(Ordering::SeqCst);
    assert!((1..=4).contains(&max), "max running {max}");
}

#[tokio::test]
async fn server_notifications_reach_listeners_only() {
    let srv = start().await;
    let listener = Client::connect_tcp(srv.addr).await.unwrap();
    let bystander = Client::connect_tcp(srv.addr).await.unwrap();
    let mut events = listener.notifications();
    let mut quiet = bystander.notifications();
    listener.call("listen", vec![]).await.unwrap();
    let sent = bystander
        .call("emit", vec![Value::from("hello")])
        .await
        .unwrap();
    assert_eq!(sent, Value::from(1));
    let n = timeout(WAIT, events.recv()).await.unwrap().unwrap();
    assert_eq!(&n.method[..], b"event");
    assert_eq!(n.params, vec![Value::from("hello")]);
    // The bystander got nothing: its next reply comes with no event before it.
    bystander.call("echo", vec![Value::Nil]).await.unwrap();
    assert!(quiet.try_recv().is_err());
}

#[tokio::test]
async fn notifier_reports_closed_and_disconnect_hook_runs() {
    let mut srv = start().await;
    let c = Client::connect_tcp(srv.addr).await.unwrap();
    c.call("listen", vec![]).await.unwrap();
    let notifier = srv.probe.listeners.lock().unwrap()[0].clone();
    assert!(!notifier.is_closed());
    drop(c);
    timeout(WAIT, notifier.closed()).await.unwrap();
    assert_eq!(
        notifier.notify("event", vec![]),
        Err(msgpack_rpc::NotifyError::Closed)
    );
    let gone = timeout(WAIT, srv.disconnects.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone, notifier.connection_id());
}

#[tokio::test]
async fn client_disconnecting_mid_call_leaves_server_and_others_fine() {
    let mut srv = start().await;
    let other = Client::connect_tcp(srv.addr).await.unwrap();
    let quitter = Client::connect_tcp(srv.addr).await.unwrap();
    let started = srv.probe.started.notified();
    let call = tokio::spawn(async move { quitter.call("block", vec![]).await });
    timeout(WAIT, started).await.unwrap();
    call.abort();
    // The handler is still blocked; the quitter's half-close is seen, and
    // once released the reply goes to a closed socket without harm.
    srv.probe.release.notify_waiters();
    gone_and_others_fine(&mut srv, &other).await;
}

#[tokio::test]
async fn pending_calls_fail_at_once_when_the_server_drops_the_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = ClientConfig {
        call_timeout: None,
        ..ClientConfig::default()
    };
    let c = Client::connect_tcp_with(addr, config).await.unwrap();
    let (mut sock, _) = listener.accept().await.unwrap();
    let calls = tokio::spawn({
        let c = c.clone();
        async move { join_all((0..3).map(|_| c.call("echo", vec![Value::Nil]))).await }
    });
    // Wait until all three requests arrived, then hang up.
    let mut buf = Vec::new();
    while buf.iter().filter(|b| **b == 0x94).count() < 3 {
        let mut chunk = [0u8; 256];
        let n = timeout(WAIT, sock.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
    }
    drop(sock);
    for result in timeout(WAIT, calls).await.unwrap().unwrap() {
        assert!(matches!(result, Err(CallError::Closed(_))), "{result:?}");
    }
    assert!(c.is_closed());
    assert!(matches!(
        c.call("echo", vec![]).await,
        Err(CallError::Closed(_))
    ));
}

#[tokio::test]
async fn call_timeout_then_connection_still_usable() {
    let srv = start().await;
    let c = Client::connect_tcp(srv.addr).await.unwrap();
    let e = c
        .call_timeout("block", vec![], Some(std::time::Duration::from_millis(20)))
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::Timeout(_)), "{e:?}");
    srv.probe.release.notify_waiters();
    assert_eq!(
        c.call("echo", vec![Value::from(1)]).await.unwrap(),
        Value::from(1)
    );
}

#[tokio::test]
async fn malformed_input_closes_only_that_connection() {
    let mut srv = start().await;
    let good = Client::connect_tcp(srv.addr).await.unwrap();
    let mut bad = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    bad.write_all(&[0x94, 0x00, 0x00, 0xc1]).await.unwrap();
    let mut rest = Vec::new();
    let n = timeout(WAIT, bad.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "closed without a reply");
    gone_and_others_fine(&mut srv, &good).await;
}

/// Waits for one connection to end, then checks `other` still works.
async fn gone_and_others_fine(srv: &mut common::TestServer, other: &Client) {
    timeout(WAIT, srv.disconnects.recv())
        .await
        .unwrap()
        .unwrap();
    let v = Value::from("still here");
    assert_eq!(other.call("echo", vec![v.clone()]).await.unwrap(), v);
}

#[tokio::test]
async fn graceful_shutdown_finishes_calls_in_flight() {
    let mut srv = start().await;
    let c = Client::connect_tcp(srv.addr).await.unwrap();
    let started = srv.probe.started.notified();
    let call = tokio::spawn({
        let c = c.clone();
        async move { c.call("block", vec![]).await }
    });
    timeout(WAIT, started).await.unwrap();
    srv.shutdown();
    srv.probe.release.notify_waiters();
    assert_eq!(
        timeout(WAIT, call).await.unwrap().unwrap().unwrap(),
        Value::from("released")
    );
    timeout(WAIT, &mut srv.done)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(srv.addr).await.is_err());
    // The server closed the connection after the reply.
    assert!(matches!(
        c.call("echo", vec![Value::Nil]).await,
        Err(CallError::Closed(_))
    ));
}

#[cfg(unix)]
#[tokio::test]
async fn unix_socket() {
    let dir = std::env::temp_dir().join(format!("msgpack-rpc-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rpc.sock");
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let (server, _gone) = common::server(ServerConfig::default(), Default::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        server
            .serve_unix(listener, async {
                let _ = stopped.await;
            })
            .await
    });
    let c = Client::connect_unix(&path).await.unwrap();
    assert_eq!(
        c.call("echo", vec![Value::from("unix")]).await.unwrap(),
        Value::from("unix")
    );
    drop(c);
    stop.send(()).unwrap();
    timeout(WAIT, serving).await.unwrap().unwrap().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn notifications_to_a_client_that_does_not_read_fail_with_full() {
    let config = ServerConfig {
        write_high_water: 1024,
        notification_queue: 4,
        ..ServerConfig::default()
    };
    let srv = start_with(config).await;
    // A raw listener that asks for events and then never reads again.
    let mut deaf = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    deaf.write_all(&[
        0x94, 0x00, 0x00, 0xa6, b'l', b'i', b's', b't', b'e', b'n', 0x90,
    ])
    .await
    .unwrap();
    let mut reply = [0u8; 5];
    timeout(WAIT, deaf.read_exact(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, [0x94, 0x01, 0x00, 0xc0, 0xc0]);
    let c = Client::connect_tcp(srv.addr).await.unwrap();
    let big = Value::Binary(vec![0; 64 << 10]);
    let mut refused = false;
    // Kernel buffers absorb a few MiB; after that the queue must fill.
    for _ in 0..2000 {
        if c.call("emit", vec![big.clone()]).await.unwrap() == Value::from(0) {
            refused = true;
            break;
        }
    }
    assert!(
        refused,
        "notifications to a deaf client never reported Full"
    );
    let notifier = srv.probe.listeners.lock().unwrap()[0].clone();
    assert_eq!(
        notifier.notify("event", vec![]),
        Err(msgpack_rpc::NotifyError::Full)
    );
}

#[tokio::test]
async fn stats_count_calls_pauses_and_malformed_closes() {
    let config = ServerConfig {
        limits: msgpack_rpc::Limits {
            max_message_size: 1024,
            ..Default::default()
        },
        max_in_flight: 4,
        ..ServerConfig::default()
    };
    let mut srv = start_with(config).await;
    let c = Client::connect_tcp(srv.addr).await.unwrap();
    c.notify("echo", vec![Value::Nil]).unwrap();
    let results = join_all((0..100).map(|_| c.call("gate", vec![]))).await;
    assert!(results.iter().all(Result::is_ok));

    let mut bad = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    bad.write_all(&[0x94, 0x00, 0x00, 0xc1]).await.unwrap();
    timeout(WAIT, srv.disconnects.recv())
        .await
        .unwrap()
        .unwrap();
    // A str32 header claiming 1 MiB: refused from the header, over the 1 KiB limit.
    let mut big = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    big.write_all(&[0x94, 0x00, 0x00, 0xdb, 0x00, 0x10, 0x00, 0x00])
        .await
        .unwrap();
    timeout(WAIT, srv.disconnects.recv())
        .await
        .unwrap()
        .unwrap();
    c.call("echo", vec![Value::Nil]).await.unwrap();

    let s = srv.server.stats();
    assert_eq!((s.requests, s.notifications), (101, 1), "{s:?}");
    assert_eq!((s.malformed_closes, s.limit_closes), (2, 1), "{s:?}");
    assert_eq!((s.connections_total, s.connections_open), (3, 1), "{s:?}");
    assert!(s.backpressure_pauses >= 1, "{s:?}");
}

/// A handler learns whether the caller had already sent more: two requests in one write
/// see `true` then `false`; a lone request sees `false`.
#[tokio::test]
async fn handlers_see_whether_more_requests_are_buffered() {
    let srv = start().await;
    let mut raw = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    // [0, msgid, "more", []] twice, in one write.
    let request = |id: u8| [0x94, 0x00, id, 0xa4, b'm', b'o', b'r', b'e', 0x90];
    let mut two = request(1).to_vec();
    two.extend_from_slice(&request(2));
    raw.write_all(&two).await.unwrap();
    // [1, msgid, nil, bool]: 0xc3 is true, 0xc2 false.
    let mut reply = [0u8; 10];
    timeout(WAIT, raw.read_exact(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        reply,
        [0x94, 0x01, 1, 0xc0, 0xc3, 0x94, 0x01, 2, 0xc0, 0xc2]
    );
    raw.write_all(&request(3)).await.unwrap();
    let mut reply = [0u8; 5];
    timeout(WAIT, raw.read_exact(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, [0x94, 0x01, 3, 0xc0, 0xc2]);
}

/// A caller that sends one request at a time never pipelines; one that sent two in one
/// write still does on its next lone request (the last of a pipelined batch has nothing
/// behind it, but the next batch follows).
#[tokio::test]
async fn handlers_see_whether_the_caller_pipelines() {
    let srv = start().await;
    let mut raw = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    // [0, msgid, "pipelines", []]; the answer [1, msgid, nil, bool] (0xc3 true, 0xc2 false).
    let request = |id: u8| {
        let mut r = vec![0x94, 0x00, id, 0xa9];
        r.extend_from_slice(b"pipelines");
        r.push(0x90);
        r
    };
    let answer = |id: u8, pipelines: bool| [0x94, 0x01, id, 0xc0, 0xc2 | u8::from(pipelines)];
    let mut ask = async |requests: Vec<u8>, answers: Vec<u8>| {
        raw.write_all(&requests).await.unwrap();
        let mut reply = vec![0u8; answers.len()];
        timeout(WAIT, raw.read_exact(&mut reply))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reply, answers);
    };
    for id in 1..=3 {
        ask(request(id), answer(id, false).to_vec()).await;
    }
    let two = [request(4), request(5)].concat();
    ask(two, [answer(4, true), answer(5, true)].concat()).await;
    ask(request(6), answer(6, true).to_vec()).await;
}

/// A handler knows whether its call is a notification (no reply awaited) or a request.
#[tokio::test]
async fn handlers_tell_notifications_from_requests() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server = msgpack_rpc::Server::builder()
        .method_sync("kind", 0, move |ctx, _| {
            let _ = tx.send(ctx.is_notification());
            Ok(Value::Nil)
        })
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { server.serve_tcp(listener, std::future::pending()).await });
    let c = Client::connect_tcp(addr).await.unwrap();
    c.notify("kind", vec![]).unwrap();
    c.call("kind", vec![]).await.unwrap();
    let first = timeout(WAIT, rx.recv()).await.unwrap().unwrap();
    let second = timeout(WAIT, rx.recv()).await.unwrap().unwrap();
    assert_eq!((first, second), (true, false));
}

/// An ordered method whose reply waits holds back its connection's later messages (their
/// handlers run after it answered), never another connection's.
#[tokio::test]
async fn an_ordered_call_that_waits_holds_back_only_its_own_connection() {
    use msgpack_rpc::Outcome;
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let (entered_tx, mut entered) = tokio::sync::mpsc::unbounded_channel::<()>();
    let (gate_tx, gate) = tokio::sync::oneshot::channel::<()>();
    let gate = Mutex::new(Some(gate));
    let record = Arc::clone(&seen);
    let server = msgpack_rpc::Server::builder()
        .method_ordered("wait", 0, move |_, _| {
            let _ = entered_tx.send(());
            let gate = gate.lock().unwrap().take();
            Outcome::Wait(Box::pin(async move {
                if let Some(gate) = gate {
                    let _ = gate.await;
                }
                Ok(Value::from("waited"))
            }))
        })
        .method_ordered("now", 0, |_, _| Outcome::Ready(Ok(Value::from("now"))))
        .method_sync("seen", 1, move |_, params| {
            let tag = params[0].as_str().unwrap_or_default().to_owned();
            record.lock().unwrap().push(tag);
            Ok(Value::Nil)
        })
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { server.serve_tcp(listener, std::future::pending()).await });

    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    // [0, 1, "wait", []] and [0, 2, "seen", ["first"]] in one write.
    let mut two = vec![0x94, 0x00, 1, 0xa4, b'w', b'a', b'i', b't', 0x90];
    two.extend_from_slice(&[0x94, 0x00, 2, 0xa4, b's', b'e', b'e', b'n', 0x91, 0xa5]);
    two.extend_from_slice(b"first");
    raw.write_all(&two).await.unwrap();
    timeout(WAIT, entered.recv()).await.unwrap().unwrap();

    let other = Client::connect_tcp(addr).await.unwrap();
    assert_eq!(other.call("now", vec![]).await.unwrap(), Value::from("now"));
    other
        .call("seen", vec![Value::from("other")])
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), ["other"]);

    gate_tx.send(()).unwrap();
    // [1, 1, nil, "waited"] then [1, 2, nil, nil].
    let mut reply = vec![0u8; 4 + 7 + 5];
    timeout(WAIT, raw.read_exact(&mut reply))
        .await
        .unwrap()
        .unwrap();
    let mut want = vec![0x94, 0x01, 1, 0xc0, 0xa6];
    want.extend_from_slice(b"waited");
    want.extend_from_slice(&[0x94, 0x01, 2, 0xc0, 0xc0]);
    assert_eq!(reply, want);
    assert_eq!(*seen.lock().unwrap(), ["other", "first"]);
}
