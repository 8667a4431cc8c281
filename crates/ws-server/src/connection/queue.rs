//! What one connection's senders and its task share under the queue lock: the outbound
//! messages, their byte count, the close state and who may write the socket.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::TcpStream;
use ws_proto::{FrameChoice, Message, PreparedMessage};

use super::close::CloseState;

/// One message waiting to be handed to the protocol core.
#[derive(Debug)]
pub(crate) enum Outbound {
    Message(Message),
    Prepared(Arc<PreparedMessage>),
    /// Bytes for an event stream, written as they are (often shared by many connections).
    /// Only event streams take these.
    Chunk(Bytes),
    /// An event stream's bytes of its own that go with the chunk queued right after (its
    /// `id:` line): queued and refused together with it, so a `Chunk`'s 32 bytes are not
    /// paid by every item of every queue.
    Head(Bytes),
}

impl Outbound {
    pub(crate) fn size(&self) -> usize {
        match self {
            Outbound::Message(Message::Text(b) | Message::Binary(b)) => b.len(),
            Outbound::Prepared(p) => p.plain_frame().len(),
            Outbound::Chunk(b) | Outbound::Head(b) => b.len(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub(crate) items: VecDeque<Outbound>,
    /// Bytes of `items` plus the batch the task took and has not finished writing.
    pub(crate) bytes: usize,
    /// Bytes of a backlog queued beyond the limit (`Connection::send_backlog`) and not yet
    /// written: the limit applies to what comes after it.
    pub(crate) allowance: usize,
    /// Open, closing (and how far), or closed.
    pub(crate) close: CloseState,
    /// The socket, for senders' direct writes (plain TCP only, set once upgraded).
    pub(crate) direct: Option<Direct>,
    /// The task has frames to write (it may have sent part of one): senders must queue, so
    /// their frames go out after the task's.
    pub(crate) writer_busy: bool,
    /// The unwritten rest of a frame a sender wrote in part; the task sends it first.
    /// Its bytes are counted in `bytes`.
    pub(crate) partial: Option<Bytes>,
    /// A direct writer holds this connection in a batch and will write what is queued;
    /// the task was not woken for it. Cleared when the writer or the task takes over.
    pub(crate) direct_pending: bool,
}

/// A plain socket senders may write to directly, and how this connection frames a
/// prepared message (compressed or not); `None`: an event stream, whose chunks are written
/// as they are (a prepared message is left to its task).
#[derive(Debug)]
pub(crate) struct Direct {
    pub(crate) socket: Arc<TcpStream>,
    pub(crate) choice: Option<FrameChoice>,
}

impl Direct {
    /// Whether a direct writer may write `item` (else the connection's task does).
    pub(crate) fn writes(&self, item: &Outbound) -> bool {
        self.bytes(item).is_some()
    }

    /// The bytes `item` puts on this socket; `None` for what only the task can write (a
    /// message to encode; a prepared message on an event stream).
    pub(crate) fn bytes<'a>(&self, item: &'a Outbound) -> Option<&'a Bytes> {
        match (item, &self.choice) {
            (Outbound::Prepared(msg), Some(choice)) => Some(choice.frame(msg)),
            (Outbound::Chunk(b) | Outbound::Head(b), None) => Some(b),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every queued item of every connection is one of these: keep it at a message's size.
    #[test]
    fn an_item_is_no_bigger_than_a_message() {
        assert_eq!(
            std::mem::size_of::<super::Outbound>(),
            std::mem::size_of::<ws_proto::Message>()
        );
    }
}
