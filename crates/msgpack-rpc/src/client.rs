//! The tokio client: many calls in flight on one connection, matched to
//! replies by msgid.
//!
//! ```text
//! call() --encode under lock--> shared output buffer --writer task: one write per wake-up--> socket
//! socket --reader task: Decoder--> Response: msgid map --> oneshot --> call() returns
//!                                  Notification --> notifications() receiver
//! ```
//! When the connection ends (either side), every pending call fails at
//! once with [`CallError::Closed`].

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rmpv::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::codec::{Decoder, Limits};
use crate::encode::{encode_notification, encode_request};
use crate::hash::FastMap;
use crate::message::Message;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The server answered with this error value (the reference server
    /// sends a string such as ``"method `x' is not accepted"``).
    #[error("remote error: {0}")]
    Remote(Value),
    /// No reply within the call's timeout; a late reply is discarded.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The connection ended (or had ended) before the reply came.
    #[error("connection closed: {0}")]
    Closed(Arc<str>),
    /// The typed layer could not turn params into MessagePack.
    #[error("cannot encode params: {0}")]
    Encode(#[source] rmpv::ext::Error),
    /// The typed layer could not turn the result into the requested type.
    #[error("cannot decode result: {0}")]
    Decode(#[source] rmpv::ext::Error),
}

/// Client settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConfig {
    /// Decoder limits for replies (default: [`Limits::default`]).
    pub limits: Limits,
    /// Timeout of [`Client::call`] (default 10 s, the stock Ruby client's;
    /// `None` waits until the reply or the connection's end).
    pub call_timeout: Option<Duration>,
    /// Capacity of the [`Client::notifications`] queue (default 1024).
    pub notification_queue: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            limits: Limits::default(),
            call_timeout: Some(Duration::from_secs(10)),
            notification_queue: 1024,
        }
    }
}

/// A notification (`[2, method, params]`) sent by the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The method name bytes.
    pub method: Bytes,
    /// The arguments.
    pub params: Vec<Value>,
}

type Reply = Result<Value, CallError>;

struct State {
    next_id: u32,
    pending: HashMap<u32, oneshot::Sender<Reply>, FastMap>,
    /// Encoded messages the writer has not taken yet.
    out: BytesMut,
    /// Set once: why the connection is gone.
    closed: Option<Arc<str>>,
    /// Every `Client` handle was dropped: flush, then close.
    finishing: bool,
    notes: Option<mpsc::Sender<Notification>>,
}

struct Shared {
    state: Mutex<State>,
    wake_writer: Notify,
    config: ClientConfig,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; go on.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Marks the connection gone and fails every pending call at once.
    fn fail_all(&self, reason: &str) {
        let (pending, reason) = {
            let mut st = self.lock();
            let reason = st.closed.get_or_insert_with(|| reason.into()).clone();
            st.notes = None;
            (std::mem::take(&mut st.pending), reason)
        };
        for (_, tx) in pending {
            let _ = tx.send(Err(CallError::Closed(reason.clone())));
        }
        self.wake_writer.notify_one();
    }
}

/// Closes the connection when the last [`Client`] clone goes.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock().finishing = true;
        self.shared.wake_writer.notify_one();
    }
}

/// A MessagePack-RPC client over one connection. Cheap to clone; clones
/// share the connection, which closes when the last clone is dropped.
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
}

impl Client {
    /// Connects over TCP with the default config.
    pub async fn connect_tcp(addr: impl tokio::net::ToSocketAddrs) -> io::Result<Client> {
        Self::connect_tcp_with(addr, ClientConfig::default()).await
    }

