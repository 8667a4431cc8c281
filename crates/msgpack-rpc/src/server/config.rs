//! Server settings: every bound with its documented default.

use std::time::Duration;

use crate::codec::Limits;

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
