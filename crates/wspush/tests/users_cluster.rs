//! `send_user` with the Redis broker: a user's connections on two nodes both
//! receive it, whichever node the program calls. Needs `redis-server`
//! (`scripts/test-deps.sh` installs it).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::redis_server::{Redis, WAIT};
use msgpack_rpc::{Client as Rpc, Value};
use tokio::time::timeout;
use ws_server::Message;
use ws_server::client::{self, Client as Ws};
use wspush::config::Settings;
use wspush::serve::{Running, start};

const SECRET: &str = "cluster-jwt";

async fn node(redis: &Redis) -> (Running, Rpc) {
    let server = start(&Settings {
        ws: "127.0.0.1:0".parse().unwrap(),
        rpc: "127.0.0.1:0".parse().unwrap(),
        api: "127.0.0.1:0".parse().unwrap(),
        broker: redis.url(),
        jwt_secret: Some(SECRET.into()),
        shutdown_grace: 0,
        ..Settings::default()
    })
    .await
    .unwrap();
    let rpc = Rpc::connect_tcp(server.rpc_addr).await.unwrap();
    // Bounded wait for the node's Redis subscription, so a bus message finds it.
    for _ in 0..500 {
        if server.shared.stats().broker_connected == 1 {
            return (server, rpc);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the node never subscribed to Redis");
}

fn token(sub: &str) -> String {
    common::jwt(SECRET, sub, &[])
}

async fn open(server: &Running, rpc: &Rpc, user: &str) -> Ws {
    let url = format!("ws://{}/?token={}", server.ws_addr, token(user));
    let ws = client::connect(&url).await.unwrap();
    // Bounded wait until the node lists it (the 101 may come first).
    for _ in 0..500 {
        if let Value::Array(list) = rpc.call("connections", vec![]).await.unwrap()
            && !list.is_empty()
        {
            return ws;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("connection never registered");
}

#[tokio::test]
async fn send_user_reaches_the_user_on_every_node() {
    let redis = Redis::start().await;
    let (a, rpc_a) = node(&redis).await;
    let (b, rpc_b) = node(&redis).await;
    let mut on_a = open(&a, &rpc_a, "alice").await;
    let mut on_b = open(&b, &rpc_b, "alice").await;

    let nodes = rpc_a
        .call(
            "send_user",
            vec![Value::from("alice"), Value::from("hello")],
        )
        .await
        .unwrap();
    assert_eq!(nodes, Value::from(2), "both nodes listen on the bus");
    for ws in [&mut on_a, &mut on_b] {
        let msg = timeout(WAIT, ws.recv_message()).await.unwrap().unwrap();
        assert_eq!(msg, Some(Message::text("hello")));
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
