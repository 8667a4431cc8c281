//! The MessagePack-RPC methods of the push server.
//!
//! With the embedded broker every method is registered as a *sync* method: it
//! runs inline on the RPC connection's task in arrival order, so pushes from
//! one program reach each browser in the order they were called, and a push
//! returns as soon as its frame is queued everywhere. With Redis, see
//! [`crate::rpc_cluster`]. Each method also works as a notification.
//!
//! Errors are plain strings, as the reference Ruby server sends them; an
//! unknown connection or channel is not an error but a `0`/`false` result.

use std::sync::Arc;

use msgpack_rpc::{Context, RpcError, Server, Value};

use crate::app::Shared;
use crate::data::Payload;
use crate::rpc_auth::GuardedBuilder;
use crate::stream::Flush;

/// Registers every method on `builder`.
pub fn register(builder: GuardedBuilder, shared: &Arc<Shared>) -> GuardedBuilder {
    let builder = match shared.broker {
        None => register_embedded(builder, shared),
        Some(_) => crate::rpc_cluster::register(builder, shared),
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

/// `disconnect(conn_id[, code, reason])` arguments.
pub(crate) fn disconnect_args(p: &[Value]) -> Result<(u64, u16, String), RpcError> {
    let id = conn_id_arg(p, 0)?;
    let code = close_code_arg(p, 1)?;
    let reason = match p.get(2) {
        Some(Value::Nil) | None => String::new(),
        Some(_) => string_arg(p, 2, "reason")?,
    };
    // RFC 6455 §5.5: a control frame payload is at most 125 bytes, 2 of them the code.
    if reason.len() > 123 {
        return Err(RpcError::message("reason is longer than 123 bytes"));
    }
    Ok((id, code, reason))
}

/// The methods that only read state: the same with every broker.
fn register_queries(builder: GuardedBuilder, shared: &Arc<Shared>) -> GuardedBuilder {
    let s = Arc::clone(shared);
    let builder = builder.method_sync("connections", 0, move |_, _| Ok(s.connections_value()));
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

/// The RPC server with every method and the listener clean-up wired in.
pub fn server(shared: &Arc<Shared>, config: msgpack_rpc::ServerConfig) -> Server {
    let s = Arc::clone(shared);
    let guarded = GuardedBuilder::new(Server::builder(), Arc::clone(&shared.rpc_auth));
    register(guarded, shared)
        .into_inner()
        .config(config)
        .on_disconnect(move |rpc_conn| {
            s.listeners.remove(rpc_conn);
            s.rpc_auth.handle_disconnect(rpc_conn);
        })
        .build()
}

pub(crate) fn take(params: &mut [Value], i: usize) -> Value {
    params
        .get_mut(i)
        .map_or(Value::Nil, |v| std::mem::replace(v, Value::Nil))
}

pub(crate) fn string_arg(params: &[Value], i: usize, name: &str) -> Result<String, RpcError> {
    match params.get(i) {
        Some(Value::String(s)) => s
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| RpcError::message(format!("{name} must be valid UTF-8"))),
        Some(Value::Binary(b)) => String::from_utf8(b.clone())
            .map_err(|_| RpcError::message(format!("{name} must be valid UTF-8"))),
        _ => Err(RpcError::message(format!("{name} must be a string"))),
    }
}

pub(crate) fn conn_id_arg(params: &[Value], i: usize) -> Result<u64, RpcError> {
    params
        .get(i)
        .and_then(Value::as_u64)
        .ok_or_else(|| RpcError::message("conn_id must be a non-negative integer"))
}

fn close_code_arg(params: &[Value], i: usize) -> Result<u16, RpcError> {
    match params.get(i) {
        None | Some(Value::Nil) => Ok(ws_proto::close::NORMAL),
        Some(v) => v
            .as_u64()
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| ws_proto::close::is_valid_wire_code(*c))
            .ok_or_else(|| {
                RpcError::message(format!(
                    "invalid close code {v}: use 1000-1003, 1007-1014 or 3000-4999"
                ))
            }),
    }
}
