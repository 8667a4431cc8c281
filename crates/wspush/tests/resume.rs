//! History and resume with the embedded broker, over 127.0.0.1: positioned
//! frames, exactly the missed messages after a reconnect, gap notices.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, local_settings, recv};

use msgpack_rpc::Value;
use serde_json::Value as Json;
use ws_server::Message;
use ws_server::client::Client as Ws;
use wspush::config::Settings;

/// A server keeping `history_len` messages per stream.
async fn harness(history_len: usize) -> Harness {
    Harness::start(Settings {
        history_len,
        shutdown_grace: 0,
        ..local_settings()
    })
    .await
}

async fn publish(h: &Harness, channel: &str, data: String) {
    h.call("publish", vec![Value::from(channel), Value::from(data)])
        .await;
}

/// A positioned frame: its JSON header and its data.
async fn recv_positioned(ws: &mut Ws) -> (Json, String) {
    let Message::Text(bytes) = recv(ws).await else {
        panic!("expected text")
    };
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let (head, data) = text.split_once('\n').expect("no header line");
    (serde_json::from_str(head).unwrap(), data.to_owned())
}

fn seq(h: &Json) -> u64 {
    h["q"].as_u64().unwrap()
}

fn epoch(h: &Json) -> String {
    h["e"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn frames_carry_positions_only_for_clients_that_ask() {
    let mut h = harness(100).await;
    let mut raw = h.open("/?channel=news").await.0;
    let mut positioned = h.open("/?channel=news&positions=1").await.0;
    publish(&h, "news", r#"{"a":1}"#.into()).await;
    h.rpc
        .call("push_data", vec![Value::Binary(vec![0, 1, 255])])
        .await
        .unwrap();
    assert_eq!(recv(&mut raw).await, Message::text(r#"{"a":1}"#));
    assert_eq!(recv(&mut raw).await, Message::binary(vec![0u8, 1, 255]));
    let (head, data) = recv_positioned(&mut positioned).await;
    assert_eq!(
        (head["c"].as_str(), seq(&head), data.as_str()),
        (Some("news"), 1, r#"{"a":1}"#)
    );
    let Message::Binary(b) = recv(&mut positioned).await else {
        panic!("binary stays binary")
    };
    let nl = b.iter().position(|c| *c == b'\n').unwrap();
    let head: Json = serde_json::from_slice(&b[..nl]).unwrap();
    assert!(head.get("c").is_none(), "broadcast has no channel: {head}");
    assert_eq!((seq(&head), &b[nl + 1..]), (1, &[0u8, 1, 255][..]));
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_reconnecting_client_gets_exactly_what_it_missed_then_live() {
    let mut h = harness(100).await;
    let mut ws = h.open("/?channel=news&positions=1").await.0;
    for i in 1..=5 {
        publish(&h, "news", format!("m{i}")).await;
    }
    let mut last = None;
    for i in 1..=3 {
        let (head, data) = recv_positioned(&mut ws).await;
        assert_eq!((seq(&head), data), (i, format!("m{i}")));
        last = Some(head);
    }
    // Killed mid-stream: m4 and m5 were sent but never processed.
    drop(ws);
    for i in 6..=8 {
        publish(&h, "news", format!("m{i}")).await;
    }
    let last = last.unwrap();
    let since = format!("{}:{}:news", epoch(&last), seq(&last));
    let mut ws = h
        .open(&format!("/?channel=news&since={}", urlencode(&since)))
        .await
        .0;
    publish(&h, "news", "m9".into()).await;
    for i in 4..=9 {
        let (head, data) = recv_positioned(&mut ws).await;
        assert_eq!(head.get("gap"), None, "{head}");
        assert_eq!((seq(&head), data), (i, format!("m{i}")));
        assert_eq!(epoch(&head), epoch(&last));
    }
    h.server.shutdown().await.unwrap();
}

/// A positioned client of channel `c` gets message 1 and leaves; messages 2
/// to `last` are published; it resumes from 1 and must get a gap notice at
/// `gap`, then the messages after it. Returns the epoch.
async fn resume_after_trimming(
    h: &mut Harness,
    m: impl Fn(u64) -> String,
    last: u64,
    gap: u64,
) -> String {
    let mut ws = h.open("/?channel=c&positions=1").await.0;
    publish(h, "c", m(1)).await;
    let (first, _) = recv_positioned(&mut ws).await;
    drop(ws);
    for i in 2..=last {
        publish(h, "c", m(i)).await;
    }
    let e = epoch(&first);
    let mut ws = h.open(&format!("/?channel=c&since={e}:1:c")).await.0;
    let (notice, data) = recv_positioned(&mut ws).await;
    assert_eq!(notice["gap"], Json::Bool(true), "{notice}");
    assert_eq!((seq(&notice), data.as_str()), (gap, ""));
    for i in gap + 1..=last {
        let (head, data) = recv_positioned(&mut ws).await;
        assert_eq!((seq(&head), data), (i, m(i)));
    }
    e
}

#[tokio::test]
async fn history_that_no_longer_covers_the_gap_says_so() {
    let mut h = harness(3).await;
    let e = resume_after_trimming(&mut h, |i| format!("m{i}"), 10, 7).await;
    // A position from another epoch (e.g. before a restart): notice, then what is kept.
    let mut ws = h.open("/?channel=c&since=older:99:c").await.0;
    let (notice, _) = recv_positioned(&mut ws).await;
    assert_eq!((notice["gap"].as_bool(), seq(&notice)), (Some(true), 7));
    assert_eq!(epoch(&notice), e);
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn history_trimmed_by_its_byte_limit_gives_gap_notices_not_silence() {
    // Room for two messages of 300 bytes (each counted with a little overhead).
    let mut h = Harness::start(Settings {
        history_stream_bytes: 1000,
        shutdown_grace: 0,
        ..local_settings()
    })
    .await;
    let e = resume_after_trimming(&mut h, |i| format!("{i:0>300}"), 7, 5).await;
    // Larger than the limit: numbered, not kept; a resume from just before it
    // is told, rather than waiting in silence for the next message.
    publish(&h, "c", "x".repeat(2000)).await;
    let mut ws = h.open(&format!("/?channel=c&since={e}:7:c")).await.0;
    let (notice, _) = recv_positioned(&mut ws).await;
    assert_eq!((notice["gap"].as_bool(), seq(&notice)), (Some(true), 8));
    let stats = h.server.shared.stats();
    // 1 to 5 for room, then 6 and 7 with the big one, and the big one.
    assert_eq!(stats.history_trimmed_stream, 8, "{stats:?}");
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn resuming_while_pushes_continue_loses_and_repeats_nothing() {
    let mut h = harness(1000).await;
    let mut ws = h.open("/?positions=1").await.0;
    let publisher = h.rpc.clone();
    let pushes = tokio::spawn(async move {
        for i in 1..=400u32 {
            publisher
                .call("push_data", vec![Value::from(format!("m{i}"))])
                .await
                .unwrap();
        }
    });
    let mut last = None;
    for i in 1..=50 {
        let (head, data) = recv_positioned(&mut ws).await;
        assert_eq!((seq(&head), data), (i, format!("m{i}")));
        last = Some(head);
    }
    drop(ws);
    let last = last.unwrap();
    let mut ws = h
        .open(&format!("/?since={}:{}", epoch(&last), seq(&last)))
        .await
        .0;
    for i in 51..=400 {
        let (head, data) = recv_positioned(&mut ws).await;
        assert_eq!(head.get("gap"), None, "{head}");
        assert_eq!((seq(&head), data), (i, format!("m{i}")));
    }
    pushes.await.unwrap();
    let stats = h.rpc.call("stats", vec![]).await.unwrap();
    assert!(stats.to_string().contains("\"resumes\": 1"), "{stats}");
    h.server.shutdown().await.unwrap();
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Issue 12.1: a resume whose backlog is larger than one outbound queue (100 × 12 KB against
/// the default 1 MiB) is delivered in full, paced by the socket, and live messages follow;
/// it used to be cut off with 1008 "slow consumer" on every attempt.
#[tokio::test]
async fn a_resume_larger_than_the_queue_is_delivered_in_full() {
    let mut h = harness(Settings::default().history_len).await;
    let mut first = h.open("/?channel=big&positions=1").await.0;
    publish(&h, "big", "m1".into()).await;
    let (head, _) = recv_positioned(&mut first).await;
    drop(first);
    let big = |i: u64| format!("{i:03}{}", "x".repeat(12_000));
    for i in 2..=100 {
        publish(&h, "big", big(i)).await;
    }
    let since = format!("{}:1:big", epoch(&head));
    let mut ws = h
        .open(&format!("/?channel=big&since={}", urlencode(&since)))
        .await
        .0;
    publish(&h, "big", big(101)).await;
    for i in 2..=101 {
        let (head, data) = recv_positioned(&mut ws).await;
        assert_eq!(head.get("gap"), None, "{head}");
        assert_eq!(seq(&head), i);
        assert_eq!(data, big(i));
    }
    let stats = h.call("stats", vec![]).await;
    let overflow_closes = stats
        .as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_str() == Some("overflow_closes"))
        .map(|(_, v)| v.as_u64())
        .unwrap();
    assert_eq!(overflow_closes, Some(0), "{stats}");
    h.server.shutdown().await.unwrap();
}
