//! What a browser asks for in its URL.
//!
//! ```text
//! ?channel=news&channel=sports        channels (any number)
//! &positions=1                        frames carry their position (see `position`)
//! &since=lq3x9a.0:41                  resume the broadcast stream after seq 41 of that epoch
//! &since=lq3x9a.1:17:news             resume channel "news" after seq 17 (implies positions)
//! ```
//!
//! A `since` names the channel last so that channel names may contain `:`;
//! epochs never do. A `since` that does not parse refuses the whole request
//! (HTTP 400 before the upgrade, see `auth::Gate`): a client that asked for
//! positions must never get raw frames it would misread as a header line.

/// The channels, position and resume requests of one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// Channels to subscribe to.
    pub channels: Vec<String>,
    /// Frames carry their position (`positions=1`, or any valid `since`).
    pub positions: bool,
    /// Where to resume, per stream.
    pub since: Vec<Since>,
}

/// A resume request: "I have everything of `stream` up to `seq` of `epoch`".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Since {
    /// `None` for the broadcast stream.
    pub stream: Option<String>,
    /// The epoch of the last message the client has.
    pub epoch: String,
    /// Its sequence number.
    pub seq: u64,
}

impl Since {
    /// Parses `EPOCH:SEQ` (broadcast stream) or `EPOCH:SEQ:CHANNEL`; the
    /// epoch may be empty (a stream that had no history), a channel not.
    pub fn parse(value: &str) -> Option<Since> {
        let mut parts = value.splitn(3, ':');
        let epoch = parts.next()?.to_owned();
        let seq = parts.next()?.parse().ok()?;
        let stream = match parts.next() {
            Some("") => return None,
            other => other.map(str::to_owned),
        };
        Some(Since { stream, epoch, seq })
    }
}

/// Why a query string is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A `since=` value that is not `EPOCH:SEQ` or `EPOCH:SEQ:CHANNEL`.
    #[error("malformed since={0:?}: expected EPOCH:SEQ or EPOCH:SEQ:CHANNEL")]
    Since(String),
}

impl ClientOptions {
    /// Reads the options from a query string (without `?`). Unknown keys and
    /// malformed values of other keys are ignored, as browsers' extra
    /// parameters must be; a malformed `since` is an error, because the
    /// client expects positioned frames (see the module docs).
    pub fn parse(query: &str) -> Result<ClientOptions, QueryError> {
        let mut opts = ClientOptions::default();
        for (key, raw) in query.split('&').filter_map(|pair| pair.split_once('=')) {
            let value = percent_decode(raw);
            match (key, value) {
                ("channel", Some(value)) if !value.is_empty() => opts.channels.push(value),
                ("positions", Some(value)) => {
                    opts.positions |= matches!(value.as_str(), "1" | "true" | "yes")
                }
                ("since", value) => {
                    let since = parse_since(raw, value)?;
                    opts.positions = true;
                    // The first position given for a stream wins.
                    if !opts.since.iter().any(|s| s.stream == since.stream) {
                        opts.since.push(since);
                    }
                }
                _ => {}
            }
        }
        // A resume for a channel the connection does not join would never be served.
        let channels = &opts.channels;
        opts.since
            .retain(|s| s.stream.as_ref().is_none_or(|c| channels.contains(c)));
        Ok(opts)
    }
}

fn parse_since(raw: &str, value: Option<String>) -> Result<Since, QueryError> {
    value
        .as_deref()
        .and_then(Since::parse)
        .ok_or_else(|| QueryError::Since(raw.to_owned()))
}

/// Every `since=` of a query string, whatever channels it names (an SSE `Last-Event-ID`
/// is one, see `event_stream`); the first for a stream wins.
pub fn since_list(query: &str) -> Result<Vec<Since>, QueryError> {
    let mut list: Vec<Since> = Vec::new();
    for (key, raw) in query.split('&').filter_map(|pair| pair.split_once('=')) {
        if key == "since" {
            let since = parse_since(raw, percent_decode(raw))?;
            if !list.iter().any(|s| s.stream == since.stream) {
                list.push(since);
            }
        }
    }
    Ok(list)
}

/// Parses the channels a browser asked for in its URL: `?channel=a&channel=b`
/// (none when the query is refused).
pub fn channels_from_query(query: &str) -> Vec<String> {
    ClientOptions::parse(query)
        .map(|o| o.channels)
        .unwrap_or_default()
}

/// Decodes `%XX` escapes and `+` in a query value; `None` if it is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_come_from_the_query() {
        assert_eq!(
            channels_from_query("channel=news&x=1&channel=sports&channel="),
            vec!["news", "sports"]
        );
        assert_eq!(
            channels_from_query("channel=a%20b&channel=c+d"),
            vec!["a b", "c d"]
        );
        assert_eq!(channels_from_query("channel=%zz"), vec!["%zz"]);
        assert_eq!(channels_from_query("channel=%e2%82%ac"), vec!["€"]);
        assert!(channels_from_query("").is_empty());
        assert!(channels_from_query("channel=%ff").is_empty());
    }

    #[test]
    fn positions_and_resume_points() {
        let o =
            ClientOptions::parse("channel=a%3Ab&since=e1:41&since=e2:17:a%3Ab&since=e3:5:other")
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(o.positions);
        assert_eq!(
            o.since,
            vec![
                Since {
                    stream: None,
                    epoch: "e1".into(),
                    seq: 41
                },
                Since {
                    stream: Some("a:b".into()),
                    epoch: "e2".into(),
                    seq: 17
                },
            ]
        );
        assert!(ClientOptions::parse("positions=1").is_ok_and(|o| o.positions));
        assert!(ClientOptions::parse("positions=0&channel=x").is_ok_and(|o| !o.positions));
        // A stream that had no history has the empty epoch.
        assert!(ClientOptions::parse("since=:0").is_ok_and(|o| o.since.len() == 1));
    }

    #[test]
    fn a_malformed_since_refuses_the_query() {
        for bad in [
            "since=E:abc:n",
            "since=bad",
            "since=e:x",
            "since=",
            "since=e:-1",
            "since=e:5:",
            "since=e%3A%ff",
            "channel=a&since=e1:4:a&since=e:99999999999999999999:a",
        ] {
            let err = ClientOptions::parse(bad).err();
            assert!(matches!(err, Some(QueryError::Since(_))), "{bad}: {err:?}");
        }
        assert!(channels_from_query("channel=a&since=oops").is_empty());
    }
}
