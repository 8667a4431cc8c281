//! The 2010 seed program, ported line for line onto the two libraries (not the wspush hub).
//!
//! ```text
//! cargo run -p wspush --example seed -- [WS_PORT] [RPC_PORT]      # defaults 8080 18800
//! ```
//!
//! Browsers connect to `ws://HOST:8080/`; any program calls `push_data(data)` over
//! MessagePack-RPC on `127.0.0.1:18800` and every open socket receives `data`. The original,
//! on Rev-WebSocket and msgpack-rpc on one Rev event loop:
//!
//! ```ruby
//! $sockets = []
//!
//! class MyConnection < Rev::WebSocket
//!   def on_open
//!     puts "WebSocket opened from '#{peeraddr[2]}': request=#{request.inspect}"
//!     $sockets << self
//!   end
//!   def on_message(data)
//!     puts "WebSocket data received: '#{data}'"
//!   end
//!   def on_close
//!     puts "WebSocket closed"
//!     $sockets.delete(self)
//!   end
//! end
//!
//! class RPCServer
//!   def push_data(data)
//!     $sockets.each {|sock| sock.send_message(data) }
//!     nil
//!   end
//! end
//!
//! rpc = MessagePack::RPC::Server.new
//! rpc.listen('127.0.0.1', 18800, RPCServer.new)
//! Rev::Loop.default.attach(rpc)
//! server = Rev::WebSocketServer.new('0.0.0.0', 8080, MyConnection)
//! server.attach(Rev::Loop.default)
//! Rev::Loop.default.run
//! ```

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use msgpack_rpc::Value;
use tokio::net::TcpListener;
use ws_server::{CloseInfo, Connection, Handler, Message, Request, ServerConfig};

/// `$sockets`: every open WebSocket.
pub type Sockets = Arc<Mutex<Vec<Connection>>>;

/// `class MyConnection < Rev::WebSocket`.
pub struct MyConnection {
    /// The shared `$sockets`.
    pub sockets: Sockets,
}

impl Handler for MyConnection {
    async fn on_open(&self, conn: &Connection, req: &Request) {
        println!(
            "WebSocket opened from '{}': request={} {} {:?}",
            conn.peer_addr(),
            req.method(),
            req.uri(),
            req.headers()
        );
        lock(&self.sockets).push(conn.clone());
    }

    async fn on_message(&self, _conn: &Connection, msg: Message) {
        println!(
            "WebSocket data received: '{}'",
            String::from_utf8_lossy(msg.as_bytes())
        );
    }

    async fn on_close(&self, conn: &Connection, _close: CloseInfo) {
        println!("WebSocket closed");
        lock(&self.sockets).retain(|sock| sock.id() != conn.id());
    }
}

/// `class RPCServer` with `push_data(data)`: sends to every socket, returns nil.
pub fn rpc_server(sockets: Sockets) -> msgpack_rpc::Server {
    msgpack_rpc::Server::builder()
        .method_sync("push_data", 1, move |_ctx, params| {
            // Ruby's send_message took a string; anything else is sent as its text.
            let data = match params.first() {
                Some(Value::String(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            for sock in lock(&sockets).iter() {
                let _ = sock.send_text(data.clone());
            }
            Ok(Value::Nil)
        })
        .build()
}

/// Both servers on the current runtime, forever (`Rev::Loop.default.run`).
pub async fn run(ws: TcpListener, rpc: TcpListener) -> io::Result<()> {
    let sockets = Sockets::default();
    let rpc_server = rpc_server(Arc::clone(&sockets));
    let ws_server = ws_server::Server::new(ServerConfig::default(), MyConnection { sockets });
    tokio::try_join!(
        rpc_server.serve_tcp(rpc, std::future::pending()),
        ws_server.serve(ws, std::future::pending()),
    )?;
    Ok(())
}

/// A poisoned list is still a list of sockets: a panicking handler must not stop pushes.
fn lock(sockets: &Sockets) -> std::sync::MutexGuard<'_, Vec<Connection>> {
    sockets.lock().unwrap_or_else(PoisonError::into_inner)
}

fn port_arg(n: usize, default: u16) -> u16 {
    match std::env::args().nth(n).map(|p| p.parse()) {
        None => default,
        Some(Ok(port)) => port,
        Some(Err(e)) => {
            eprintln!("usage: seed [WS_PORT] [RPC_PORT]: {e}");
            std::process::exit(2);
        }
    }
}

/// One event loop, as `Rev::Loop.default` was.
#[tokio::main(flavor = "current_thread")]
async fn main() -> io::Result<()> {
    let rpc = TcpListener::bind(("127.0.0.1", port_arg(2, 18800))).await?;
    let ws = TcpListener::bind(("0.0.0.0", port_arg(1, 8080))).await?;
    println!(
        "seed: WebSocket on ws://{}/, push_data on {}",
        ws.local_addr()?,
        rpc.local_addr()?
    );
    run(ws, rpc).await
}
