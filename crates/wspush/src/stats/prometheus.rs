//! `/metrics`: the Prometheus text exposition format (version 0.0.4), one family per
//! metric name in [`COUNTERS`](super::COUNTERS), the members of a family told apart by their labels.

use std::fmt::Write as _;

use super::{Counter, FAMILY_HELP, Kind, Stats};

/// The family of the close codes (not in [`COUNTERS`](super::COUNTERS): its labels come
/// and go).
const CLOSES: &str = "wspush_closes_total";

impl Stats {
    /// The Prometheus text exposition format.
    pub fn to_prometheus(&self) -> String {
        let values: Vec<(&Counter, u64)> = self.scalars().collect();
        let mut out = String::new();
        // Families in the order of their first member; a family's members together.
        let mut done: Vec<&str> = Vec::new();
        for (first, _) in &values {
            if done.contains(&first.metric) {
                continue;
            }
            done.push(first.metric);
            let kind = match first.kind {
                Kind::Counter => "counter",
                Kind::Gauge | Kind::NodeGauge => "gauge",
            };
            header(&mut out, first.metric, &help_of(first), kind);
            for (c, v) in values.iter().filter(|(c, _)| c.metric == first.metric) {
                let labels: Vec<String> = c
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{v}\""))
                    .collect();
                sample(&mut out, c.metric, &labels, *v);
            }
        }
        header(
            &mut out,
            CLOSES,
            &family_help(CLOSES).unwrap_or_default(),
            "counter",
        );
        for (code, n) in &self.closes_by_code {
            sample(&mut out, CLOSES, &[format!("code=\"{code}\"")], *n);
        }
        out
    }
}

fn family_help(metric: &str) -> Option<String> {
    FAMILY_HELP
        .iter()
        .find(|(m, _)| *m == metric)
        .map(|(_, h)| (*h).to_owned())
}

/// A labelled family's own help, else the member's doc on one line.
fn help_of(c: &Counter) -> String {
    family_help(c.metric).unwrap_or_else(|| c.help.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn header(out: &mut String, metric: &str, help: &str, kind: &str) {
    // The format escapes backslash and newline in help text.
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} {kind}");
}

fn sample(out: &mut String, metric: &str, labels: &[String], v: u64) {
    if labels.is_empty() {
        let _ = writeln!(out, "{metric} {v}");
    } else {
        let _ = writeln!(out, "{metric}{{{}}} {v}", labels.join(","));
    }
}

#[cfg(test)]
mod tests {
    use super::super::COUNTERS;
    use super::*;

    #[test]
    fn prometheus_names_every_counter() {
        let mut s = Stats {
            deliveries: 42,
            refused_forbidden: 2,
            ..Stats::default()
        };
        s.closes_by_code.insert(1001, 3);
        let text = s.to_prometheus();
        assert!(text.contains("wspush_deliveries_total 42\n"), "{text}");
        assert!(text.contains("# TYPE wspush_connections gauge"), "{text}");
        assert!(
            text.contains("wspush_closes_total{code=\"1001\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("wspush_refusals_total{reason=\"forbidden\",status=\"403\"} 2\n"),
            "{text}"
        );
        // One HELP and TYPE per family, however many members.
        assert_eq!(text.matches("# TYPE wspush_refusals_total ").count(), 1);
    }

    #[test]
    fn names_follow_the_prometheus_conventions() {
        for c in COUNTERS {
            assert!(c.metric.starts_with("wspush_"), "{}", c.metric);
            assert_eq!(
                c.kind == Kind::Counter,
                c.metric.ends_with("_total"),
                "{}",
                c.metric
            );
            // A family's members differ in their labels; only labelled families share help.
            let family: Vec<&Counter> = COUNTERS.iter().filter(|o| o.metric == c.metric).collect();
            assert_eq!(
                family.len() > 1,
                family_help(c.metric).is_some(),
                "{}",
                c.metric
            );
            assert!(family.iter().all(|o| o.kind == c.kind), "{}", c.metric);
            let keys = COUNTERS.iter().filter(|o| o.key == c.key).count();
            assert_eq!(keys, 1, "{} declared twice", c.key);
        }
        for (metric, _) in FAMILY_HELP {
            assert!(
                *metric == CLOSES || COUNTERS.iter().any(|c| c.metric == *metric),
                "{metric}"
            );
        }
    }
}

/// The README's table of `stats()` keys and `/metrics` names, drawn from [`COUNTERS`](super::COUNTERS).
#[cfg(test)]
fn mapping_table() -> String {
    let mut out =
        String::from("| group | `stats()` key | `/metrics` sample | type |\n|---|---|---|---|\n");
    for c in super::COUNTERS {
        let labels: Vec<String> = c
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        let sample = if labels.is_empty() {
            c.metric.to_owned()
        } else {
            format!("{}{{{}}}", c.metric, labels.join(","))
        };
        let kind = if c.kind == Kind::Counter {
            "counter"
        } else {
            "gauge"
        };
        let _ = writeln!(out, "| {} | `{}` | `{sample}` | {kind} |", c.group, c.key);
    }
    let _ = writeln!(
        out,
        "| connections | `closes_by_code` (a map) | `{CLOSES}{{code=\"1000\"}}`, one per code | counter |"
    );
    out
}

#[cfg(test)]
mod readme {
    #[test]
    fn the_readme_maps_every_stats_key_to_its_metric() {
        let readme = include_str!("../../../../README.md");
        let table = super::mapping_table();
        assert!(
            readme.contains(&table),
            "README.md should hold this table:\n{table}"
        );
    }
}
