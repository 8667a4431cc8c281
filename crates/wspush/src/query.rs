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
//! epochs never do.

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
    /// Parses `EPOCH:SEQ` (broadcast stream) or `EPOCH:SEQ:CHANNEL`.
    pub fn parse(value: &str) -> Option<Since> {
        let mut parts = value.splitn(3, ':');
        let epoch = parts.next()?.to_owned();
        let seq = parts.next()?.parse().ok()?;
        Some(Since {
            stream: parts.next().map(str::to_owned),
            epoch,
            seq,
        })
    }
}

impl ClientOptions {
    /// Reads the options from a query string (without `?`); unknown keys and
    /// malformed values are ignored, as browsers' extra parameters must be.
    pub fn from_query(query: &str) -> ClientOptions {
        let mut opts = ClientOptions::default();
        for (key, value) in query.split('&').filter_map(|pair| pair.split_once('=')) {
            let Some(value) = percent_decode(value) else {
                continue;
            };
            match key {
                "channel" if !value.is_empty() => opts.channels.push(value),
                "positions" => opts.positions |= matches!(value.as_str(), "1" | "true" | "yes"),
                "since" => {
                    if let Some(since) = Since::parse(&value) {
                        opts.positions = true;
                        // The first position given for a stream wins.
                        if !opts.since.iter().any(|s| s.stream == since.stream) {
                            opts.since.push(since);
                        }
                    }
                }
                _ => {}
            }
        }
        // A resume for a channel the connection does not join would never be served.
        let channels = &opts.channels;
        opts.since
            .retain(|s| s.stream.as_ref().is_none_or(|c| channels.contains(c)));
        opts
    }
}

/// Parses the channels a browser asked for in its URL: `?channel=a&channel=b`.
pub fn channels_from_query(query: &str) -> Vec<String> {
    ClientOptions::from_query(query).channels
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
        let o = ClientOptions::from_query(
            "channel=a%3Ab&since=e1:41&since=e2:17:a%3Ab&since=e3:5:other&since=bad&since=e:x",
        );
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
        assert!(ClientOptions::from_query("positions=1").positions);
        assert!(!ClientOptions::from_query("positions=0&channel=x").positions);
    }
}
