//! Who may connect and which channels they may join.
//!
//! ```text
//! upgrade request --Origin in allowlist?--no--> 403
//!                 --query well-formed (every `since=` parses)?--no--> 400
//!                 --token (?token= or subprotocol) valid JWT?--no--> 401
//!                 --every ?channel= allowed by the token or public?--no--> 403
//!                 --> 101, the connection carries the token's `sub` as its user
//! ```
//!
//! Everything but the query check is off by default: with no JWT key and no origin list a
//! plain `new WebSocket(url)` connects as before.

pub mod secret;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use ws_server::Request;

use crate::delivery::query::ClientOptions;

/// The subprotocol a browser names next to its token:
/// `new WebSocket(url, ["wspush", token])`; the server answers with it.
pub const SUBPROTOCOL: &str = "wspush";

/// Seconds a token's `exp` and `nbf` may be off, for clocks a little apart.
pub const LEEWAY_SECS: u64 = 5;

/// The claims wspush reads from a token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Claims {
    /// The user id: `send_user(user, data)` reaches every connection with it.
    #[serde(default)]
    pub sub: Option<String>,
    /// Expiry, seconds since the Unix epoch (required).
    pub exp: u64,
    /// Not before, seconds since the Unix epoch (optional). Declared so that
    /// a value that is not a number refuses the token: the JWT library skips
    /// an `nbf` it cannot read.
    #[serde(default)]
    pub nbf: Option<u64>,
    /// Channels the holder may join (`"*"`: any).
    #[serde(default)]
    pub channels: Vec<String>,
}

/// Why a JWT key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The public key file could not be read.
    #[error("cannot read JWT public key {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds neither an RSA nor an EC public key in PEM form.
    #[error("{0} holds no RSA or EC (P-256) public key in PEM form")]
    Key(String),
}

/// How a refused upgrade is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The query asks for something malformed (a `since=` that does not parse): 400.
    BadRequest,
    /// No token, or an invalid, expired, not yet valid or wrongly signed one: 401.
    Unauthorized,
    /// The Origin is not allowed, or a channel is not permitted: 403.
    Forbidden,
}

impl Refusal {
    /// The HTTP status of the refusal.
    pub fn status(self) -> http::StatusCode {
        match self {
            Refusal::BadRequest => http::StatusCode::BAD_REQUEST,
            Refusal::Unauthorized => http::StatusCode::UNAUTHORIZED,
            Refusal::Forbidden => http::StatusCode::FORBIDDEN,
        }
    }

    /// The close reason when an open connection turns out refused.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::BadRequest => "malformed query",
            Refusal::Unauthorized => "token expired",
            Refusal::Forbidden => "forbidden",
        }
    }
}

/// What an admitted browser may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// What the URL asks for (channels, positions, resume points).
    pub options: ClientOptions,
    /// The token's claims; `None` when auth is off.
    pub claims: Option<Claims>,
    /// The subprotocol to answer with, if the token came as one.
    pub protocol: Option<String>,
}

/// The connect policy: JWT verification, public channels, allowed origins.
pub struct Gate {
    jwt: Option<(DecodingKey, Validation)>,
    public_channels: Vec<String>,
    allowed_origins: Vec<String>,
    bad_request: AtomicU64,
    unauthorized: AtomicU64,
    forbidden: AtomicU64,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("jwt", &self.jwt.is_some())
            .field("public_channels", &self.public_channels)
            .field("allowed_origins", &self.allowed_origins)
            .finish()
    }
}

impl Default for Gate {
    fn default() -> Self {
        Gate::open()
    }
}

impl Gate {
    /// Lets everyone in (auth off, any origin).
    pub fn open() -> Gate {
        Gate {
            jwt: None,
            public_channels: Vec::new(),
            allowed_origins: Vec::new(),
            bad_request: AtomicU64::new(0),
            unauthorized: AtomicU64::new(0),
            forbidden: AtomicU64::new(0),
        }
    }

    /// The policy of these settings.
    pub fn from_settings(s: &crate::config::Settings) -> Result<Gate, AuthError> {
        let jwt = match (&s.jwt_secret, &s.jwt_public_key) {
            (Some(secret), _) => Some(hs256(secret.as_bytes())),
            (None, Some(path)) => Some(public_key(path)?),
            (None, None) => None,
        };
        Ok(Gate {
            jwt,
            public_channels: s.public_channels.clone(),
            allowed_origins: s.allowed_origins.clone(),
            ..Gate::open()
        })
    }

    /// Whether connecting needs a token.
    pub fn auth_on(&self) -> bool {
        self.jwt.is_some()
    }

