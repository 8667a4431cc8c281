//! The MessagePack-RPC methods of the push server: one table for every broker.
//!
//! Each pushing method's body runs inline at arrival (the RPC server calls the handler
//! before it reads the next message) and queues its work on the [`Broker`] there, so one
//! program's pushes reach every browser in call order; only the wait for the answer may
//! be asynchronous. With the embedded broker a push returns as soon as its frame is queued
//! everywhere: at once, or (when it met a fan-out of its stream in progress and joined the
//! next pass) once that pass has queued it, the connection taking its next call only then
//! (the methods are registered ordered). With Redis, a push fails with an
//! RPC error (`broker unavailable: …`) when Redis is down, never silently; one that this
//! node receives itself also fails while this node's subscription is down (`subscription
//! not ready`) and succeeds only once it came back on that subscription (see
//! `broker::receipts`). `send`, `subscribe`, `unsubscribe` and `disconnect` go through
//! Redis to the node that holds the connection (its number is in the id), even when that
//! is this node, so that they keep their order with the caller's pushes; their result
//! then says whether that node is up, not whether the connection exists.
//!
//! Each method also works as a notification. Errors are plain strings, as the reference
//! Ruby server sends them; an unknown connection or channel is not an error but a
//! `0`/`false` result.

use std::sync::Arc;

use msgpack_rpc::{Arity, Context, Outcome, RpcError, Server, Value};

use crate::broker::Answer;
use crate::broker::bus::NodeCommand;
use crate::delivery::flush::Flush;
use crate::delivery::payload::Payload;
use crate::rpc::args::{conn_id_arg, disconnect_args, string_arg, take};
use crate::rpc::auth::{GuardedBuilder, RpcAuth};
use crate::shared::Shared;

/// Registers every method on `builder`.
pub fn register(builder: GuardedBuilder, shared: &Arc<Shared>) -> GuardedBuilder {
    register_queries(register_pushes(builder, shared), shared)
}

/// A push from a caller that pipelines (requests waiting in its buffer now or a moment
/// ago) is a burst; so is a notification: its sender waits for no answer, so more follow
/// at once (the connection tasks coalesce them).
fn flush(ctx: &Context) -> Flush {
    Flush::after(ctx.pipelines() || ctx.is_notification())
}

/// The RPC reply to a broker's answer: `render`ed, or the broker's error as its text.
async fn reply(
    answer: Result<Answer, RpcError>,
    render: fn(u64) -> Value,
) -> Result<Value, RpcError> {
    match answer?.await {
        Ok(done) => Ok(render(done.count)),
        Err(e) => Err(RpcError::message(e.to_string())),
    }
}

fn nil(_: u64) -> Value {
    Value::Nil
}

fn done(n: u64) -> Value {
    Value::from(n > 0)
}

/// A method that reads its arguments and hands a command to the broker.
fn command(
    s: &Shared,
    ctx: &Context,
    params: Vec<Value>,
    parse: fn(Vec<Value>) -> Result<NodeCommand, RpcError>,
) -> Result<Answer, RpcError> {
    Ok(s.broker.command(parse(params)?, flush(ctx)))
}

/// One row of the method table: reads the arguments and queues the work on the broker.
type Call = fn(&Shared, &Context, Vec<Value>) -> Result<Answer, RpcError>;

/// Registers one row. A broker that answers inline (the embedded one) gets an ordered
/// method: its answer is usually ready when the call returns, so no future is made per
/// call; a push that joined a fan-out in progress is answered when its pass queued it,
/// and the connection's next call waits for that (order is kept across streams and
/// methods).
fn add(
    builder: GuardedBuilder,
    shared: &Arc<Shared>,
    name: &str,
    arity: impl Into<Arity>,
    call: Call,
    render: fn(u64) -> Value,
) -> GuardedBuilder {
    let s = Arc::clone(shared);
    if shared.broker.answers_inline() {
        return builder.method_ordered(name, arity, move |ctx, p| match call(&s, ctx, p) {
            Err(e) => Outcome::Ready(Err(e)),
            Ok(Answer::Now(Some(Ok(done)))) => Outcome::Ready(Ok(render(done.count))),
            Ok(Answer::Now(Some(Err(e)))) => Outcome::Ready(Err(RpcError::message(e.to_string()))),
            Ok(answer) => Outcome::Wait(Box::pin(reply(Ok(answer), render))),
        });
    }
    builder.method(name, arity, move |ctx, p| {
        let answer = call(&s, &ctx, p);
        reply(answer, render)
    })
}

