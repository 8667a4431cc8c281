//! The limits that keep peers from holding the server's memory, over real
//! sockets: connection caps, the message timeout, pre-authentication limits.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::BytesMut;
use common::{SECRET, WAIT, start_with};
use msgpack_rpc::{AuthLimits, Client, Decoder, Message, ServerConfig, Value, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

/// The message timeout in these tests: nothing here sends a message in
/// pieces except the peer that stalls.
const SHORT: Duration = Duration::from_millis(300);
/// The auth timeout: long enough that a loaded machine still gets `auth`
/// out in time.
const AUTH_TIMEOUT: Duration = Duration::from_secs(1);

/// A raw connection from `source` (any 127.x.y.z: Linux routes all of 127/8
/// to loopback, so each is another peer address on one host).
async fn connect_from(source: Ipv4Addr, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0)).unwrap();
    socket.connect(server).await.unwrap()
}

fn request(msgid: u32, method: &'static str, params: Vec<Value>) -> BytesMut {
    let mut out = BytesMut::new();
    encode(&Message::request(msgid, method, params), &mut out);
    out
}

/// Reads until one whole message arrived (bounded wait).
async fn read_message(stream: &mut TcpStream) -> Message {
    let mut decoder = Decoder::default();
    let mut buf = BytesMut::new();
    loop {
        if let Some(msg) = decoder.decode(&mut buf).unwrap() {
            return msg;
        }
        let n = timeout(WAIT, stream.read_buf(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before a whole reply");
    }
}

/// `echo(v)` over a raw connection answers `v`.
async fn raw_echo(stream: &mut TcpStream, v: Value) {
    stream
        .write_all(&request(7, "echo", vec![v.clone()]))
        .await
        .unwrap();
    assert_eq!(read_message(stream).await, Message::response_ok(7, v));
}

/// The server closes `stream` without a reply (EOF, or a reset if it dropped
/// unread bytes), within the bounded wait.
async fn closed_by_server(stream: &mut TcpStream) {
    let mut rest = [0u8; 64];
    match timeout(WAIT, stream.read(&mut rest)).await {
        Ok(Ok(0) | Err(_)) => {}
        Ok(Ok(n)) => panic!("got {n} bytes instead of a close"),
        Err(_) => panic!("still open after {WAIT:?}"),
    }
}

#[tokio::test]
async fn connections_beyond_the_caps_are_closed_at_once_while_others_work() {
    let config = ServerConfig {
        max_connections: 3,
        max_connections_per_ip: 2,
        ..ServerConfig::default()
    };
    let mut srv = start_with(config).await;
    let home = Ipv4Addr::LOCALHOST;
    // Two from 127.0.0.1, served (a reply proves they were admitted).
    let first = Client::connect_tcp(srv.addr).await.unwrap();
    first.call("echo", vec![Value::Nil]).await.unwrap();
    let mut second = connect_from(home, srv.addr).await;
    raw_echo(&mut second, Value::from(2)).await;
    // A third from the same address: loopback is not exempt.
    closed_by_server(&mut connect_from(home, srv.addr).await).await;
    // Another address still gets in, up to the total.
    let mut other = connect_from(Ipv4Addr::new(127, 0, 0, 2), srv.addr).await;
    raw_echo(&mut other, Value::from(3)).await;
    closed_by_server(&mut connect_from(Ipv4Addr::new(127, 0, 0, 3), srv.addr).await).await;

    // The connections inside the caps never noticed.
    let v = Value::from("still here");
    assert_eq!(first.call("echo", vec![v.clone()]).await.unwrap(), v);
    let s = srv.server.stats();
    assert_eq!((s.refused_per_ip, s.refused_full), (1, 1), "{s:?}");
    assert_eq!((s.connections_open, s.connections_total), (3, 3), "{s:?}");

    // A place freed is a place taken: the address may connect again.
    drop(second);
    srv.next_disconnect().await;
    raw_echo(&mut connect_from(home, srv.addr).await, Value::from(4)).await;
}

#[tokio::test]
async fn a_half_sent_message_is_cut_off_after_the_message_timeout() {
    let config = ServerConfig {
        message_timeout: Some(SHORT),
        ..ServerConfig::default()
    };
    let mut srv = start_with(config).await;
    // Opened first, then idle for longer than the timeout.
    let idle = Client::connect_tcp(srv.addr).await.unwrap();
    idle.call("echo", vec![Value::Nil]).await.unwrap();

    // A complete message, then most of a second one, then silence.
    let mut stalled = TcpStream::connect(srv.addr).await.unwrap();
    raw_echo(&mut stalled, Value::from(1)).await;
    let next = request(8, "echo", vec![Value::Binary(vec![0; 100_000])]);
    stalled.write_all(&next[..90_000]).await.unwrap();
    closed_by_server(&mut stalled).await;
    srv.next_disconnect().await;
    let s = srv.server.stats();
    assert_eq!(s.message_timeouts, 1, "{s:?}");
    assert_eq!(s.malformed_closes, 0, "{s:?}");

    // An idle connection has nothing half sent: it never times out.
    let v = Value::from("idle is fine");
    assert_eq!(idle.call("echo", vec![v.clone()]).await.unwrap(), v);
}

fn auth_config() -> ServerConfig {
    ServerConfig {
        auth: Some(AuthLimits {
            timeout: Some(AUTH_TIMEOUT),
            ..AuthLimits::default()
        }),
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn before_auth_a_16_mib_message_is_refused_after_a_few_kib() {
    let mut srv = start_with(auth_config()).await;
    let huge = request(1, "echo", vec![Value::Binary(vec![0; 16 << 20])]);
    let mut peer = TcpStream::connect(srv.addr).await.unwrap();
    // Its header claims 16 MiB: the server closes without waiting for it.
    // (Writes to a peer that may be closing: their result is not the test.)
    let _ = peer.write_all(&huge[..8 << 10]).await;
    closed_by_server(&mut peer).await;
    srv.next_disconnect().await;
    // No large header, only many small strings: refused once past 4 KiB.
    let many = request(2, "echo", vec![Value::from("x".repeat(100)); 1000]);
    let mut peer = TcpStream::connect(srv.addr).await.unwrap();
    let _ = peer.write_all(&many[..8 << 10]).await;
    closed_by_server(&mut peer).await;
    srv.next_disconnect().await;
    let s = srv.server.stats();
    assert_eq!((s.auth_limit_closes, s.limit_closes), (2, 2), "{s:?}");
}

#[tokio::test]
async fn after_auth_large_messages_work_and_no_auth_deadline_remains() {
    let mut srv = start_with(auth_config()).await;
    // `auth` and a 1 MiB call in one write: the limit is lifted in between.
    let mut authed = TcpStream::connect(srv.addr).await.unwrap();
    let mut both = request(1, "auth", vec![Value::from(SECRET)]);
    let big = Value::Binary(vec![9; 1 << 20]);
    both.extend_from_slice(&request(2, "echo", vec![big.clone()]));
    authed.write_all(&both).await.unwrap();
    let ok = Message::response_ok(1, Value::Boolean(true));
    assert_eq!(read_message(&mut authed).await, ok);
    assert_eq!(
        read_message(&mut authed).await,
        Message::response_ok(2, big)
    );

    // A connection that never authenticates leaves after the timeout...
    let mut silent = TcpStream::connect(srv.addr).await.unwrap();
    closed_by_server(&mut silent).await;
    srv.next_disconnect().await;
    let s = srv.server.stats();
    assert_eq!((s.auth_timeouts, s.auth_limit_closes), (1, 0), "{s:?}");
    // ...while the authenticated one, older than that, stays.
    raw_echo(&mut authed, Value::Binary(vec![1; 64 << 10])).await;
}

/// Calls before `auth` are small and answered (the application refuses them),
/// but they do not keep a connection past its auth deadline.
#[tokio::test]
async fn a_peer_that_keeps_calling_without_auth_still_meets_the_auth_timeout() {
    let mut srv = start_with(auth_config()).await;
    let (mut read, mut write) = TcpStream::connect(srv.addr).await.unwrap().into_split();
    let burst: Vec<u8> = (0..100)
        .flat_map(|i| request(i, "echo", vec![Value::Nil]))
        .collect();
    let flood = async move { while write.write_all(&burst).await.is_ok() {} };
    // Replies are read, so the server never pauses for backpressure.
    let drain = async move {
        let mut sink = vec![0u8; 64 << 10];
        while read.read(&mut sink).await.is_ok_and(|n| n > 0) {}
    };
    let ended = timeout(WAIT, async {
        tokio::select! {
            () = flood => {}
            () = drain => {}
        }
    })
    .await;
    assert!(ended.is_ok(), "still open after {WAIT:?}");
    srv.next_disconnect().await;
    assert_eq!(srv.server.stats().auth_timeouts, 1);
}

#[tokio::test]
async fn a_wrong_secret_keeps_the_small_limit() {
    let mut srv = start_with(auth_config()).await;
    let mut peer = TcpStream::connect(srv.addr).await.unwrap();
    peer.write_all(&request(1, "auth", vec![Value::from("guess")]))
        .await
        .unwrap();
    let refused = Message::response_err(1, Value::from("wrong secret"));
    assert_eq!(read_message(&mut peer).await, refused);
    let big = request(2, "echo", vec![Value::Binary(vec![0; 64 << 10])]);
    let _ = peer.write_all(&big).await;
    closed_by_server(&mut peer).await;
    srv.next_disconnect().await;
    assert_eq!(srv.server.stats().auth_limit_closes, 1);
}

/// Settings come from people: a timeout too long for the clock is no timeout, not a panic.
#[tokio::test]
async fn timeouts_too_long_to_add_mean_none() {
    let config = ServerConfig {
        message_timeout: Some(Duration::MAX),
        auth: Some(AuthLimits {
            timeout: Some(Duration::MAX),
            ..AuthLimits::default()
        }),
        ..ServerConfig::default()
    };
    let srv = start_with(config).await;
    let mut peer = TcpStream::connect(srv.addr).await.unwrap();
    let call = request(3, "echo", vec![Value::from("in two parts")]);
    peer.write_all(&call[..5]).await.unwrap();
    peer.write_all(&call[5..]).await.unwrap();
    let reply = Message::response_ok(3, Value::from("in two parts"));
    assert_eq!(read_message(&mut peer).await, reply);
}
