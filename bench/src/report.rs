//! Results of a benchmark point: one JSON line each, a text table, the
//! side-by-side ratios of two runs (`wspush-bench compare`), each publisher
//! shape against one call at a time (`wspush-bench shapes`), and every
//! server and shape beside each other (`wspush-bench side`).

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::scenario::{Point, PubShape};

/// Everything measured at one point.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PointResult {
    /// Which server (e.g. `wspush`, `nchan`).
    pub label: String,
    /// What was measured (its fields appear at the top level of the JSON).
    #[serde(flatten)]
    pub point: Point,
    /// Seconds from the first publish to the last delivery.
    pub seconds: f64,
    /// Messages received by well-behaved subscribers.
    pub deliveries: u64,
    /// `deliveries / seconds`.
    pub deliveries_per_sec: f64,
    /// Publish calls acknowledged per second.
    pub publishes_per_sec: f64,
    /// Publish→receive latency percentiles, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Maximum.
    pub max_ms: f64,
    /// Messages missing at well-behaved subscribers.
    pub lost: u64,
    /// Messages received after a later one.
    pub out_of_order: u64,
    /// Well-behaved subscribers with any loss or reorder.
    pub bad_clients: usize,
    /// Subscribers that failed (connect error, closed by the server).
    pub failed: usize,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Server RSS before the subscribers connected, bytes.
    pub rss_before: u64,
    /// Server RSS with every subscriber connected and idle, bytes.
    pub rss_connected: u64,
    /// `(rss_connected - rss_before) / connections`.
    pub rss_per_conn: f64,
    /// The same from PSS (fair for multi-process servers).
    pub pss_per_conn: f64,
    /// Server CPU seconds during publishing.
    pub server_cpu_secs: f64,
    /// Server CPU seconds per million deliveries.
    pub server_cpu_per_m: f64,
    /// Load generator CPU during publishing, in cores (1.0 = one core busy).
    pub gen_cpu_cores: f64,
    /// wspush `stats()` after the point: deliveries refused by full queues.
    pub overflows: Option<u64>,
    /// wspush `stats()` after the point: connections closed by the overflow policy.
    pub overflow_closes: Option<u64>,
    /// wspush `stats()` over publishing: frames written per write system call (direct
    /// and by connection tasks), the batching that decides the server's CPU per delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_write: Option<f64>,
    /// `/proc/loadavg` (1 min) when the point started: other work on the machine.
    pub loadavg: f64,
    /// Time to `101` of the point's newcomers (scenario d at 10k).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrades: Option<crate::handshake::Upgrades>,
}

impl PointResult {
    /// Whether well-behaved subscribers got every message in order.
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.out_of_order == 0 && self.bad_clients == 0 && self.failed == 0
    }

    /// One JSON line.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn mib(b: f64) -> String {
    if b >= 1024.0 * 1024.0 {
        format!("{:.1}M", b / 1024.0 / 1024.0)
    } else {
        format!("{:.1}K", b / 1024.0)
    }
}

/// A Markdown table of results.
pub fn table(results: &[PointResult]) -> String {
    let mut out = String::from(
        "| server | point | publisher | subs | deliveries/s | p50 ms | p99 ms | p99.9 ms | max ms | lost/ooo | RSS/conn | srv CPU s/M | gen cores | load |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        let rate = rate(r);
        let mut point = r.point.name.clone();
        if let Some(c) = r.overflow_closes.filter(|_| r.point.stalled > 0) {
            let _ = write!(point, " (overflow closes {c})");
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {}{} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {}/{} | {} | {:.2} | {:.2} | {:.1} |",
            r.label,
            point,
            r.point.publisher.label(),
            r.point.subscribers,
            if r.point.stalled > 0 {
                format!("+{}", r.point.stalled)
            } else {
                String::new()
            },
            rate,
            r.p50_ms,
            r.p99_ms,
            r.p999_ms,
            r.max_ms,
            r.lost,
            r.out_of_order,
            mib(r.rss_per_conn),
            r.server_cpu_per_m,
            r.gen_cpu_cores,
            r.loadavg,
        );
    }
    out
}

/// Deliveries/s, or calls/s where nobody subscribes (scenario f).
fn throughput(r: &PointResult) -> f64 {
    if r.point.subscribers == 0 {
        r.publishes_per_sec
    } else {
        r.deliveries_per_sec
    }
}

