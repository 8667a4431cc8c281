//! The API methods that push or command, each the twin of an RPC method and written
//! against the same [`crate::broker::Broker`]: `publish`, `broadcast`, `push_data`,
//! `send`, `send_user`, `subscribe`, `unsubscribe`, `disconnect`.
//!
//! Each queues its work on the broker before it awaits the answer, and one HTTP
//! connection's requests run one after another, so one program's pushes over one
//! keep-alive connection reach every browser in request order.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::Door;
use super::wire::{ApiError, Data, Reply, decode, empty, payload_of, to_raw};
use crate::broker::bus::NodeCommand;
use crate::broker::control::UserCommand;
use crate::broker::interface::{Answer, Done};
use crate::delivery::flush::Flush;
use crate::delivery::payload::Payload;

/// `{"offset":N,"epoch":"E"}` of a publish (`{}` when the broker gave no position: a
/// `skip_history` publish is not numbered, and Centrifugo answers no position for it).
fn position_result(done: &Done) -> Box<RawValue> {
    match &done.position {
        Some(p) => to_raw(&serde_json::json!({"offset": p.seq, "epoch": &*p.epoch})),
        None => empty(),
    }
}

#[derive(Deserialize)]
struct Publish<'a> {
    #[serde(default)]
    channel: String,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    b64data: String,
    #[serde(default)]
    skip_history: bool,
    #[serde(default)]
    idempotency_key: String,
}

/// A publish to `channel`: numbered and kept, or with `skip_history` delivered live only.
fn publish_to(door: &Door, channel: &str, payload: Payload, skip: bool, flush: Flush) -> Answer {
    let broker = &door.shared.broker;
    match skip {
        true => broker.publish_live(channel, payload, flush),
        false => broker.publish(Some(channel), payload, flush),
    }
}

/// `publish`: `channel`, `data` | `b64data`, `skip_history`, `idempotency_key` →
/// `{offset, epoch}` (`{}` with `skip_history`: delivered live, neither kept nor numbered).
pub async fn publish(door: &Door, params: &[u8], body: &Bytes, flush: Flush) -> Reply {
    let p: Publish<'_> = decode(params)?;
    if p.channel.is_empty() {
        return Err(ApiError::BadRequest("channel is required"));
    }
    let payload = payload_of(&Data::new(p.data, &p.b64data), body)?;
    let run = || async {
        let done = publish_to(door, &p.channel, payload, p.skip_history, flush).await?;
        Ok::<_, ApiError>(done)
    };
    let done = match p.idempotency_key.is_empty() {
        true => run().await?,
        false => {
            door.idempotency
                .once(&p.channel, &p.idempotency_key, run)
                .await?
        }
    };
    Ok(position_result(&done))
}

#[derive(Deserialize)]
struct Broadcast<'a> {
    #[serde(default)]
    channels: Vec<String>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    b64data: String,
    #[serde(default)]
    skip_history: bool,
}

/// `broadcast`: `channels`, `data` | `b64data`, `skip_history` → `{responses: [{result} |
/// {error}]}`, in the order of `channels`.
pub async fn broadcast(door: &Door, params: &[u8], body: &Bytes, flush: Flush) -> Reply {
    let p: Broadcast<'_> = decode(params)?;
    if p.channels.is_empty() {
        return Err(ApiError::BadRequest("channels is required"));
    }
    let payload = payload_of(&Data::new(p.data, &p.b64data), body)?;
    // Every publish queued first (in order), then the answers awaited.
    let answers: Vec<_> = p
        .channels
        .iter()
        .enumerate()
        .map(|(i, channel)| {
            let more = Flush::after(i + 1 < p.channels.len() || matches!(flush, Flush::Burst));
            (!channel.is_empty())
                .then(|| publish_to(door, channel, payload.clone(), p.skip_history, more))
        })
        .collect();
    let mut responses = Vec::with_capacity(answers.len());
    for answer in answers {
        let reply: Reply = match answer {
            None => Err(ApiError::BadRequest("empty channel name")),
            Some(answer) => answer
                .await
                .map(|d| position_result(&d))
                .map_err(Into::into),
        };
        responses.push(super::wire::single(&reply));
    }
    let list = format!("{{\"responses\":[{}]}}", responses.join(","));
    RawValue::from_string(list).map_err(|e| ApiError::Decode(e.to_string()))
}

#[derive(Deserialize)]
struct PushData<'a> {
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    b64data: String,
}

/// `push_data`: `data` | `b64data` to the broadcast stream (every browser) →
/// `{offset, epoch}`.
pub async fn push_data(door: &Door, params: &[u8], body: &Bytes, flush: Flush) -> Reply {
    let p: PushData<'_> = decode(params)?;
    let payload = payload_of(&Data::new(p.data, &p.b64data), body)?;
    let done = door.shared.broker.publish(None, payload, flush).await?;
    Ok(position_result(&done))
}

#[derive(Deserialize)]
struct Send<'a> {
    #[serde(default)]
    client: String,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    b64data: String,
}

/// A connection id as the API spells it: the decimal string `connections` shows.
fn client_id(client: &str) -> Result<u64, ApiError> {
    client
        .parse()
        .map_err(|_| ApiError::BadRequest("client must be a connection id (digits)"))
}

