//! The tokio server: a method registry, accept loops for TCP and Unix
//! sockets, and graceful shutdown. Each connection runs on its own task
//! (see `connection`).

use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rmpv::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::admission::{Admission, Refusal, Slot};
use crate::codec::Limits;
use crate::connection::{ConnError, Connection};
use crate::context::{Context, Notifier};
use crate::error::RpcError;
use crate::methods::{Arity, Registry};
use crate::stats::{Counters, ServerStats, StatsHandle};

/// The address the product listens on by default (the library takes any
/// listener).
pub const DEFAULT_TCP_ADDR: &str = "127.0.0.1:18800";

/// Server settings. Every bound has a documented default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// Decoder limits per message (default: [`Limits::default`], 16 MiB).
    pub limits: Limits,
    /// Requests one connection may have running at once (default 1024).
    /// At the cap the server stops reading that connection, so a flooding
    /// client gets TCP backpressure instead of growing server memory.
    pub max_in_flight: usize,
    /// Unsent output (replies and notifications) above which the server
    /// stops reading new requests from that connection (default 4 MiB), for
    /// clients that send but do not read.
    pub write_high_water: usize,
    /// Notifications queued per connection before [`Notifier`] sends fail
    /// with `Full` (default 1024).
    pub notification_queue: usize,
    /// Connections open at once over all listeners of this server (default
    /// 1024; 0: no limit). A connection beyond it is accepted and closed at
    /// once, logged and counted (`refused_full`): each connection may hold a
    /// read buffer of up to `limits.max_message_size`, so their number is
    /// what bounds that memory.
    pub max_connections: usize,
    /// Connections one IP address may hold open (default 256; 0: no limit),
    /// refused like `max_connections` beyond it (`refused_per_ip`). Loopback
    /// counts like any address: RPC listens on loopback by default, so an
    /// exemption would exempt every peer, and no proxy stands between RPC
    /// clients and the server. 256 leaves a host with a large worker pool
    /// (one connection per worker) room, and a hostile host a quarter of the
    /// default total.
    pub max_connections_per_ip: usize,
    /// Longest a message may take from its first byte to its last (default
    /// 30 s; None: no limit). A connection whose message is still
    /// incomplete then is closed, logged and counted (`message_timeouts`):
    /// otherwise a peer that sends most of a large message and stops holds
    /// that buffer forever. Idle connections (nothing half sent) never time
    /// out; listeners wait for hours. Time the server spends not reading
    /// (backpressure) does not count.
    pub message_timeout: Option<Duration>,
    /// Some: every connection starts unauthenticated, under these tighter
    /// limits, until a method calls [`Context::set_authenticated`] (default
    /// None: no authentication, the usual limits from the start).
    pub auth: Option<AuthLimits>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: Limits::default(),
            max_in_flight: 1024,
            write_high_water: 4 << 20,
            notification_queue: 1024,
            max_connections: 1024,
            max_connections_per_ip: 256,
            message_timeout: Some(Duration::from_secs(30)),
            auth: None,
        }
    }
}

impl ServerConfig {
    /// The decoder limits for a connection not yet authenticated.
    pub(crate) fn pre_auth_limits(&self) -> Limits {
        match self.auth {
            Some(auth) => Limits {
                max_message_size: auth.max_message_size.min(self.limits.max_message_size),
                ..self.limits
            },
            None => self.limits,
        }
    }
}

/// Limits for connections that have not authenticated yet (see
/// [`ServerConfig::auth`]), so that a peer without the credentials can
/// neither stay nor make the server buffer much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthLimits {
    /// Time a connection has to authenticate (default 10 s; None: no
    /// limit); then it is closed, logged and counted (`auth_timeouts`).
    /// Ample for a program that sends `auth` first; a peer that never does
    /// leaves.
    pub timeout: Option<Duration>,
    /// Largest message before authentication, in encoded bytes (default 4
    /// KiB: `auth(secret)` with a secret of up to 4 000 bytes). Checked from
    /// the headers like every decoder limit, so such a peer is refused after
    /// at most one read (64 KiB), whatever its message claims; counted as
    /// `auth_limit_closes` (and in `limit_closes`). Lifted for the rest of
    /// the connection by [`Context::set_authenticated`].
    pub max_message_size: usize,
}

impl Default for AuthLimits {
    fn default() -> Self {
        AuthLimits {
            timeout: Some(Duration::from_secs(10)),
            max_message_size: 4 << 10,
        }
    }
}

