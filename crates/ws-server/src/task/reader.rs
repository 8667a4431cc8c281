//! The connection task's reads. The buffer is on the stack of the poll call that reads,
//! never in the task, so an idle connection holds no read buffer (ws-proto copies what it
//! needs); the caller makes it `READ_CHUNK` bytes and hands the filled part to the core.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use crate::transport::Transport;

/// Bytes per read.
pub(crate) const READ_CHUNK: usize = 16 * 1024;

/// Reads once into `buf`. `Ready(Ok(()))`: `buf.filled()` holds new bytes; `Ready(Err(why))`:
/// the socket ended or failed; `Pending` with a wake-up registered otherwise.
pub(crate) fn poll_read(
    io: &mut Transport,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<Result<(), &'static str>> {
    match Pin::new(io).poll_read(cx, buf) {
        Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(Err("connection lost")),
        Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
        Poll::Ready(Err(e)) => {
            tracing::debug!(error = %e, "read failed");
            Poll::Ready(Err("read failed"))
        }
        Poll::Pending => Poll::Pending,
    }
}
