//! The one socket type the server speaks HTTP and WebSocket over: plain TCP or TLS over TCP.
//!
//! Hyper gets this type wrapped in `TokioIo`, so after an upgrade
//! `Upgraded::downcast::<TokioIo<Transport>>()` always succeeds and the connection task owns the
//! socket directly (vectored writes, no boxed trait object in between).
//!
//! After the upgrade a plain socket becomes [`Transport::Shared`]: the connection task still
//! reads and writes it, and senders may write a whole frame to it directly when the task has
//! nothing to write (see `Connection::send_prepared_now`). The task goes through tokio's
//! `&self` readiness API; a direct writer writes the socket without it (one cache miss less
//! per browser of a fan-out) and only while the task is not writing. A full socket it meets
//! goes back to the task, which meets it again on its own `try_write` and waits for
//! writability then, so readiness stays coherent whoever writes.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::tls_stream::TlsStream;

/// A connection, server or client side: plain TCP or TLS.
#[derive(Debug)]
pub(crate) enum Transport {
    Plain(TcpStream),
    /// The server side of TLS, on rustls's unbuffered API (an idle one holds no buffers).
    /// Boxed: a rustls session is about a kilobyte, plain connections should not pay for it.
    Tls(Box<TlsStream<TcpStream>>),
    /// The client side of TLS (tests and tools), through tokio-rustls.
    TlsClient(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// A plain socket shared with the connection's senders.
    Shared(Arc<TcpStream>),
}

/// Retries `op` until the socket is ready for it (`try_*` clears readiness on `WouldBlock`).
fn poll_shared<T>(
    cx: &mut Context<'_>,
    mut ready: impl FnMut(&mut Context<'_>) -> Poll<io::Result<()>>,
    mut op: impl FnMut() -> io::Result<T>,
) -> Poll<io::Result<T>> {
    loop {
        ready!(ready(cx))?;
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            done => return Poll::Ready(done),
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::TlsClient(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::Shared(s) => {
                // The buffer is zeroed only once the socket is readable: waiting costs nothing.
                let n = ready!(poll_shared(
                    cx,
                    |cx| s.poll_read_ready(cx),
                    || s.try_read(buf.initialize_unfilled())
                ))?;
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::TlsClient(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::Shared(s) => {
                poll_shared(cx, |cx| s.poll_write_ready(cx), || s.try_write(buf))
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Transport::TlsClient(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Transport::Shared(s) => poll_shared(
                cx,
                |cx| s.poll_write_ready(cx),
                || s.try_write_vectored(bufs),
            ),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(s) => s.is_write_vectored(),
            Transport::Tls(s) => s.is_write_vectored(),
            Transport::TlsClient(s) => s.is_write_vectored(),
            Transport::Shared(_) => true,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::TlsClient(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::Shared(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::TlsClient(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            // The task detaches the senders' handle before it shuts down; were one still
            // alive, dropping the socket would close it instead.
            Transport::Shared(s) => match Arc::get_mut(s) {
                Some(s) => Pin::new(s).poll_shutdown(cx),
                None => Poll::Ready(Ok(())),
            },
        }
    }
}
