//! The API listener: hyper HTTP/1.1 with keep-alive, one task per connection.
//!
//! Limits, each counted (see [`super::ApiCounters`]):
//! - request head: `max_header_bytes` (hyper answers 431);
//! - body: `api_max_body_bytes` (413, before reading when `Content-Length` says so);
//! - requests in flight per connection: one. hyper's HTTP/1.1 server reads the next
//!   request of a connection only after it answered the last, so pipelined requests
//!   wait in the socket (and pushes keep their order); more parallelism is more
//!   connections;
//! - header timeout: a request head must be complete within `api_header_timeout` of its
//!   first byte;
//! - idle timeout: a keep-alive connection with no request for `api_idle_timeout` is
//!   closed.
//!
//! Both timers are ours (a watchdog per connection over [`Activity`]), not hyper's
//! `header_read_timeout`: hyper's also runs while a keep-alive connection waits for its
//! next request, which would make every idle connection a head timeout.

use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{ApiCounters, Door};

/// The API listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body.
    pub max_body: usize,
    /// Largest request head (hyper's floor is 8192).
    pub max_head: usize,
    /// Time for a request head to arrive complete.
    pub header_timeout: Duration,
    /// Time a connection may sit without a request (`None`: for ever).
    pub idle_timeout: Option<Duration>,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

/// Serves `listener` until `shutdown`, then lets requests in flight finish (at most
/// `shutdown_grace`).
pub async fn serve(
    listener: TcpListener,
    door: Arc<Door>,
    limits: Limits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let (door, stop) = (Arc::clone(&door), shutdown.clone());
                tracker.spawn(async move {
                    connection(stream, peer, door, limits, stop).await;
                });
            }
            Err(e) => {
                // Out of descriptors or a connection reset before accept: wait a moment
                // rather than spin; the listener itself is fine.
                tracing::warn!(error = %e, "API accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    tracker.close();
    let _ = tokio::time::timeout(limits.shutdown_grace, tracker.wait()).await;
    Ok(())
}

/// No request head is being read.
const NO_HEAD: u64 = u64::MAX;

/// What the watchdog reads: when the connection last read bytes, when the head being read
/// began, and whether a request is being answered. Milliseconds since `born`.
struct Activity {
    born: Instant,
    last_read_ms: AtomicU64,
    head_since_ms: AtomicU64,
    busy: AtomicBool,
}

impl Activity {
    fn now_ms(&self) -> u64 {
        self.born.elapsed().as_millis() as u64
    }

    /// Bytes arrived: between requests they start a head.
    fn read(&self) {
        let now = self.now_ms();
        self.last_read_ms.store(now, Ordering::Relaxed);
        if !self.busy.load(Ordering::Relaxed) {
            let _ = self.head_since_ms.compare_exchange(
                NO_HEAD,
                now,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// hyper has the whole head: the request is being answered.
    fn answering(&self) {
        self.busy.store(true, Ordering::Relaxed);
        self.head_since_ms.store(NO_HEAD, Ordering::Relaxed);
    }

    fn answered(&self) {
        self.last_read_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = self.last_read_ms.load(Ordering::Relaxed);
        Duration::from_millis(self.now_ms().saturating_sub(last))
    }

    fn head_for(&self) -> Option<Duration> {
        let since = self.head_since_ms.load(Ordering::Relaxed);
        (since != NO_HEAD).then(|| Duration::from_millis(self.now_ms().saturating_sub(since)))
    }
}

/// Why the watchdog closes a connection.
fn overdue(activity: &Activity, limits: &Limits) -> Option<Overdue> {
    if activity.busy.load(Ordering::Relaxed) {
        return None;
    }
    if activity
        .head_for()
        .is_some_and(|t| t >= limits.header_timeout)
    {
        return Some(Overdue::Head);
    }
    let idle = limits
        .idle_timeout
        .is_some_and(|t| activity.idle_for() >= t);
    (idle && activity.head_for().is_none()).then_some(Overdue::Idle)
}

enum Overdue {
    Head,
    Idle,
}

/// Marks the connection busy while a request is answered (also if the answer is dropped).
struct Busy<'a>(&'a AtomicBool);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

async fn connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    door: Arc<Door>,
    limits: Limits,
    stop: CancellationToken,
) {
    let counters = &door.shared.api;
    ApiCounters::add(&counters.connections, 1);
    let activity = Arc::new(Activity {
        born: Instant::now(),
        last_read_ms: AtomicU64::new(0),
        head_since_ms: AtomicU64::new(NO_HEAD),
        busy: AtomicBool::new(false),
    });
    let io = Watched {
        inner: stream,
        activity: Arc::clone(&activity),
    };
    let (svc_door, svc_activity) = (Arc::clone(&door), Arc::clone(&activity));
    let service = service_fn(move |req| {
        let (door, activity) = (Arc::clone(&svc_door), Arc::clone(&svc_activity));
        async move {
            activity.answering();
            let _busy = Busy(&activity.busy);
            let answer = super::route::respond(&door, req, limits.max_body).await;
            activity.answered();
            Ok::<_, std::convert::Infallible>(answer)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        // Our watchdog times heads (see the module docs).
        .header_read_timeout(None)
        // hyper panics below 8192.
        .max_buf_size(limits.max_head.max(8192))
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    let mut conn = pin!(conn);
    // Checked a few times per period: a connection lingers at most a quarter of the
    // shorter period past its deadline.
    let shortest = limits
        .idle_timeout
        .map_or(limits.header_timeout, |i| i.min(limits.header_timeout));
    let mut tick = tokio::time::interval((shortest / 4).max(Duration::from_millis(50)));
    let mut closing = false;
    let result = loop {
        tokio::select! {
            r = conn.as_mut() => break r,
            () = stop.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tick.tick(), if !closing => {
                let Some(why) = overdue(&activity, &limits) else { continue };
                closing = true;
                let (counter, what) = match why {
                    Overdue::Head => (&counters.header_timeouts, "request head not received in time"),
                    Overdue::Idle => (&counters.idle_timeouts, "idle"),
                };
                ApiCounters::add(counter, 1);
                tracing::debug!(%peer, "API connection closed: {what}");
                // An idle connection ends at once; a half-read head is dropped with it.
                conn.as_mut().graceful_shutdown();
                if matches!(why, Overdue::Head) {
                    break Ok(());
                }
            }
        }
    };
    match result {
        Err(e) if e.is_parse_too_large() => {
            counters.answered(http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
            tracing::info!(%peer, "API request head too large: 431");
        }
        Err(e) => tracing::debug!(%peer, error = %e, "API connection ended with an error"),
        Ok(()) => {}
    }
    counters.connections.fetch_sub(1, Ordering::Relaxed);
}

/// The socket, noting when it last read bytes (for the idle timeout).
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.read();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
