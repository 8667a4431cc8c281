//! [`Server`]: the accept loop, the per-connection HTTP service, the connection registry and
//! graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::service::service_fn;

use crate::intake::Intake;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServerConfig;
use crate::connection::Connection;
use crate::handler::Handler;
use crate::inner::{GOING_AWAY, Inner};
use crate::limits::{IpLimits, IpRefusal, IpSlot};
use crate::stats::Stats;
use crate::tls_stream::TlsStream;
use crate::transport::Transport;

/// After the shutdown deadline, connections are told to drop their socket; this bounds how long
/// `serve` still waits for their tasks (a handler stuck in an `.await` is left behind).
const ABORT_GRACE: Duration = Duration::from_millis(500);

/// A WebSocket server: accepts TCP (or TLS) connections, speaks HTTP/1.1 through hyper and runs
/// one task per upgraded connection that calls the [`Handler`].
///
/// Cheap to clone: clones share the same state, so one can `serve` while another reads
/// [`Server::stats`].
pub struct Server<H> {
    pub(crate) inner: Arc<Inner<H>>,
}

impl<H> Clone for Server<H> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<H: Handler> Server<H> {
    /// A server with this configuration and application.
    pub fn new(config: ServerConfig, handler: H) -> Self {
        let permits = Arc::new(Semaphore::new(config.max_connections));
        let ip_limits = Arc::new(IpLimits::new(
            config.max_connections_per_ip,
            config.connects_per_ip_per_sec,
            config.limit_loopback,
        ));
        Self {
            inner: Arc::new(Inner {
                config,
                handler,
                stats: Arc::new(Stats::default()),
                next_id: AtomicU64::new(1),
                permits,
                registry: Mutex::default(),
                shutting_down: AtomicBool::new(false),
                tracker: TaskTracker::new(),
                stop_http: CancellationToken::new(),
                ip_limits,
            }),
        }
    }

    /// The live counters (shared, readable at any time).
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.inner.stats)
    }

    /// The application.
    pub fn handler(&self) -> &H {
        &self.inner.handler
    }

    /// Handles of every open connection (a copy of the registry).
    pub fn connections(&self) -> Vec<Connection> {
        self.inner.registry().values().cloned().collect()
    }

    /// Accepts connections on `listener` until `shutdown` completes, then shuts down gracefully:
    /// stops accepting, lets HTTP connections finish their request, sends close 1001 to every
    /// WebSocket connection, waits up to [`ServerConfig::shutdown_timeout`] for them to end,
    /// then drops the rest and returns. Call it once per `Server` (shutdown is final).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let mut shutdown = pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => match self.inner.ip_limits.admit(peer.ip(), Instant::now()) {
                        Ok(slot) => {
                            let inner = Arc::clone(&self.inner);
                            self.inner.tracker.spawn(serve_http(inner, tcp, peer, slot));
                        }
                        Err(why) => refuse_ip(&self.inner.stats, &tcp, peer, why),
                    },
                    Err(e) => {
                        // Out of file descriptors or a connection reset before accept: keep the
                        // listener, back off a little so the loop does not spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(Duration::from_millis(20)) => {}
                        }
                    }
                },
            }
        }
        drop(listener);
        self.shutdown().await;
        Ok(())
    }

    async fn shutdown(&self) {
        let inner = &self.inner;
        {
            // Under the registry lock: a connection registering concurrently either is in the
            // map now or sees the flag (see `register`).
            let registry = inner.registry();
            inner.shutting_down.store(true, Ordering::SeqCst);
            for conn in registry.values() {
                conn.close(GOING_AWAY.0, GOING_AWAY.1);
            }
        }
        inner.stop_http.cancel();
        inner.tracker.close();
        let deadline = inner.config.shutdown_timeout;
        if tokio::time::timeout(deadline, inner.tracker.wait())
            .await
            .is_err()
        {
            let left = self.connections();
            tracing::info!(
                connections = left.len(),
                "shutdown deadline passed, dropping"
            );
            for conn in left {
                conn.shared.abort();
            }
            let _ = tokio::time::timeout(ABORT_GRACE, inner.tracker.wait()).await;
        }
    }
}

