//! The scenarios of issue 5 as lists of benchmark points.
//!
//! | | what | points |
//! |---|---|---|
//! | a | broadcast 64 B, max rate | 1k and 10k subscribers |
//! | b | broadcast 4 KiB, max rate | 1k and 10k subscribers |
//! | c | 100 channels × 100 subscribers, publishes round robin | 10k subscribers |
//! | d | latency at a fixed rate; time to `101` of 100 newcomers at 10k | 1 msg/s to 10k, 10 msg/s to 1k |
//! | e | idle memory | 10k and 50k connections (see `--idle-connections`) |
//! | f | `push_data` calls/s, no subscribers | – |
//! | g | 1% of subscribers never read | 1k without, then 1k + 10 stalled |
//!
//! Every point carries its publisher's shape ([`PubShape`]): by default one
//! call in flight on one connection, as the canonical synchronous client
//! (`client.call(:push_data, data)` in a loop). Scenarios a, b, c and f run
//! each point again pipelined ([`Shape::pipelined`] calls in flight), so both
//! what a synchronous program sees and what the server can take appear.
//!
//! Message counts are sized for a few seconds per point on a 2-core machine;
//! `scale` multiplies them and `max_subscribers` caps every point (the smoke
//! test runs everything with a few hundred connections).

use std::fmt;
use std::str::FromStr;

use crate::browser::ClientShape;

/// How a publisher sends a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PubMode {
    /// A request (`[0, id, "push_data", [data]]`, or an HTTP POST): the reply
    /// frees its in-flight slot.
    #[default]
    Call,
    /// A MessagePack-RPC notification (`[2, "push_data", [data]]`): no reply,
    /// paced by the rate and the lag brakes only.
    Notify,
}

impl FromStr for PubMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "call" => Ok(PubMode::Call),
            "notify" => Ok(PubMode::Notify),
            _ => Err(format!("unknown publish mode {s:?}: use call or notify")),
        }
    }
}

impl fmt::Display for PubMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PubMode::Call => "call",
            PubMode::Notify => "notify",
        })
    }
}

/// How subscribers receive: WebSocket frames, or an EventSource stream (`GET` with
/// `Accept: text/event-stream`, read by [`crate::sse`]). Every JSON line names it.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// RFC 6455 upgrade, then frames.
    #[default]
    Ws,
    /// Server-Sent Events over HTTP/1.1.
    Sse,
}

/// The publisher side of a point: how many connections, how many requests
/// each keeps in flight, calls or notifications. Its fields appear at the top
/// level of a point's JSON line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PubShape {
    /// Requests in flight per publisher connection: 1 sends the next one when
    /// the reply to the last has come. 0 in notify mode (nothing is answered).
    /// Lines written before the field existed read as 256: they were
    /// pipelined with the old default window.
    #[serde(default = "legacy_inflight")]
    pub inflight: usize,
    /// Publisher connections sending at once, each with its own in-flight
    /// limit; the messages are split among them.
    #[serde(default = "one")]
    pub publishers: usize,
    /// Calls or notifications.
    #[serde(default)]
    pub pub_mode: PubMode,
}

fn legacy_inflight() -> usize {
    256
}

fn one() -> usize {
    1
}

impl Default for PubShape {
    /// What the seed's client does: one connection, one call at a time.
    fn default() -> Self {
        PubShape {
            inflight: 1,
            publishers: 1,
            pub_mode: PubMode::Call,
        }
    }
}

impl PubShape {
    /// The same shape with its fields in range: at least one publisher, at
    /// least one call in flight, none for notifications.
    pub fn normalized(self) -> Self {
        PubShape {
            inflight: match self.pub_mode {
                PubMode::Call => self.inflight.max(1),
                PubMode::Notify => 0,
            },
            publishers: self.publishers.max(1),
            pub_mode: self.pub_mode,
        }
    }

    /// For tables: `call/1` (one call at a time), `call/16`, `2×call/1`, `notify`.
    pub fn label(&self) -> String {
        let each = match self.pub_mode {
            PubMode::Call => format!("call/{}", self.inflight),
            PubMode::Notify => "notify".into(),
        };
        match self.publishers {
            1 => each,
            k => format!("{k}×{each}"),
        }
    }

    /// For channel names (letters, digits and `-` only): `c1`, `c16p2`, `n`.
    pub fn tag(&self) -> String {
        let mut tag = match self.pub_mode {
            PubMode::Call => format!("c{}", self.inflight),
            PubMode::Notify => "n".into(),
        };
        if self.publishers != 1 {
            tag.push_str(&format!("p{}", self.publishers));
        }
        tag
    }
}

