//! The MessagePack-RPC methods of the push server.
//!
//! With the embedded broker every method is registered as a *sync* method: it
//! runs inline on the RPC connection's task in arrival order, so pushes from
//! one program reach each browser in the order they were called, and a push
//! returns as soon as its frame is queued everywhere. With Redis, see
//! [`crate::rpc::cluster`]. Each method also works as a notification.
//!
//! Errors are plain strings, as the reference Ruby server sends them; an
//! unknown connection or channel is not an error but a `0`/`false` result.

use std::sync::Arc;

use msgpack_rpc::{Context, Server, Value};

use crate::delivery::flush::Flush;
use crate::delivery::payload::Payload;
use crate::rpc::args::{conn_id_arg, disconnect_args, string_arg, take};
use crate::rpc::auth::{GuardedBuilder, RpcAuth};
use crate::shared::Shared;

/// Registers every method on `builder`.
pub fn register(builder: GuardedBuilder, shared: &Arc<Shared>) -> GuardedBuilder {
    let builder = match shared.broker {
        None => register_embedded(builder, shared),
        Some(_) => crate::rpc::cluster::register(builder, shared),
    };
    register_queries(builder, shared)
}

/// A push the caller already follows with more (requests waiting in its buffer) is a burst.
fn flush(ctx: &Context) -> Flush {
    Flush::after(ctx.more_buffered())
}

/// The pushing and connection methods with the embedded broker: all inline.
fn register_embedded(builder: GuardedBuilder, shared: &Arc<Shared>) -> GuardedBuilder {
    let s = Arc::clone(shared);
    let builder = builder.method_sync("push_data", 1, move |ctx, mut p| {
        s.hub
            .broadcast(Payload::from_value(take(&mut p, 0)), flush(ctx));
        Ok(Value::Nil)
    });
    let s = Arc::clone(shared);
    let builder = builder.method_sync("publish", 2, move |ctx, mut p| {
        let channel = string_arg(&p, 0, "channel")?;
        let n = s
            .hub
            .publish(&channel, Payload::from_value(take(&mut p, 1)), flush(ctx));
        Ok(Value::from(n))
    });
    let s = Arc::clone(shared);
    let builder = builder.method_sync("send", 2, move |ctx, mut p| {
        let id = conn_id_arg(&p, 0)?;
        Ok(Value::from(s.hub.send(
            id,
            Payload::from_value(take(&mut p, 1)),
            flush(ctx),
        )))
    });
    let s = Arc::clone(shared);
    let builder = builder.method_sync("send_user", 2, move |ctx, mut p| {
        let user = string_arg(&p, 0, "user")?;
        Ok(Value::from(s.hub.send_user(
            &user,
            Payload::from_value(take(&mut p, 1)),
            flush(ctx),
        )))
    });
    let s = Arc::clone(shared);
    let builder = builder.method_sync("subscribe", 2, move |_, p| {
        Ok(Value::from(s.hub.subscribe(
            conn_id_arg(&p, 0)?,
            &string_arg(&p, 1, "channel")?,
        )))
    });
    let s = Arc::clone(shared);
    let builder = builder.method_sync("unsubscribe", 2, move |_, p| {
        Ok(Value::from(s.hub.unsubscribe(
            conn_id_arg(&p, 0)?,
            &string_arg(&p, 1, "channel")?,
        )))
    });
    let s = Arc::clone(shared);
    builder.method_sync("disconnect", 1..=3, move |_, p| {
        let (id, code, reason) = disconnect_args(&p)?;
        Ok(Value::from(s.hub.disconnect(id, code, &reason)))
    })
}

/// The methods that only read state: the same with every broker.
fn register_queries(builder: GuardedBuilder, shared: &Arc<Shared>) -> GuardedBuilder {
    let s = Arc::clone(shared);
    let builder = builder.method_sync("connections", 0, move |_, _| {
        Ok(crate::rpc::render::connections_value(&s))
    });
    let s = Arc::clone(shared);
    let builder = builder.method_sync("channels", 0, move |_, _| {
        let map = s
            .hub
            .channels()
            .into_iter()
            .map(|(name, n)| (Value::from(name), Value::from(n)))
            .collect();
        Ok(Value::Map(map))
    });
    let s = Arc::clone(shared);
    let builder = builder.method_sync("stats", 0, move |_, _| Ok(s.stats_value()));
    let s = Arc::clone(shared);
    builder.method_sync("listen", 0, move |ctx: &Context, _| {
        s.listeners.add(ctx.notifier().clone());
        Ok(Value::Boolean(true))
    })
}

/// The RPC server with every method and the listener clean-up wired in; with `secret`
/// set, a connection's first call must be `auth(secret)`.
pub fn server(
    shared: &Arc<Shared>,
    config: msgpack_rpc::ServerConfig,
    secret: Option<String>,
) -> Server {
    let s = Arc::clone(shared);
    let auth = Arc::new(RpcAuth::new(secret, Arc::clone(&shared.rpc_auth_failures)));
    let guarded = GuardedBuilder::new(Server::builder(), Arc::clone(&auth));
    register(guarded, shared)
        .into_inner()
        .config(config)
        .on_disconnect(move |rpc_conn| {
            s.listeners.remove(rpc_conn);
            auth.handle_disconnect(rpc_conn);
        })
        .build()
}
