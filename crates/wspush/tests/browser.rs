//! A real browser: headless Chromium (Debian's `chromium`, installed by
//! `scripts/test-deps.sh`) on the demo page of the push server, and two
//! Chromium pages chatting through `examples/chat`.
#![allow(clippy::unwrap_used)]

#[path = "browser/cdp.rs"]
mod cdp;

#[allow(dead_code)]
#[path = "stock/harness.rs"]
mod harness;

#[allow(dead_code)]
#[path = "common/http.rs"]
mod common_http;

#[allow(dead_code)]
#[path = "../examples/chat.rs"]
mod chat;

use cdp::{Browser, Page, WAIT};
use msgpack_rpc::{Client as Rpc, Notification, Value};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::timeout;
use wspush::config::Settings;
use wspush::serve::{Running, start};

/// Two Chromium instances at once would compete for the machine's few cores.
static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Types `text` into the page's `#text` field and submits the `#send` form
/// (the demo page and the chat page share these ids).
async fn type_and_send(browser: &mut Browser, page: &Page, name: Option<&str>, text: &str) {
    let set_name = name.map_or(String::new(), |n| {
        format!("document.getElementById('name').value = {};", json!(n))
    });
    let script = format!(
        "{set_name} document.getElementById('text').value = {}; \
         document.getElementById('send').requestSubmit(); true",
        json!(text)
    );
    browser.eval(page, &script).await;
}

fn status_is(text: &str) -> String {
    format!(
        "document.getElementById('status').textContent === {}",
        json!(text)
    )
}

/// The push server in this process, with a listening RPC client.
struct Server {
    running: Running,
    rpc: Rpc,
    events: mpsc::Receiver<Notification>,
}

impl Server {
    async fn start(ws: &str) -> Server {
        let settings = Settings {
            ws: ws.parse().unwrap(),
            rpc: "127.0.0.1:0".parse().unwrap(),
            api: "127.0.0.1:0".parse().unwrap(),
            ..Settings::default()
        };
        let running = start(&settings).await.unwrap();
        let rpc = Rpc::connect_tcp(running.rpc_addr).await.unwrap();
        let events = rpc.notifications();
        assert_eq!(
            rpc.call("listen", vec![]).await.unwrap(),
            Value::Boolean(true)
        );
        Server {
            running,
            rpc,
            events,
        }
    }

    /// Waits for `on_message(conn, text)`: the page's socket is registered
    /// (the server handles a connection's messages after its open).
    async fn message_from_page(&mut self, text: &str) {
        loop {
            let event = timeout(WAIT, self.events.recv()).await.unwrap().unwrap();
            if &event.method[..] == b"on_message" && event.params[1].as_str() == Some(text) {
                return;
            }
        }
    }

    async fn call(&self, method: &str, params: Vec<Value>) -> Value {
        self.rpc.call(method, params).await.unwrap()
    }
}

/// The demo page's messages, oldest first (it shows the newest on top).
async fn shown(browser: &mut Browser, page: &Page) -> Vec<String> {
    let newest_first = browser
        .eval(
            page,
            "[...document.querySelectorAll('#log li.msg')].map(li => li.lastChild.textContent)",
        )
        .await;
    let mut texts: Vec<String> = serde_json::from_value(newest_first).unwrap();
    texts.reverse();
    texts
}

const NEWEST_IS_AFTER: &str =
    "(document.querySelector('#log li.msg') || {}).lastChild?.textContent === 'after'";

#[tokio::test]
async fn demo_page_shows_pushes_channels_and_reconnects() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let mut server = Server::start("127.0.0.1:0").await;
    let ws = server.running.ws_addr;
    let mut browser = Browser::launch().await;

    let everyone = browser.open(&format!("http://{ws}/")).await;
    browser.wait_for(&everyone, &status_is("connected")).await;
    type_and_send(&mut browser, &everyone, None, "hello from chromium").await;
    server.message_from_page("hello from chromium").await;
    let news = browser.open(&format!("http://{ws}/?channel=news")).await;
    browser.wait_for(&news, &status_is("connected")).await;
    type_and_send(&mut browser, &news, None, "news reader here").await;
    server.message_from_page("news reader here").await;

    let hello = r#"{"hello":"world"}"#;
    assert_eq!(
        server.call("push_data", vec![hello.into()]).await,
        Value::Nil
    );
    let published = server
        .call("publish", vec!["news".into(), "breaking".into()])
        .await;
    assert_eq!(published, Value::from(1));
    server
        .call("push_data", vec![Value::Binary(vec![1, 2, 3])])
        .await;
    server.call("push_data", vec!["after".into()]).await;

    browser.wait_for(&everyone, NEWEST_IS_AFTER).await;
    assert_eq!(
        shown(&mut browser, &everyone).await,
        [hello, "binary (3 bytes)", "after"]
    );
    browser.wait_for(&news, NEWEST_IS_AFTER).await;
    assert_eq!(
        shown(&mut browser, &news).await,
        [hello, "breaking", "binary (3 bytes)", "after"]
    );

    // The server restarts on the same port: the page reconnects by itself.
    server.running.shutdown().await.unwrap();
    browser
        .wait_for(&everyone, &status_is("reconnecting"))
        .await;
    let mut server = Server::start(&ws.to_string()).await;
    browser.wait_for(&everyone, &status_is("connected")).await;
    type_and_send(&mut browser, &everyone, None, "back again").await;
    server.message_from_page("back again").await;
    server.call("push_data", vec!["after restart".into()]).await;
    browser
        .wait_for(
            &everyone,
            "document.querySelector('#log li.msg').lastChild.textContent === 'after restart'",
        )
        .await;

    browser.close().await;
    server.running.shutdown().await.unwrap();
}

