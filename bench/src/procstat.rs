//! Memory and CPU of the server under test and of the load generator, read
//! from `/proc` (Linux only).
//!
//! A server may be several processes (nginx: a master and its workers), so a
//! sample covers a process and all its descendants: RSS and PSS summed (PSS
//! splits shared pages between the processes that map them, so it is the
//! honest sum for a multi-process server), CPU as utime + stime.

use std::collections::HashMap;
use std::io;

/// Kernel clock ticks per second in `/proc/<pid>/stat`. `USER_HZ` is 100 on
/// every Linux ABI; reading `sysconf(_SC_CLK_TCK)` would need `unsafe` libc.
const TICKS_PER_SEC: f64 = 100.0;

/// Resource use of a process tree at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// Processes counted.
    pub processes: usize,
    /// Sum of `VmRSS`, bytes.
    pub rss: u64,
    /// Sum of `Pss` from `smaps_rollup`, bytes (0 when unreadable).
    pub pss: u64,
    /// user + system CPU, seconds.
    pub cpu_secs: f64,
}

/// `pid` and every descendant.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = stat_fields(p).and_then(|f| f.get(1)?.parse::<u32>().ok()) {
                children.entry(ppid).or_default().push(p);
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while let Some(p) = out.get(i).copied() {
        out.extend(children.get(&p).into_iter().flatten());
        i += 1;
    }
    out
}

/// Samples `pid` and its descendants.
pub fn sample(pid: u32) -> io::Result<Sample> {
    let mut s = Sample::default();
    for p in tree(pid) {
        let Some(one) = sample_one(p) else {
            // A process may exit between listing and reading; the root may not.
            if p == pid {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("process {pid} is gone"),
                ));
            }
            continue;
        };
        s.processes += 1;
        s.rss += one.rss;
        s.pss += one.pss;
        s.cpu_secs += one.cpu_secs;
    }
    Ok(s)
}

fn sample_one(pid: u32) -> Option<Sample> {
    let stat = stat_fields(pid)?;
    let ticks: u64 = stat.get(11)?.parse::<u64>().ok()? + stat.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = kb_field(&status, "VmRSS:").unwrap_or(0);
    let pss = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| kb_field(&s, "Pss:"))
        .unwrap_or(0);
    Some(Sample {
        processes: 1,
        rss,
        pss,
        cpu_secs: ticks as f64 / TICKS_PER_SEC,
    })
}

/// The fields of `/proc/<pid>/stat` after the command name (state is [0],
/// ppid [1], utime [11], stime [12]).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

fn parse_stat(stat: &str) -> Option<Vec<String>> {
    // The command name may hold spaces and parentheses; it ends at the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// A `Name:   123 kB` line, in bytes.
fn kb_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kb: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kb * 1024)
}

/// CPU seconds (user + system) this process has used.
pub fn self_cpu_secs() -> f64 {
    sample_one(std::process::id()).map_or(0.0, |s| s.cpu_secs)
}

/// The soft "Max open files" limit of `pid`, from `/proc/<pid>/limits`.
pub fn open_files_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        return Some(u64::MAX);
    }
    soft.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stat_with_a_tricky_command_name() {
        let f = parse_stat("42 (a) b (c)) S 7 1 1 0 -1 4194560 1 0 0 0 250 31 0 0 20 0").unwrap();
        assert_eq!(f[0], "S");
        assert_eq!(f[1], "7");
        assert_eq!(f[11], "250");
        assert_eq!(f[12], "31");
    }

    #[test]
    fn kb_fields() {
        assert_eq!(
            kb_field("Name:\tx\nVmRSS:\t  1234 kB\n", "VmRSS:"),
            Some(1234 * 1024)
        );
        assert_eq!(kb_field("VmRSS:\n", "VmRSS:"), None);
    }

    #[test]
    fn this_process() {
        let me = std::process::id();
        let s = sample(me).unwrap();
        assert!(s.processes >= 1 && s.rss > 0);
        assert!(open_files_limit(me).unwrap() > 0);
        assert!(tree(me).contains(&me));
    }
}
