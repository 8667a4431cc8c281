//! Results of a benchmark point: one JSON line each, a text table, and the
//! side-by-side ratios of two runs (`wspush-bench compare`).

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::scenario::Point;

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
    /// `/proc/loadavg` (1 min) when the point started: other work on the machine.
    pub loadavg: f64,
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
        "| server | point | subs | deliveries/s | p50 ms | p99 ms | p99.9 ms | max ms | lost/ooo | RSS/conn | srv CPU s/M | gen cores | load |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        let rate = if r.point.subscribers == 0 {
            format!("{:.0} calls/s", r.publishes_per_sec)
        } else {
            format!("{:.0}", r.deliveries_per_sec)
        };
        let mut point = r.point.name.clone();
        if let Some(c) = r.overflow_closes.filter(|_| r.point.stalled > 0) {
            let _ = write!(point, " (overflow closes {c})");
        }
        let _ = writeln!(
            out,
            "| {} | {} | {}{} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {}/{} | {} | {:.2} | {:.2} | {:.1} |",
            r.label,
            point,
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

/// Ratios of `ours` over `theirs`, point by point (points present in both).
pub fn compare(ours: &[PointResult], theirs: &[PointResult]) -> String {
    let mut out = String::from(
        "| point | deliveries/s ×  | p99 ÷ (lower is better) | RSS/conn ÷ | srv CPU per delivery ÷ |\n|---|---|---|---|---|\n",
    );
    let ratio = |a: f64, b: f64| {
        if b > 0.0 && a > 0.0 {
            format!("{:.2}", a / b)
        } else {
            "–".into()
        }
    };
    for o in ours {
        let Some(t) = theirs.iter().find(|t| t.point.name == o.point.name) else {
            continue;
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            o.point.name,
            ratio(o.deliveries_per_sec, t.deliveries_per_sec),
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
            table(std::slice::from_ref(&a)).contains("| wspush | a-10k-64B | 10000 | 500000 |")
        );
        assert!(compare(&[a], &[b]).contains("| a-10k-64B | 5.00 | 0.25 | 0.40 | 0.12 |"));
    }
}
