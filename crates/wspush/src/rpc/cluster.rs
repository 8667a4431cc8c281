//! The pushing and connection methods with the Redis broker.
//!
//! Each method body runs inline at arrival (the RPC server calls the handler
//! before it reads the next message) and queues its Redis command there, so
//! one program's pushes reach Redis, and hence every browser, in call order;
//! only the wait for Redis's answer is asynchronous. A push fails with an RPC
//! error (`broker unavailable: …`) when Redis is down, never silently; one
//! that this node receives itself also fails while this node's subscription
//! is down (`subscription not ready`) and succeeds only once it came back on
//! that subscription (see `broker::receipts`).
//!
//! `send`, `subscribe`, `unsubscribe` and `disconnect` go through Redis to the
//! node that holds the connection (its number is in the id), even when that
//! is this node, so that they keep their order with the caller's pushes.
//! Their result says whether that node is up, not whether the connection exists.

use std::pin::Pin;
use std::sync::Arc;

use msgpack_rpc::{RpcError, Value};

use crate::broker::bus::NodeCommand;
use crate::broker::{BrokerError, RedisBroker, node_of};
use crate::delivery::payload::Payload;
use crate::rpc::args::{conn_id_arg, disconnect_args, string_arg, take};
use crate::rpc::auth::GuardedBuilder;
use crate::shared::Shared;

fn rpc_error(e: BrokerError) -> RpcError {
    RpcError::message(e.to_string())
}

type Reply = Pin<Box<dyn Future<Output = Result<Value, RpcError>> + Send>>;
type Answer = Pin<Box<dyn Future<Output = Result<u64, BrokerError>> + Send>>;

/// Runs `queue` now (in arrival order) and maps the broker's answer with `done`.
fn call(
    shared: &Arc<Shared>,
    queue: impl FnOnce(&RedisBroker) -> Result<Answer, RpcError>,
    done: fn(u64) -> Value,
) -> Reply {
    let queued = match &shared.broker {
        Some(broker) => queue(broker),
        None => Err(rpc_error(BrokerError::Closed)),
    };
    Box::pin(async move {
        let answer = queued?.await.map_err(rpc_error)?;
        Ok(done(answer))
    })
}

fn boxed(f: impl Future<Output = Result<u64, BrokerError>> + Send + 'static) -> Answer {
    Box::pin(f)
}

fn node_command(
    shared: &Arc<Shared>,
    params: Vec<Value>,
    parse: fn(Vec<Value>) -> Result<NodeCommand, RpcError>,
) -> Reply {
    call(
        shared,
        |broker| {
            let cmd = parse(params)?;
            let id = match &cmd {
                NodeCommand::Send(id, _)
                | NodeCommand::Subscribe(id, _)
                | NodeCommand::Unsubscribe(id, _)
                | NodeCommand::Disconnect(id, _, _) => *id,
            };
            Ok(boxed(broker.command(node_of(id), &cmd)))
        },
        |nodes| Value::from(nodes > 0),
    )
}

/// Registers `push_data`, `publish`, `send`, `subscribe`, `unsubscribe`, `send_user`,
/// `disconnect`. `send_user` goes to every node on the shared bus and answers how many nodes
/// listen.
pub fn register(builder: GuardedBuilder, shared: &Arc<Shared>) -> GuardedBuilder {
    let s = Arc::clone(shared);
    let builder = builder.method("push_data", 1, move |_, mut p| {
        let payload = Payload::from_value(take(&mut p, 0));
        call(&s, |b| Ok(boxed(b.publish(None, &payload))), |_| Value::Nil)
    });
    let s = Arc::clone(shared);
    let builder = builder.method("publish", 2, move |_, mut p| {
        let channel = string_arg(&p, 0, "channel");
        let payload = Payload::from_value(take(&mut p, 1));
        call(
            &s,
            |b| Ok(boxed(b.publish(Some(&channel?), &payload))),
            Value::from,
        )
    });
    let s = Arc::clone(shared);
    let builder = builder.method("send", 2, move |_, p| {
        node_command(&s, p, |mut p| {
            let id = conn_id_arg(&p, 0)?;
            Ok(NodeCommand::Send(id, Payload::from_value(take(&mut p, 1))))
        })
    });
    let s = Arc::clone(shared);
    let builder = builder.method("subscribe", 2, move |_, p| {
        node_command(&s, p, |p| {
            Ok(NodeCommand::Subscribe(
                conn_id_arg(&p, 0)?,
                string_arg(&p, 1, "channel")?,
            ))
        })
    });
    let s = Arc::clone(shared);
    let builder = builder.method("unsubscribe", 2, move |_, p| {
        node_command(&s, p, |p| {
            Ok(NodeCommand::Unsubscribe(
                conn_id_arg(&p, 0)?,
                string_arg(&p, 1, "channel")?,
            ))
        })
    });
    let s = Arc::clone(shared);
    let builder = builder.method("send_user", 2, move |_, mut p| {
        let user = string_arg(&p, 0, "user");
        let payload = Payload::from_value(take(&mut p, 1));
        call(&s, |b| Ok(boxed(b.send_user(&user?, payload))), Value::from)
    });
    let s = Arc::clone(shared);
    builder.method("disconnect", 1..=3, move |_, p| {
        node_command(&s, p, |p| {
            let (id, code, reason) = disconnect_args(&p)?;
            Ok(NodeCommand::Disconnect(id, code, reason))
        })
    })
}