type DisconnectFn = Box<dyn Fn(u64) + Send + Sync>;

pub(crate) struct Inner {
    pub(crate) registry: Registry,
    pub(crate) config: ServerConfig,
    on_disconnect: Option<DisconnectFn>,
    next_id: AtomicU64,
    pub(crate) counters: Arc<Counters>,
    admission: Arc<Admission>,
}

/// Registers methods and settings; [`ServerBuilder::build`] makes the
/// [`Server`].
#[must_use]
pub struct ServerBuilder {
    registry: Registry,
    config: ServerConfig,
    on_disconnect: Option<DisconnectFn>,
}

impl ServerBuilder {
    /// Registers an async method. Calls on one connection run concurrently
    /// (interleaved on that connection's task: `tokio::spawn` inside the
    /// handler for CPU-heavy work) and are answered as they finish. `arity`
    /// is `n`, `a..=b` or `a..`.
    pub fn method<F, Fut>(mut self, name: &str, arity: impl Into<Arity>, handler: F) -> Self
    where
        F: Fn(Context, Vec<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, RpcError>> + Send + 'static,
    {
        self.registry
            .add_async(name.as_bytes(), arity.into(), handler);
        self
    }

    /// Registers a method that runs inline on the connection task, in
    /// arrival order, before the next message is read. For quick handlers
    /// whose effects must keep the caller's order (and it skips a task
    /// hand-off). It must not block.
    pub fn method_sync<F>(mut self, name: &str, arity: impl Into<Arity>, handler: F) -> Self
    where
        F: Fn(&Context, Vec<Value>) -> Result<Value, RpcError> + Send + Sync + 'static,
    {
        self.registry
            .add_sync(name.as_bytes(), arity.into(), handler);
        self
    }

    /// Replaces the settings.
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// Called with the connection id after each connection ends (when
    /// its [`Notifier`]s already report closed).
    pub fn on_disconnect(mut self, f: impl Fn(u64) + Send + Sync + 'static) -> Self {
        self.on_disconnect = Some(Box::new(f));
        self
    }

    /// The server, ready to serve any number of listeners.
    #[must_use]
    pub fn build(self) -> Server {
        let inner = Inner {
            registry: self.registry,
            config: self.config,
            on_disconnect: self.on_disconnect,
            next_id: AtomicU64::new(1),
            counters: Arc::default(),
            admission: Arc::new(Admission::new(
                self.config.max_connections,
                self.config.max_connections_per_ip,
            )),
        };
        Server {
            inner: Arc::new(inner),
        }
    }
}

/// A MessagePack-RPC server: cheap to clone; serve TCP and Unix listeners
/// at once from clones (connection ids stay unique across them).
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

impl Server {
    /// A snapshot of the server's counters (all listeners together).
    #[must_use]
    pub fn stats(&self) -> ServerStats {
        self.inner.counters.snapshot()
    }

    /// A handle that reads the counters without keeping the server (and the
    /// state its methods capture) alive.
    #[must_use]
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle(Arc::clone(&self.inner.counters))
    }

    /// Starts registering methods.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            registry: Registry::default(),
            config: ServerConfig::default(),
            on_disconnect: None,
        }
    }

    /// Serves connections from `listener` until `shutdown` completes; then
    /// stops accepting, lets every connection finish the requests it is
    /// running and flush their replies, and returns once all are closed.
    pub async fn serve_tcp(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        self.serve(listener, shutdown).await
    }

    /// [`Server::serve_tcp`] for a Unix socket listener.
    #[cfg(unix)]
    pub async fn serve_unix(
        &self,
        listener: tokio::net::UnixListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        self.serve(listener, shutdown).await
    }

    async fn serve<L: Listener>(
        &self,
        mut listener: L,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept_split() => match accepted {
                    Ok((peer, halves)) => match self.inner.admission.admit(peer.map(|p| p.ip())) {
                        Ok(slot) => {
                            let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
                            let peer = Peer(peer);
                            let conn = run_connection(self.inner.clone(), id, peer, slot, halves, stop_rx.clone());
                            tasks.spawn(conn);
                        }
                        // Dropping the halves closes the socket.
                        Err(why) => self.inner.refuse(peer, why),
                    },
                    Err(e) => {
                        // Out of descriptors or an aborted handshake: keep
                        // serving, without spinning on a persistent error.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        drop(listener);
        // Receivers all live in connection tasks, so nobody may be listening.
        let _ = stop_tx.send(true);
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}

impl Inner {
    /// Counts and logs a connection refused at accept. No MessagePack-RPC
    /// error is sent: there is no request to answer yet, and stock clients
    /// break on messages they did not ask for; they see the socket close.
    fn refuse(&self, peer: Option<SocketAddr>, why: Refusal) {
        let (counter, limit, what) = match why {
            Refusal::PerIp => (
                &self.counters.refused_per_ip,
                self.config.max_connections_per_ip,
                "RPC connection refused: its address holds max_connections_per_ip",
            ),
            Refusal::Full => (
                &self.counters.refused_full,
                self.config.max_connections,
                "RPC connection refused: max_connections open",
            ),
        };
        Counters::add(counter, 1);
        tracing::info!(peer = %Peer(peer), limit, "{what}");
    }
}

/// A peer's address for log lines.
#[derive(Debug, Clone, Copy)]
struct Peer(Option<SocketAddr>);

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_str("unix socket"),
        }
    }
}