    /// Connects over TCP.
    pub async fn connect_tcp_with(
        addr: impl tokio::net::ToSocketAddrs,
        config: ClientConfig,
    ) -> io::Result<Client> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        // Calls are already batched per write; Nagle would only add delay.
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        Ok(Self::from_halves(read, write, config))
    }

    /// Connects to a Unix socket with the default config.
    #[cfg(unix)]
    pub async fn connect_unix(path: impl AsRef<std::path::Path>) -> io::Result<Client> {
        Self::connect_unix_with(path, ClientConfig::default()).await
    }

    /// Connects to a Unix socket.
    #[cfg(unix)]
    pub async fn connect_unix_with(
        path: impl AsRef<std::path::Path>,
        config: ClientConfig,
    ) -> io::Result<Client> {
        let (read, write) = tokio::net::UnixStream::connect(path).await?.into_split();
        Ok(Self::from_halves(read, write, config))
    }

    /// A client over any byte stream's halves. Spawns the reader and writer
    /// tasks, so it must run inside a tokio runtime.
    pub fn from_halves<R, W>(read: R, write: W, config: ClientConfig) -> Client
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let state = State {
            next_id: 0,
            pending: HashMap::default(),
            out: BytesMut::new(),
            closed: None,
            finishing: false,
            notes: None,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            wake_writer: Notify::new(),
            config,
        });
        tokio::spawn(run_reader(shared.clone(), read));
        tokio::spawn(run_writer(shared.clone(), write));
        Client {
            handle: Arc::new(Handle { shared }),
        }
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Calls `method` with the config's timeout.
    pub async fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, CallError> {
        self.call_timeout(method, params, self.shared().config.call_timeout)
            .await
    }

    /// Calls `method`, waiting at most `timeout` (`None`: no limit).
    pub async fn call_timeout(
        &self,
        method: &str,
        params: Vec<Value>,
        timeout: Option<Duration>,
    ) -> Result<Value, CallError> {
        let (tx, rx) = oneshot::channel();
        let msgid = {
            let mut st = self.shared().lock();
            if let Some(reason) = &st.closed {
                return Err(CallError::Closed(reason.clone()));
            }
            let msgid = loop {
                let id = st.next_id;
                st.next_id = id.wrapping_add(1);
                if !st.pending.contains_key(&id) {
                    break id;
                }
            };
            st.pending.insert(msgid, tx);
            encode_request(msgid, method.as_bytes(), &params, &mut st.out);
            msgid
        };
        self.shared().wake_writer.notify_one();
        let mut guard = Forget {
            shared: self.shared(),
            msgid: Some(msgid),
        };
        let reply = match timeout {
            Some(limit) => tokio::time::timeout(limit, rx)
                .await
                .map_err(|_| CallError::Timeout(limit))?,
            None => rx.await,
        };
        guard.msgid = None;
        // The sender only goes unanswered if the reader task died.
        reply.unwrap_or_else(|_| Err(CallError::Closed("connection task ended".into())))
    }

    /// Typed call: `params` serializes to the params array (a tuple or a
    /// `Vec`; any other value is sent as the single param) and the result
    /// deserializes into `R`.
    pub async fn call_typed<P, R>(&self, method: &str, params: &P) -> Result<R, CallError>
    where
        P: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let params = match rmpv::ext::to_value(params).map_err(CallError::Encode)? {
            Value::Array(items) => items,
            single => vec![single],
        };
        let result = self.call(method, params).await?;
        rmpv::ext::from_value(result).map_err(CallError::Decode)
    }

    /// Sends a notification (never answered).
    pub fn notify(&self, method: &str, params: Vec<Value>) -> Result<(), CallError> {
        {
            let mut st = self.shared().lock();
            if let Some(reason) = &st.closed {
                return Err(CallError::Closed(reason.clone()));
            }
            encode_notification(method.as_bytes(), &params, &mut st.out);
        }
        self.shared().wake_writer.notify_one();
        Ok(())
    }

    /// Notifications from the server, from now on (take it before calling
    /// whatever makes the server send them). Until this is called they are
    /// discarded; a second call replaces the first receiver. When the queue
    /// is full the reader waits, so replies wait too: keep reading it. It
    /// ends when the connection does.
    #[must_use]
    pub fn notifications(&self) -> mpsc::Receiver<Notification> {
        let (tx, rx) = mpsc::channel(self.shared().config.notification_queue.max(1));
        let mut st = self.shared().lock();
        if st.closed.is_none() {
            st.notes = Some(tx);
        }
        rx
    }

    /// Whether the connection has ended.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.shared().lock().closed.is_some()
    }
}

/// Removes a call that stopped waiting (timeout, cancelled) from the map.
struct Forget<'a> {
    shared: &'a Shared,
    msgid: Option<u32>,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Some(msgid) = self.msgid {
            self.shared.lock().pending.remove(&msgid);
        }
    }
}

async fn run_reader<R: AsyncRead + Unpin>(shared: Arc<Shared>, mut read: R) {
    let reason = read_replies(&shared, &mut read).await;
    shared.fail_all(&reason);
}

/// Reads until the connection ends; returns why.
async fn read_replies<R: AsyncRead + Unpin>(shared: &Shared, read: &mut R) -> String {
    let mut decoder = Decoder::with_limits(shared.config.limits);
    let mut buf = BytesMut::with_capacity(64 << 10);
    let mut replies = Vec::new();
    let mut delivered = Vec::new();
    loop {
        if buf.capacity() - buf.len() < 16 << 10 {
            buf.reserve(64 << 10);
        }
        match read.read_buf(&mut buf).await {
            Ok(0) => return "server closed the connection".to_owned(),
            Ok(_) => {}
            Err(e) => return format!("read failed: {e}"),
        }
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(Message::Response {
                    msgid,
                    error,
                    result,
                })) => {
                    let reply = if error.is_nil() {
                        Ok(result)
                    } else {
                        Err(CallError::Remote(error))
                    };
                    replies.push((msgid, reply));
                }
                Ok(Some(Message::Notification { method, params })) => {
                    let tx = shared.lock().notes.clone();
                    if let Some(tx) = tx {
                        // Waiting here is the documented backpressure.
                        let _ = tx.send(Notification { method, params }).await;
                    }
                }
                Ok(Some(Message::Request { msgid, .. })) => {
                    tracing::debug!(
                        msgid,
                        "ignoring a request from the server: this client serves no methods"
                    );
                }
                Ok(None) => break,
                Err(e) => return format!("malformed message from server: {e}"),
            }
        }
        // One lock per read for all its replies; answer outside the lock.
        {
            let mut st = shared.lock();
            delivered.extend(
                replies
                    .drain(..)
                    .filter_map(|(id, r)| st.pending.remove(&id).map(|tx| (tx, r))),
            );
        }
        for (tx, reply) in delivered.drain(..) {
            let _ = tx.send(reply);
        }
    }
}

async fn run_writer<W: AsyncWrite + Unpin>(shared: Arc<Shared>, mut write: W) {
    let mut batch = BytesMut::new();
    loop {
        let finishing = {
            let mut st = shared.lock();
            if st.closed.is_some() {
                return;
            }
            std::mem::swap(&mut batch, &mut st.out);
            st.finishing
        };
        if batch.is_empty() {
            if finishing {
                // Half-close: the server finishes what it has, then closes,
                // and the reader ends everything.
                let _ = write.shutdown().await;
                return;
            }
            shared.wake_writer.notified().await;
            continue;
        }
        if let Err(e) = write.write_all(&batch).await {
            shared.fail_all(&format!("write failed: {e}"));
            return;
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_stay_small() {
        assert!(std::mem::size_of::<CallError>() <= 48);
        assert!(std::mem::size_of::<crate::NotifyError>() <= 1);
    }
}
