//! The driver's ordering rules around direct writes and the overflow close.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::config::OverflowPolicy;
use ws_proto::Role;
use ws_proto::{Message, PreparedMessage};

/// A connected pair on loopback: (client side, server side, the client's address).
async fn socket_pair() -> (
    tokio::net::TcpStream,
    tokio::net::TcpStream,
    std::net::SocketAddr,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, peer) = listener.accept().await.unwrap();
    (client, server, peer)
}

/// A frame the task produced (a pong) but has not started writing, then a sender's
/// direct write taken only in part: the rest of that frame must go out first.
#[tokio::test]
async fn the_rest_of_a_direct_write_goes_before_unwritten_task_frames() {
    let (_client, tcp, peer) = socket_pair().await;
    let cfg = ServerConfig::default();
    let stats = Arc::new(Stats::default());
    let conn = Connection::new(1, peer, 64 << 20, OverflowPolicy::Close, stats.clone());
    let tcp = Arc::new(tcp);
    let proto = ws_proto::Connection::new(Role::Server, cfg.proto.clone(), None);
    conn.shared
        .attach_direct(Arc::clone(&tcp), Some(proto.frame_choice()));
    let mut d = Driver::new(Transport::Shared(tcp), proto, conn.clone(), &cfg, &stats);
    let task_frame = Bytes::from_static(b"\x8a\x00");
    d.out.push(task_frame.clone());

    let big = Arc::new(PreparedMessage::new(Message::binary(vec![1u8; 16 << 20])));
    conn.send_prepared_now(&big).unwrap();
    let rest = conn.queued_bytes();
    assert!(rest > 0, "16 MiB must not fit the socket buffers");
    d.pull();
    assert_eq!(d.out.chunks().len(), 2);
    assert_eq!(
        d.out.chunks()[0],
        big.plain_frame().slice(big.plain_frame().len() - rest..)
    );
    assert_eq!(d.out.chunks()[1], task_frame);

    // While the task writes, senders queue instead of writing.
    d.begin_write();
    let small = Arc::new(PreparedMessage::new(Message::text("queued")));
    conn.send_prepared_now(&small).unwrap();
    assert_eq!(conn.queued_bytes(), rest + small.plain_frame().len());
}

/// Issue 12.10: when the overflow policy closes a slow reader, what waits is dropped and
/// the close frame goes next (after the rest of a frame already partly on the wire), so
/// the reader sees 1008 instead of a timeout.
#[tokio::test]
async fn the_overflow_close_goes_before_unsent_data() {
    let (_client, tcp, peer) = socket_pair().await;
    let cfg = ServerConfig::default();
    let stats = Arc::new(Stats::default());
    let conn = Connection::new(1, peer, 1000, OverflowPolicy::Close, stats.clone());
    let proto = ws_proto::Connection::new(Role::Server, cfg.proto.clone(), None);
    let mut d = Driver::new(Transport::Plain(tcp), proto, conn.clone(), &cfg, &stats);
    // A frame partly written, then whole frames not begun.
    d.out.push(Bytes::from_static(b"rest of a frame"));
    d.out.push(Bytes::from_static(b"\x82\x03abc"));
    d.out.mark_front_started();
    conn.send_binary(vec![0u8; 600]).unwrap();
    d.pull();
    assert_eq!(d.pending.len(), 1);
    assert_eq!(
        conn.send_binary(vec![0u8; 600]),
        Err(crate::SendError::Full)
    );

    assert_eq!(d.take_woken(), None);
    d.encode_pending();
    assert!(d.pending.is_empty());
    assert_eq!(d.out.chunks()[0], Bytes::from_static(b"rest of a frame"));
    let rest: Vec<u8> = d
        .out
        .chunks()
        .iter()
        .skip(1)
        .flat_map(|c| c.to_vec())
        .collect();
    assert_eq!(
        &rest[..4],
        b"\x88\x0f\x03\xf0",
        "the close frame (1008) comes next"
    );
    assert_eq!(&rest[4..], b"slow consumer");
    assert_eq!(
        d.out.bytes(),
        d.out.chunks().iter().map(Bytes::len).sum::<usize>()
    );
}