/// [`throughput`] for a table cell.
fn rate(r: &PointResult) -> String {
    match r.point.subscribers {
        0 => format!("{:.0} calls/s", r.publishes_per_sec),
        _ => format!("{:.0}", r.deliveries_per_sec),
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "–".into()
    }
}

/// Pairs each row of `ours` with a row of `theirs` that `same` accepts: the
/// k-th repeat of a row (same label, point and shape) with the k-th match,
/// or the last match when there are fewer, so repeated rounds pair in order.
fn pairs<'a>(
    ours: &'a [PointResult],
    theirs: &'a [PointResult],
    same: impl Fn(&PointResult, &PointResult) -> bool,
) -> Vec<(&'a PointResult, &'a PointResult)> {
    let key = |r: &PointResult| (r.label.clone(), r.point.name.clone(), r.point.publisher);
    ours.iter()
        .enumerate()
        .filter_map(|(i, o)| {
            let repeat = ours[..i].iter().filter(|e| key(e) == key(o)).count();
            let matches: Vec<_> = theirs.iter().filter(|t| same(o, t)).collect();
            let t = matches.get(repeat).or(matches.last())?;
            Some((o, *t))
        })
        .collect()
}

/// Ratios of `ours` over `theirs`, point by point: the same point with the
/// same publisher shape, present in both.
pub fn compare(ours: &[PointResult], theirs: &[PointResult]) -> String {
    let mut out = String::from(
        "| point | publisher | deliveries/s × (calls/s without subscribers) | p99 ÷ (lower is better) | RSS/conn ÷ | srv CPU per delivery ÷ |\n|---|---|---|---|---|---|\n",
    );
    let same = |o: &PointResult, t: &PointResult| {
        o.point.name == t.point.name && o.point.publisher == t.point.publisher
    };
    for (o, t) in pairs(ours, theirs, same) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            o.point.name,
            o.point.publisher.label(),
            ratio(throughput(o), throughput(t)),
            ratio(o.p99_ms, t.p99_ms),
            // Only idle points start from a fresh server; elsewhere memory
            // freed by earlier points is reused and the figure means little.
            if o.point.scenario == 'e' {
                ratio(o.rss_per_conn, t.rss_per_conn)
            } else {
                "–".into()
            },
            ratio(o.server_cpu_per_m, t.server_cpu_per_m),
        );
    }
    out
}

/// Every row whose publisher is not one call at a time, against the row of
/// the same server and point with one call at a time: how much a synchronous
/// publisher leaves on the table.
pub fn shapes(results: &[PointResult]) -> String {
    let mut out = String::from(
        "| server | point | publisher | deliveries/s | × call/1 | publishes/s | × call/1 | p99 ms | call/1 p99 ms |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let sync = PubShape::default();
    let (one, other): (Vec<_>, Vec<_>) = results
        .iter()
        .filter(|r| !r.point.idle_only)
        .cloned()
        .partition(|r| r.point.publisher == sync);
    let same =
        |o: &PointResult, t: &PointResult| o.label == t.label && o.point.name == t.point.name;
    for (o, t) in pairs(&other, &one, same) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.0} | {} | {:.2} | {:.2} |",
            o.label,
            o.point.name,
            o.point.publisher.label(),
            rate(o),
            ratio(throughput(o), throughput(t)),
            o.publishes_per_sec,
            ratio(o.publishes_per_sec, t.publishes_per_sec),
            o.p99_ms,
            t.p99_ms,
        );
    }
    out
}

