//! Socket I/O of a connection task: vectored writes of the queued chunks (partial writes
//! handled), and reads into a stack buffer so an idle connection holds no read buffer.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::stats::Stats;
use crate::task::Driver;

/// Chunks per `writev` call (Linux accepts 1024; 256 keeps the slice array at 4 KiB of stack).
const MAX_IOV: usize = 256;
/// Bytes per read. On the stack of the poll call, never in the task: idle connections keep no
/// buffer, and ws-proto copies what it needs.
const READ_CHUNK: usize = 16 * 1024;

/// Writes what is queued, then reads once. `Ready` when something happened (progress, end of
/// stream or error, recorded in the driver); `Pending` with wake-ups registered otherwise.
pub(crate) fn poll_io(d: &mut Driver<'_>, cx: &mut Context<'_>) -> Poll<()> {
    match poll_write(d, cx) {
        Poll::Ready(Ok(true)) => return Poll::Ready(()),
        Poll::Ready(Ok(false)) | Poll::Pending => {}
        Poll::Ready(Err(e)) => {
            tracing::debug!(error = %e, "write failed");
            d.lost = Some("write failed");
            return Poll::Ready(());
        }
    }
    if !d.read_allowed() {
        return Poll::Pending;
    }
    let mut buf = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
    let mut read_buf = ReadBuf::uninit(&mut buf);
    match Pin::new(&mut d.io).poll_read(cx, &mut read_buf) {
        Poll::Ready(Ok(())) => {
            let data = read_buf.filled();
            if data.is_empty() {
                d.lost = Some("connection lost");
            } else {
                d.input(data);
            }
            Poll::Ready(())
        }
        Poll::Ready(Err(e)) => {
            tracing::debug!(error = %e, "read failed");
            d.lost = Some("read failed");
            Poll::Ready(())
        }
        Poll::Pending => Poll::Pending,
    }
}

/// `Ready(Ok(true))`: some bytes went out; `Ready(Ok(false))`: nothing to write.
fn poll_write(d: &mut Driver<'_>, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
    let mut progress = false;
    if !d.out.is_empty() {
        d.begin_write();
    }
    while !d.out.is_empty() {
        let mut slices = [IoSlice::new(&[]); MAX_IOV];
        let mut n = 0;
        for (slot, chunk) in slices.iter_mut().zip(d.out.iter()) {
            *slot = IoSlice::new(chunk);
            n += 1;
        }
        let written = match Pin::new(&mut d.io).poll_write_vectored(cx, &slices[..n]) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(w)) => w,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending if progress => return Poll::Ready(Ok(true)),
            Poll::Pending => return Poll::Pending,
        };
        progress = true;
        d.needs_flush = true;
        d.out_bytes -= written;
        Stats::add(&d.stats.bytes_sent, written as u64);
        Stats::add(&d.stats.write_calls, 1);
        d.front_started = advance(&mut d.out, written);
    }
    if d.needs_flush {
        // TLS buffers records; plain TCP flushes for free.
        match Pin::new(&mut d.io).poll_flush(cx) {
            Poll::Ready(Ok(())) => d.needs_flush = false,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending if progress => return Poll::Ready(Ok(true)),
            Poll::Pending => return Poll::Pending,
        }
    }
    d.end_write();
    Poll::Ready(Ok(progress))
}

/// Drops `n` written bytes from the front of the chunk queue (a partial chunk is sliced).
/// Returns whether the front chunk is now partly written.
fn advance(out: &mut std::collections::VecDeque<bytes::Bytes>, mut n: usize) -> bool {
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
    use bytes::Bytes;
    use std::collections::VecDeque;

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
}