#[tokio::test]
async fn two_pages_chat_through_the_chat_example() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(chat::serve(listener, async {
        let _ = stopped.await;
    }));
    let mut browser = Browser::launch().await;

    let alice = browser.open(&url).await;
    let bob = browser.open(&url).await;
    // "2 online" is broadcast once both sockets are in the room.
    browser.wait_for(&alice, &status_is("2 online")).await;
    browser.wait_for(&bob, &status_is("2 online")).await;

    let said = |line: &str| {
        format!(
            "[...document.querySelectorAll('#log li')].some(li => li.textContent === {})",
            json!(line)
        )
    };
    type_and_send(&mut browser, &alice, Some("alice"), "hi bob").await;
    browser.wait_for(&bob, &said("alice:hi bob")).await;
    browser.wait_for(&alice, &said("alice:hi bob")).await;
    type_and_send(&mut browser, &bob, Some("bob"), "hi alice").await;
    browser.wait_for(&alice, &said("bob:hi alice")).await;
    browser.wait_for(&bob, &said("bob:hi alice")).await;
    let log = browser
        .eval(
            &alice,
            "[...document.querySelectorAll('#log li')].map(li => li.textContent)",
        )
        .await;
    assert_eq!(log, json!(["alice:hi bob", "bob:hi alice"]));

    browser.close_page(bob).await;
    browser.wait_for(&alice, &status_is("1 online")).await;

    browser.close().await;
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
}

const EVENTS_HAVE: &str = "(want) => (window.got || []).includes(want)";

fn page_got(text: &str) -> String {
    format!("({EVENTS_HAVE})({})", json!(text))
}

