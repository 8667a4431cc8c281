//! The RPC shared secret: with `rpc_secret` set, a connection's first call
//! must be `auth(secret)`; until it succeeds every other call is answered
//! with an error and does nothing.
//!
//! ```text
//! call --> GuardedBuilder wrapper --authenticated?--no--> error "unauthenticated: …"
//!                                  --yes--> the method
//! ```
//!
//! msgpack-rpc has no per-call hook, so every method is wrapped where it is
//! registered ([`GuardedBuilder`] mirrors `ServerBuilder::method{,_sync,_ordered}`).
//! A successful `auth` also tells msgpack-rpc (`Context::set_authenticated`),
//! which then lifts its pre-authentication limits for that connection: the
//! small message size limit and the auth timeout (`rpc_auth_*` settings).

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use msgpack_rpc::{Arity, Context, Outcome, RpcError, ServerBuilder, Value};

use crate::auth::secret::constant_time_eq;

/// Which RPC connections have authenticated.
#[derive(Debug, Default)]
pub struct RpcAuth {
    secret: Option<String>,
    authed: Mutex<HashSet<u64>>,
    /// Shared with `stats()` (see [`crate::shared::Shared::rpc_auth_failures`]).
    failures: Arc<AtomicU64>,
}

impl RpcAuth {
    /// Requires `auth(secret)` first when `secret` is set; refusals are counted in
    /// `failures`.
    pub fn new(secret: Option<String>, failures: Arc<AtomicU64>) -> Self {
        RpcAuth {
            secret,
            authed: Mutex::default(),
            failures,
        }
    }

    /// Calls refused since start (wrong secret, or a call before `auth`).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn authed(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        self.authed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ok if connection `id` may call methods.
    pub fn check(&self, id: u64) -> Result<(), RpcError> {
        if self.secret.is_none() || self.authed().contains(&id) {
            return Ok(());
        }
        self.failures.fetch_add(1, Ordering::Relaxed);
        tracing::info!(rpc_conn = id, "RPC call before auth(secret) refused");
        Err(RpcError::message(
            "unauthenticated: call auth(secret) first",
        ))
    }

    /// `auth(secret)` on connection `id`.
    pub fn handle_auth(&self, id: u64, given: &str) -> Result<Value, RpcError> {
        let Some(secret) = &self.secret else {
            return Ok(Value::Boolean(true));
        };
        if constant_time_eq(secret.as_bytes(), given.as_bytes()) {
            self.authed().insert(id);
            return Ok(Value::Boolean(true));
        }
        self.failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(rpc_conn = id, "RPC auth with a wrong secret");
        Err(RpcError::message("auth failed: wrong secret"))
    }

    /// Forgets a finished connection.
    pub fn handle_disconnect(&self, id: u64) {
        self.authed().remove(&id);
    }
}

/// The most bytes a client's `auth(secret)` request can take on the wire:
/// `[0, msgid, "auth", [secret]]` with the widest msgid (5 bytes) and string
/// header (5 bytes, also for old clients' raw32). The pre-authentication
/// message limit must admit it.
pub fn auth_request_bytes(secret: &str) -> usize {
    const ENVELOPE: usize = 1 + 1 + 5 + 5 + 1 + 5; // array, type, msgid, "auth", params, str header
    ENVELOPE + secret.len()
}

/// A `ServerBuilder` whose methods first check [`RpcAuth`].
#[must_use]
pub struct GuardedBuilder {
    builder: ServerBuilder,
    auth: Arc<RpcAuth>,
}

impl GuardedBuilder {
    /// Wraps `builder` and registers `auth(secret)` on it.
    pub fn new(builder: ServerBuilder, auth: Arc<RpcAuth>) -> Self {
        let a = Arc::clone(&auth);
        // Sync, so the limits are lifted before the next message is read: a
        // client may pipeline a large push right behind its `auth`.
        let builder = builder.method_sync("auth", 1, move |ctx, p| {
            let given = crate::rpc::args::string_arg(&p, 0, "secret")?;
            let ok = a.handle_auth(ctx.connection_id(), &given)?;
            ctx.set_authenticated();
            Ok(ok)
        });
        GuardedBuilder { builder, auth }
    }

    /// `ServerBuilder::method_sync`, behind the check.
    pub fn method_sync<F>(self, name: &str, arity: impl Into<Arity>, f: F) -> Self
    where
        F: Fn(&Context, Vec<Value>) -> Result<Value, RpcError> + Send + Sync + 'static,
    {
        let auth = Arc::clone(&self.auth);
        let builder = self.builder.method_sync(name, arity, move |ctx, p| {
            auth.check(ctx.connection_id())?;
            f(ctx, p)
        });
        GuardedBuilder { builder, ..self }
    }

    /// `ServerBuilder::method_ordered`, behind the check.
    pub fn method_ordered<F>(self, name: &str, arity: impl Into<Arity>, f: F) -> Self
    where
        F: Fn(&Context, Vec<Value>) -> Outcome + Send + Sync + 'static,
    {
        let auth = Arc::clone(&self.auth);
        let builder = self.builder.method_ordered(name, arity, move |ctx, p| {
            match auth.check(ctx.connection_id()) {
                Ok(()) => f(ctx, p),
                Err(e) => Outcome::Ready(Err(e)),
            }
        });
        GuardedBuilder { builder, ..self }
    }

    /// `ServerBuilder::method`, behind the check.
    pub fn method<F, Fut>(self, name: &str, arity: impl Into<Arity>, f: F) -> Self
    where
        F: Fn(Context, Vec<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, RpcError>> + Send + 'static,
    {
        let auth = Arc::clone(&self.auth);
        let builder = self.builder.method(name, arity, move |ctx, p| {
            let call = auth.check(ctx.connection_id()).map(|()| f(ctx, p));
            async move { call?.await }
        });
        GuardedBuilder { builder, ..self }
    }

    /// The wrapped builder, every method registered.
    pub fn into_inner(self) -> ServerBuilder {
        self.builder
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_secret_everything_passes() {
        let auth = RpcAuth::new(None, Arc::default());
        assert!(auth.check(1).is_ok());
        assert!(auth.handle_auth(1, "anything").is_ok());
    }

    #[test]
    fn with_a_secret_only_authenticated_connections_pass() {
        let auth = RpcAuth::new(Some("s3cret".into()), Arc::default());
        assert!(auth.check(1).is_err());
        assert!(auth.handle_auth(1, "wrong").is_err());
        assert!(auth.check(1).is_err());
        assert!(auth.handle_auth(1, "s3cret").is_ok());
        assert!(auth.check(1).is_ok());
        assert!(auth.check(2).is_err());
        auth.handle_disconnect(1);
        assert!(auth.check(1).is_err());
        assert_eq!(auth.failures(), 5);
    }

    #[test]
    fn auth_request_bytes_bounds_every_encoding_of_auth() {
        for len in [0, 31, 32, 255, 256, 65_535, 65_536] {
            let secret = "s".repeat(len);
            let mut out = bytes::BytesMut::new();
            let request =
                msgpack_rpc::Message::request(u32::MAX, "auth", vec![Value::from(secret.as_str())]);
            msgpack_rpc::encode(&request, &mut out);
            assert!(out.len() <= auth_request_bytes(&secret), "{len}");
            // str32 is the widest header: exact at 65536.
            if len == 65_536 {
                assert_eq!(out.len(), auth_request_bytes(&secret));
            }
        }
    }
}
