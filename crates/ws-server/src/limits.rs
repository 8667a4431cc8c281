//! Per-IP admission at accept: how many TCP connections one address may hold
//! open and how many it may open per second.
//!
//! ```text
//! accept ──▶ IpLimits::admit(ip) ──TooMany / TooFast──▶ "429", close, counted
//!                 │ Ok(slot)
//!                 ▼
//!     HTTP task ──▶ (upgrade) WebSocket task      the slot is released when the
//!                                                 last of them ends
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The rate window: at most `per_sec` new connections per address in each.
const WINDOW: Duration = Duration::from_secs(1);

/// Sweep idle entries after this many admissions, so addresses seen once do not stay forever.
const SWEEP_EVERY: u64 = 4096;

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IpRefusal {
    /// It already holds `max_connections_per_ip` connections.
    TooMany,
    /// It opened `connects_per_ip_per_sec` connections in the current second.
    TooFast,
}

#[derive(Debug)]
struct Entry {
    open: usize,
    window_start: Instant,
    in_window: u32,
}

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<IpAddr, Entry>,
    admissions: u64,
}

/// The per-address counts of one server.
#[derive(Debug)]
pub(crate) struct IpLimits {
    max_open: usize,
    per_sec: u32,
    limit_loopback: bool,
    table: Mutex<Table>,
}

/// One admitted connection's share of its address's count; released on drop.
#[derive(Debug)]
pub(crate) struct IpSlot {
    limits: Arc<IpLimits>,
    ip: IpAddr,
}

impl IpLimits {
    /// `0` turns a limit off; loopback peers are exempt unless `limit_loopback`.
    pub(crate) fn new(max_open: usize, per_sec: u32, limit_loopback: bool) -> Self {
        Self {
            max_open,
            per_sec,
            limit_loopback,
            table: Mutex::default(),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a new connection from `ip`, or says why it is refused. `Ok(None)`: not limited.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        now: Instant,
    ) -> Result<Option<IpSlot>, IpRefusal> {
        if (self.max_open == 0 && self.per_sec == 0) || (ip.is_loopback() && !self.limit_loopback) {
            return Ok(None);
        }
        let mut table = self.table();
        table.admissions += 1;
        if table.admissions % SWEEP_EVERY == 0 {
            table
                .entries
                .retain(|_, e| e.open > 0 || now.duration_since(e.window_start) < WINDOW);
        }
        let entry = table.entries.entry(ip).or_insert(Entry {
            open: 0,
            window_start: now,
            in_window: 0,
        });
        if now.duration_since(entry.window_start) >= WINDOW {
            entry.window_start = now;
            entry.in_window = 0;
        }
        if self.max_open > 0 && entry.open >= self.max_open {
            return Err(IpRefusal::TooMany);
        }
        if self.per_sec > 0 && entry.in_window >= self.per_sec {
            return Err(IpRefusal::TooFast);
        }
        entry.open += 1;
        entry.in_window += 1;
        Ok(Some(IpSlot {
            limits: Arc::clone(self),
            ip,
        }))
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.table().entries.len()
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut table = self.limits.table();
        if let Some(e) = table.entries.get_mut(&self.ip) {
            e.open = e.open.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn open_connections_are_capped_per_address() {
        let limits = Arc::new(IpLimits::new(2, 0, false));
        let now = Instant::now();
        let a = limits.admit(IP, now).unwrap();
        let _b = limits.admit(IP, now).unwrap();
        assert_eq!(limits.admit(IP, now).unwrap_err(), IpRefusal::TooMany);
        assert!(limits.admit(OTHER, now).is_ok());
        drop(a);
        assert!(limits.admit(IP, now).is_ok());
    }

    #[test]
    fn new_connections_are_rate_limited_per_second() {
        let limits = Arc::new(IpLimits::new(0, 3, false));
        let t0 = Instant::now();
        for _ in 0..3 {
            drop(limits.admit(IP, t0).unwrap());
        }
        assert_eq!(limits.admit(IP, t0).unwrap_err(), IpRefusal::TooFast);
        assert!(limits.admit(IP, t0 + WINDOW).is_ok());
    }

    #[test]
    fn loopback_is_exempt_unless_asked() {
        let lo = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let exempt = Arc::new(IpLimits::new(1, 1, false));
        let now = Instant::now();
        let _a = exempt.admit(lo, now).unwrap();
        assert!(exempt.admit(lo, now).unwrap().is_none());
        let strict = Arc::new(IpLimits::new(1, 0, true));
        let _b = strict.admit(lo, now).unwrap();
        assert_eq!(strict.admit(lo, now).unwrap_err(), IpRefusal::TooMany);
    }

    #[test]
    fn idle_addresses_are_swept() {
        let limits = Arc::new(IpLimits::new(0, 1000, false));
        let t0 = Instant::now();
        for i in 0..SWEEP_EVERY - 1 {
            let ip = IpAddr::V6(std::net::Ipv6Addr::from(u128::from(i) + 2));
            drop(limits.admit(ip, t0).unwrap());
        }
        assert_eq!(limits.tracked() as u64, SWEEP_EVERY - 1);
        drop(limits.admit(IP, t0 + WINDOW).unwrap());
        assert_eq!(limits.tracked(), 1);
    }
}
