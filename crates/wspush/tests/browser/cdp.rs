//! Headless Chromium driven over the Chrome DevTools Protocol (JSON over a
//! WebSocket, spoken with `ws_server::client`), for the real-browser tests.
//!
//! Chromium is started with a fresh profile in a temporary directory and
//! `--remote-debugging-port=0`; its `DevTools listening on ws://…` line says
//! where to connect. Pages are opened with `Target.createTarget` and driven
//! with `Runtime.evaluate`; conditions are awaited inside the page (checked on
//! every DOM change, bounded), never with fixed sleeps. Only the Chromium
//! process this module started is stopped, by PID; the profile is removed.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;
use ws_server::Message;
use ws_server::client::{self, Client};

/// How long one step (launch, a command, a page condition) may take.
pub const WAIT: Duration = Duration::from_secs(30);

const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--remote-debugging-port=0",
];

/// One page (tab) of the browser.
pub struct Page {
    session: String,
    target: String,
}

/// A headless Chromium and the DevTools connection to it.
pub struct Browser {
    child: Child,
    profile: PathBuf,
    cdp: Client,
    next_id: u64,
    /// Events that arrived while waiting for a command's answer.
    events: VecDeque<Value>,
    stderr: Arc<Mutex<String>>,
}

fn chromium() -> PathBuf {
    let names = ["chromium", "chromium-browser"];
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .flat_map(|dir| names.map(|n| dir.join(n)))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("Chromium is not installed: run scripts/test-deps.sh"))
}

impl Browser {
    /// Starts headless Chromium with a fresh profile and connects to it.
    pub async fn launch() -> Browser {
        Self::launch_with(&[]).await
    }

    /// [`Browser::launch`] with more command-line flags.
    pub async fn launch_with(extra: &[&str]) -> Browser {
        static N: AtomicU32 = AtomicU32::new(0);
        let program = chromium();
        let profile = std::env::temp_dir().join(format!(
            "wspush-chromium-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let mut child = Command::new(program)
            .args(FLAGS)
            .args(extra)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start Chromium: {e}: run scripts/test-deps.sh"));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut early = String::new();
        let url = timeout(WAIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return Some(url.trim().to_owned());
                }
                early.push_str(&line);
                early.push('\n');
            }
            None
        })
        .await;
        let Ok(Some(url)) = url else {
            let _ = std::fs::remove_dir_all(&profile);
            panic!("Chromium did not open its DevTools port; its stderr:\n{early}");
        };
        let stderr = crate::harness::drain_into(lines.into_inner().into_inner());
        stderr.lock().unwrap().insert_str(0, &early);
        let cdp = client::connect(&url).await.unwrap();
        Browser {
            child,
            profile,
            cdp,
            next_id: 0,
            events: VecDeque::new(),
            stderr,
        }
    }

    async fn recv(&mut self) -> Value {
        let msg = timeout(WAIT, self.cdp.recv_message()).await;
        match msg {
            Ok(Ok(Some(Message::Text(t)))) => serde_json::from_slice(&t).unwrap(),
            other => panic!(
                "DevTools connection: {other:?}; Chromium stderr:\n{}",
                self.stderr.lock().unwrap()
            ),
        }
    }

    /// Sends one command (to a page when `session` is set) and returns its result.
    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        self.cdp.send_text(command.to_string()).await.unwrap();
        loop {
            let mut msg = self.recv().await;
            if msg["id"] != json!(id) {
                self.events.push_back(msg);
                continue;
            }
            if let Some(error) = msg.get("error") {
                panic!("{method}: {error}");
            }
            return msg["result"].take();
        }
    }

    /// Waits for the page event `method` (possibly already received).
    async fn event(&mut self, page: &Page, method: &str) -> Value {
        let wanted = |e: &Value| e["method"] == method && e["sessionId"] == page.session.as_str();
        if let Some(i) = self.events.iter().position(wanted) {
            return self.events.remove(i).unwrap_or_default();
        }
        loop {
            let msg = self.recv().await;
            if wanted(&msg) {
                return msg;
            }
        }
    }

    /// Opens a new tab on `url` and waits until the page has loaded.
    pub async fn open(&mut self, url: &str) -> Page {
        let created = self
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let target = created["targetId"].as_str().unwrap().to_owned();
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target, "flatten": true }),
            )
            .await;
        let page = Page {
            session: attached["sessionId"].as_str().unwrap().to_owned(),
            target,
        };
        self.call(Some(&page.session), "Page.enable", json!({}))
            .await;
        let nav = self
            .call(Some(&page.session), "Page.navigate", json!({ "url": url }))
            .await;
        assert!(nav.get("errorText").is_none(), "navigate {url}: {nav}");
        self.event(&page, "Page.loadEventFired").await;
        page
    }

    /// Closes a tab (its WebSocket closes with it).
    pub async fn close_page(&mut self, page: Page) {
        self.call(
            None,
            "Target.closeTarget",
            json!({ "targetId": page.target }),
        )
        .await;
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value.
    pub async fn eval(&mut self, page: &Page, expression: &str) -> Value {
        let params =
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true });
        let mut result = self
            .call(Some(&page.session), "Runtime.evaluate", params)
            .await;
        if let Some(e) = result.get("exceptionDetails") {
            panic!("in the page: {expression}\nthrew: {e}");
        }
        result["result"]["value"].take()
    }

    /// Waits until the JavaScript `condition` is truthy in the page: checked
    /// now and after every DOM change, for at most [`WAIT`] (minus a margin).
    pub async fn wait_for(&mut self, page: &Page, condition: &str) -> Value {
        let ms = WAIT.as_millis() - 2000;
        let what = json!(condition);
        let expression = format!(
            "new Promise((resolve, reject) => {{
               const check = () => {{
                 let v; try {{ v = ({condition}); }} catch (e) {{ v = false; }}
                 if (v) {{ observer.disconnect(); clearTimeout(timer); resolve(v); }}
               }};
               const observer = new MutationObserver(check);
               const timer = setTimeout(() => {{
                 observer.disconnect();
                 reject(new Error('timed out waiting for ' + {what} + '; the page shows:\\n' + document.body.innerText));
               }}, {ms});
               observer.observe(document, {{ subtree: true, childList: true, characterData: true, attributes: true }});
               check();
             }})"
        );
        self.eval(page, &expression).await
    }

    /// Closes the browser and waits for it to exit; removes its profile.
    pub async fn close(mut self) {
        // The answer may never come: the browser closes the connection as it exits.
        self.next_id += 1;
        let close = json!({ "id": self.next_id, "method": "Browser.close" });
        let _ = self.cdp.send_text(close.to_string()).await;
        if timeout(WAIT, self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // After close() this finds the process gone; after a panic it stops it (by PID).
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
