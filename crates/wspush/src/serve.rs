//! `wspush serve`: the WebSocket server, the RPC server and the HTTP API on one runtime.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, Overflow, ServeArgs, Settings};
use crate::shared::Shared;
use crate::ws::handler::App;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The settings are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener could not be bound.
    #[error("cannot listen on {what} {addr}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// Its address.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// The broker setting is invalid or Redis cannot be reached at start.
    #[error(transparent)]
    Broker(#[from] crate::broker::BrokerError),
    /// The JWT key could not be loaded.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// The TLS certificate or key could not be loaded.
    #[error(transparent)]
    Tls(#[from] ws_server::TlsError),
    /// `auth(secret)` with this secret would not fit the pre-auth message limit.
    #[error(
        "the RPC message limit before auth (rpc_auth_max_message_bytes, at most rpc_max_message_bytes) is {limit}, but auth(secret) with this secret takes up to {needed} bytes: raise it or use a shorter secret"
    )]
    RpcAuthLimit {
        /// `rpc_auth_max_message_bytes` (or `rpc_max_message_bytes` if smaller).
        limit: usize,
        /// What `auth(secret)` may take.
        needed: usize,
    },
    /// RPC would listen beyond loopback with no secret.
    #[error(
        "RPC address {0} is not loopback: set --rpc-secret (clients call auth(secret) first) or pass --rpc-insecure"
    )]
    RpcExposed(SocketAddr),
    /// The HTTP API would listen beyond loopback with no key.
    #[error(
        "API address {0} is not loopback: set --api-key (requests carry X-API-Key) or pass --api-insecure"
    )]
    ApiExposed(SocketAddr),
    /// A server task failed.
    #[error("{what} server failed: {source}")]
    Run {
        /// Which server.
        what: &'static str,
        /// Why.
        source: io::Error,
    },
}

/// A running push server (see [`start`]).
pub struct Running {
    /// The bound WebSocket/HTTP address.
    pub ws_addr: SocketAddr,
    /// The bound RPC address.
    pub rpc_addr: SocketAddr,
    /// The bound HTTP API address.
    pub api_addr: SocketAddr,
    /// State shared by both sides (for tests and embedding).
    pub shared: Arc<Shared>,
    shutdown: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<io::Result<()>>)>,
}

impl Running {
    /// Starts graceful shutdown: browsers get close 1001, RPC calls in
    /// flight finish; returns when both servers have stopped.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits until both servers stop (after [`Running::shutdown`] or a failure).
    pub async fn wait(mut self) -> Result<(), ServeError> {
        let mut result = Ok(());
        for (what, task) in self.tasks.drain(..) {
            let outcome = task.await.unwrap_or_else(|e| Err(io::Error::other(e)));
            if let Err(source) = outcome {
                result = Err(ServeError::Run { what, source });
            }
        }
        result
    }

