//! The classic echo server used by conformance suites (Autobahn|Testsuite).
//!
//! `cargo run --release -p ws-server --example echo -- PORT` listens on `127.0.0.1:PORT` and
//! echoes every message, with permessage-deflate enabled and a 64 MiB message limit (the
//! suites send 16 MiB messages). Ctrl-C shuts it down gracefully (close 1001).
//!
//! `echo PORT --direct` answers with `Connection::send_prepared_now` instead, so the suites
//! also check the frames a sender writes to the socket itself.

use std::sync::Arc;
use std::time::Duration;

use ws_server::{Connection, Echo, Handler, Message, PreparedMessage, Server, ServerConfig};

/// Echoes through the direct-write path (see the module docs).
struct DirectEcho;

impl Handler for DirectEcho {
    async fn on_message(&self, conn: &Connection, msg: Message) {
        let prepared = Arc::new(PreparedMessage::new(msg));
        let _ = conn.send_prepared_now(&prepared);
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        Some(Ok(port)) => port,
        None => 9001,
        Some(Err(e)) => {
            eprintln!("usage: echo [PORT]: {e}");
            std::process::exit(2);
        }
    };
    let mut config = ServerConfig::default();
    config.proto.max_message_size = 64 << 20;
    config.proto.max_frame_size = 64 << 20;
    // An echo of a 16 MiB message must fit the outbound queue.
    config.outbound_queue_bytes = 128 << 20;
    config.ping_interval = Some(Duration::from_secs(60));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("echo: listening on ws://{}", listener.local_addr()?);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if std::env::args().nth(2).as_deref() == Some("--direct") {
        Server::new(config, DirectEcho)
            .serve(listener, shutdown)
            .await
    } else {
        Server::new(config, Echo).serve(listener, shutdown).await
    }
}
