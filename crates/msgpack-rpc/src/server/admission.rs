//! The connection caps, checked at accept: how many connections the server
//! holds open in all and how many one IP address may hold.
//!
//! ```text
//! accept ──▶ Admission::admit(ip) ──PerIp / Full──▶ socket dropped at once, logged, counted
//!                 │ Ok(slot)
//!                 ▼
//!          connection task (holds the slot; released when the task ends)
//! ```
//!
//! A refused socket is accepted and closed rather than left in the kernel's
//! backlog: the peer learns at once, and the backlog stays free for others.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its address already holds `max_connections_per_ip` connections.
    PerIp,
    /// The server already holds `max_connections`.
    Full,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    /// Only addresses with open connections: an entry goes when its count
    /// reaches zero, so the map never outgrows the open connections.
    per_ip: HashMap<IpAddr, usize>,
}

/// The open-connection counts of one server (all its listeners).
#[derive(Debug)]
pub(crate) struct Admission {
    max_total: usize,
    max_per_ip: usize,
    counts: Mutex<Counts>,
}

/// One admitted connection's share of the counts; released on drop.
#[derive(Debug)]
pub(crate) struct Slot {
    admission: Arc<Admission>,
    /// The address it counts against (None: Unix socket, or no per-IP limit).
    ip: Option<IpAddr>,
}

impl Admission {
    /// `0` turns a limit off. Every address counts, loopback too: the RPC
    /// port is loopback by default, so exempting it would exempt everyone.
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Self {
        Admission {
            max_total,
            max_per_ip,
            counts: Mutex::default(),
        }
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a new connection from `ip` (None for a Unix socket), or says
    /// why it is refused.
    pub(crate) fn admit(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<Slot, Refusal> {
        let ip = ip.filter(|_| self.max_per_ip > 0);
        let mut counts = self.counts();
        if let Some(ip) = ip {
            if counts
                .per_ip
                .get(&ip)
                .is_some_and(|n| *n >= self.max_per_ip)
            {
                return Err(Refusal::PerIp);
            }
        }
        if self.max_total > 0 && counts.total >= self.max_total {
            return Err(Refusal::Full);
        }
        counts.total += 1;
        if let Some(ip) = ip {
            *counts.per_ip.entry(ip).or_default() += 1;
        }
        Ok(Slot {
            admission: Arc::clone(self),
            ip,
        })
    }

    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        let counts = self.counts();
        (counts.total, counts.per_ip.len())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.admission.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(ip) = self.ip {
            if let Some(n) = counts.per_ip.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.per_ip.remove(&ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));
    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn connections_are_capped_per_address_loopback_included() {
        let admission = Arc::new(Admission::new(0, 2));
        for ip in [IP, LOOPBACK] {
            let a = admission.admit(Some(ip)).unwrap();
            let _b = admission.admit(Some(ip)).unwrap();
            assert_eq!(admission.admit(Some(ip)).unwrap_err(), Refusal::PerIp);
            drop(a);
            let _c = admission.admit(Some(ip)).unwrap();
        }
        // Unix sockets have no address to count against.
        let _unix: Vec<_> = (0..5).map(|_| admission.admit(None).unwrap()).collect();
    }

    #[test]
    fn connections_are_capped_in_all() {
        let admission = Arc::new(Admission::new(3, 2));
        let _a = admission.admit(Some(IP)).unwrap();
        let _b = admission.admit(Some(IP)).unwrap();
        let c = admission.admit(None).unwrap();
        assert_eq!(admission.admit(Some(OTHER)).unwrap_err(), Refusal::Full);
        assert_eq!(admission.admit(None).unwrap_err(), Refusal::Full);
        // The address's own cap is named first.
        assert_eq!(admission.admit(Some(IP)).unwrap_err(), Refusal::PerIp);
        drop(c);
        let _d = admission.admit(Some(OTHER)).unwrap();
    }

    #[test]
    fn addresses_are_forgotten_when_their_last_connection_ends() {
        let admission = Arc::new(Admission::new(0, 10));
        let slots: Vec<_> = (0..100u32)
            .map(|i| {
                let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
                admission.admit(Some(ip)).unwrap()
            })
            .collect();
        assert_eq!(admission.tracked(), (100, 100));
        drop(slots);
        assert_eq!(admission.tracked(), (0, 0));
    }
}
