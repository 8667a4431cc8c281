//! [`ServerConfig`]: every limit and timeout of the server, with documented defaults.

use std::time::Duration;

use crate::tls::TlsConfig;

/// What happens when a message is sent to a connection whose outbound queue is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OverflowPolicy {
    /// Refuse the message, drop everything still queued and close the connection with
    /// 1008 "slow consumer" ([`SLOW_CONSUMER`](crate::SLOW_CONSUMER)); counted in
    /// [`StatsSnapshot::overflow_closes`](crate::StatsSnapshot::overflow_closes). The default:
    /// a client that misses messages silently would show stale data, a closed one reconnects.
    #[default]
    Close,
    /// Refuse the message and keep the connection; counted per connection
    /// ([`Connection::dropped_messages`](crate::Connection::dropped_messages)) and in
    /// [`StatsSnapshot::dropped_messages`](crate::StatsSnapshot::dropped_messages).
    Drop,
}

/// Server settings. Build with `ServerConfig::default()` and change the fields you need.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Protocol limits (frame and message size, compression threshold). Default: ws-proto's
    /// defaults, 1 MiB inbound messages: a push server mostly sends.
    pub proto: ws_proto::Config,
    /// permessage-deflate offer accepted from clients; `None` disables compression.
    /// Default: enabled with ws-proto's default parameters.
    pub deflate: Option<ws_proto::handshake::DeflateConfig>,
    /// Open WebSocket connections at most; upgrades beyond it get 503. Default 10,000.
    pub max_connections: usize,
    /// Bytes queued per connection (payload bytes, not yet written) before the
    /// [`OverflowPolicy`] applies. Default 1 MiB.
    pub outbound_queue_bytes: usize,
    /// See [`OverflowPolicy`]. Default [`OverflowPolicy::Close`].
    pub overflow: OverflowPolicy,
    /// Time for the TLS handshake, the HTTP request head and the upgrade. Default 10 s.
    pub handshake_timeout: Duration,
    /// Ping a connection after it has been silent this long; `None` never pings. Default 30 s.
    pub ping_interval: Option<Duration>,
    /// After a ping, the peer must send something within this time or it is dropped
    /// (close code 1006 to the handler). Default 10 s.
    pub pong_timeout: Duration,
    /// After we send a close frame, time for the peer's close frame before we drop the socket.
    /// Default 5 s.
    pub close_timeout: Duration,
    /// At shutdown, time for every connection to finish its close handshake before the rest are
    /// dropped. Default 5 s.
    pub shutdown_timeout: Duration,
    /// Inbound events (messages, pings) handled per wake-up of a connection task before it yields, so one busy
    /// peer cannot starve the others on the same worker thread. Default 16.
    pub max_events_per_wake: usize,
    /// `Some` serves `wss://` (TLS) instead of `ws://`. Default `None`.
    pub tls: Option<TlsConfig>,
    /// TCP connections (HTTP or WebSocket) one IP address may hold open; more are answered
    /// 429 and closed at accept. `0`: no limit. Default 0 (wspush sets its own).
    pub max_connections_per_ip: usize,
    /// New TCP connections one IP address may open per second; more are answered 429 and
    /// closed at accept. `0`: no limit. Default 0 (wspush sets its own).
    pub connects_per_ip_per_sec: u32,
    /// Apply the two per-IP limits to loopback peers too. Default `false`: a reverse proxy on
    /// the same host is one address for all its clients (limit per client in the proxy).
    pub limit_loopback: bool,
    /// Largest HTTP request head (request line and headers) in bytes; larger ones get 431.
    /// At least 8192 (hyper's floor). Default 16 KiB: room for a JWT in the URL or a cookie.
    pub max_header_bytes: usize,
    /// Most request headers; more get 431. Default 64 (browsers send about 15).
    pub max_headers: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            proto: ws_proto::Config::default(),
            deflate: Some(ws_proto::handshake::DeflateConfig::default()),
            max_connections: 10_000,
            outbound_queue_bytes: 1 << 20,
            overflow: OverflowPolicy::Close,
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Some(Duration::from_secs(30)),
            pong_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(5),
            max_events_per_wake: 16,
            tls: None,
            max_connections_per_ip: 0,
            connects_per_ip_per_sec: 0,
            limit_loopback: false,
            max_header_bytes: 16 << 10,
            max_headers: 64,
        }
    }
}