/// Answers a refused peer `429` if its socket takes it now (never waits), then drops it.
fn refuse_ip(stats: &Stats, tcp: &TcpStream, peer: SocketAddr, why: IpRefusal) {
    let counter = match why {
        IpRefusal::TooMany => &stats.rejected_per_ip,
        IpRefusal::TooFast => &stats.rejected_rate,
    };
    Stats::add(counter, 1);
    tracing::info!(%peer, ?why, "connection refused by the per-IP limits");
    let _ = tcp.try_write(
        b"HTTP/1.1 429 Too Many Requests\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
    );
}

/// One TCP connection: optional TLS handshake, then HTTP/1.1 until it ends or is upgraded.
/// `slot` (its address's share of the per-IP count) lives until the last task of it ends.
async fn serve_http<H: Handler>(
    inner: Arc<Inner<H>>,
    tcp: TcpStream,
    peer: SocketAddr,
    slot: Option<IpSlot>,
) {
    let slot = slot.map(Arc::new);
    // Small frames (pings, short pushes) must not wait for Nagle.
    let _ = tcp.set_nodelay(true);
    let timeout = inner.config.handshake_timeout;
    let stream = match &inner.config.tls {
        None => match crate::intake::intake(&inner, tcp, peer, slot.clone()).await {
            Intake::Http(tcp) => Transport::Plain(tcp),
            Intake::Done => return,
        },
        Some(tls) => {
            let accept = TlsStream::accept(tcp, Arc::clone(&tls.config));
            match tokio::time::timeout(timeout, accept).await {
                Ok(Ok(s)) => Transport::Tls(Box::new(s)),
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    Stats::add(&inner.stats.handshake_timeouts, 1);
                    tracing::info!(%peer, "TLS handshake timed out");
                    return;
                }
            }
        }
    };
    // Browsers that negotiated HTTP/2 (TLS only) get it: more than six event streams to one
    // origin. WebSocket stays on HTTP/1.1 connections (clients ask for those for it).
    let h2 = matches!(&stream, Transport::Tls(s) if s.alpn_protocol() == Some(b"h2"));
    let stop = inner.stop_http.clone();
    // Cut by an event stream on this connection whose client stalled (see `event_stream`).
    let kill = CancellationToken::new();
    let service_inner = Arc::clone(&inner);
    let service_kill = kill.clone();
    let service = service_fn(move |req| {
        let kill = service_kill.clone();
        crate::http::handle(Arc::clone(&service_inner), peer, slot.clone(), kill, req)
    });
    let io = TokioIo::new(stream);
    let result = if h2 {
        let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(inner.config.max_header_bytes).unwrap_or(u32::MAX))
            .serve_connection(io, service);
        drive(conn, |c| c.graceful_shutdown(), &stop, &kill).await
    } else {
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(timeout)
            // hyper panics below 8192.
            .max_buf_size(inner.config.max_header_bytes.max(8192))
            .max_headers(inner.config.max_headers)
            .keep_alive(true)
            .serve_connection(io, service)
            .with_upgrades();
        drive(conn, |c| c.graceful_shutdown(), &stop, &kill).await
    };
    match result {
        Err(e) if e.is_parse_too_large() => {
            Stats::add(&inner.stats.rejected_head, 1);
            tracing::info!(%peer, "request head too large: 431");
        }
        Err(e) if e.is_timeout() => {
            Stats::add(&inner.stats.handshake_timeouts, 1);
            tracing::info!(%peer, "request head not received within the handshake timeout");
        }
        Err(e) => tracing::debug!(%peer, error = %e, "HTTP connection ended with an error"),
        Ok(()) => {}
    }
}

/// Runs one HTTP connection (either protocol) until it ends or is cut by `kill`; once `stop`
/// fires it finishes gracefully (`graceful`), and `kill` still cuts it.
async fn drive<C>(
    conn: C,
    graceful: fn(Pin<&mut C>),
    stop: &CancellationToken,
    kill: &CancellationToken,
) -> hyper::Result<()>
where
    C: Future<Output = hyper::Result<()>>,
{
    let mut conn = pin!(conn);
    tokio::select! {
        r = conn.as_mut() => r,
        () = kill.cancelled() => Ok(()),
        () = stop.cancelled() => {
            graceful(conn.as_mut());
            tokio::select! {
                r = conn => r,
                () = kill.cancelled() => Ok(()),
            }
        }
    }
}
