//! The tokio server: a method registry, accept loops for TCP and Unix
//! sockets, and graceful shutdown. Each connection runs on its own task
//! (see `connection`).
//!
//! ```text
//! mod.rs        Server, ServerBuilder, the accept loops, one task per connection
//! config.rs     ServerConfig, AuthLimits: every bound and its default
//! inner.rs      what every connection task of one server shares (Inner)
//! admission.rs  connection caps (total, per IP), taken at accept
//! connection.rs one connection: read, decode, dispatch, notifications, one write
//! deadline.rs   the half-sent message and authentication deadlines
//! methods.rs    the method registry and Arity
//! context.rs    Context and Notifier, what a method sees of its connection
//! stats.rs      the counters (ServerStats)
//! ```
//!
//! Nothing here is needed by the sans-IO codec at the crate's top level, which
//! builds without tokio.

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

use crate::error::RpcError;

mod admission;
mod config;
mod connection;
pub(crate) mod context;
mod deadline;
mod inner;
pub(crate) mod methods;
pub(crate) mod stats;

pub use config::{AuthLimits, DEFAULT_TCP_ADDR, ServerConfig};
pub use methods::Outcome;

use admission::{Admission, Slot};
use connection::{ConnError, Connection};
use context::{Context, Notifier};
use inner::{DisconnectFn, Inner, Peer};
use methods::{Arity, Registry};
use stats::{Counters, ServerStats, StatsHandle};

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

    /// Registers a method that runs inline as [`Self::method_sync`] does, and may leave its
    /// reply to a future ([`Outcome::Wait`]): the connection then dispatches none of its
    /// later messages until that future ends, so their effects still follow this call's
    /// (its work may finish elsewhere, in a batch with other connections' calls, say).
    /// Other connections go on meanwhile.
    pub fn method_ordered<F>(mut self, name: &str, arity: impl Into<Arity>, handler: F) -> Self
    where
        F: Fn(&Context, Vec<Value>) -> Outcome + Send + Sync + 'static,
    {
        self.registry
            .add_ordered(name.as_bytes(), arity.into(), handler);
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
