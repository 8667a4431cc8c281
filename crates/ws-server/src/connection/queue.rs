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

/// A connection's queued items, the first held in place: a connection that has one frame
/// queued at a time (every paced push, every idle browser of a fan-out) never touches a
/// heap buffer, which for a fan-out to many connections is a cache miss per connection on
/// the sender's side and another on the writer's.
#[derive(Debug, Default)]
pub(crate) struct Items {
    /// `None` only when the queue is empty.
    first: Option<Outbound>,
    rest: VecDeque<Outbound>,
}

impl Items {
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    pub(crate) fn front(&self) -> Option<&Outbound> {
        self.first.as_ref()
    }

    pub(crate) fn push_back(&mut self, item: Outbound) {
        if self.first.is_none() {
            self.first = Some(item);
        } else {
            self.rest.push_back(item);
        }
    }

    pub(crate) fn pop_front(&mut self) -> Option<Outbound> {
        let front = self.first.take();
        if front.is_some() {
            self.first = self.rest.pop_front();
        }
        front
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Outbound> {
        self.first.iter().chain(self.rest.iter())
    }

    /// Moves every item to the back of `into`, in order.
    pub(crate) fn move_into(&mut self, into: &mut VecDeque<Outbound>) {
        if let Some(first) = self.first.take() {
            into.push_back(first);
            into.append(&mut self.rest);
        }
    }

    /// Empties the queue, returning the bytes it held.
    pub(crate) fn clear(&mut self) -> usize {
        let first = self.first.take();
        let freed = first
            .iter()
            .chain(self.rest.iter())
            .map(Outbound::size)
            .sum();
        self.rest.clear();
        freed
    }
}

/// In `repr(C)` and in this order: a fan-out locks the queue of every recipient in turn,
/// twice (to queue, then to write), and each connection's state is a cache (and TLB) miss
/// of its own. What both passes read comes first, in the lines right after the lock, so
/// a connection costs four or five cache lines instead of six or seven (see
/// [`Shared`](super::Shared)).
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct Queue {
    /// The task has frames to write (it may have sent part of one): senders must queue, so
    /// their frames go out after the task's.
    pub(crate) writer_busy: bool,
    /// A direct writer holds this connection in a batch and will write what is queued;
    /// the task was not woken for it. Cleared when the writer or the task takes over.
    pub(crate) direct_pending: bool,
    /// Bytes of `items` plus the batch the task took and has not finished writing.
    pub(crate) bytes: usize,
    /// Bytes of a backlog queued beyond the limit (`Connection::send_backlog`) and not yet
    /// written: the limit applies to what comes after it.
    pub(crate) allowance: usize,
    /// The socket, for senders' direct writes (plain TCP only, set once upgraded).
    pub(crate) direct: Option<Direct>,
    /// Open, closing (and how far), or closed.
    pub(crate) close: CloseState,
    /// The unwritten rest of a frame a sender wrote in part; the task sends it first.
    /// Its bytes are counted in `bytes`.
    pub(crate) partial: Option<Bytes>,
    pub(crate) items: Items,
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
    use super::{Items, Outbound};
    use bytes::Bytes;

    fn chunk(n: u8) -> Outbound {
        Outbound::Chunk(Bytes::from(vec![n; usize::from(n)]))
    }

    fn sizes(items: &Items) -> Vec<usize> {
        items.iter().map(Outbound::size).collect()
    }

    #[test]
    fn items_keep_their_order_through_the_inline_first() {
        let mut items = Items::default();
        assert!(items.is_empty() && items.front().is_none());
        for n in 1..=3 {
            items.push_back(chunk(n));
        }
        assert_eq!(sizes(&items), [1, 2, 3]);
        assert_eq!(items.pop_front().map(|i| i.size()), Some(1));
        items.push_back(chunk(4));
        assert_eq!(sizes(&items), [2, 3, 4]);
        assert_eq!(items.front().map(Outbound::size), Some(2));
        let mut into = std::collections::VecDeque::from([chunk(9)]);
        items.move_into(&mut into);
        assert!(items.is_empty());
        assert_eq!(
            into.iter().map(Outbound::size).collect::<Vec<_>>(),
            [9, 2, 3, 4]
        );
        items.push_back(chunk(5));
        items.push_back(chunk(6));
        assert_eq!(items.clear(), 11);
        assert!(items.is_empty() && items.pop_front().is_none());
    }

    /// Every queued item of every connection is one of these: keep it at a message's size.
    #[test]
    fn an_item_is_no_bigger_than_a_message() {
        assert_eq!(
            std::mem::size_of::<super::Outbound>(),
            std::mem::size_of::<ws_proto::Message>()
        );
    }

    /// The order `Queue` and `Shared` are declared in for a fan-out's sake: the lock, the
    /// queue and the counters first, within the four cache lines an `Arc<Shared>` starts
    /// with (its two counts take 16 bytes), and the queue's items last.
    #[test]
    fn what_a_fan_out_reads_comes_first() {
        use super::super::Shared;
        use super::Queue;
        use std::mem::{offset_of, size_of};
        use std::sync::Mutex;
        assert_eq!(offset_of!(Shared, queue), 0);
        assert_eq!(offset_of!(Shared, stats), size_of::<Mutex<Queue>>());
        assert_eq!(
            offset_of!(Queue, items) + size_of::<Items>(),
            size_of::<Queue>()
        );
        let hot = 16 + offset_of!(Shared, stats) + size_of::<usize>();
        assert!(hot <= 4 * 64, "{hot} bytes");
    }
}
