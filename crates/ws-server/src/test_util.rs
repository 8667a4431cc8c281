//! Connections without a socket or a task, for unit tests of code that fans out to
//! [`Connection`]s (feature `test-util`). Their queue, limit and overflow policy are the
//! real ones; [`drain`] stands in for the task and takes what it would write.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::connection::CloseState;
use crate::connection::Outbound;
use crate::{Connection, Message, OverflowPolicy, Stats};

/// An event-stream connection (takes [`Connection::send_chunk`]), otherwise as [`detached`].
pub fn detached_stream(id: u64, limit: usize, policy: OverflowPolicy) -> Connection {
    let addr = SocketAddr::from(([127, 0, 0, 1], 1));
    let kill = Some(tokio_util::sync::CancellationToken::new());
    Connection::with_kind(id, addr, limit, policy, Arc::new(Stats::default()), kill)
}

/// A connection numbered `id` whose queue holds at most `limit` bytes.
pub fn detached(id: u64, limit: usize, policy: OverflowPolicy) -> Connection {
    let addr = SocketAddr::from(([127, 0, 0, 1], 1));
    Connection::new(id, addr, limit, policy, Arc::new(Stats::default()))
}

/// Takes every message queued to `conn`, in order, and frees their room in the queue.
pub fn drain(conn: &Connection) -> Vec<Message> {
    let mut batch = VecDeque::new();
    let (bytes, _) = conn.shared.take(&mut batch);
    conn.shared.release(bytes);
    let mut head: Option<bytes::Bytes> = None;
    batch
        .into_iter()
        .filter_map(|item| match item {
            Outbound::Message(m) => Some(m),
            Outbound::Prepared(p) => Some(p.message()),
            Outbound::Head(bytes) => {
                head = Some(bytes);
                None
            }
            // An event stream's chunk with the head queued before it: its bytes, as text
            // when they are UTF-8.
            Outbound::Chunk(body) => {
                let bytes = match head.take() {
                    Some(head) => bytes::Bytes::from([&head[..], &body[..]].concat()),
                    None => body,
                };
                Some(match std::str::from_utf8(&bytes) {
                    Ok(_) => Message::Text(bytes),
                    Err(_) => Message::Binary(bytes),
                })
            }
        })
        .collect()
}

/// The close `conn` was asked for (by its handle, or 1008 by its overflow policy), if any.
pub fn close_requested(conn: &Connection) -> Option<(u16, String)> {
    match &conn.shared.lock().close {
        CloseState::Requested { code, reason } => Some((*code, reason.clone())),
        CloseState::Overflowed => Some((crate::SLOW_CONSUMER.0, crate::SLOW_CONSUMER.1.to_owned())),
        _ => None,
    }
}