async fn run_connection<R, W>(
    server: Arc<Inner>,
    id: u64,
    peer: Peer,
    slot: Slot,
    halves: (R, W),
    mut stop: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    tracing::debug!(conn = id, %peer, "connection opened");
    Counters::add(&server.counters.connections_open, 1);
    Counters::add(&server.counters.connections_total, 1);
    let (tx, notes) = mpsc::channel(server.config.notification_queue.max(1));
    let ctx = Context::new(Notifier::new(id, tx), server.config.auth.is_some());
    let stop = Box::pin(async move {
        // A dropped sender also means stop.
        let _ = stop.wait_for(|stopping| *stopping).await;
    });
    let mut conn = Connection::new(id, halves, server.clone(), ctx, notes, stop);
    match poll_fn(|cx| conn.poll_run(cx)).await {
        Ok(()) => tracing::debug!(conn = id, "connection closed"),
        Err(ConnError::Io(e)) => tracing::debug!(conn = id, error = %e, "connection lost"),
        Err(ConnError::Decode(e)) => {
            server
                .counters
                .record_decode_error(&e, conn.is_authenticated());
            tracing::warn!(conn = id, %peer, error = %e, "closing connection: malformed input");
        }
        Err(e @ ConnError::MessageTimeout(_)) => {
            Counters::add(&server.counters.message_timeouts, 1);
            tracing::info!(conn = id, %peer, error = %e, "closing connection: message timeout");
        }
        Err(e @ ConnError::AuthTimeout(_)) => {
            Counters::add(&server.counters.auth_timeouts, 1);
            tracing::info!(conn = id, %peer, error = %e, "closing connection: auth timeout");
        }
    }
    server
        .counters
        .connections_open
        .fetch_sub(1, Ordering::Relaxed);
    // Dropping the connection closes its notification queue first, so
    // `Notifier::closed` has fired by the time the callback runs.
    drop(conn);
    // The socket is closed: its place may go to the next connection.
    drop(slot);
    if let Some(f) = &server.on_disconnect {
        f(id);
    }
}

/// The peer's address (None for a Unix socket) and the two halves.
type Accepted<R, W> = (Option<SocketAddr>, (R, W));

/// A listener whose connections split into owned read and write halves.
trait Listener: Send {
    type Read: AsyncRead + Unpin + Send + 'static;
    type Write: AsyncWrite + Unpin + Send + 'static;
    fn accept_split(
        &mut self,
    ) -> impl Future<Output = io::Result<Accepted<Self::Read, Self::Write>>> + Send;
}

impl Listener for TcpListener {
    type Read = tokio::net::tcp::OwnedReadHalf;
    type Write = tokio::net::tcp::OwnedWriteHalf;
    async fn accept_split(&mut self) -> io::Result<Accepted<Self::Read, Self::Write>> {
        let (stream, peer) = self.accept().await?;
        // Replies are already batched per wake-up; Nagle would only add delay.
        stream.set_nodelay(true)?;
        Ok((Some(peer), stream.into_split()))
    }
}

#[cfg(unix)]
impl Listener for tokio::net::UnixListener {
    type Read = tokio::net::unix::OwnedReadHalf;
    type Write = tokio::net::unix::OwnedWriteHalf;
    async fn accept_split(&mut self) -> io::Result<Accepted<Self::Read, Self::Write>> {
        let (stream, _) = self.accept().await?;
        Ok((None, stream.into_split()))
    }
}
