//! Server-Sent Events: `GET /sse` on the public port, read by a real HTTP client through the
//! SSE parser as EventSource reads it.
#![allow(clippy::unwrap_used)]

mod common;

use common::sse::Sse;
use common::{Harness, local_settings};
use msgpack_rpc::Value;
use wspush::config::Settings;

/// Opens `/sse…` and waits until the hub registered it (its `on_open` event).
async fn open(h: &mut Harness, path: &str, headers: &[(&str, &str)]) -> (Sse, u64) {
    let sse = Sse::open(h.server.ws_addr, path, headers).await;
    assert_eq!(sse.status, 200, "{}", sse.refusal);
    let id = h.next_event("on_open").await.params[0].as_u64().unwrap();
    (sse, id)
}

fn push(data: &str) -> Vec<Value> {
    vec![Value::from(data)]
}

fn publish(channel: &str, data: Value) -> Vec<Value> {
    vec![Value::from(channel), data]
}

#[tokio::test]
async fn pushes_arrive_as_events_named_by_channel_with_ids() {
    let mut h = Harness::start(local_settings()).await;
    let (mut sse, _) = open(&mut h, "/sse?channel=news", &[]).await;
    let header = |name: &str| sse.headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(header("content-type"), "text/event-stream");
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("x-accel-buffering"), "no");
    h.call("push_data", push("hello\nworld")).await;
    let e = sse.event().await;
    assert_eq!(
        (e.event.as_str(), e.data.as_str()),
        ("message", "hello\nworld")
    );
    assert_eq!(sse.retry(), Some(2000));
    let map = Value::Map(vec![(Value::from("a"), Value::from(1))]);
    h.call("publish", publish("news", map)).await;
    let e = sse.event().await;
    assert_eq!((e.event.as_str(), e.data.as_str()), ("news", "{\"a\":1}"));
    h.call("publish", publish("news", Value::Binary(vec![0, 1, 2])))
        .await;
    let e = sse.event().await;
    assert_eq!((e.event.as_str(), e.data.as_str()), ("binary:news", "AAEC"));
    // The id names both streams the connection joined, at their last positions.
    let id = sse.last_event_id();
    assert!(id.starts_with("since="), "{id}");
    assert!(id.contains(":1&since=") && id.ends_with(":2:news"), "{id}");
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_gets_exactly_what_it_missed_then_live() {
    let mut h = Harness::start(local_settings()).await;
    let (mut sse, _) = open(&mut h, "/sse?channel=news", &[]).await;
    h.call("publish", publish("news", Value::from("n1"))).await;
    h.call("push_data", push("b1")).await;
    assert_eq!(sse.event().await.data, "n1");
    assert_eq!(sse.event().await.data, "b1");
    let last = sse.last_event_id();
    drop(sse);
    h.next_event("on_close").await;
    // Missed while away, on both streams.
    h.call("publish", publish("news", Value::from("n2"))).await;
    h.call("push_data", push("b2")).await;
    h.call("publish", publish("news", Value::from("n3"))).await;
    let (mut sse, _) = open(&mut h, "/sse?channel=news", &[("last-event-id", &last)]).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(sse.event().await.data);
    }
    // Each stream's misses in order (the replay goes stream by stream).
    let news: Vec<_> = got.iter().filter(|d| d.starts_with('n')).collect();
    assert_eq!(news, ["n2", "n3"]);
    assert!(got.contains(&"b2".to_owned()), "{got:?}");
    h.call("push_data", push("b3")).await;
    assert_eq!(sse.event().await.data, "b3");
    // Nothing twice, and an id that resumes from here.
    let again = sse.last_event_id();
    assert!(again.contains(":3:news"), "{again}");
}

#[tokio::test]
async fn a_reconnect_from_before_the_history_gets_a_gap_event() {
    let settings = Settings {
        history_len: 2,
        ..local_settings()
    };
    let mut h = Harness::start(settings).await;
    let (mut sse, _) = open(&mut h, "/sse", &[]).await;
    h.call("push_data", push("1")).await;
    assert_eq!(sse.event().await.data, "1");
    let last = sse.last_event_id();
    drop(sse);
    h.next_event("on_close").await;
    for i in 2..=5 {
        h.call("push_data", push(&i.to_string())).await;
    }
    let (mut sse, _) = open(&mut h, "/sse", &[("last-event-id", &last)]).await;
    let gap = sse.event().await;
    assert_eq!(gap.event, "gap");
    let gap: serde_json::Value = serde_json::from_str(&gap.data).unwrap();
    assert_eq!(
        (gap["channel"].is_null(), gap["seq"].as_u64()),
        (true, Some(3))
    );
    assert_eq!(sse.event().await.data, "4");
    assert_eq!(sse.event().await.data, "5");
}

