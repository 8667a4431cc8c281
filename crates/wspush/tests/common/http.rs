//! A small HTTP/1.1 keep-alive client for the API tests: one request after another on one
//! connection, bodies by `Content-Length`, nothing hidden (raw status, headers, bytes).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::WAIT;

/// One keep-alive connection.
pub struct Http {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// An answer: status, the head as text (for header checks), the body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Http {
    pub async fn connect(addr: SocketAddr) -> Http {
        Http {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    /// Sends raw bytes (a request written by hand).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// `POST path` with `headers` and `body`.
    pub async fn post(&mut self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.send_raw(&bytes).await;
        self.read_reply().await
    }

    /// `POST path` with a JSON body.
    pub async fn api(&mut self, path: &str, body: &str) -> Reply {
        self.post(
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .await
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Reply {
        self.send_get_with_key(path, "").await
    }

    /// `GET path` with `X-API-Key: key` (none when empty).
    pub async fn send_get_with_key(&mut self, path: &str, key: &str) -> Reply {
        let key = match key {
            "" => String::new(),
            k => format!("X-API-Key: {k}\r\n"),
        };
        self.send_raw(format!("GET {path} HTTP/1.1\r\nHost: x\r\n{key}\r\n").as_bytes())
            .await;
        self.read_reply().await
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        let n = timeout(WAIT, self.stream.read(&mut chunk))
            .await
            .expect("no reply in time")
            .unwrap();
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// Reads one reply; `None` when the server closed the connection first.
    pub async fn try_read_reply(&mut self) -> Option<Reply> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if !self.fill().await {
                return None;
            }
        };
        let head = String::from_utf8(self.buf[..end].to_vec()).unwrap();
        let status = head[9..12].parse().unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        while self.buf.len() < end + 4 + len {
            assert!(self.fill().await, "closed mid-body");
        }
        let body = self.buf[end + 4..end + 4 + len].to_vec();
        self.buf.drain(..end + 4 + len);
        Some(Reply { status, head, body })
    }

    pub async fn read_reply(&mut self) -> Reply {
        self.try_read_reply()
            .await
            .expect("connection closed before a reply")
    }

    /// Whether the server closed the connection (reading ends).
    pub async fn closed(&mut self) -> bool {
        self.buf.clear();
        !self.fill().await
    }
}