/// `2440000` → `2.44M`, `118000` → `118k`.
fn short(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.0}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// One row per point, one column per server and publisher shape (in the
/// order they first appear): deliveries/s and p99 (calls/s where nobody
/// subscribes), the median of repeated rounds. Idle points are left out.
pub fn side_by_side(results: &[PointResult]) -> String {
    let busy: Vec<&PointResult> = results.iter().filter(|r| !r.point.idle_only).collect();
    let mut columns: Vec<(String, PubShape)> = Vec::new();
    let mut rows: Vec<String> = Vec::new();
    for r in &busy {
        let column = (r.label.clone(), r.point.publisher);
        if !columns.contains(&column) {
            columns.push(column);
        }
        if !rows.contains(&r.point.name) {
            rows.push(r.point.name.clone());
        }
    }
    let mut out = String::from("| point |");
    for (label, shape) in &columns {
        let _ = write!(out, " {label} {} |", shape.label());
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(columns.len()));
    out.push('\n');
    for name in &rows {
        let _ = write!(out, "| {name} |");
        for (label, shape) in &columns {
            let cell: Vec<&&PointResult> = busy
                .iter()
                .filter(|r| {
                    &r.point.name == name && &r.label == label && r.point.publisher == *shape
                })
                .collect();
            let Some(first) = cell.first() else {
                out.push_str(" – |");
                continue;
            };
            let of = |f: fn(&PointResult) -> f64| median(cell.iter().map(|r| f(r)).collect());
            let rounds = match cell.len() {
                1 => String::new(),
                n => format!(" (median of {n})"),
            };
            if first.point.subscribers == 0 {
                let _ = write!(
                    out,
                    " {} calls/s{rounds} |",
                    short(of(|r| r.publishes_per_sec))
                );
            } else {
                let (rate, p99) = (of(|r| r.deliveries_per_sec), of(|r| r.p99_ms));
                let _ = write!(out, " {}/s, p99 {p99:.1} ms{rounds} |", short(rate));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_ratios() {
        let a = PointResult {
            label: "wspush".into(),
            point: Point {
                scenario: 'e',
                name: "a-10k-64B".into(),
                subscribers: 10_000,
                ..Point::default()
            },
            deliveries_per_sec: 500_000.0,
            p99_ms: 2.0,
            rss_per_conn: 4096.0,
            server_cpu_per_m: 1.0,
            ..Default::default()
        };
        let b = PointResult {
            label: "nchan".into(),
            deliveries_per_sec: 100_000.0,
            p99_ms: 8.0,
            rss_per_conn: 10240.0,
            server_cpu_per_m: 8.0,
            ..a.clone()
        };
        assert!(
            table(std::slice::from_ref(&a))
                .contains("| wspush | a-10k-64B | call/1 | 10000 | 500000 |")
        );
        let piped = PointResult {
            point: Point {
                publisher: PubShape {
                    inflight: 16,
                    ..PubShape::default()
                },
                ..a.point.clone()
            },
            deliveries_per_sec: 2_000_000.0,
            publishes_per_sec: 200.0,
            ..a.clone()
        };
        let a = PointResult {
            publishes_per_sec: 50.0,
            ..a
        };
        let ours = [a.clone(), piped.clone()];
        let ratios = compare(&ours, &[b]);
        assert!(
            ratios.contains("| a-10k-64B | call/1 | 5.00 | 0.25 | 0.40 | 0.12 |"),
            "{ratios}"
        );
        assert!(!ratios.contains("call/16"), "no Nchan row of that shape");
        let side = side_by_side(&[a.clone(), piped.clone(), piped.clone()]);
        assert!(
            side.starts_with("| point | wspush call/1 | wspush call/16 |\n|---|---|---|\n"),
            "{side}"
        );
        assert!(
            side.contains("| a-10k-64B | 500k/s, p99 2.0 ms | 2.00M/s, p99 2.0 ms (median of 2) |"),
            "{side}"
        );
        let by_shape = shapes(&ours);
        assert!(
            by_shape.contains("| wspush | a-10k-64B | call/16 | 2000000 | 4.00 | 200 | 4.00 |"),
            "{by_shape}"
        );
    }

    #[test]
    fn repeated_rounds_pair_in_order() {
        let row = |label: &str, rate: f64| PointResult {
            label: label.into(),
            point: Point {
                name: "a-1k-64B".into(),
                subscribers: 1,
                ..Point::default()
            },
            deliveries_per_sec: rate,
            ..PointResult::default()
        };
        let ours = [row("b", 2.0), row("b", 30.0)];
        let theirs = [row("a", 1.0), row("a", 10.0)];
        let ratios = compare(&ours, &theirs);
        assert!(
            ratios.contains("| 2.00 |") && ratios.contains("| 3.00 |"),
            "{ratios}"
        );
        let calls = |rate: f64| PointResult {
            point: Point {
                name: "f-push_data-64B".into(),
                ..Point::default()
            },
            publishes_per_sec: rate,
            ..PointResult::default()
        };
        let f = compare(&[calls(40.0)], &[calls(10.0)]);
        assert!(
            f.contains("| f-push_data-64B | call/1 | 4.00 |"),
            "calls/s: {f}"
        );
    }
}