/// A page's own EventSource (no library): events by channel, a server restart survived by
/// the browser's own reconnect with `Last-Event-ID`, nothing missed that the new server has.
#[tokio::test]
async fn eventsource_in_chromium_receives_pushes_and_resumes_after_a_restart() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let server = Server::start("127.0.0.1:0").await;
    let ws = server.running.ws_addr;
    let mut browser = Browser::launch().await;
    // Any page of the origin: the EventSource is same-origin.
    let page = browser.open(&format!("http://{ws}/health")).await;
    // State goes into the DOM: `wait_for` re-checks on DOM changes.
    let script = "window.got = []; \
        const log = (s) => { window.got.push(s); const p = document.createElement('p'); \
          p.textContent = s; document.body.appendChild(p); }; \
        const es = new EventSource('/sse?channel=news'); \
        es.onopen = () => { document.body.dataset.opens = String(Number(document.body.dataset.opens || 0) + 1); }; \
        es.onmessage = (e) => log(e.data); \
        es.addEventListener('news', (e) => log('news:' + e.data)); \
        es.addEventListener('gap', () => log('gap')); \
        window.es = es; true";
    browser.eval(&page, script).await;
    browser
        .wait_for(&page, "document.body.dataset.opens === '1'")
        .await;
    server.call("push_data", vec!["hello".into()]).await;
    server
        .call("publish", vec!["news".into(), r#"{"n":1}"#.into()])
        .await;
    browser.wait_for(&page, &page_got(r#"news:{"n":1}"#)).await;
    browser.wait_for(&page, &page_got("hello")).await;

    server.running.shutdown().await.unwrap();
    let server = Server::start(&ws.to_string()).await;
    // Published on the new server before the browser is back (it waits its retry delay).
    server
        .call("publish", vec!["news".into(), "while away".into()])
        .await;
    browser
        .wait_for(&page, "document.body.dataset.opens === '2'")
        .await;
    browser.wait_for(&page, &page_got("news:while away")).await;
    server.call("push_data", vec!["live again".into()]).await;
    browser.wait_for(&page, &page_got("live again")).await;
    let got: Vec<String> = serde_json::from_value(browser.eval(&page, "window.got").await).unwrap();
    let count = |s: &str| got.iter().filter(|g| *g == s).count();
    assert_eq!(
        (
            count("hello"),
            count("news:while away"),
            count("live again")
        ),
        (1, 1, 1),
        "{got:?}"
    );
    browser.close().await;
    server.running.shutdown().await.unwrap();
}

/// The demo page forced onto Server-Sent Events shows pushes of the broadcast stream and of
/// its channel, as over WebSocket.
#[tokio::test]
async fn demo_page_over_sse_shows_pushes_and_channels() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let mut server = Server::start("127.0.0.1:0").await;
    let ws = server.running.ws_addr;
    let mut browser = Browser::launch().await;
    let page = browser
        .open(&format!("http://{ws}/?transport=sse&channel=news"))
        .await;
    browser.wait_for(&page, &status_is("connected")).await;
    let transport = browser
        .eval(&page, "document.getElementById('transport').textContent")
        .await;
    assert_eq!(transport, json!("SSE (receive only)"));
    loop {
        let event = timeout(WAIT, server.events.recv()).await.unwrap().unwrap();
        if &event.method[..] == b"on_open" {
            break;
        }
    }
    server.call("push_data", vec!["hello sse".into()]).await;
    server
        .call("publish", vec!["news".into(), "breaking".into()])
        .await;
    server
        .call("push_data", vec![Value::Binary(vec![1, 2, 3])])
        .await;
    server.call("push_data", vec!["after".into()]).await;
    browser.wait_for(&page, NEWEST_IS_AFTER).await;
    assert_eq!(
        shown(&mut browser, &page).await,
        ["hello sse", "breaking", "binary (3 bytes)", "after"]
    );
    browser.close().await;
    server.running.shutdown().await.unwrap();
}

/// With `--tls-cert`, pages get HTTP/2 on the same port: one page holds more event streams
/// to the origin than HTTP/1.1's six connections allow, and its WebSocket still opens.
#[tokio::test]
async fn over_https_a_page_holds_eight_event_streams_and_a_websocket() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!("wspush-h2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let settings = Settings {
        ws: "127.0.0.1:0".parse().unwrap(),
        rpc: "127.0.0.1:0".parse().unwrap(),
        api: "127.0.0.1:0".parse().unwrap(),
        tls_cert: Some(cert_path),
        tls_key: Some(key_path),
        ..Settings::default()
    };
    let running = start(&settings).await.unwrap();
    let rpc = Rpc::connect_tcp(running.rpc_addr).await.unwrap();
    let ws = running.ws_addr;
    let mut browser = Browser::launch_with(&["--ignore-certificate-errors"]).await;
    let page = browser.open(&format!("https://{ws}/health")).await;
    let script = "window.got = 0; \
        for (let i = 0; i < 8; i++) { \
          const es = new EventSource('/sse?channel=c' + i); \
          es.addEventListener('c' + i, () => { document.body.dataset.got = String(++window.got); }); \
          es.onopen = () => { document.body.dataset.open = String(Number(document.body.dataset.open || 0) + 1); }; \
        } \
        const ws = new WebSocket('wss://' + location.host + '/'); \
        ws.onopen = () => { document.body.dataset.ws = 'open'; }; true";
    browser.eval(&page, script).await;
    browser
        .wait_for(
            &page,
            "document.body.dataset.open === '8' && document.body.dataset.ws === 'open'",
        )
        .await;
    for i in 0..8 {
        rpc.call("publish", vec![format!("c{i}").into(), "x".into()])
            .await
            .unwrap();
    }
    browser
        .wait_for(&page, "document.body.dataset.got === '8'")
        .await;
    let protocol = browser
        .eval(
            &page,
            "performance.getEntriesByType('navigation')[0].nextHopProtocol",
        )
        .await;
    assert_eq!(protocol, json!("h2"));
    browser.close().await;
    running.shutdown().await.unwrap();
}

/// A page's own `new WebSocket(...)` receives an HTTP API publish's `data` as the exact
/// JSON text the program sent (spacing, key order, escapes).
#[tokio::test]
async fn a_page_receives_api_data_byte_for_byte() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let mut server = Server::start("127.0.0.1:0").await;
    let ws = server.running.ws_addr;
    let mut browser = Browser::launch().await;
    let page = browser.open(&format!("http://{ws}/")).await;
    let script = format!(
        "window.got = []; const s = new WebSocket('ws://{ws}/?channel=raw'); \
         s.onmessage = (ev) => {{ window.got.push(ev.data); document.body.dataset.got = String(window.got.length); }}; \
         s.onopen = () => s.send('raw ready'); true"
    );
    browser.eval(&page, &script).await;
    server.message_from_page("raw ready").await;
    let data = r#"{ "b":[1, 2.50] ,"a":"\u00e9\n" }"#;
    let mut api = common_http::Http::connect(server.running.api_addr).await;
    let r = api
        .api(
            "/api/publish",
            &format!(r#"{{"channel":"raw","data":{data}}}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let expected = json!([data]).to_string();
    browser
        .wait_for(
            &page,
            &format!("JSON.stringify(window.got) === {}", json!(expected)),
        )
        .await;
}