fn push_data(s: &Shared, ctx: &Context, mut p: Vec<Value>) -> Result<Answer, RpcError> {
    let payload = Payload::from_value(take(&mut p, 0));
    Ok(s.broker.publish(None, payload, flush(ctx)))
}

fn publish(s: &Shared, ctx: &Context, mut p: Vec<Value>) -> Result<Answer, RpcError> {
    let channel = string_arg(&p, 0, "channel")?;
    let payload = Payload::from_value(take(&mut p, 1));
    Ok(s.broker.publish(Some(&channel), payload, flush(ctx)))
}

fn send_user(s: &Shared, ctx: &Context, mut p: Vec<Value>) -> Result<Answer, RpcError> {
    let user = string_arg(&p, 0, "user")?;
    let payload = Payload::from_value(take(&mut p, 1));
    Ok(s.broker.send_user(&user, payload, flush(ctx)))
}

fn send(s: &Shared, ctx: &Context, p: Vec<Value>) -> Result<Answer, RpcError> {
    command(s, ctx, p, |mut p| {
        let id = conn_id_arg(&p, 0)?;
        Ok(NodeCommand::Send(id, Payload::from_value(take(&mut p, 1))))
    })
}

fn subscribe(s: &Shared, ctx: &Context, p: Vec<Value>) -> Result<Answer, RpcError> {
    command(s, ctx, p, |p| {
        Ok(NodeCommand::Subscribe(
            conn_id_arg(&p, 0)?,
            string_arg(&p, 1, "channel")?,
        ))
    })
}

fn unsubscribe(s: &Shared, ctx: &Context, p: Vec<Value>) -> Result<Answer, RpcError> {
    command(s, ctx, p, |p| {
        Ok(NodeCommand::Unsubscribe(
            conn_id_arg(&p, 0)?,
            string_arg(&p, 1, "channel")?,
        ))
    })
}

fn disconnect(s: &Shared, ctx: &Context, p: Vec<Value>) -> Result<Answer, RpcError> {
    command(s, ctx, p, |p| {
        let (id, code, reason) = disconnect_args(&p)?;
        Ok(NodeCommand::Disconnect(id, code, reason))
    })
}

/// `push_data`, `publish`, `send`, `send_user`, `subscribe`, `unsubscribe`, `disconnect`.
fn register_pushes(builder: GuardedBuilder, shared: &Arc<Shared>) -> GuardedBuilder {
    let b = add(builder, shared, "push_data", 1, push_data, nil);
    let b = add(b, shared, "publish", 2, publish, Value::from);
    let b = add(b, shared, "send_user", 2, send_user, Value::from);
    let b = add(b, shared, "send", 2, send, done);
    let b = add(b, shared, "subscribe", 2, subscribe, done);
    let b = add(b, shared, "unsubscribe", 2, unsubscribe, done);
    add(b, shared, "disconnect", 1..=3, disconnect, done)
}

/// The methods that only read state; `channels` is the whole cluster's with Redis.
fn register_queries(builder: GuardedBuilder, shared: &Arc<Shared>) -> GuardedBuilder {
    let s = Arc::clone(shared);
    let builder = builder.method_sync("connections", 0, move |_, _| {
        Ok(crate::rpc::render::connections_value(&s))
    });
    let s = Arc::clone(shared);
    let builder = match shared.broker.answers_inline() {
        true => builder.method_sync("channels", 0, move |_, _| {
            let map = s
                .hub
                .channels()
                .into_iter()
                .map(|(name, n)| (Value::from(name), Value::from(n)))
                .collect();
            Ok(Value::Map(map))
        }),
        // Every node's channels (a survey): the cluster's, as the API's `channels`.
        false => builder.method("channels", 0, move |_, _| {
            let s = Arc::clone(&s);
            async move {
                let all = crate::broker::survey::cluster_channels(&*s.broker)
                    .await
                    .map_err(|e| RpcError::message(e.to_string()))?;
                let map = all
                    .into_iter()
                    .map(|(name, n)| (Value::from(name), Value::from(n)))
                    .collect();
                Ok(Value::Map(map))
            }
        }),
    };
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
