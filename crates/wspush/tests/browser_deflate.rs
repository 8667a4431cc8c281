//! Headless Chromium (Debian's `chromium`, installed by `scripts/test-deps.sh`) on the demo
//! page, through a byte-counting TCP relay: the browser offers permessage-deflate as it
//! always does, the server answers with both no-context-takeover parameters, and messages
//! go compressed both ways (the relay sees fewer bytes than the texts), each of the
//! browser's messages inflated on its own.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "browser/cdp.rs"]
mod cdp;

#[allow(dead_code)]
#[path = "stock/harness.rs"]
mod harness;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cdp::{Browser, WAIT};
use msgpack_rpc::{Client as Rpc, Value};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use wspush::config::Settings;

/// Bytes each way through the relay, and the first bytes of every connection each way
/// (enough for the HTTP heads).
#[derive(Default)]
struct Relayed {
    up: AtomicU64,
    down: AtomicU64,
    heads: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
}

const HEAD_BYTES: usize = 4096;

async fn copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    count: Arc<Relayed>,
    slot: usize,
    upstream: bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        let total = if upstream { &count.up } else { &count.down };
        total.fetch_add(n as u64, Ordering::Relaxed);
        let mut heads = count.heads.lock().unwrap();
        let head = if upstream {
            &mut heads[slot].0
        } else {
            &mut heads[slot].1
        };
        let room = HEAD_BYTES.saturating_sub(head.len()).min(n);
        head.extend_from_slice(&buf[..room]);
    }
    let _ = to.shutdown().await;
}

/// A relay on 127.0.0.1:0 to `target`, counting into the returned `Relayed`.
async fn relay(target: SocketAddr) -> (SocketAddr, Arc<Relayed>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = Arc::new(Relayed::default());
    let c = Arc::clone(&counts);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(target).await else {
                continue;
            };
            let slot = {
                let mut heads = c.heads.lock().unwrap();
                heads.push(Default::default());
                heads.len() - 1
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(copy(cr, sw, Arc::clone(&c), slot, true));
            tokio::spawn(copy(sr, cw, Arc::clone(&c), slot, false));
        }
    });
    (addr, counts)
}

/// The value of header `name` in an HTTP head (case-insensitive name).
fn header(head: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    let end = text.find("\r\n\r\n")?;
    text[..end].split("\r\n").find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

#[tokio::test]
async fn chromium_sends_and_receives_compressed_messages_through_the_demo_page() {
    let settings = Settings {
        ws: "127.0.0.1:0".parse().unwrap(),
        rpc: "127.0.0.1:0".parse().unwrap(),
        // Not the default port: another server on this machine may hold it.
        api: "127.0.0.1:0".parse().unwrap(),
        ..Settings::default()
    };
    let running = wspush::serve::start(&settings).await.unwrap();
    let rpc = Rpc::connect_tcp(running.rpc_addr).await.unwrap();
    let mut events = rpc.notifications();
    assert_eq!(
        rpc.call("listen", vec![]).await.unwrap(),
        Value::Boolean(true)
    );
    let (via, relayed) = relay(running.ws_addr).await;
    let mut browser = Browser::launch().await;
    let page = browser.open(&format!("http://{via}/")).await;
    browser
        .wait_for(
            &page,
            "document.getElementById('status').textContent === 'connected'",
        )
        .await;

    // The upgrade, as Chromium offered it and as the server answered.
    let (request, response) = {
        let heads = relayed.heads.lock().unwrap();
        heads
            .iter()
            .find(|(up, _)| header(up, "upgrade").is_some_and(|u| u == "websocket"))
            .expect("no upgrade through the relay")
            .clone()
    };
    assert_eq!(
        header(&request, "sec-websocket-extensions").as_deref(),
        Some("permessage-deflate; client_max_window_bits")
    );
    assert_eq!(
        header(&response, "sec-websocket-extensions").as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );

    // Browser → server: two long, compressible messages; each must arrive whole (the second
    // is inflated from an empty window, as the answer told Chromium to compress it).
    for round in ["first", "second"] {
        let text = format!("{round}: {}", "hello compressed world, ".repeat(200));
        let up_before = relayed.up.load(Ordering::Relaxed);
        let script = format!(
            "document.getElementById('text').value = {}; \
             document.getElementById('send').requestSubmit(); true",
            json!(text)
        );
        browser.eval(&page, &script).await;
        loop {
            let event = timeout(WAIT, events.recv()).await.unwrap().unwrap();
            if &event.method[..] == b"on_message" && event.params[1].as_str() == Some(&text) {
                break;
            }
        }
        let up = relayed.up.load(Ordering::Relaxed) - up_before;
        assert!(
            up < text.len() as u64 / 4,
            "{round}: {up} bytes on the wire for {} of text",
            text.len()
        );
    }

    // Server → browser: a long push arrives compressed and is shown whole.
    let pushed = "pushed and compressed; ".repeat(300);
    let down_before = relayed.down.load(Ordering::Relaxed);
    let result = rpc.call("push_data", vec![pushed.clone().into()]).await;
    assert_eq!(result.unwrap(), Value::Nil);
    let shown = format!(
        "(document.querySelector('#log li.msg') || {{}}).lastChild?.textContent === {}",
        json!(pushed)
    );
    browser.wait_for(&page, &shown).await;
    let down = relayed.down.load(Ordering::Relaxed) - down_before;
    assert!(
        down < pushed.len() as u64 / 4,
        "{down} bytes on the wire for {} of text",
        pushed.len()
    );

    browser.close().await;
    running.shutdown().await.unwrap();
}
