//! The command-line tools: small MessagePack-RPC, HTTP API and WebSocket clients.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context as _, bail};
use msgpack_rpc::{Client, Value};

/// Where `wspush push` sends.
pub enum PushTo {
    /// `push_data`: every browser.
    Everyone,
    /// `publish`: one channel's subscribers.
    Channel(String),
    /// `send`: one connection.
    Connection(u64),
}

/// Connects to the server's RPC port, saying what to do when nothing listens.
pub async fn connect(addr: SocketAddr, unix: Option<&Path>) -> anyhow::Result<Client> {
    match unix {
        Some(path) => Client::connect_unix(path).await.with_context(|| {
            format!(
                "cannot connect to the wspush RPC socket {}: is `wspush serve --rpc-unix {}` running?",
                path.display(),
                path.display()
            )
        }),
        None => Client::connect_tcp(addr).await.with_context(|| {
            format!(
                "cannot connect to wspush RPC at {addr}: is `wspush serve` running (its --rpc is {addr})?"
            )
        }),
    }
}

/// Writes one line to stdout; a failed write (`wspush stats | head -1` closing the pipe) is
/// an error the caller returns, never a panic, and `main` ends quietly on a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

pub mod api;

/// Authenticates with the server's RPC secret (`auth(secret)`).
pub async fn auth(rpc: &Client, secret: &str) -> anyhow::Result<()> {
    rpc.call("auth", vec![Value::from(secret)])
        .await
        .context("the server refused the RPC secret (--rpc-secret / WSPUSH_RPC_SECRET)")?;
    Ok(())
}

/// `wspush push`.
pub async fn push(rpc: &Client, to: PushTo, data: Vec<u8>, binary: bool) -> anyhow::Result<()> {
    let data = if binary {
        Value::Binary(data)
    } else {
        Value::from(String::from_utf8(data).context("DATA is not UTF-8 text: use --binary")?)
    };
    // One line whatever the target: where it went, and how many connections it was queued
    // to when the server says (`push_data` answers nil: a broadcast is not counted).
    let (target, queued) = match to {
        PushTo::Everyone => {
            rpc.call("push_data", vec![data]).await?;
            ("every connection".to_owned(), None)
        }
        PushTo::Channel(channel) => {
            let n = rpc
                .call("publish", vec![Value::from(channel.as_str()), data])
                .await?;
            (format!("channel {channel}"), Some(n.as_u64().unwrap_or(0)))
        }
        PushTo::Connection(id) => {
            let found = rpc.call("send", vec![Value::from(id), data]).await?;
            if found.as_bool() != Some(true) {
                bail!("no connection {id}");
            }
            (format!("connection {id}"), Some(1))
        }
    };
    match queued {
        Some(n) => out!("pushed to {target}: queued to {n} connection(s)")?,
        None => out!("pushed to {target}")?,
    }
    Ok(())
}

/// `wspush stats`: the counters by group (as `/metrics` and the README list them), one
/// `name value` line each, aligned; keys this tool does not know (a newer server) last.
pub async fn stats(rpc: &Client) -> anyhow::Result<()> {
    let stats = rpc.call("stats", vec![]).await?;
    for line in stats_lines(&stats) {
        out!("{line}")?;
    }
    Ok(())
}

/// The lines of `wspush stats` for the `stats()` map.
fn stats_lines(stats: &Value) -> Vec<String> {
    let entries: Vec<(String, &Value)> = stats
        .as_map()
        .into_iter()
        .flatten()
        .map(|(k, v)| (display(k), v))
        .collect();
    let group_of = |key: &str| {
        wspush::stats::COUNTERS
            .iter()
            .find(|c| c.key == key)
            .map(|c| c.group)
            .or((key == "closes_by_code").then_some("connections"))
    };
    let mut groups: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut add =
        |group: &str, key: &str, value: String| match groups.iter_mut().find(|(g, _)| g == group) {
            Some((_, rows)) => rows.push((key.to_owned(), value)),
            None => groups.push((group.to_owned(), vec![(key.to_owned(), value)])),
        };
    // The groups in their order, whatever order the map came in.
    for c in wspush::stats::COUNTERS {
        add(c.group, "", String::new());
    }
    for (key, v) in &entries {
        match (group_of(key), v) {
            (Some(group), _) => add(group, key, display(v)),
            // Redis mode: every node's counters summed.
            (None, Value::Map(sums)) if key == "cluster" => {
                for (k, v) in sums {
                    add("cluster (all nodes)", &display(k), display(v));
                }
            }
            (None, _) => add("other", key, display(v)),
        }
    }
    let width = groups
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|(k, _)| k.len()))
        .max()
        .unwrap_or(0);
    let mut lines = Vec::new();
    for (group, rows) in groups {
        let rows: Vec<_> = rows.into_iter().filter(|(k, _)| !k.is_empty()).collect();
        if rows.is_empty() {
            continue;
        }
        lines.push(group);
        lines.extend(rows.iter().map(|(k, v)| format!("  {k:<width$}  {v}")));
    }
    lines
}

