//! `wspush push --api URL`: the same push through the HTTP API instead of RPC.
//!
//! To every browser or a channel it posts the data as it is to `POST /pub[/<channel>]`
//! (`application/octet-stream` with `--binary`), so browsers get exactly the bytes RPC
//! would have sent; to one connection it calls `POST /api/send`, whose `data` must be
//! JSON (or `--binary`, sent as `b64data`).

use anyhow::{Context as _, bail};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use super::PushTo;

/// Where and how to reach the API.
pub struct ApiTarget<'a> {
    /// `http://HOST:PORT`, optionally ending in `/api`.
    pub url: &'a str,
    /// The API key (`serve --api-key`), if the server wants one.
    pub key: Option<&'a str>,
}

/// `wspush push --api`.
pub async fn push(
    api: &ApiTarget<'_>,
    to: PushTo,
    data: Vec<u8>,
    binary: bool,
) -> anyhow::Result<()> {
    let uri: http::Uri = api
        .url
        .parse()
        .with_context(|| format!("invalid --api URL {}", api.url))?;
    if uri.scheme_str() != Some("http") {
        bail!("--api takes an http:// URL (the API listener speaks plain HTTP)");
    }
    let authority = uri.authority().context("--api URL has no host")?.clone();
    let base = uri.path().trim_end_matches('/');
    let base = base.strip_suffix("/api").unwrap_or(base);
    let octets = if binary {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    };
    let (path, content_type, body, target) = match &to {
        PushTo::Everyone => (
            format!("{base}/pub"),
            octets,
            data,
            "every connection".to_owned(),
        ),
        PushTo::Channel(c) => (
            format!("{base}/pub/{}", percent_encode(c)),
            octets,
            data,
            format!("channel {c}"),
        ),
        PushTo::Connection(id) => {
            let body = send_body(*id, data, binary)?;
            (
                format!("{base}/api/send"),
                "application/json",
                body,
                format!("connection {id}"),
            )
        }
    };
    let port = authority.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((authority.host(), port))
        .await
        .with_context(|| format!("cannot connect to the wspush API at {authority}: is `wspush serve` running (its --api)?"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = http::Request::post(path)
        .header(http::header::HOST, authority.as_str())
        .header(http::header::CONTENT_TYPE, content_type);
    if let Some(key) = api.key {
        req = req.header("x-api-key", key);
    }
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from(body)))?)
        .await?;
    let status = resp.status();
    let answer = resp.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&answer);
    if status == http::StatusCode::UNAUTHORIZED {
        bail!("the server refused the API key (--api-key / WSPUSH_API_KEY)");
    }
    let json: serde_json::Value = serde_json::from_slice(&answer)
        .with_context(|| format!("the API answered {status}: {}", text.trim()))?;
    if let Some(e) = json.get("error") {
        bail!(
            "the API answered {status}: {}",
            e["message"].as_str().unwrap_or(&text)
        );
    }
    if !status.is_success() {
        bail!("the API answered {status}: {}", text.trim());
    }
    let line = match to {
        PushTo::Connection(id) if json["result"]["sent"] != true => bail!("no connection {id}"),
        PushTo::Connection(_) => format!("pushed to {target}"),
        _ => format!(
            "pushed to {target}: offset {} in epoch {}",
            json["offset"],
            json["epoch"].as_str().unwrap_or("")
        ),
    };
    out!("{line}")?;
    Ok(())
}

/// `/api/send`'s body: JSON data as it is, binary as `b64data`.
fn send_body(id: u64, data: Vec<u8>, binary: bool) -> anyhow::Result<Vec<u8>> {
    if binary {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
        return Ok(
            serde_json::json!({"client": id.to_string(), "b64data": b64})
                .to_string()
                .into_bytes(),
        );
    }
    let text = String::from_utf8(data).context("DATA is not UTF-8 text: use --binary")?;
    let raw: &serde_json::value::RawValue = serde_json::from_str(&text)
        .context("with --api and --conn, DATA must be JSON (or use --binary)")?;
    Ok(format!("{{\"client\":\"{id}\",\"data\":{}}}", raw.get()).into_bytes())
}

/// A channel name as one path segment.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_become_one_segment() {
        assert_eq!(percent_encode("news"), "news");
        assert_eq!(percent_encode("a b/c:d"), "a%20b%2Fc:d");
        assert_eq!(percent_encode("€"), "%E2%82%AC");
    }

    #[test]
    fn send_bodies_keep_json_and_base64_binary() {
        let body = send_body(7, br#"{"a": 1}"#.to_vec(), false).unwrap_or_default();
        assert_eq!(body, br#"{"client":"7","data":{"a": 1}}"#);
        let body = send_body(7, vec![0, 255], true).unwrap_or_default();
        assert_eq!(body, br#"{"b64data":"AP8=","client":"7"}"#);
        assert!(send_body(7, b"not json".to_vec(), false).is_err());
    }
}
