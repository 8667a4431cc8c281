//! The command-line tools: small MessagePack-RPC and WebSocket clients.

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
    // One line whatever the target: what was pushed where, and what the server answered.
    match to {
        PushTo::Everyone => {
            rpc.call("push_data", vec![data]).await?;
            out!("pushed to every connection")?;
        }
        PushTo::Channel(channel) => {
            let n = rpc
                .call("publish", vec![Value::from(channel.as_str()), data])
                .await?;
            out!(
                "pushed to channel {channel}: queued to {} connection(s)",
                n.as_u64().unwrap_or(0)
            )?;
        }
        PushTo::Connection(id) => {
            let found = rpc.call("send", vec![Value::from(id), data]).await?;
            if found.as_bool() != Some(true) {
                bail!("no connection {id}");
            }
            out!("pushed to connection {id}: queued to 1 connection(s)")?;
        }
    }
    Ok(())
}

/// `wspush stats`: one `name value` line per counter.
pub async fn stats(rpc: &Client) -> anyhow::Result<()> {
    let stats = rpc.call("stats", vec![]).await?;
    for (k, v) in stats.as_map().into_iter().flatten() {
        out!("{:<18} {}", display(k), display(v))?;
    }
    Ok(())
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

/// A value as a person reads it: strings bare, everything else as JSON.
fn display(v: &Value) -> String {
    match v {
        Value::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        other => wspush::delivery::payload::to_json(other),
    }
}
