//! [`WriteBuf`]: the encoded chunks a connection task has yet to write, and the one
//! vectored write that sends them (partial writes handled), as hyper's `Buffered` owns its
//! write buffer. It knows nothing of the queue or of direct writers: the driver tells
//! senders when it starts and stops writing.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::AsyncWrite;

use crate::stats::Stats;
use crate::transport::Transport;

/// Chunks per `writev` call (Linux accepts 1024; 256 keeps the slice array at 4 KiB of stack).
const MAX_IOV: usize = 256;

/// Encoded chunks waiting for the socket, in order.
#[derive(Debug, Default)]
pub(crate) struct WriteBuf {
    chunks: VecDeque<Bytes>,
    /// Bytes of `chunks`.
    bytes: usize,
    /// The front chunk is partly on the wire: it must be finished before anything else.
    front_started: bool,
    /// Bytes were written since the last flush (TLS buffers records).
    needs_flush: bool,
}

impl WriteBuf {
    pub(crate) fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Bytes waiting for the socket.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Everything is written and flushed.
    pub(crate) fn is_done(&self) -> bool {
        self.chunks.is_empty() && !self.needs_flush
    }

    /// Moves what the protocol core encoded to the back; `true` if anything came.
    pub(crate) fn transmit(&mut self, proto: &mut ws_proto::Connection) -> bool {
        let before = self.chunks.len();
        proto.poll_transmit(&mut self.chunks);
        if self.chunks.len() == before {
            return false;
        }
        self.bytes += self
            .chunks
            .iter()
            .skip(before)
            .map(Bytes::len)
            .sum::<usize>();
        true
    }

    /// The rest of a frame a sender wrote in part: nothing here is written yet (senders write
    /// only while the task does not), and the rest must be next on the wire.
    pub(crate) fn push_started_front(&mut self, rest: Bytes) {
        self.bytes += rest.len();
        self.chunks.push_front(rest);
        self.front_started = true;
    }

    /// Drops every chunk not yet begun (a chunk partly on the wire is kept, to be finished).
    pub(crate) fn discard_unsent(&mut self) {
        let keep = usize::from(self.front_started).min(self.chunks.len());
        let dropped: usize = self.chunks.drain(keep..).map(|c| c.len()).sum();
        self.bytes -= dropped;
    }

    /// Gives back what a burst grew; an idle connection holds no spare capacity.
    pub(crate) fn shrink_if_empty(&mut self) {
        if self.chunks.is_empty() && self.chunks.capacity() > 16 {
            self.chunks = VecDeque::new();
        }
    }

    /// Writes what is buffered, then flushes. `Ready(Ok(true))`: some bytes went out;
    /// `Ready(Ok(false))`: nothing to write; `Pending` with a wake-up registered otherwise.
    pub(crate) fn poll_write(
        &mut self,
        io: &mut Transport,
        stats: &Stats,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<bool>> {
        let mut progress = false;
        while !self.chunks.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let mut n = 0;
            for (slot, chunk) in slices.iter_mut().zip(self.chunks.iter()) {
                *slot = IoSlice::new(chunk);
                n += 1;
            }
            let written = match Pin::new(&mut *io).poll_write_vectored(cx, &slices[..n]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(w)) => w,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending if progress => return Poll::Ready(Ok(true)),
                Poll::Pending => return Poll::Pending,
            };
            progress = true;
            self.needs_flush = true;
            self.bytes -= written;
            Stats::add(&stats.bytes_sent, written as u64);
            Stats::add(&stats.write_calls, 1);
            self.front_started = advance(&mut self.chunks, written);
        }
        if self.needs_flush {
            // TLS buffers records; plain TCP flushes for free.
            match Pin::new(&mut *io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.needs_flush = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending if progress => return Poll::Ready(Ok(true)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(progress))
    }

    #[cfg(test)]
    pub(crate) fn chunks(&self) -> &VecDeque<Bytes> {
        &self.chunks
    }

    /// A chunk at the back (as `transmit` adds the protocol core's).
    pub(crate) fn push(&mut self, chunk: Bytes) {
        self.bytes += chunk.len();
        self.chunks.push_back(chunk);
    }

    /// Test set-up: the front chunk is partly written.
    #[cfg(test)]
    pub(crate) fn mark_front_started(&mut self) {
        self.front_started = true;
    }
}

/// Drops `n` written bytes from the front of the chunk queue (a partial chunk is sliced).
/// Returns whether the front chunk is now partly written.
fn advance(out: &mut VecDeque<Bytes>, mut n: usize) -> bool {
    while n > 0 {
        let Some(front) = out.front_mut() else {
            return false;
        };
        if front.len() <= n {
            n -= front.len();
            out.pop_front();
        } else {
            front.advance(n);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_handles_partial_chunks() {
        let mut out: VecDeque<Bytes> = ["abc", "de", "fgh"].into_iter().map(Bytes::from).collect();
        advance(&mut out, 4);
        assert_eq!(out, ["e", "fgh"].map(Bytes::from));
        advance(&mut out, 1);
        assert_eq!(out, ["fgh"].map(Bytes::from));
        advance(&mut out, 3);
        assert!(out.is_empty());
    }

    #[test]
    fn discarding_keeps_a_chunk_partly_on_the_wire() {
        let mut buf = WriteBuf::default();
        buf.push(Bytes::from_static(b"rest"));
        buf.push(Bytes::from_static(b"whole"));
        buf.mark_front_started();
        buf.discard_unsent();
        assert_eq!(buf.chunks(), &[Bytes::from_static(b"rest")]);
        assert_eq!(buf.bytes(), 4);
        let mut fresh = WriteBuf::default();
        fresh.push(Bytes::from_static(b"whole"));
        fresh.discard_unsent();
        assert!(fresh.is_empty());
        assert_eq!(fresh.bytes(), 0);
    }
}
