#![allow(clippy::unwrap_used)]
use super::*;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde::Serialize;

#[derive(Serialize)]
struct Token<'a> {
    sub: &'a str,
    exp: u64,
    channels: &'a [&'a str],
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(secret: &str, exp: u64, channels: &[&str]) -> String {
    let claims = Token {
        sub: "alice",
        exp,
        channels,
    };
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn request(target: &str, headers: &[(&'static str, &str)]) -> Request {
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        map.append(*k, v.parse().unwrap());
    }
    Request::new(
        http::Method::GET,
        target.parse().unwrap(),
        map,
        "127.0.0.1:1".parse().unwrap(),
    )
}

fn gate(secret: Option<&str>, public: &[&str], origins: &[&str]) -> Gate {
    let s = crate::config::Settings {
        jwt_secret: secret.map(str::to_owned),
        public_channels: public.iter().map(|c| c.to_string()).collect(),
        allowed_origins: origins.iter().map(|c| c.to_string()).collect(),
        ..Default::default()
    };
    Gate::from_settings(&s).unwrap()
}

#[test]
fn auth_off_admits_everyone() {
    let g = gate(None, &[], &[]);
    let a = g.admit(&request("/?channel=x", &[])).unwrap();
    assert_eq!((a.claims, a.protocol), (None, None));
    assert_eq!(a.options.channels, ["x"]);
}

#[test]
fn a_malformed_since_is_a_bad_request_with_or_without_auth() {
    for g in [gate(None, &[], &[]), gate(Some("k"), &[], &[])] {
        let t = token("k", now() + 60, &["n"]);
        let bad = format!("/?token={t}&channel=n&since=E:abc:n");
        assert_eq!(g.admit(&request(&bad, &[])), Err(Refusal::BadRequest));
        let good = format!("/?token={t}&channel=n&since=E:4:n");
        let a = g.admit(&request(&good, &[])).unwrap();
        assert!(a.options.positions && a.options.since.len() == 1);
        assert_eq!(g.refusals(Refusal::BadRequest), 1);
    }
    assert_eq!(Refusal::BadRequest.status(), http::StatusCode::BAD_REQUEST);
}

#[test]
fn token_in_query_gives_the_user() {
    let g = gate(Some("k"), &[], &[]);
    let t = token("k", now() + 60, &["news"]);
    let a = g
        .admit(&request(&format!("/?token={t}&channel=news"), &[]))
        .unwrap();
    assert_eq!(a.claims.unwrap().sub.as_deref(), Some("alice"));
    assert_eq!(a.protocol, None);
    let only_token = g
        .admit(&request("/", &[("sec-websocket-protocol", &t)]))
        .unwrap();
    assert_eq!(only_token.protocol.as_deref(), Some(t.as_str()));
}

#[test]
fn missing_wrong_or_expired_tokens_are_unauthorized() {
    let g = gate(Some("k"), &[], &[]);
    assert_eq!(g.admit(&request("/", &[])), Err(Refusal::Unauthorized));
    let wrong = token("other", now() + 60, &[]);
    assert_eq!(
        g.admit(&request(&format!("/?token={wrong}"), &[])),
        Err(Refusal::Unauthorized)
    );
    let expired = token("k", now() - 600, &[]);
    assert_eq!(
        g.admit(&request(&format!("/?token={expired}"), &[])),
        Err(Refusal::Unauthorized)
    );
    assert_eq!(g.refusals(Refusal::Unauthorized), 3);
}

/// A token signed with `k` carrying these claims as they are.
fn token_with(claims: serde_json::Value) -> String {
    encode(&Header::default(), &claims, &EncodingKey::from_secret(b"k")).unwrap()
}

#[test]
fn tokens_not_yet_valid_are_unauthorized() {
    // RFC 7519 §4.1.5: not accepted before `nbf`, give or take the leeway.
    let g = gate(Some("k"), &[], &[]);
    let admit = |nbf: serde_json::Value| {
        let t = token_with(serde_json::json!({ "exp": now() + 7200, "nbf": nbf }));
        g.admit(&request(&format!("/?token={t}"), &[]))
    };
    assert_eq!(admit((now() + 3600).into()), Err(Refusal::Unauthorized));
    assert_eq!(
        admit((now() + LEEWAY_SECS + 30).into()),
        Err(Refusal::Unauthorized)
    );
    // An `nbf` that is not a number is not skipped.
    assert_eq!(admit("tomorrow".into()), Err(Refusal::Unauthorized));
    assert!(admit((now() - 60).into()).is_ok());
    assert!(admit(now().into()).is_ok());
    // Clocks a second or two apart.
    assert!(admit((now() + 1).into()).is_ok());
    // No `nbf` at all is fine.
    let t = token_with(serde_json::json!({ "exp": now() + 60 }));
    assert!(g.admit(&request(&format!("/?token={t}"), &[])).is_ok());
}

#[test]
fn token_as_subprotocol_answers_wspush() {
    let g = gate(Some("k"), &[], &[]);
    let t = token("k", now() + 60, &[]);
    let offer = format!("wspush, {t}");
    let a = g
        .admit(&request("/", &[("sec-websocket-protocol", &offer)]))
        .unwrap();
    assert_eq!(a.protocol.as_deref(), Some(SUBPROTOCOL));
}

#[test]
fn channels_need_the_token_or_a_public_list() {
    let g = gate(Some("k"), &["lobby"], &[]);
    let t = token("k", now() + 60, &["news"]);
    let ok = format!("/?token={t}&channel=news&channel=lobby");
    assert!(g.admit(&request(&ok, &[])).is_ok());
    let bad = format!("/?token={t}&channel=secret");
    assert_eq!(g.admit(&request(&bad, &[])), Err(Refusal::Forbidden));
    let any = token("k", now() + 60, &["*"]);
    assert!(
        g.admit(&request(&format!("/?token={any}&channel=secret"), &[]))
            .is_ok()
    );
}

#[test]
fn origins_outside_the_list_are_forbidden() {
    let g = gate(None, &[], &["https://app.example"]);
    assert!(
        g.admit(&request("/", &[("origin", "https://app.example")]))
            .is_ok()
    );
    assert_eq!(
        g.admit(&request("/", &[("origin", "https://evil.example")])),
        Err(Refusal::Forbidden)
    );
    // Non-browser clients send no Origin.
    assert!(g.admit(&request("/", &[])).is_ok());
}

#[test]
fn es256_public_key_file_verifies() {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let dir = std::env::temp_dir().join(format!("wspush-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pub.pem");
    std::fs::write(&path, pair.public_key_pem()).unwrap();
    let s = crate::config::Settings {
        jwt_public_key: Some(path),
        ..Default::default()
    };
    let g = Gate::from_settings(&s).unwrap();
    let claims = Token {
        sub: "bob",
        exp: now() + 60,
        channels: &[],
    };
    let key = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
    let t = encode(&Header::new(Algorithm::ES256), &claims, &key).unwrap();
    let a = g.admit(&request(&format!("/?token={t}"), &[])).unwrap();
    assert_eq!(a.claims.unwrap().sub.as_deref(), Some("bob"));
    let hs = token("k", now() + 60, &[]);
    assert_eq!(
        g.admit(&request(&format!("/?token={hs}"), &[])),
        Err(Refusal::Unauthorized)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tokens_are_redacted_from_shown_queries() {
    assert_eq!(
        redact_token("channel=a&token=x.y.z&positions=1"),
        "channel=a&token=REDACTED&positions=1"
    );
    assert_eq!(redact_token("channel=a"), "channel=a");
    assert_eq!(redact_token(""), "");
}
