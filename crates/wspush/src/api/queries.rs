//! The API methods that read: `presence`, `presence_stats`, `history`, `history_remove`,
//! `channels`, `info`, and wspush's `stats` and `connections` (the RPC methods' twins).
//!
//! Presence, channels and info are the whole cluster's: a survey of every node through
//! the broker ([`crate::broker::survey`]; the embedded broker answers for itself at
//! once), failing (503) rather than answering for part of it. History is the broker's,
//! so any node answers it alike.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::Door;
use super::history::{Since, select};
use super::wire::{ApiError, Reply, decode, empty, to_raw};
use crate::broker::control::{Member, NodeInfo, Query, Report};
use crate::delivery::payload::to_json;

#[derive(Deserialize)]
struct ChannelOnly {
    #[serde(default)]
    channel: String,
}

fn channel_of(params: &[u8]) -> Result<String, ApiError> {
    let p: ChannelOnly = decode(params)?;
    match p.channel.is_empty() {
        true => Err(ApiError::BadRequest("channel is required")),
        false => Ok(p.channel),
    }
}

#[derive(Serialize)]
struct ClientInfo {
    client: String,
    user: String,
}

/// Every node's subscribers of `channel`, ordered by id.
async fn members(door: &Door, channel: String) -> Result<Vec<Member>, ApiError> {
    let reports = door
        .shared
        .broker
        .survey(Query::Presence { channel })
        .await?;
    let mut all: Vec<Member> = reports
        .into_iter()
        .flat_map(|r| match r {
            Report::Presence { members } => members,
            _ => Vec::new(),
        })
        .collect();
    all.sort_by_key(|m| m.id);
    Ok(all)
}

/// `presence`: `channel` → `{presence: {client id: {client, user}}}` (`{}` when none),
/// over every node.
pub async fn presence(door: &Door, params: &[u8]) -> Reply {
    let channel = channel_of(params)?;
    let presence: BTreeMap<String, ClientInfo> = members(door, channel)
        .await?
        .into_iter()
        .map(|m| {
            let client = m.id.to_string();
            let user = m.user.unwrap_or_default();
            (client.clone(), ClientInfo { client, user })
        })
        .collect();
    Ok(to_raw(&serde_json::json!({ "presence": presence })))
}

/// `presence_stats`: `channel` → `{num_clients, num_users}` over every node (connections
/// without a user count as one user, `""`, as Centrifugo counts anonymous clients).
pub async fn presence_stats(door: &Door, params: &[u8]) -> Reply {
    let channel = channel_of(params)?;
    let present = members(door, channel).await?;
    let users: HashSet<&str> = present
        .iter()
        .map(|p| p.user.as_deref().unwrap_or(""))
        .collect();
    Ok(to_raw(
        &serde_json::json!({"num_clients": present.len(), "num_users": users.len()}),
    ))
}

#[derive(Deserialize)]
struct History {
    #[serde(default)]
    channel: String,
    #[serde(default)]
    limit: i64,
    #[serde(default)]
    since: Option<Since>,
    #[serde(default)]
    reverse: bool,
}

/// `history`: `channel`, `limit` (0: the position only; negative: all kept), `since
/// {offset, epoch}`, `reverse` → `{publications: [{data, offset}], offset, epoch}`.
pub async fn history(door: &Door, params: &[u8]) -> Reply {
    let p: History = decode(params)?;
    if p.channel.is_empty() {
        return Err(ApiError::BadRequest("channel is required"));
    }
    let read = door.shared.try_read_history(Some(&p.channel)).await?;
    let (epoch, top) = (read.epoch.clone(), read.last_seq);
    let publications = select(read, p.limit, p.since.as_ref(), p.reverse)?;
    let list: Vec<&str> = publications.iter().map(|p| p.get()).collect();
    let epoch = serde_json::to_string(&*epoch).unwrap_or_else(|_| "\"\"".into());
    let text = format!(
        "{{\"publications\":[{}],\"offset\":{top},\"epoch\":{epoch}}}",
        list.join(",")
    );
    RawValue::from_string(text).map_err(|e| ApiError::Decode(e.to_string()))
}

/// `history_remove`: `channel` → `{}`; its kept messages go, its position stays.
pub async fn history_remove(door: &Door, params: &[u8]) -> Reply {
    let channel = channel_of(params)?;
    door.shared.remove_history(Some(&channel)).await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct Channels {
    #[serde(default)]
    pattern: String,
}

#[derive(Serialize)]
struct ChannelInfo {
    num_clients: u64,
}

/// `channels`: optional `pattern` (a glob, see [`super::glob`]) → `{channels: {name:
/// {num_clients}}}` over every node.
pub async fn channels(door: &Door, params: &[u8]) -> Reply {
    let p: Channels = decode(params)?;
    let channels: BTreeMap<String, ChannelInfo> =
        crate::broker::survey::cluster_channels(&*door.shared.broker)
            .await?
            .into_iter()
            .filter(|(name, _)| p.pattern.is_empty() || super::glob::matches(&p.pattern, name))
            .map(|(name, n)| (name, ChannelInfo { num_clients: n }))
            .collect();
    Ok(to_raw(&serde_json::json!({ "channels": channels })))
}

/// `info`: `{nodes: [...]}`, every live node with Centrifugo's node fields (ordered by
/// node number).
pub async fn info(door: &Door) -> Reply {
    let mut nodes: Vec<NodeInfo> = door
        .shared
        .broker
        .survey(Query::Info)
        .await?
        .into_iter()
        .filter_map(|r| match r {
            Report::Info(info) => Some(info),
            _ => None,
        })
        .collect();
    nodes.sort_by_key(|n| n.node);
    let nodes: Vec<_> = nodes
        .into_iter()
        .map(|n| {
            serde_json::json!({
                "uid": n.uid,
                "name": n.name,
                "version": n.version,
                "num_clients": n.clients,
                "num_users": n.users,
                "num_channels": n.channels,
                "num_subs": n.subs,
                "uptime": n.uptime,
            })
        })
        .collect();
    Ok(to_raw(&serde_json::json!({ "nodes": nodes })))
}

/// `stats`: RPC `stats()` as JSON (the same map, the same names).
pub fn stats(door: &Door) -> Reply {
    raw(to_json(&door.shared.stats_value()))
}

/// `connections`: `{connections: [...]}`, RPC `connections()` as JSON.
pub fn connections(door: &Door) -> Reply {
    let list = to_json(&crate::rpc::render::connections_value(&door.shared));
    raw(format!("{{\"connections\":{list}}}"))
}

fn raw(text: String) -> Reply {
    RawValue::from_string(text).map_err(|e| ApiError::Decode(e.to_string()))
}