/// `wspush connections`: one line per connection.
pub async fn connections(rpc: &Client) -> anyhow::Result<()> {
    let list = rpc.call("connections", vec![]).await?;
    out!(
        "{:>8}  {:<22} {:>8}  {:<24} channels",
        "id",
        "peer",
        "queued",
        "path"
    )?;
    for conn in list.as_array().into_iter().flatten() {
        let field = |name: &str| {
            conn.as_map()
                .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some(name)))
                .map(|(_, v)| display(v))
                .unwrap_or_default()
        };
        out!(
            "{:>8}  {:<22} {:>8}  {:<24} {}",
            field("id"),
            field("peer"),
            field("queued_bytes"),
            field("path"),
            field("channels")
        )?;
    }
    Ok(())
}

/// `wspush listen`: prints browser events until the server goes away.
pub async fn listen(rpc: Client) -> anyhow::Result<()> {
    let mut events = rpc.notifications();
    rpc.call("listen", vec![]).await?;
    eprintln!("listening for browser events (Ctrl-C to stop)");
    while let Some(event) = events.recv().await {
        let args: Vec<String> = event.params.iter().map(display).collect();
        out!(
            "{} {}",
            String::from_utf8_lossy(&event.method),
            args.join(" ")
        )?;
    }
    bail!("the server closed the connection")
}

/// `wspush tail URL`: prints every message received on a WebSocket.
pub async fn tail(url: &str, count: Option<u64>) -> anyhow::Result<()> {
    let mut client = ws_server::client::connect(url)
        .await
        .with_context(|| format!("cannot open a WebSocket to {url}"))?;
    eprintln!("connected to {url}");
    let mut seen = 0u64;
    while count.is_none_or(|n| seen < n) {
        match client.recv_message().await? {
            Some(ws_server::Message::Text(t)) => out!("{}", String::from_utf8_lossy(&t))?,
            Some(ws_server::Message::Binary(b)) => out!("<binary {} bytes>", b.len())?,
            None => bail!("the server closed the connection"),
        }
        seen += 1;
    }
    client.close(1000, "").await?;
    Ok(())
}

/// A value as a person reads it: strings bare, a map of counts (`closes_by_code`) as
/// `key=value` pairs (`none` when empty), everything else as JSON.
fn display(v: &Value) -> String {
    match v {
        Value::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        Value::Map(m) if m.is_empty() => "none".into(),
        Value::Map(m) if m.iter().all(|(_, v)| v.is_u64()) => m
            .iter()
            .map(|(k, v)| format!("{}={}", display(k), display(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => wspush::delivery::payload::to_json(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_grouped_and_aligned_with_unknown_keys_last() {
        let map = |pairs: Vec<(&str, Value)>| {
            Value::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (Value::from(k), v))
                    .collect(),
            )
        };
        let stats = map(vec![
            ("broker_connected", Value::from(0)),
            ("pushes", Value::from(3)),
            ("from_a_newer_server", Value::from(1)),
            ("connections", Value::from(2)),
            ("closes_by_code", map(vec![("1000", Value::from(4))])),
        ]);
        let lines = stats_lines(&stats);
        let w = "from_a_newer_server".len();
        assert_eq!(
            lines,
            [
                "connections".to_owned(),
                format!("  {:<w$}  2", "connections"),
                format!("  {:<w$}  1000=4", "closes_by_code"),
                "delivery".to_owned(),
                format!("  {:<w$}  3", "pushes"),
                "broker".to_owned(),
                format!("  {:<w$}  0", "broker_connected"),
                "other".to_owned(),
                format!("  {:<w$}  1", "from_a_newer_server"),
            ]
        );
    }
}