/// One benchmark point.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Point {
    /// Scenario letter.
    pub scenario: char,
    /// Name shared by every server in a comparison.
    #[serde(rename = "point")]
    pub name: String,
    /// Well-behaved subscribers.
    pub subscribers: usize,
    /// Subscribers that never read.
    pub stalled: usize,
    /// Channels (0: broadcast).
    pub channels: usize,
    /// Payload bytes.
    pub size: usize,
    /// Messages to publish.
    pub messages: u64,
    /// Messages per second; `None` for max rate.
    pub rate: Option<f64>,
    /// Connect, measure memory, publish nothing.
    #[serde(default)]
    pub idle_only: bool,
    /// New connections made (and timed to their `101`) while publishing; see
    /// [`handshake`](crate::handshake).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub newcomers: usize,
    /// How scenario e's clients connect (browser-like shapes; plain elsewhere).
    #[serde(default, skip_serializing_if = "ClientShape::is_plain")]
    pub client: ClientShape,
    /// How the subscribers receive (lines written before the field read as `ws`).
    #[serde(default)]
    pub transport: Transport,
    /// The publisher's shape.
    #[serde(flatten)]
    pub publisher: PubShape,
}

/// Knobs that shape every scenario's points.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// Multiplies message counts.
    pub scale: f64,
    /// Caps every point's connections.
    pub max_subscribers: usize,
    /// Connection counts of scenario e.
    pub idle_connections: Vec<usize>,
    /// The publisher of every point.
    pub publisher: PubShape,
    /// How scenario e's clients connect.
    pub client: ClientShape,
    /// How every point's subscribers receive.
    pub transport: Transport,
    /// Calls in flight of the second, pipelined run of each point of
    /// scenarios a, b, c and f (0: no second run; none either in notify mode
    /// or when it equals `publisher.inflight`).
    pub pipelined: usize,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            scale: 1.0,
            max_subscribers: usize::MAX,
            idle_connections: vec![10_000, 50_000],
            publisher: PubShape::default(),
            client: ClientShape::default(),
            transport: Transport::Ws,
            pipelined: 16,
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// `10000` → `10k`.
fn count(n: usize) -> String {
    if n >= 1000 && n % 1000 == 0 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// `4096` → `4KiB`.
fn bytes(n: usize) -> String {
    if n >= 1024 && n % 1024 == 0 {
        format!("{}KiB", n / 1024)
    } else {
        format!("{n}B")
    }
}

impl Shape {
    fn point(&self, scenario: char, subscribers: usize, size: usize, messages: u64) -> Point {
        let subscribers = subscribers.min(self.max_subscribers);
        Point {
            scenario,
            name: format!("{scenario}-{}-{}", count(subscribers), bytes(size)),
            subscribers,
            stalled: 0,
            channels: 0,
            size,
            messages: ((messages as f64 * self.scale).round() as u64).max(5),
            rate: None,
            idle_only: false,
            newcomers: 0,
            client: ClientShape::default(),
            transport: self.transport,
            publisher: self.publisher.normalized(),
        }
    }

    /// The points of scenario `letter` (`a`..=`g`), each followed by its
    /// pipelined run where there is one; empty for other letters.
    pub fn points(&self, letter: char) -> Vec<Point> {
        let points = self.base_points(letter);
        let base = self.publisher.normalized();
        let again = matches!(letter, 'a' | 'b' | 'c' | 'f')
            && base.pub_mode == PubMode::Call
            && self.pipelined > 0
            && self.pipelined != base.inflight;
        if !again {
            return points;
        }
        let pipelined = PubShape {
            inflight: self.pipelined,
            ..base
        };
        points
            .into_iter()
            .flat_map(|p| {
                let mut q = p.clone();
                q.publisher = pipelined;
                [p, q]
            })
            .collect()
    }

    fn base_points(&self, letter: char) -> Vec<Point> {
        match letter {
            'a' => vec![
                self.point('a', 1_000, 64, 3_000),
                self.point('a', 10_000, 64, 300),
            ],
            'b' => vec![
                self.point('b', 1_000, 4096, 1_000),
                self.point('b', 10_000, 4096, 100),
            ],
            'c' => {
                let per = 100.min(self.max_subscribers / 100).max(1);
                let mut p = self.point('c', per * 100, 64, 30_000);
                p.channels = 100;
                p.name = format!("c-100x{per}-64B");
                vec![p]
            }
            'd' => {
                let mut slow = self.point('d', 10_000, 64, 15);
                slow.rate = Some(1.0);
                slow.name.push_str("-1/s");
                // Do connects wait for a 10k fan-out? (Issue 13: p99 under 5 ms.)
                slow.newcomers = 100;
                let mut fast = self.point('d', 1_000, 64, 100);
                fast.rate = Some(10.0);
                fast.name.push_str("-10/s");
                vec![slow, fast]
            }
            'e' => self
                .idle_connections
                .iter()
                .map(|n| {
                    let mut p = self.point('e', *n, 0, 0);
                    p.name = format!("e-{}-{}", count(p.subscribers), self.client.tag());
                    p.client = self.client;
                    p.messages = 0;
                    p.idle_only = true;
                    p
                })
                .collect(),
            'f' => {
                let mut p = self.point('f', 0, 64, 300_000);
                p.name = "f-push_data-64B".into();
                vec![p]
            }
            'g' => {
                // 8 MiB per stalled socket: more than the server's 1 MiB queue
                // plus a socket send buffer that may grow to 4 MiB (tcp_wmem).
                let base = self.point('g', 1_000, 1024, 8_000);
                let mut stalled = base.clone();
                stalled.stalled = (base.subscribers / 100).max(1);
                stalled.name = format!("{}-stall{}", base.name, stalled.stalled);
                vec![base, stalled]
            }
            _ => Vec::new(),
        }
    }
}

/// Parses `a,b,d` or `all`.
pub fn parse_letters(list: &str) -> Result<Vec<char>, String> {
    if list == "all" {
        return Ok("abcdefg".chars().collect());
    }
    list.split(',')
        .map(str::trim)
        .map(|s| match s.chars().collect::<Vec<_>>()[..] {
            [c @ 'a'..='g'] => Ok(c),
            _ => Err(format!("unknown scenario {s:?}: use a..g or all")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_caps() {
        let shape = Shape::default();
        let a = shape.points('a');
        assert_eq!(a[2].name, "a-10k-64B");
        assert_eq!(shape.points('b')[0].name, "b-1k-4KiB");
        assert_eq!(shape.points('d')[0].name, "d-10k-64B-1/s");
        assert_eq!(shape.points('g')[1].stalled, 10);
        let small = Shape {
            scale: 0.01,
            max_subscribers: 300,
            idle_connections: vec![300],
            ..Shape::default()
        };
        let c = small.points('c');
        assert_eq!((c[0].subscribers, c[0].channels), (300, 100));
        assert_eq!(small.points('a')[3].messages, 5);
        assert!(small.points('e')[0].idle_only);
        assert_eq!(parse_letters("a, g"), Ok(vec!['a', 'g']));
        assert_eq!(parse_letters("all").map(|v| v.len()), Ok(7));
        assert!(parse_letters("h").is_err());
    }

    #[test]
    fn one_call_at_a_time_then_pipelined() {
        let shape = Shape::default();
        let inflight = |letter| -> Vec<usize> {
            shape
                .points(letter)
                .iter()
                .map(|p| p.publisher.inflight)
                .collect()
        };
        assert_eq!(inflight('a'), [1, 16, 1, 16]);
        assert_eq!(inflight('c'), [1, 16]);
        assert_eq!(inflight('f'), [1, 16]);
        assert_eq!(inflight('d'), [1, 1], "paced: the shape hardly matters");
        let a = shape.points('a');
        assert_eq!(a[0].name, a[1].name, "the same point, another publisher");
        let notify = Shape {
            publisher: PubShape {
                inflight: 4,
                publishers: 2,
                pub_mode: PubMode::Notify,
            },
            ..Shape::default()
        };
        let a = notify.points('a');
        assert_eq!(a.len(), 2, "no pipelined run of notifications");
        assert_eq!(a[0].publisher.inflight, 0);
        assert_eq!(a[0].publisher.label(), "2×notify");
        assert_eq!(a[0].publisher.tag(), "np2");
        let single = Shape {
            pipelined: 0,
            ..Shape::default()
        };
        assert_eq!(single.points('b').len(), 2);
        assert_eq!(PubShape::default().label(), "call/1");
        assert_eq!("notify".parse::<PubMode>(), Ok(PubMode::Notify));
        assert!("cast".parse::<PubMode>().is_err());
    }

    #[test]
    fn json_fields_and_old_lines() {
        let p = Shape::default().points('a').remove(1);
        let json = serde_json::to_string(&p).unwrap_or_default();
        assert!(
            json.contains(r#""inflight":16,"publishers":1,"pub_mode":"call""#),
            "{json}"
        );
        let old = r#"{"scenario":"a","point":"a-1k-64B","subscribers":1000,"stalled":0,"channels":0,"size":64,"messages":3000,"rate":null}"#;
        let p: Point = serde_json::from_str(old).unwrap_or_default();
        assert_eq!(p.publisher.inflight, 256, "the old default window");
        assert_eq!(
            (p.publisher.publishers, p.publisher.pub_mode),
            (1, PubMode::Call)
        );
    }
}
