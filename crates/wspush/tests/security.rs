//! Who may do what, over 127.0.0.1: JWT connect auth (401 before the
//! upgrade), channel permissions and origins (403), users and `send_user`,
//! the RPC shared secret, and `wss://` from certificate files.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, WAIT, recv};

use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};
use msgpack_rpc::{CallError, Client as Rpc, Value};
use tokio::io::AsyncReadExt;
use tokio::time::timeout;
use ws_proto::handshake::HandshakeError;
use ws_server::client::{self, Client as Ws, ClientConfig};
use ws_server::{ClientError, Message};
use wspush::config::Settings;
use wspush::serve::{Running, start};

const SECRET: &str = "test-jwt-secret";

fn settings() -> Settings {
    Settings {
        ws: "127.0.0.1:0".parse().unwrap(),
        rpc: "127.0.0.1:0".parse().unwrap(),
        api: "127.0.0.1:0".parse().unwrap(),
        // The test clients do not answer the shutdown close.
        shutdown_grace: 0,
        ..Settings::default()
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(sub: &str, channels: &[&str]) -> String {
    signed(serde_json::json!({ "sub": sub, "exp": unix_now() + 600, "channels": channels }))
}

/// A token signed with [`SECRET`] carrying exactly `claims`.
fn signed(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn status_of(result: Result<Ws, ClientError>) -> u16 {
    match result {
        Err(ClientError::Handshake(HandshakeError::Status(code))) => code,
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected an HTTP refusal, got a connection"),
    }
}

async fn authed_server() -> Running {
    start(&Settings {
        jwt_secret: Some(SECRET.into()),
        public_channels: vec!["lobby".into()],
        allowed_origins: vec!["https://app.example".into()],
        ..settings()
    })
    .await
    .unwrap()
}

/// Waits until the hub lists `n` connections (the 101 may arrive first).
async fn wait_connections(rpc: &Rpc, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        if let Value::Array(list) = rpc.call("connections", vec![]).await.unwrap()
            && list.len() == n
        {
            return list;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never saw {n} connections");
}

fn field<'a>(conn: &'a Value, key: &str) -> &'a Value {
    let Value::Map(map) = conn else {
        panic!("not a map: {conn}")
    };
    &map.iter().find(|(k, _)| k.as_str() == Some(key)).unwrap().1
}

#[tokio::test]
async fn without_a_valid_token_the_upgrade_is_refused_401() {
    let server = authed_server().await;
    let base = format!("ws://{}", server.ws_addr);
    assert_eq!(status_of(client::connect(&format!("{base}/")).await), 401);
    assert_eq!(
        status_of(client::connect(&format!("{base}/?token=not.a.jwt")).await),
        401
    );
    let stats = server.shared.stats();
    assert_eq!(stats.refused_unauthorized, 2);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_token_not_yet_valid_is_refused_401() {
    let server = authed_server().await;
    let base = format!("ws://{}", server.ws_addr);
    let at =
        |nbf: u64| signed(serde_json::json!({ "sub": "a", "exp": unix_now() + 7200, "nbf": nbf }));
    let early = at(unix_now() + 3600);
    assert_eq!(
        status_of(client::connect(&format!("{base}/?token={early}")).await),
        401
    );
    let due = at(unix_now() - 1);
    assert!(
        client::connect(&format!("{base}/?token={due}"))
            .await
            .is_ok()
    );
    assert_eq!(server.shared.stats().refused_unauthorized, 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn channels_need_the_token_or_the_public_list() {
    let server = authed_server().await;
    let base = format!("ws://{}", server.ws_addr);
    let t = token("alice", &["news"]);
    let ok = client::connect(&format!("{base}/?token={t}&channel=news&channel=lobby")).await;
    assert!(ok.is_ok());
    let denied = client::connect(&format!("{base}/?token={t}&channel=admin")).await;
    assert_eq!(status_of(denied), 403);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn foreign_origins_are_refused_403() {
    let server = authed_server().await;
    let url = format!("ws://{}/?token={}", server.ws_addr, token("a", &[]));
    let with_origin = |origin: &str| {
        let mut c = ClientConfig::default();
        c.headers = vec![("Origin".into(), origin.into())];
        c
    };
    let evil = client::connect_with(&url, with_origin("https://evil.example")).await;
    assert_eq!(status_of(evil), 403);
    let good = client::connect_with(&url, with_origin("https://app.example")).await;
    assert!(good.is_ok());
    assert_eq!(server.shared.stats().refused_forbidden, 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn send_user_reaches_every_connection_of_that_user() {
    let server = authed_server().await;
    let base = format!("ws://{}", server.ws_addr);
    let alice = token("alice", &[]);
    let mut a1 = client::connect(&format!("{base}/?token={alice}"))
        .await
        .unwrap();
    // The subprotocol form, as a browser sends it: new WebSocket(url, ["wspush", token]).
    let mut cfg = ClientConfig::default();
    cfg.protocols = vec!["wspush".into(), alice.clone()];
    let mut a2 = client::connect_with(&format!("{base}/"), cfg)
        .await
        .unwrap();
    assert_eq!(a2.protocol(), Some("wspush"));
    let bob = token("bob", &[]);
    let mut b = client::connect(&format!("{base}/?token={bob}"))
        .await
        .unwrap();

    let rpc = Rpc::connect_tcp(server.rpc_addr).await.unwrap();
    let list = wait_connections(&rpc, 3).await;
    let mut users: Vec<_> = list.iter().map(|c| field(c, "user").to_string()).collect();
    users.sort();
    assert_eq!(users, ["\"alice\"", "\"alice\"", "\"bob\""]);
    let queries: Vec<_> = list.iter().map(|c| field(c, "query").to_string()).collect();
    assert!(
        queries
            .iter()
            .all(|q| !q.contains(&alice) && !q.contains(&bob)),
        "{queries:?}"
    );

    let n = rpc
        .call(
            "send_user",
            vec![Value::from("alice"), Value::from("hi alice")],
        )
        .await
        .unwrap();
    assert_eq!(n, Value::from(2));
    assert_eq!(recv(&mut a1).await, Message::text("hi alice"));
    assert_eq!(recv(&mut a2).await, Message::text("hi alice"));
    rpc.call("send_user", vec![Value::from("bob"), Value::from("hi bob")])
        .await
        .unwrap();
    // Bob's first message is his own: nothing of Alice's reached him.
    assert_eq!(recv(&mut b).await, Message::text("hi bob"));
    let none = rpc
        .call("send_user", vec![Value::from("carol"), Value::from("x")])
        .await
        .unwrap();
    assert_eq!(none, Value::from(0));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_auth_a_plain_connection_still_works() {
    let server = start(&settings()).await.unwrap();
    let mut ws = client::connect(&format!("ws://{}/", server.ws_addr))
        .await
        .unwrap();
    let rpc = Rpc::connect_tcp(server.rpc_addr).await.unwrap();
    let list = wait_connections(&rpc, 1).await;
    assert_eq!(field(&list[0], "user"), &Value::Nil);
    // auth() is harmless without a secret, so clients may always call it.
    assert_eq!(
        rpc.call("auth", vec![Value::from("x")]).await.unwrap(),
        Value::Boolean(true)
    );
    rpc.call("push_data", vec![Value::from("plain")])
        .await
        .unwrap();
    assert_eq!(recv(&mut ws).await, Message::text("plain"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_malformed_since_is_refused_400_before_the_upgrade() {
    // Auth off: the query check is not part of it.
    let server = start(&settings()).await.unwrap();
    let base = format!("ws://{}", server.ws_addr);
    for query in ["channel=n&since=E:abc:n", "since=E:1:", "since=nocolon"] {
        let refused = client::connect(&format!("{base}/?{query}")).await;
        assert_eq!(status_of(refused), 400, "{query}");
    }
    assert_eq!(server.shared.stats().refused_bad_request, 3);
    assert_eq!(server.shared.hub.connection_count(), 0);
    // A well-formed one still resumes (positions on: the first frame has a header line).
    let mut ws = client::connect(&format!("{base}/?channel=n&since=E:0:n"))
        .await
        .unwrap();
    let rpc = Rpc::connect_tcp(server.rpc_addr).await.unwrap();
    wait_connections(&rpc, 1).await;
    let Message::Text(notice) = recv(&mut ws).await else {
        panic!("expected a text gap notice")
    };
    assert!(
        notice.starts_with(b"{") && notice.ends_with(b"\n"),
        "{notice:?}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn rpc_secret_is_required_before_any_call() {
    let server = start(&Settings {
        rpc_secret: Some("rpc-s3cret".into()),
        ..settings()
    })
    .await
    .unwrap();
    let rpc = Rpc::connect_tcp(server.rpc_addr).await.unwrap();
    let err = rpc.call("stats", vec![]).await.unwrap_err();
    assert!(err.to_string().contains("unauthenticated"), "{err}");
    let err = rpc
        .call("auth", vec![Value::from("wrong")])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("wrong secret"), "{err}");
    assert_eq!(
        rpc.call("auth", vec![Value::from("rpc-s3cret")])
            .await
            .unwrap(),
        Value::Boolean(true)
    );
    assert!(rpc.call("stats", vec![]).await.is_ok());
    // Another connection is not authenticated by the first one's auth.
    let other = Rpc::connect_tcp(server.rpc_addr).await.unwrap();
    assert!(other.call("push_data", vec![Value::from(1)]).await.is_err());
    assert_eq!(server.shared.stats().rpc_auth_failures, 3);
    server.shutdown().await.unwrap();
}

/// An RPC client from `source` (any 127.x.y.z is loopback on Linux: another
/// peer address on the same host).
async fn rpc_from(source: [u8; 4], server: std::net::SocketAddr) -> Rpc {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((source, 0).into()).unwrap();
    let (read, write) = socket.connect(server).await.unwrap().into_split();
    Rpc::from_halves(read, write, msgpack_rpc::ClientConfig::default())
}

/// The server closed this client's connection instead of answering.
async fn refused(rpc: Rpc) {
    let err = rpc.call("stats", vec![]).await.unwrap_err();
    assert!(matches!(err, CallError::Closed(_)), "{err}");
}

/// Issue 12.8: the RPC port held any number of connections. Beyond
/// `rpc_max_connections_per_ip` (loopback counted) and `rpc_max_connections`
/// a connection is closed at once; those inside the caps go on pushing.
#[tokio::test]
async fn rpc_connections_beyond_the_caps_are_refused_while_a_publisher_pushes() {
    let mut h = Harness::start(Settings {
        rpc_max_connections: 4,
        rpc_max_connections_per_ip: 2,
        ..settings()
    })
    .await;
    let addr = h.server.rpc_addr;
    let (mut ws, _) = h.open("/").await;
    // With the harness's listener, 127.0.0.1 holds two.
    let publisher = rpc_from([127, 0, 0, 1], addr).await;
    publisher.call("stats", vec![]).await.unwrap();
    for _ in 0..3 {
        refused(rpc_from([127, 0, 0, 1], addr).await).await;
    }
    let mut others = Vec::new();
    for _ in 0..2 {
        let other = rpc_from([127, 0, 0, 2], addr).await;
        other.call("stats", vec![]).await.unwrap();
        others.push(other);
    }
    refused(rpc_from([127, 0, 0, 3], addr).await).await;

    publisher
        .call("push_data", vec![Value::from("still pushing")])
        .await
        .unwrap();
    assert_eq!(recv(&mut ws).await, Message::text("still pushing"));
    let stats = h.server.shared.stats();
    assert_eq!((stats.rpc_refused_per_ip, stats.rpc_refused_full), (3, 1));
    assert_eq!(stats.rpc_connections, 4);
    let metrics = stats.to_prometheus();
    assert!(
        metrics.contains("wspush_rpc_refusals_total{reason=\"per_ip\"} 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wspush_rpc_refusals_total{reason=\"full\"} 1\n"),
        "{metrics}"
    );
    h.server.shutdown().await.unwrap();
}

/// Issue 12.8 with `--rpc-secret`: twenty peers without the secret each try a
/// 16 MiB push; each is refused from the message's header (after at most one
/// read), not buffered. A peer that sends nothing leaves after
/// `rpc_auth_timeout`. After `auth`, large pushes work as before.
#[tokio::test]
async fn before_auth_a_16_mib_push_is_refused_after_auth_it_works() {
    let server = start(&Settings {
        rpc_secret: Some("rpc-s3cret".into()),
        rpc_auth_timeout: 1,
        ..settings()
    })
    .await
    .unwrap();
    let authed = Rpc::connect_tcp(server.rpc_addr).await.unwrap();
    let ok = authed.call("auth", vec![Value::from("rpc-s3cret")]).await;
    assert_eq!(ok.unwrap(), Value::Boolean(true));

    let huge = vec![7u8; (16 << 20) - 1024];
    for _ in 0..20 {
        let stranger = Rpc::connect_tcp(server.rpc_addr).await.unwrap();
        let push = stranger.call("push_data", vec![Value::Binary(huge.clone())]);
        let err = push.await.unwrap_err();
        assert!(matches!(err, CallError::Closed(_)), "{err}");
    }
    drop(huge);
    assert_eq!(server.shared.stats().rpc_auth_limit_closes, 20);

    let mut silent = tokio::net::TcpStream::connect(server.rpc_addr)
        .await
        .unwrap();
    let end = timeout(WAIT, silent.read(&mut [0u8; 16])).await.unwrap();
    assert!(matches!(end, Ok(0) | Err(_)), "{end:?}");
    let stats = server.shared.stats();
    assert_eq!((stats.rpc_auth_timeouts, stats.rpc_connections), (1, 1));

    // Authenticated before that timeout, still here after it.
    let big = Value::Binary(vec![1; 8 << 20]);
    assert_eq!(
        authed.call("push_data", vec![big]).await.unwrap(),
        Value::Nil
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_pre_auth_limit_too_small_for_the_secret_is_refused_at_start() {
    let err = start(&Settings {
        rpc_secret: Some("s".repeat(100)),
        rpc_auth_max_message_bytes: 64,
        ..settings()
    })
    .await
    .err()
    .unwrap();
    assert!(
        err.to_string().contains("rpc_auth_max_message_bytes"),
        "{err}"
    );
}

#[tokio::test]
async fn a_non_loopback_rpc_address_needs_a_secret_or_rpc_insecure() {
    let exposed = Settings {
        rpc: "0.0.0.0:0".parse().unwrap(),
        ..settings()
    };
    let err = start(&exposed).await.err().unwrap();
    assert!(err.to_string().contains("--rpc-secret"), "{err}");
    let insecure = start(&Settings {
        rpc_insecure: true,
        ..exposed.clone()
    })
    .await
    .unwrap();
    insecure.shutdown().await.unwrap();
    let with_secret = start(&Settings {
        rpc_secret: Some("s".into()),
        ..exposed
    })
    .await
    .unwrap();
    with_secret.shutdown().await.unwrap();
}

#[tokio::test]
async fn wss_from_certificate_files() {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!("wspush-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, key.cert.pem()).unwrap();
    std::fs::write(&key_path, key.key_pair.serialize_pem()).unwrap();
    let server = start(&Settings {
        tls_cert: Some(cert_path),
        tls_key: Some(key_path),
        ..settings()
    })
    .await
    .unwrap();
    let mut cfg = ClientConfig::default();
    cfg.trust_root(key.cert.der().clone()).unwrap();
    let url = format!("wss://localhost:{}/", server.ws_addr.port());
    let mut ws = client::connect_with(&url, cfg).await.unwrap();
    let rpc = Rpc::connect_tcp(server.rpc_addr).await.unwrap();
    wait_connections(&rpc, 1).await;
    rpc.call("push_data", vec![Value::from("secure")])
        .await
        .unwrap();
    assert_eq!(recv(&mut ws).await, Message::text("secure"));
    server.shutdown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_cli_authenticates_with_the_rpc_secret() {
    let server = start(&Settings {
        rpc_secret: Some("cli-s3cret".into()),
        ..settings()
    })
    .await
    .unwrap();
    let stats = |secret: Option<&str>| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_wspush"));
        cmd.args(["stats", "--rpc", &server.rpc_addr.to_string()])
            .env_remove("WSPUSH_RPC_SECRET")
            .kill_on_drop(true);
        if let Some(s) = secret {
            cmd.env("WSPUSH_RPC_SECRET", s);
        }
        cmd
    };
    let without = timeout(WAIT, stats(None).output()).await.unwrap().unwrap();
    assert!(!without.status.success());
    assert!(
        String::from_utf8_lossy(&without.stderr).contains("unauthenticated"),
        "{}",
        String::from_utf8_lossy(&without.stderr)
    );
    let wrong = timeout(WAIT, stats(Some("nope")).output())
        .await
        .unwrap()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("refused the RPC secret"));
    let with = timeout(WAIT, stats(Some("cli-s3cret")).output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    assert!(String::from_utf8_lossy(&with.stdout).contains("pushes"));
    server.shutdown().await.unwrap();
}