#[tokio::test]
async fn connections_lists_event_streams_with_their_transport() {
    let mut h = Harness::start(local_settings()).await;
    let (_sse, id) = open(&mut h, "/sse?channel=a", &[]).await;
    let (_ws, _) = h.open("/?channel=a").await;
    let list = h.call("connections", vec![]).await;
    let list = list.as_array().unwrap();
    let transport_of = |want: u64| {
        list.iter()
            .map(|c| c.as_map().unwrap())
            .find(|m| {
                m.iter()
                    .any(|(k, v)| k.as_str() == Some("id") && v.as_u64() == Some(want))
            })
            .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some("transport")))
            .map(|(_, v)| v.as_str().unwrap().to_owned())
    };
    assert_eq!(transport_of(id).as_deref(), Some("sse"));
    assert_eq!(list.len(), 2);
    let channels = h.call("channels", vec![]).await;
    assert_eq!(
        channels,
        Value::Map(vec![(Value::from("a"), Value::from(2))])
    );
}

const SECRET: &str = "sse-secret";

fn token(channels: &[&str]) -> String {
    common::jwt(SECRET, "u1", channels)
}

#[tokio::test]
async fn refusals_come_before_any_byte_of_the_stream() {
    let settings = Settings {
        jwt_secret: Some(SECRET.into()),
        allowed_origins: vec!["https://app.example".into()],
        ..local_settings()
    };
    let mut h = Harness::start(settings).await;
    let addr = h.server.ws_addr;
    let status = |sse: Sse| {
        (
            sse.status.as_u16(),
            sse.headers.contains_key("content-type"),
        )
    };
    assert_eq!(Sse::open(addr, "/sse", &[]).await.status, 401);
    let t = token(&["mine"]);
    let forbidden = Sse::open(addr, &format!("/sse?channel=other&token={t}"), &[]).await;
    assert_eq!(forbidden.status, 403);
    let origin = [("origin", "https://evil.example")];
    let path = format!("/sse?channel=mine&token={t}");
    assert_eq!(Sse::open(addr, &path, &origin).await.status, 403);
    let bad_id = [("last-event-id", "since=not-a-position")];
    let refused = Sse::open(addr, &path, &bad_id).await;
    assert_eq!(status(refused).0, 400);
    // None of them opened anything; an allowed page gets its stream, with CORS.
    let good = [("origin", "https://app.example")];
    let (mut sse, _) = open(&mut h, &path, &good).await;
    let allow = sse.headers.get("access-control-allow-origin").unwrap();
    assert_eq!(allow, "https://app.example");
    assert_eq!(
        sse.headers.get("access-control-allow-credentials").unwrap(),
        "true"
    );
    h.call("publish", publish("mine", Value::from("ok"))).await;
    assert_eq!(sse.event().await.data, "ok");
}

#[tokio::test]
async fn a_stalled_event_stream_is_cut_off_while_the_others_receive() {
    let settings = Settings {
        queue_bytes: 64 << 10,
        ..local_settings()
    };
    let mut h = Harness::start(settings).await;
    // A client that never reads its stream.
    let stalled = tokio::net::TcpStream::connect(h.server.ws_addr)
        .await
        .unwrap();
    stalled
        .try_write(b"GET /sse HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let stalled_id = h.next_event("on_open").await.params[0].as_u64().unwrap();
    let (mut reader, _) = open(&mut h, "/sse", &[]).await;
    let big = "x".repeat(32 << 10);
    let mut closed = None;
    for i in 0..2_000 {
        h.call("push_data", push(&format!("{i} {big}"))).await;
        let e = reader.event().await;
        assert!(
            e.data.starts_with(&format!("{i} ")),
            "in order, nothing lost"
        );
        if let Ok(event) = h.events.try_recv() {
            if &event.method[..] == b"on_close" {
                closed = Some(event);
                break;
            }
        }
    }
    let closed = closed.expect("the stalled stream was never cut off");
    assert_eq!(closed.params[0].as_u64(), Some(stalled_id));
    assert_eq!(closed.params[1].as_u64(), Some(1008));
    let stats = h.call("stats", vec![]).await;
    let overflows = stats
        .as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_str() == Some("overflow_closes"))
        .map(|(_, v)| v.as_u64().unwrap());
    assert_eq!(overflows, Some(1));
    drop(stalled);
}
