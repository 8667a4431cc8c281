//! Long-polling: `GET /poll` answered from history at once, or when the next push comes.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, WAIT, local_settings};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use msgpack_rpc::Value;
use serde_json::json;

/// One GET on the public port: status and body.
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", "127.0.0.1")
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = tokio::time::timeout(WAIT * 2, sender.send_request(req))
        .await
        .unwrap()
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn json_of(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap()
}

#[tokio::test]
async fn a_poll_waits_for_the_next_push_then_resumes_from_its_answer() {
    let mut h = Harness::start(local_settings()).await;
    let addr = h.server.ws_addr;
    let waiting = tokio::spawn(async move { get(addr, "/poll?channel=news&timeout=30").await });
    h.next_event("on_open").await;
    h.call("publish", vec!["news".into(), "first".into()]).await;
    let (status, body) = waiting.await.unwrap();
    assert_eq!(status, 200);
    let answer = json_of(&body);
    assert_eq!(answer["messages"][0]["channel"], "news");
    assert_eq!(answer["messages"][0]["data"], "first");
    assert_eq!(answer["messages"][0]["seq"], 1);
    assert_eq!(answer["gaps"], json!([]));
    let next = answer["next"].as_str().unwrap().to_owned();
    // Published between two polls: the next poll answers at once, from history.
    h.call("publish", vec!["news".into(), "second".into()])
        .await;
    h.call("push_data", vec![Value::Binary(vec![0, 1])]).await;
    let (_, body) = get(addr, &format!("/poll?channel=news&{next}")).await;
    let answer = json_of(&body);
    let messages = answer["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{answer}");
    assert!(
        messages
            .iter()
            .any(|m| m["binary"] == "AAE=" && m["channel"].is_null())
    );
    assert!(
        messages
            .iter()
            .any(|m| m["data"] == "second" && m["seq"] == 2)
    );
    // Nothing twice: from this answer's `next`, nothing is pending.
    let next = answer["next"].as_str().unwrap().to_owned();
    let (_, body) = get(addr, &format!("/poll?channel=news&{next}&timeout=0")).await;
    assert_eq!(json_of(&body)["messages"], json!([]));
}

#[tokio::test]
async fn a_poll_with_nothing_new_answers_empty_when_its_wait_is_over() {
    let h = Harness::start(local_settings()).await;
    let (status, body) = get(h.server.ws_addr, "/poll?timeout=1").await;
    assert_eq!(status, 200);
    let answer = json_of(&body);
    assert_eq!(answer["messages"], json!([]));
    assert!(
        answer["next"].as_str().unwrap().starts_with("since="),
        "{answer}"
    );
}

#[tokio::test]
async fn a_poll_from_before_the_history_gets_a_gap() {
    let settings = wspush::config::Settings {
        history_len: 2,
        ..local_settings()
    };
    let h = Harness::start(settings).await;
    for i in 1..=5 {
        h.call("push_data", vec![Value::from(i.to_string())]).await;
    }
    let (_, body) = get(h.server.ws_addr, "/poll?timeout=0").await;
    let epoch = json_of(&body)["next"].as_str().unwrap()["since=".len()..]
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    let (_, body) = get(h.server.ws_addr, &format!("/poll?since={epoch}:1")).await;
    let answer = json_of(&body);
    assert_eq!(answer["gaps"][0]["seq"], 3, "{answer}");
    let data: Vec<_> = answer["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["data"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(data, ["4", "5"]);
}

#[tokio::test]
async fn bad_polls_are_refused_and_connections_list_them_while_they_wait() {
    let mut h = Harness::start(local_settings()).await;
    let addr = h.server.ws_addr;
    assert_eq!(get(addr, "/poll?timeout=600").await.0, 400);
    assert_eq!(get(addr, "/poll?since=nope").await.0, 400);
    let waiting = tokio::spawn(async move { get(addr, "/poll?timeout=30").await });
    let id = h.next_event("on_open").await.params[0].as_u64().unwrap();
    let list = h.call("connections", vec![]).await;
    let transport = list.as_array().unwrap()[0]
        .as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_str() == Some("transport"))
        .map(|(_, v)| v.as_str().unwrap().to_owned());
    assert_eq!(transport.as_deref(), Some("poll"));
    h.call("push_data", vec!["wake".into()]).await;
    assert_eq!(
        json_of(&waiting.await.unwrap().1)["messages"][0]["data"],
        "wake"
    );
    let closed = h.next_event("on_close").await;
    assert_eq!(closed.params[0].as_u64(), Some(id));
}