/// `send`: `client`, `data` | `b64data` to one connection → `{sent: bool}` (with Redis:
/// whether its node listens, as RPC `send` answers).
pub async fn send(door: &Door, params: &[u8], body: &Bytes, flush: Flush) -> Reply {
    let p: Send<'_> = decode(params)?;
    let id = client_id(&p.client)?;
    let payload = payload_of(&Data::new(p.data, &p.b64data), body)?;
    let command = NodeCommand::Send(id, payload);
    let done = door.shared.broker.command(command, flush).await?;
    Ok(to_raw(&serde_json::json!({"sent": done.count > 0})))
}

#[derive(Deserialize)]
struct SendUser<'a> {
    #[serde(default)]
    user: String,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    b64data: String,
}

/// `send_user`: `user`, `data` | `b64data` to every connection of that user →
/// `{count}` (connections embedded, nodes listening with Redis, as RPC answers).
pub async fn send_user(door: &Door, params: &[u8], body: &Bytes, flush: Flush) -> Reply {
    let p: SendUser<'_> = decode(params)?;
    if p.user.is_empty() {
        return Err(ApiError::BadRequest("user is required"));
    }
    let payload = payload_of(&Data::new(p.data, &p.b64data), body)?;
    let done = door
        .shared
        .broker
        .send_user(&p.user, payload, flush)
        .await?;
    Ok(to_raw(&serde_json::json!({"count": done.count})))
}

/// A by-user command: for one connection (`client` given, any node: the id carries its
/// node) through [`NodeCommand`], else for every connection of `user` on every node.
enum Target {
    Client(u64),
    User(String),
}

fn target(user: String, client: &str) -> Result<Target, ApiError> {
    match (client.is_empty(), user.is_empty()) {
        (false, _) => Ok(Target::Client(client_id(client)?)),
        (true, false) => Ok(Target::User(user)),
        (true, true) => Err(ApiError::BadRequest("user or client is required")),
    }
}

async fn run(answer: Answer) -> Reply {
    answer.await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct Membership {
    #[serde(default)]
    user: String,
    #[serde(default)]
    client: String,
    #[serde(default)]
    channel: String,
}

/// `subscribe` and `unsubscribe`: `user` (or `client`) to or from `channel` → `{}`.
pub async fn membership(door: &Door, params: &[u8], join: bool, flush: Flush) -> Reply {
    let p: Membership = decode(params)?;
    if p.channel.is_empty() {
        return Err(ApiError::BadRequest("channel is required"));
    }
    let broker = &door.shared.broker;
    let (channel, target) = (p.channel, target(p.user, &p.client)?);
    run(match (target, join) {
        (Target::Client(id), true) => broker.command(NodeCommand::Subscribe(id, channel), flush),
        (Target::Client(id), false) => broker.command(NodeCommand::Unsubscribe(id, channel), flush),
        (Target::User(user), true) => {
            broker.user_command(UserCommand::Subscribe { user, channel }, flush)
        }
        (Target::User(user), false) => {
            broker.user_command(UserCommand::Unsubscribe { user, channel }, flush)
        }
    })
    .await
}

#[derive(Deserialize, Default)]
struct CloseReason {
    #[serde(default)]
    code: u32,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
struct Disconnect {
    #[serde(default)]
    user: String,
    #[serde(default)]
    client: String,
    #[serde(default)]
    whitelist: Vec<String>,
    #[serde(default)]
    disconnect: Option<CloseReason>,
}

/// Centrifugo's default: 3503 "force disconnect" (a terminal code: do not reconnect).
const FORCE_DISCONNECT: (u16, &str) = (3503, "force disconnect");

/// `disconnect`: `user` (or `client`), but not those in `whitelist`, closed with
/// `disconnect {code, reason}` → `{}`.
pub async fn disconnect(door: &Door, params: &[u8], flush: Flush) -> Reply {
    let p: Disconnect = decode(params)?;
    let (code, reason) = match p.disconnect {
        None => (FORCE_DISCONNECT.0, FORCE_DISCONNECT.1.to_owned()),
        Some(d) => {
            let code = u16::try_from(d.code)
                .ok()
                .filter(|c| ws_proto::close::is_valid_wire_code(*c))
                .ok_or(ApiError::BadRequest(
                    "disconnect.code: use 1000-1003, 1007-1014 or 3000-4999",
                ))?;
            (code, d.reason)
        }
    };
    // RFC 6455 §5.5: a control frame payload is at most 125 bytes, 2 of them the code.
    if reason.len() > 123 {
        return Err(ApiError::BadRequest(
            "disconnect.reason is longer than 123 bytes",
        ));
    }
    let keep: Vec<u64> = p.whitelist.iter().filter_map(|w| w.parse().ok()).collect();
    let broker = &door.shared.broker;
    run(match target(p.user, &p.client)? {
        Target::Client(id) if keep.contains(&id) => return Ok(empty()),
        Target::Client(id) => broker.command(NodeCommand::Disconnect(id, code, reason), flush),
        Target::User(user) => {
            let command = UserCommand::Disconnect {
                user,
                code,
                reason,
                keep,
            };
            broker.user_command(command, flush)
        }
    })
    .await
}
