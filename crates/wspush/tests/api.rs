//! The HTTP server API over real sockets: Centrifugo's shapes, the plain `POST /pub`,
//! byte-for-byte data, idempotency, limits and bad input that harms nothing.
#![allow(clippy::unwrap_used)]

mod common;

use common::http::Http;
use common::{Harness, local_settings, recv, recv_text};
use serde_json::json;
use ws_server::Message;
use wspush::config::Settings;

/// One counter of RPC `stats()`.
fn stat(stats: &rmpv::Value, key: &str) -> u64 {
    let entry = stats
        .as_map()
        .unwrap()
        .iter()
        .find(|(n, _)| n.as_str() == Some(key));
    entry.unwrap().1.as_u64().unwrap()
}

#[tokio::test]
async fn publish_delivers_data_byte_for_byte_and_answers_its_position() {
    let mut h = Harness::start(local_settings()).await;
    let (mut ws, _) = h.open("/?channel=news").await;
    let mut api = Http::connect(h.server.api_addr).await;
    // Odd spacing, key order and escapes: the browser gets exactly this text.
    let data = r#"{ "z":1,  "a" : [1.50, "\u00e9", null] }"#;
    let r = api
        .api(
            "/api/publish",
            &format!(r#"{{"channel":"news","data":{data},"extra":true}}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let result = &r.json()["result"];
    assert_eq!(result["offset"], 1);
    let epoch = result["epoch"].as_str().unwrap().to_owned();
    assert!(!epoch.is_empty());
    assert_eq!(recv_text(&mut ws).await, data);

    // b64data is a binary message.
    let r = api
        .api("/api/publish", r#"{"channel":"news","b64data":"AP8="}"#)
        .await;
    assert_eq!(r.json()["result"]["offset"], 2);
    assert_eq!(recv(&mut ws).await, Message::binary(vec![0u8, 255]));

    // The same idempotency key: the first result again, nothing published.
    let body = r#"{"channel":"news","data":"once","idempotency_key":"k1"}"#;
    let first = api.api("/api/publish", body).await.json();
    let again = api.api("/api/publish", body).await.json();
    assert_eq!(first, again);
    assert_eq!(first["result"]["offset"], 3);
    api.api("/api/publish", r#"{"channel":"news","data":"after"}"#)
        .await;
    assert_eq!(recv_text(&mut ws).await, "\"once\"");
    assert_eq!(recv_text(&mut ws).await, "\"after\"");

    // History has them, data as published.
    let r = api
        .api("/api/history", r#"{"channel":"news","limit":-1}"#)
        .await;
    let result = &r.json()["result"];
    assert_eq!(result["offset"], 4);
    assert_eq!(result["epoch"], epoch.as_str());
    let pubs = result["publications"].as_array().unwrap();
    assert_eq!(pubs.len(), 4);
    assert_eq!(pubs[0]["data"], json!({"z":1,"a":[1.5,"é",null]}));
    assert_eq!(pubs[1]["b64data"], "AP8=");
    let r = api
        .api(
            "/api/history",
            &format!(r#"{{"channel":"news","limit":10,"since":{{"offset":3,"epoch":"{epoch}"}}}}"#),
        )
        .await;
    assert_eq!(
        r.json()["result"]["publications"],
        json!([{"data":"after","offset":4}])
    );
    let r = api
        .api(
            "/api/history",
            r#"{"channel":"news","limit":10,"since":{"offset":3,"epoch":"gone"}}"#,
        )
        .await;
    assert_eq!(r.json()["error"]["code"], 112);
    api.api("/api/history_remove", r#"{"channel":"news"}"#)
        .await;
    let r = api
        .api("/api/history", r#"{"channel":"news","limit":-1}"#)
        .await
        .json();
    assert_eq!(r["result"]["publications"], json!([]));
    assert_eq!(r["result"]["offset"], 4);
}

#[tokio::test]
async fn skip_history_delivers_live_without_a_position_and_keeps_nothing() {
    let mut h = Harness::start(local_settings()).await;
    let (mut plain, _) = h.open("/?channel=news").await;
    let (mut positioned, _) = h.open("/?channel=news&positions=1").await;
    let mut api = Http::connect(h.server.api_addr).await;
    let r = api
        .api("/api/publish", r#"{"channel":"news","data":"kept"}"#)
        .await;
    assert_eq!(r.json()["result"]["offset"], 1);
    // Centrifugo answers no position for a skip_history publish.
    let r = api
        .api(
            "/api/publish",
            r#"{"channel":"news","data":"live","skip_history":true}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"result":{}}));
    let r = api
        .api(
            "/api/broadcast",
            r#"{"channels":["news"],"data":"live2","skip_history":true}"#,
        )
        .await
        .json();
    assert_eq!(r["result"]["responses"], json!([{"result":{}}]));
    let r = api
        .api("/api/publish", r#"{"channel":"news","data":"kept2"}"#)
        .await;
    // The numbering went on around the live ones.
    assert_eq!(r.json()["result"]["offset"], 2);
    for data in ["\"kept\"", "\"live\"", "\"live2\"", "\"kept2\""] {
        assert_eq!(recv_text(&mut plain).await, data);
    }
    // Positioned: the live ones carry their channel and no position, and no gap.
    for want in [Some(1), None, None, Some(2)] {
        let text = recv_text(&mut positioned).await;
        let head: serde_json::Value =
            serde_json::from_str(text.split_once('\n').unwrap().0).unwrap();
        assert_eq!(head["q"].as_u64(), want, "{text}");
        assert_eq!(head.get("gap"), None, "{text}");
        assert_eq!(head["c"], "news");
    }
    let r = api
        .api("/api/history", r#"{"channel":"news","limit":-1}"#)
        .await
        .json();
    let pubs = &r["result"]["publications"];
    assert_eq!(
        pubs,
        &json!([{"data":"kept","offset":1},{"data":"kept2","offset":2}])
    );
}

#[tokio::test]
async fn one_connection_pushes_in_request_order() {
    let mut h = Harness::start(local_settings()).await;
    let (mut ws, _) = h.open("/?channel=c").await;
    let mut api = Http::connect(h.server.api_addr).await;
    // Pipelined: every request written before any answer is read.
    let mut raw = Vec::new();
    for i in 0..50 {
        let body = format!(r#"{{"channel":"c","data":{i}}}"#);
        raw.extend_from_slice(
            format!(
                "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
    }
    api.send_raw(&raw).await;
    for i in 0..50u64 {
        assert_eq!(api.read_reply().await.json()["result"]["offset"], i + 1);
    }
    for i in 0..50 {
        assert_eq!(recv_text(&mut ws).await, i.to_string());
    }
}

#[tokio::test]
async fn plain_pub_takes_a_raw_body() {
    let mut h = Harness::start(local_settings()).await;
    let (mut ws, _) = h.open("/?channel=news").await;
    let url = format!("http://{}/pub/news", h.server.api_addr);
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "-d", "hello", &url])
        .output()
        .await
        .expect("curl not found");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["offset"], 1);
    assert_eq!(recv_text(&mut ws).await, "hello");

    let mut api = Http::connect(h.server.api_addr).await;
    let octets = [("Content-Type", "application/octet-stream")];
    assert_eq!(api.post("/pub/news", &octets, b"bin").await.status, 200);
    assert_eq!(recv(&mut ws).await, Message::binary(&b"bin"[..]));
    assert_eq!(api.post("/pub/news", &[], b"\xff\xfe").await.status, 200);
    assert_eq!(recv(&mut ws).await, Message::binary(&b"\xff\xfe"[..]));
    // The broadcast stream reaches every browser.
    assert_eq!(api.post("/pub", &[], b"everyone").await.status, 200);
    assert_eq!(recv_text(&mut ws).await, "everyone");
    let r = api.post("/pub/a%20b", &[], b"x").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        h.call("channels", vec![]).await,
        rmpv::Value::Map(vec![(rmpv::Value::from("news"), rmpv::Value::from(1))])
    );
}

#[tokio::test]
async fn bad_input_gets_its_status_and_harms_nothing() {
    let mut h = Harness::start(Settings {
        api_key: Some("k3y".into()),
        api_max_body_bytes: 1000,
        ..local_settings()
    })
    .await;
    let (mut ws, _) = h.open("/?channel=news").await;
    let mut api = Http::connect(h.server.api_addr).await;
    let key = [("X-API-Key", "k3y")];
    let publish = |n: u32| format!(r#"{{"channel":"news","data":{n}}}"#);

    let r = api
        .post(
            "/api/publish",
            &[("X-API-Key", "nope")],
            publish(0).as_bytes(),
        )
        .await;
    assert_eq!((r.status, r.body.len()), (401, 0));
    let r = api.post("/api/publish", &[], publish(0).as_bytes()).await;
    assert_eq!(r.status, 401);
    let r = api
        .post(
            "/api/publish",
            &[("Authorization", "apikey k3y")],
            publish(1).as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(recv_text(&mut ws).await, "1");

    let r = api.post("/api/publish", &key, b"{\"channel\":").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], 107);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("EOF"),
        "{}",
        r.text()
    );
    let r = api.post("/api/nope", &key, b"{}").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], 104);
    let r = api.post("/api/publish", &key, publish(2).as_bytes()).await;
    assert_eq!(r.status, 200);
    assert_eq!(recv_text(&mut ws).await, "2");

    let big = format!(r#"{{"channel":"news","data":"{}"}}"#, "x".repeat(2000));
    let r = api.post("/api/publish", &key, big.as_bytes()).await;
    assert_eq!(r.status, 413);
    let mut api = Http::connect(h.server.api_addr).await;
    let head = format!(
        "POST /api/publish HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "h".repeat(20 << 10)
    );
    api.send_raw(head.as_bytes()).await;
    assert_eq!(api.read_reply().await.status, 431);

    let mut api = Http::connect(h.server.api_addr).await;
    let r = api.post("/api/publish", &key, publish(3).as_bytes()).await;
    assert_eq!(r.status, 200);
    assert_eq!(recv_text(&mut ws).await, "3");
    assert_eq!(api.get("/health").await.text(), "ok\n");
    assert_eq!(api.get("/metrics").await.status, 401);
    let r = api.send_get_with_key("/api/publish", "k3y").await;
    assert_eq!(r.status, 405);

    let stats = h.call("stats", vec![]).await;
    let get = |k: &str| stat(&stats, k);
    assert_eq!(get("api_errors_401"), 3);
    assert_eq!(get("api_errors_400"), 1);
    assert_eq!(get("api_errors_404"), 1);
    assert_eq!(get("api_errors_413"), 1);
    assert_eq!(get("api_errors_431"), 1);
    assert_eq!(get("api_errors_405"), 1);
    let r = api.post("/metrics", &key, b"").await;
    assert_eq!(r.status, 405);
    let mut api = Http::connect(h.server.api_addr).await;
    let m = api.send_get_with_key("/metrics", "k3y").await;
    assert!(
        m.text()
            .contains("wspush_api_errors_total{status=\"401\"} 3\n"),
        "{}",
        m.text()
    );
}

#[tokio::test]
async fn batch_legacy_presence_channels_info_and_commands() {
    let mut h = Harness::start(local_settings()).await;
    let (mut a, a_id) = h.open("/?channel=news").await;
    let (_b, b_id) = h.open("/").await;
    let mut api = Http::connect(h.server.api_addr).await;

    let r = api
        .api(
            "/api/batch",
            r#"{"commands":[{"publish":{"channel":"news","data":{"x":1}}},{"presence_stats":{"channel":"news"}},{"presence":{}},{"bogus":{}}],"parallel":false}"#,
        )
        .await
        .json();
    let replies = r["replies"].as_array().unwrap();
    assert_eq!(replies[0]["publish"]["offset"], 1);
    assert_eq!(
        replies[1]["presence_stats"],
        json!({"num_clients":1,"num_users":1})
    );
    assert_eq!(replies[2]["error"]["code"], 107);
    assert_eq!(replies[3]["error"]["code"], 104);
    assert_eq!(recv_text(&mut a).await, r#"{"x":1}"#);

    let r = api
        .api("/api", "{\"method\":\"publish\",\"params\":{\"channel\":\"news\",\"data\":2}}\n{\"method\":\"presence\",\"params\":{\"channel\":\"news\"}}\n")
        .await;
    let text = r.text();
    assert!(!text.ends_with('\n'), "{text}");
    let lines: Vec<serde_json::Value> = text
        .split('\n')
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["result"]["offset"], 2);
    let id = a_id.to_string();
    assert_eq!(
        lines[1]["result"]["presence"][&id],
        json!({"client": id, "user": ""})
    );
    assert_eq!(recv_text(&mut a).await, "2");

    let r = api
        .api("/api/broadcast", r#"{"channels":["news",""],"data":3}"#)
        .await
        .json();
    let responses = r["result"]["responses"].as_array().unwrap();
    assert_eq!(responses[0]["result"]["offset"], 3);
    assert_eq!(responses[1]["error"]["code"], 107);
    assert_eq!(recv_text(&mut a).await, "3");

    let b = b_id.to_string();
    let r = api
        .api(
            "/api/subscribe",
            &format!(r#"{{"client":"{b}","channel":"news"}}"#),
        )
        .await;
    assert_eq!(r.json(), json!({"result":{}}));
    let r = api
        .api("/api/channels", r#"{"pattern":"ne*"}"#)
        .await
        .json();
    assert_eq!(r["result"]["channels"], json!({"news":{"num_clients":2}}));
    let r = api.api("/api/info", "{}").await.json();
    let node = &r["result"]["nodes"][0];
    assert_eq!(
        (node["num_clients"].as_u64(), node["num_subs"].as_u64()),
        (Some(2), Some(2))
    );
    assert!(node["uid"].is_string() && node["name"].is_string());

    let r = api
        .api(
            "/api/send",
            &format!(r#"{{"client":"{id}","data":"just you"}}"#),
        )
        .await;
    assert_eq!(r.json()["result"]["sent"], true);
    assert_eq!(recv_text(&mut a).await, "\"just you\"");
    let r = api.api("/api/stats", "{}").await.json();
    assert!(r["result"]["api_requests"].as_u64().unwrap() >= 6);
    let r = api.api("/api/connections", "{}").await.json();
    assert_eq!(r["result"]["connections"].as_array().unwrap().len(), 2);

    let r = api
        .api(
            "/api/disconnect",
            &format!(r#"{{"client":"{id}","disconnect":{{"code":4000,"reason":"bye"}}}}"#),
        )
        .await;
    assert_eq!(r.status, 200);
    // The browser sees the close (and answers it), then the program hears of it.
    assert!(a.recv_message().await.unwrap().is_none());
    let close = h.next_event("on_close").await;
    assert_eq!(close.params[1].as_u64(), Some(4000));
}

#[tokio::test]
async fn a_non_loopback_api_needs_a_key_or_api_insecure() {
    let exposed = Settings {
        api: "0.0.0.0:0".parse().unwrap(),
        shutdown_grace: 0,
        ..local_settings()
    };
    let err = wspush::serve::start(&exposed).await.err().unwrap();
    assert!(err.to_string().contains("--api-key"), "{err}");
    for ok in [
        Settings {
            api_insecure: true,
            ..exposed.clone()
        },
        Settings {
            api_key: Some("k".into()),
            ..exposed
        },
    ] {
        wspush::serve::start(&ok)
            .await
            .unwrap()
            .shutdown()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed_and_counted() {
    let h = Harness::start(Settings {
        api_idle_timeout: 1,
        api_header_timeout: 1,
        ..local_settings()
    })
    .await;
    // Idle after one request: closed by the server, whatever the client waits for.
    let mut idle = Http::connect(h.server.api_addr).await;
    assert_eq!(idle.get("/health").await.status, 200);
    assert!(idle.closed().await);
    // A head that never completes.
    let mut slow = Http::connect(h.server.api_addr).await;
    slow.send_raw(b"POST /api/info HTTP/1.1\r\nHost: x\r\n")
        .await;
    assert!(slow.try_read_reply().await.is_none());
    let stats = h.call("stats", vec![]).await;
    let get = |k: &str| stat(&stats, k);
    assert_eq!(get("api_idle_timeouts"), 1);
    assert_eq!(get("api_header_timeouts"), 1);
}