    /// A token that starts shutdown when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

fn ws_config(s: &Settings) -> Result<ws_server::ServerConfig, ServeError> {
    let mut c = ws_server::ServerConfig::default();
    if let (Some(cert), Some(key)) = (&s.tls_cert, &s.tls_key) {
        c.tls = Some(ws_server::TlsConfig::from_pem_files(cert, key)?);
    }
    c.proto.max_message_size = s.max_message_bytes;
    c.proto.max_frame_size = s.max_frame_bytes;
    c.max_connections_per_ip = s.max_connections_per_ip;
    c.connects_per_ip_per_sec = s.connects_per_ip_per_sec;
    c.limit_loopback = s.limit_loopback;
    c.max_header_bytes = s.max_header_bytes;
    if !s.compression {
        c.deflate = None;
    }
    c.max_connections = s.max_connections;
    c.outbound_queue_bytes = s.queue_bytes;
    c.overflow = match s.overflow {
        Overflow::Close => ws_server::OverflowPolicy::Close,
        Overflow::Drop => ws_server::OverflowPolicy::Drop,
    };
    c.handshake_timeout = Duration::from_secs(s.handshake_timeout);
    c.ping_interval = (s.ping_interval > 0).then(|| Duration::from_secs(s.ping_interval));
    c.pong_timeout = Duration::from_secs(s.pong_timeout);
    c.shutdown_timeout = Duration::from_secs(s.shutdown_grace);
    Ok(c)
}

fn rpc_config(s: &Settings) -> Result<msgpack_rpc::ServerConfig, ServeError> {
    let secs = |n: u64| (n > 0).then(|| Duration::from_secs(n));
    let mut c = msgpack_rpc::ServerConfig::default();
    c.limits.max_message_size = s.rpc_max_message_bytes;
    c.max_in_flight = s.rpc_max_in_flight;
    c.max_connections = s.rpc_max_connections;
    c.max_connections_per_ip = s.rpc_max_connections_per_ip;
    c.message_timeout = secs(s.rpc_message_timeout);
    if let Some(secret) = &s.rpc_secret {
        // Checked here rather than found out by every client's first call.
        let needed = crate::rpc::auth::auth_request_bytes(secret);
        let limit = s.rpc_auth_max_message_bytes.min(s.rpc_max_message_bytes);
        if limit < needed {
            return Err(ServeError::RpcAuthLimit { limit, needed });
        }
        c.auth = Some(msgpack_rpc::AuthLimits {
            timeout: secs(s.rpc_auth_timeout),
            max_message_size: s.rpc_auth_max_message_bytes,
        });
    }
    Ok(c)
}

/// Connections the kernel completes and holds for us before they are accepted. A
/// reconnect storm (every browser of a restarted node at once) must fit: with the 128 that
/// `TcpListener::bind` asks for, the rest of the SYNs are dropped and those clients retry
/// only after a second (then three, then seven). The kernel caps it at
/// `net.core.somaxconn` (4096 by default).
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` (with `SO_REUSEADDR`, as `TcpListener::bind` does, so a restart need not
/// wait for old connections' `TIME_WAIT`) and reads back the address the kernel gave (port
/// 0 picks one).
fn bind(what: &'static str, addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ServeError> {
    let error = |source| ServeError::Bind {
        what,
        addr: addr.to_string(),
        source,
    };
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(error)?;
    socket.set_reuseaddr(true).map_err(error)?;
    socket.bind(addr).map_err(error)?;
    let listener = socket.listen(LISTEN_BACKLOG).map_err(error)?;
    let bound = listener.local_addr().map_err(error)?;
    Ok((listener, bound))
}

/// Binds both listeners and starts serving in the background.
pub async fn start(settings: &Settings) -> Result<Running, ServeError> {
    if !settings.rpc.ip().is_loopback() && settings.rpc_secret.is_none() {
        if !settings.rpc_insecure {
            return Err(ServeError::RpcExposed(settings.rpc));
        }
        tracing::warn!(rpc = %settings.rpc, "RPC without a secret beyond loopback (--rpc-insecure): anyone who reaches it can push");
    }
    if !settings.api.ip().is_loopback() && settings.api_key.is_none() {
        if !settings.api_insecure {
            return Err(ServeError::ApiExposed(settings.api));
        }
        tracing::warn!(api = %settings.api, "HTTP API without a key beyond loopback (--api-insecure): anyone who reaches it can push");
    }
    let gate = crate::auth::Gate::from_settings(settings)?;
    let ws_config = ws_config(settings)?;
    let rpc_config = rpc_config(settings)?;
    let (ws_listener, ws_addr) = bind("WebSocket", settings.ws)?;
    let (rpc_listener, rpc_addr) = bind("RPC", settings.rpc)?;
    let (api_listener, api_addr) = bind("API", settings.api)?;
    let unix_listener = match &settings.rpc_unix {
        Some(path) => Some((bind_unix(path)?, path.clone())),
        None => None,
    };

    let hub = crate::delivery::hub::Hub::new(settings.retention());
    let broker = connect_broker(settings).await?;
    let mut shared = Shared::new(hub, broker).with_gate(gate);
    shared.metrics_public = settings.metrics_public;
    let shared = Arc::new(shared);
    let shutdown = CancellationToken::new();
    if shared.redis.is_none() {
        // The embedded broker's history: idle streams go on a timer, not on
        // the publishing path.
        let (hub, token) = (Arc::clone(&shared.hub), shutdown.clone());
        tokio::spawn(async move { hub.history().expire_until(token).await });
    }
    if let Some(broker) = &shared.redis {
        broker.start_subscriber(Arc::clone(&shared.hub), shutdown.clone());
        tokio::spawn(Arc::clone(&shared).share_stats(shutdown.clone()));
        tracing::info!(node = broker.node(), broker = %settings.broker, "using the Redis broker");
    }
    let heartbeat =
        (settings.ping_interval > 0).then(|| Duration::from_secs(settings.ping_interval));
    let app = App::new(Arc::clone(&shared)).with_sse_heartbeat(heartbeat);
    let ws_server = ws_server::Server::new(ws_config, app);
    shared.set_ws_stats(ws_server.stats());
    let rpc_server = crate::rpc::server(&shared, rpc_config, settings.rpc_secret.clone());
    shared.set_rpc_stats(rpc_server.stats_handle());

    let mut tasks = Vec::new();
    let token = shutdown.clone();
    tasks.push((
        "WebSocket",
        tokio::spawn(async move { ws_server.serve(ws_listener, token.cancelled_owned()).await }),
    ));
    if let Some((listener, path)) = unix_listener {
        let (server, token) = (rpc_server.clone(), shutdown.clone());
        tasks.push((
            "RPC (unix)",
            tokio::spawn(async move {
                let result = server.serve_unix(listener, token.cancelled_owned()).await;
                let _ = std::fs::remove_file(&path);
                result
            }),
        ));
    }
    let token = shutdown.clone();
    tasks.push((
        "RPC",
        tokio::spawn(async move {
            rpc_server
                .serve_tcp(rpc_listener, token.cancelled_owned())
                .await
        }),
    ));
    let token = shutdown.clone();
    let (door, limits) = api_door(settings, &shared);
    tasks.push((
        "API",
        tokio::spawn(crate::api::serve(api_listener, door, limits, token)),
    ));
    tracing::info!(
        ws = %ws_addr,
        rpc = %rpc_addr,
        api = %api_addr,
        tls = settings.tls_cert.is_some(),
        auth = shared.gate.auth_on(),
        rpc_secret = settings.rpc_secret.is_some(),
        "wspush serving"
    );
    Ok(Running {
        ws_addr,
        rpc_addr,
        api_addr,
        shared,
        shutdown,
        tasks,
    })
}

/// The HTTP API's shared state and limits from the settings.
fn api_door(s: &Settings, shared: &Arc<Shared>) -> (Arc<crate::api::Door>, crate::api::Limits) {
    // Idempotency keys last as long as history does (`idempotency.rs`).
    let window = match s.history_secs {
        0 => crate::api::idempotency::DEFAULT_WINDOW,
        secs => Duration::from_secs(secs),
    };
    let door = crate::api::Door::new(Arc::clone(shared), s.api_key.clone(), window);
    let limits = crate::api::Limits {
        max_body: s.api_max_body_bytes,
        max_head: s.max_header_bytes,
        header_timeout: Duration::from_secs(s.api_header_timeout.max(1)),
        idle_timeout: (s.api_idle_timeout > 0).then(|| Duration::from_secs(s.api_idle_timeout)),
        shutdown_grace: Duration::from_secs(s.shutdown_grace),
    };
    (Arc::new(door), limits)
}

async fn connect_broker(
    settings: &Settings,
) -> Result<Option<crate::broker::RedisBroker>, ServeError> {
    let url = settings.broker.as_str();
    if url == "embedded" {
        return Ok(None);
    }
    if !(url.starts_with("redis://") || url.starts_with("unix://")) {
        return Err(crate::broker::BrokerError::Url(url.to_owned()).into());
    }
    let timeout = Duration::from_millis(settings.broker_timeout_ms.max(1));
    let broker =
        crate::broker::RedisBroker::connect(url, settings.node_id, settings.retention(), timeout)
            .await?
            .with_intake_bytes(settings.broker_intake_bytes);
    Ok(Some(broker))
}

fn bind_unix(path: &PathBuf) -> Result<tokio::net::UnixListener, ServeError> {
    // A socket file left by a previous run that did not stop cleanly.
    if std::os::unix::net::UnixStream::connect(path).is_err() {
        let _ = std::fs::remove_file(path);
    }
    tokio::net::UnixListener::bind(path).map_err(|source| ServeError::Bind {
        what: "RPC unix socket",
        addr: path.display().to_string(),
        source,
    })
}

/// `wspush serve`: resolves the settings, serves until SIGINT or SIGTERM,
/// then shuts down gracefully.
pub async fn run_from_args(args: &ServeArgs) -> Result<(), ServeError> {
    let settings = Settings::resolve(args)?;
    let running = start(&settings).await?;
    let token = running.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: closing browsers with 1001, finishing RPC calls");
        token.cancel();
    });
    running.wait().await
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only SIGINT stops the server");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use tokio::net::TcpStream;

    /// A connect storm larger than the 128 `TcpListener::bind` would queue completes at
    /// once while the server is not yet accepting: no SYN waits for a retransmit.
    #[tokio::test]
    async fn listeners_queue_a_connect_storm() {
        const STORM: usize = 400;
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4096);
        if somaxconn <= STORM {
            eprintln!(
                "net.core.somaxconn is {somaxconn}: the kernel caps any backlog below the test"
            );
            return;
        }
        let (_listener, addr) = super::bind("test", "127.0.0.1:0".parse().unwrap()).unwrap();
        let mut connects = tokio::task::JoinSet::new();
        for _ in 0..STORM {
            // A dropped SYN is retried after a second: well past this limit.
            connects.spawn(tokio::time::timeout(
                Duration::from_millis(700),
                TcpStream::connect(addr),
            ));
        }
        let mut streams = Vec::new();
        while let Some(done) = connects.join_next().await {
            let connected = done.unwrap().expect("connected without a SYN retransmit");
            streams.push(connected.unwrap());
        }
        assert_eq!(streams.len(), STORM);
    }
}
