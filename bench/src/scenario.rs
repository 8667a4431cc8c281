//! The scenarios of issue 5 as lists of benchmark points.
//!
//! | | what | points |
//! |---|---|---|
//! | a | broadcast 64 B, max rate | 1k and 10k subscribers |
//! | b | broadcast 4 KiB, max rate | 1k and 10k subscribers |
//! | c | 100 channels × 100 subscribers, publishes round robin | 10k subscribers |
//! | d | latency at a fixed rate | 1 msg/s to 10k, 10 msg/s to 1k |
//! | e | idle memory | 10k and 50k connections (see `--idle-connections`) |
//! | f | `push_data` calls/s, no subscribers, pipelined | – |
//! | g | 1% of subscribers never read | 1k without, then 1k + 10 stalled |
//!
//! Message counts are sized for a few seconds per point on a 2-core machine;
//! `scale` multiplies them and `max_subscribers` caps every point (the smoke
//! test runs everything with a few hundred connections).

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
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            scale: 1.0,
            max_subscribers: usize::MAX,
            idle_connections: vec![10_000, 50_000],
        }
    }
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
        }
    }

    /// The points of scenario `letter` (`a`..=`g`); empty for others.
    pub fn points(&self, letter: char) -> Vec<Point> {
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
                    p.name = format!("e-{}-idle", count(p.subscribers));
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
        assert_eq!(a[1].name, "a-10k-64B");
        assert_eq!(shape.points('b')[0].name, "b-1k-4KiB");
        assert_eq!(shape.points('d')[0].name, "d-10k-64B-1/s");
        assert_eq!(shape.points('g')[1].stalled, 10);
        let small = Shape {
            scale: 0.01,
            max_subscribers: 300,
            idle_connections: vec![300],
        };
        let c = small.points('c');
        assert_eq!((c[0].subscribers, c[0].channels), (300, 100));
        assert_eq!(small.points('a')[1].messages, 5);
        assert!(small.points('e')[0].idle_only);
        assert_eq!(parse_letters("a, g"), Ok(vec!['a', 'g']));
        assert_eq!(parse_letters("all").map(|v| v.len()), Ok(7));
        assert!(parse_letters("h").is_err());
    }
}