    /// Upgrades refused for this reason since start.
    pub fn refusals(&self, why: Refusal) -> u64 {
        self.counter(why).load(Ordering::Relaxed)
    }

    fn counter(&self, why: Refusal) -> &AtomicU64 {
        match why {
            Refusal::BadRequest => &self.bad_request,
            Refusal::Unauthorized => &self.unauthorized,
            Refusal::Forbidden => &self.forbidden,
        }
    }

    /// Decides an upgrade request, counting refusals.
    pub fn admit(&self, req: &Request) -> Result<Admission, Refusal> {
        self.decide(req).inspect_err(|why| {
            self.counter(*why).fetch_add(1, Ordering::Relaxed);
        })
    }

    fn decide(&self, req: &Request) -> Result<Admission, Refusal> {
        self.check_origin(req)?;
        let options =
            ClientOptions::parse(req.query().unwrap_or("")).map_err(|_| Refusal::BadRequest)?;
        let offers = offers(req);
        let protocol = answer(&offers);
        let Some((key, validation)) = &self.jwt else {
            return Ok(Admission {
                options,
                claims: None,
                protocol,
            });
        };
        let token = token_of(req, &offers).ok_or(Refusal::Unauthorized)?;
        let claims = jsonwebtoken::decode::<Claims>(&token, key, validation)
            .map_err(|_| Refusal::Unauthorized)?
            .claims;
        if !options.channels.iter().all(|c| self.may_join(&claims, c)) {
            return Err(Refusal::Forbidden);
        }
        Ok(Admission {
            options,
            claims: Some(claims),
            protocol,
        })
    }

    fn check_origin(&self, req: &Request) -> Result<(), Refusal> {
        if self.allowed_origins.is_empty() {
            return Ok(());
        }
        // Only browsers send Origin, and only they can be made to connect by a
        // foreign page; other programs could forge any value anyway.
        let Some(origin) = req.headers().get(http::header::ORIGIN) else {
            return Ok(());
        };
        let allowed = origin.to_str().is_ok_and(|o| {
            self.allowed_origins
                .iter()
                .any(|a| a == "*" || a.eq_ignore_ascii_case(o))
        });
        allowed.then_some(()).ok_or(Refusal::Forbidden)
    }

    fn may_join(&self, claims: &Claims, channel: &str) -> bool {
        self.public_channels.iter().any(|c| c == channel)
            || claims.channels.iter().any(|c| c == "*" || c == channel)
    }
}

fn hs256(secret: &[u8]) -> (DecodingKey, Validation) {
    (
        DecodingKey::from_secret(secret),
        validation(Algorithm::HS256),
    )
}

fn public_key(path: &Path) -> Result<(DecodingKey, Validation), AuthError> {
    let pem = std::fs::read(path).map_err(|source| AuthError::Read {
        path: path.display().to_string(),
        source,
    })?;
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        return Ok((key, validation(Algorithm::RS256)));
    }
    match DecodingKey::from_ec_pem(&pem) {
        Ok(key) => Ok((key, validation(Algorithm::ES256))),
        Err(_) => Err(AuthError::Key(path.display().to_string())),
    }
}

fn validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.set_required_spec_claims(&["exp"]);
    // RFC 7519 §4.1.5: a token MUST NOT be accepted before its `nbf` (the
    // library checks it only when asked; an absent `nbf` is fine).
    v.validate_nbf = true;
    // Room for clocks a little apart, not for old or future tokens: applies
    // to `exp` and `nbf` alike.
    v.leeway = LEEWAY_SECS;
    v
}

/// `query` with the value of `token=` replaced by `REDACTED`.
pub fn redact_token(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("token", _)) => "token=REDACTED",
            _ => pair,
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The subprotocols a browser offered, in order.
fn offers(req: &Request) -> Vec<String> {
    req.headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The subprotocol to answer: `wspush` if offered, else an offered token
/// (a browser fails a connection whose answer names none of its offers).
fn answer(offers: &[String]) -> Option<String> {
    offers
        .iter()
        .find(|p| *p == SUBPROTOCOL)
        .or_else(|| offers.iter().find(|p| looks_like_jwt(p)))
        .cloned()
}

fn looks_like_jwt(p: &str) -> bool {
    p.split('.').count() == 3
}

/// The token of a request: `?token=` first, then an offered subprotocol
/// that looks like a JWT.
fn token_of(req: &Request, offers: &[String]) -> Option<String> {
    let from_query = req
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, v)| *k == "token" && !v.is_empty())
        .map(|(_, v)| v.to_owned());
    from_query.or_else(|| offers.iter().find(|p| looks_like_jwt(p)).cloned())
}

#[cfg(test)]
mod tests;
