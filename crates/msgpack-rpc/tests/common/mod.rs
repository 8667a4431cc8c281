//! A test server on 127.0.0.1:0 with methods that exercise every path.
#![allow(clippy::unwrap_used, dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use msgpack_rpc::{Notifier, RpcError, Server, ServerConfig, Value};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, oneshot};

/// Generous bound for waiting on events that should happen at once.
pub const WAIT: Duration = Duration::from_secs(10);

/// What the test server's `auth(secret)` accepts.
pub const SECRET: &str = "s3cret";

#[derive(Default)]
pub struct Probe {
    pub listeners: Mutex<Vec<Notifier>>,
    pub release: Notify,
    pub started: Notify,
    pub running: AtomicUsize,
    pub max_running: AtomicUsize,
}

pub struct TestServer {
    pub addr: std::net::SocketAddr,
    pub server: Server,
    pub probe: Arc<Probe>,
    pub disconnects: mpsc::UnboundedReceiver<u64>,
    pub stop: Option<oneshot::Sender<()>>,
    pub done: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    /// Waits (bounded) for the next connection to end; returns its id.
    pub async fn next_disconnect(&mut self) -> u64 {
        tokio::time::timeout(WAIT, self.disconnects.recv())
            .await
            .unwrap()
            .unwrap()
    }

    /// Signals shutdown and returns the serve task.
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).unwrap();
        }
    }
}

pub fn server(config: ServerConfig, probe: Arc<Probe>) -> (Server, mpsc::UnboundedReceiver<u64>) {
    let (gone_tx, gone_rx) = mpsc::unbounded_channel();
    let (p1, p2, p3, p4) = (probe.clone(), probe.clone(), probe.clone(), probe.clone());
    let server = Server::builder()
        .config(config)
        .method(
            "echo",
            1,
            |_, mut params| async move { Ok(params.remove(0)) },
        )
        .method_sync("push_data", 1, |_, _| Ok(Value::Nil))
        .method_sync("count", 1..=3, |_, params| Ok(Value::from(params.len())))
        .method_sync("any", 0.., |_, params| Ok(Value::Array(params)))
        .method_sync("more", 0, |ctx, _| Ok(Value::from(ctx.more_buffered())))
        .method_sync("pipelines", 0, |ctx, _| Ok(Value::from(ctx.pipelines())))
        .method_sync("auth", 1, |ctx, params| {
            if params[0].as_str() != Some(SECRET) {
                return Err(RpcError::message("wrong secret"));
            }
            ctx.set_authenticated();
            Ok(Value::from(ctx.is_authenticated()))
        })
        .method("fail", 0, |_, _| async { Err(RpcError::message("boom")) })
        .method("panic", 0, |_, _| async { panic!("kaboom") })
        .method_sync("panic_sync", 0, |_, _| panic!("sync kaboom"))
        .method("shuffle", 1, |_, params| async move {
            // Finish out of order without timers: yield n % 7 times.
            let n = params[0].as_u64().unwrap_or(0);
            for _ in 0..n % 7 {
                tokio::task::yield_now().await;
            }
            Ok(params[0].clone())
        })
        .method_sync("listen", 0, move |ctx, _| {
            p1.listeners.lock().unwrap().push(ctx.notifier().clone());
            Ok(Value::Nil)
        })
        .method_sync("emit", 1, move |_, params| {
            let sent = p2
                .listeners
                .lock()
                .unwrap()
                .iter()
                .filter(|n| n.notify("event", params.clone()).is_ok())
                .count();
            Ok(Value::from(sent))
        })
        .method("block", 0, move |_, _| {
            let probe = p3.clone();
            async move {
                let released = probe.release.notified();
                probe.started.notify_one();
                released.await;
                Ok(Value::from("released"))
            }
        })
        .method("gate", 0, move |_, _| {
            let probe = p4.clone();
            async move {
                let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
                probe.max_running.fetch_max(now, Ordering::SeqCst);
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                probe.running.fetch_sub(1, Ordering::SeqCst);
                Ok(Value::Nil)
            }
        })
        .on_disconnect(move |id| {
            let _ = gone_tx.send(id);
        })
        .build();
    (server, gone_rx)
}

pub async fn start_with(config: ServerConfig) -> TestServer {
    let probe = Arc::new(Probe::default());
    let (server, disconnects) = server(config, probe.clone());
    let handle = server.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        server
            .serve_tcp(listener, async {
                let _ = stopped.await;
            })
            .await
    });
    TestServer {
        addr,
        server: handle,
        probe,
        disconnects,
        stop: Some(stop),
        done,
    }
}

pub async fn start() -> TestServer {
    start_with(ServerConfig::default()).await
}

/// The error string of a remote error.
pub fn remote(e: msgpack_rpc::CallError) -> String {
    match e {
        msgpack_rpc::CallError::Remote(v) => v.as_str().unwrap().to_owned(),
        other => panic!("not a remote error: {other:?}"),
    }
}
