//! MessagePack-RPC, wire-compatible with the stock Ruby, Python, Node, Java
//! and C++ clients, old and new.
//!
//! The protocol: a request `[0, msgid, method, params]` is answered by a
//! response `[1, msgid, error, result]` (in any order, matched by the u32
//! msgid); a notification `[2, method, params]` is never answered.
//!
//! ```text
//!            sans-IO (always built)                 tokio (feature "tokio", default)
//! bytes --> Decoder::decode --> Message --> Server: Registry --> handler (sync inline | ordered | async)
//!                                                   replies + Notifier frames --> one buffer --> one write
//! Message --> encode --> BytesMut (append, batch)   Client: call() --> msgid map <-- reader task
//! ```
//!
//! * [`Decoder`] takes bytes split anywhere and returns `Ok(None)` until a
//!   message is complete; it checks [`Limits`] from the headers before
//!   allocating and never rescans bytes it has seen. It accepts every str
//!   and bin width (pre-2013 raw included) for strings and method names,
//!   and keeps invalid UTF-8 as bytes. Malformed input is a [`DecodeError`].
//! * [`encode`] appends a message to a `BytesMut`; strings never use str8,
//!   which pre-2013 decoders do not know.
//! * [`Server`] (tokio): async, sync and ordered methods (inline, and a reply
//!   that may wait for a future, holding back the connection's next call: an
//!   [`Outcome`]) with an [`Arity`], the
//!   reference Ruby server's error strings, per-connection in-flight cap,
//!   connection caps (total and per IP), a timeout for half-sent messages,
//!   optional pre-authentication limits ([`AuthLimits`]),
//!   [`Notifier`] for server-to-client notifications, graceful shutdown.
//! * [`Client`] (tokio): pipelined calls, timeouts, notifications, a serde
//!   typed layer ([`Client::call_typed`]).
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "tokio")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use msgpack_rpc::{Client, RpcError, Server, Value};
//!
//! let server = Server::builder()
//!     .method("add", 2, |_ctx, params| async move {
//!         let (a, b) = (params[0].as_i64(), params[1].as_i64());
//!         match (a, b) {
//!             (Some(a), Some(b)) => Ok(Value::from(a + b)),
//!             _ => Err(RpcError::message("add takes two integers")),
//!         }
//!     })
//!     // Runs inline, in arrival order, on the connection task.
//!     .method_sync("push_data", 1, |_ctx, _params| Ok(Value::Nil))
//!     .build();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let serving = tokio::spawn(async move {
//!     server.serve_tcp(listener, async { let _ = stopped.await; }).await
//! });
//!
//! let client = Client::connect_tcp(addr).await?;
//! assert_eq!(client.call("add", vec![Value::from(2), Value::from(3)]).await?, Value::from(5));
//! let sum: i64 = client.call_typed("add", &(40, 2)).await?;
//! assert_eq!(sum, 42);
//! let err = client.call("nope", vec![]).await.unwrap_err();
//! assert_eq!(err.to_string(), "remote error: \"method `nope' is not accepted\"");
//!
//! stop.send(()).ok();
//! serving.await??;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "tokio"))]
//! # fn main() {}
//! ```

mod codec;
mod encode;
mod error;
mod message;
mod wire;

#[cfg(feature = "tokio")]
mod client;
#[cfg(feature = "tokio")]
mod hash;
#[cfg(feature = "tokio")]
mod server;

pub use codec::{Decoder, Limits};
pub use encode::{encode, encode_notification, encode_request, encode_value};
pub use error::{DecodeError, RpcError};
pub use message::{Message, NOTIFICATION, REQUEST, RESPONSE, method_name};
pub use rmpv::Value;

#[cfg(feature = "tokio")]
pub use client::{CallError, Client, ClientConfig, Notification};
#[cfg(feature = "tokio")]
pub use server::context::{Context, Notifier, NotifyError};
#[cfg(feature = "tokio")]
pub use server::methods::{Arity, Outcome};
#[cfg(feature = "tokio")]
pub use server::stats::{ServerStats, StatsHandle};
#[cfg(feature = "tokio")]
pub use server::{AuthLimits, DEFAULT_TCP_ADDR, Server, ServerBuilder, ServerConfig};
