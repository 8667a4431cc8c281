//! Cluster-wide reads and by-user commands: what one node answers for its own
//! connections ([`report`], [`apply_user`]; the embedded broker calls them directly, a
//! Redis node when the bus brings a [`Query`] or a [`UserCommand`]), and the asking
//! side's waiting surveys ([`Surveys`]).
//!
//! ```text
//! asker: Surveys::open(id) --Q on wspush:bus (ordered with its pushes)--> every node
//!        PUBLISH answers n (nodes subscribed) --> Surveys::expect(id, n)
//! every node: deliverer --report(hub)--> answerer task --A on wspush:node:ASKER-->
//! asker: reader --Surveys::answered(id, report)--> done once n answers are in, else
//!        the broker timeout: an error (never a partial answer passed off as whole)
//! ```
//!
//! A node that dies drops out at once: its subscription goes with its process, so
//! `PUBLISH` no longer counts it. A node that hangs while Redis still counts it fails
//! surveys with a timeout until its connection is dropped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::oneshot;

use super::control::{Member, NodeInfo, Query, Report, UserCommand};
use crate::delivery::hub::Hub;

/// Who a node is, for `info`: made once per process.
#[derive(Debug)]
pub struct Identity {
    /// The node number (0: embedded).
    pub node: u32,
    /// A number that differs between processes, in hex (Centrifugo's is a UUID).
    pub uid: String,
    /// The host name, with the node number in a cluster.
    pub name: String,
    started: Instant,
}

impl Identity {
    /// This process as node `node`.
    pub fn new(node: u32) -> Identity {
        Identity {
            node,
            uid: process_uid(),
            name: node_name(node),
            started: Instant::now(),
        }
    }

    /// Seconds since this identity was made (at start).
    pub fn uptime(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

fn process_uid() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

fn node_name(node: u32) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "wspush".to_owned());
    match node {
        0 => host,
        n => format!("{host}_{n}"),
    }
}

/// This node's answer to `query`.
pub fn report(hub: &Hub, me: &Identity, query: &Query) -> Report {
    match query {
        Query::Presence { channel } => Report::Presence {
            members: hub
                .presence(channel)
                .into_iter()
                .map(|p| Member {
                    id: p.id,
                    user: p.user,
                })
                .collect(),
        },
        Query::Channels => Report::Channels {
            channels: hub
                .channels()
                .into_iter()
                .map(|(name, n)| (name, n as u64))
                .collect(),
        },
        Query::Info => {
            let t = hub.totals();
            Report::Info(NodeInfo {
                node: me.node,
                uid: me.uid.clone(),
                name: me.name.clone(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                clients: t.clients as u64,
                users: t.users as u64,
                channels: t.channels as u64,
                subs: t.subscriptions as u64,
                uptime: me.uptime(),
            })
        }
    }
}

/// Carries out `command` on this node's connections of its user; returns how many it
/// changed (subscribed, unsubscribed or asked to close).
pub fn apply_user(hub: &Hub, command: &UserCommand) -> usize {
    match command {
        UserCommand::Subscribe { user, channel } => hub
            .connections_of(user)
            .into_iter()
            .filter(|id| hub.subscribe(*id, channel))
            .count(),
        UserCommand::Unsubscribe { user, channel } => hub
            .connections_of(user)
            .into_iter()
            .filter(|id| hub.unsubscribe(*id, channel))
            .count(),
        UserCommand::Disconnect {
            user,
            code,
            reason,
            keep,
        } => hub
            .connections_of(user)
            .into_iter()
            .filter(|id| !keep.contains(id) && hub.disconnect(*id, *code, reason))
            .count(),
    }
}

/// Every node's channels with their subscribers, summed by name (ordered).
pub async fn cluster_channels(
    broker: &dyn super::Broker,
) -> Result<std::collections::BTreeMap<String, u64>, super::BrokerError> {
    let reports = broker.survey(Query::Channels).await?;
    let mut all = std::collections::BTreeMap::new();
    for report in reports {
        if let Report::Channels { channels } = report {
            for (name, n) in channels {
                *all.entry(name).or_insert(0) += n;
            }
        }
    }
    Ok(all)
}

/// One survey in flight.
#[derive(Default)]
struct Pending {
    reports: Vec<Report>,
    /// How many answers to wait for, once `PUBLISH` said.
    expected: Option<usize>,
    done: Option<oneshot::Sender<Vec<Report>>>,
}

impl Pending {
    fn complete(&mut self) -> bool {
        match self.expected {
            Some(n) if self.reports.len() >= n => {
                if let Some(done) = self.done.take() {
                    let _ = done.send(std::mem::take(&mut self.reports));
                }
                true
            }
            _ => false,
        }
    }
}

/// The asking side's surveys in flight, by id. Bounded by the callers waiting on them:
/// each is removed when it completes or its caller gives up ([`Surveys::forget`]).
///
/// Redis hands a message once to each subscription, so each node answers once: the
/// answers are counted, not told apart (two processes misconfigured with one node number
/// both answer, and both count). Ids start at a number of the process's own, so such
/// twins sharing one node channel do not take each other's answers.
#[derive(Default)]
pub struct Surveys {
    next: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
}

impl Surveys {
    /// Surveys numbered from `first` on.
    pub fn starting_at(first: u64) -> Surveys {
        Surveys {
            next: AtomicU64::new(first),
            pending: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Pending>> {
        // A map of plain values, consistent after any panic.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a survey before its query is sent (answers may beat `PUBLISH`'s reply):
    /// its id and where its reports arrive.
    pub fn open(&self) -> (u64, oneshot::Receiver<Vec<Report>>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let (tx, rx) = oneshot::channel();
        let pending = Pending {
            done: Some(tx),
            ..Pending::default()
        };
        self.lock().insert(id, pending);
        (id, rx)
    }

    /// `PUBLISH` said `n` nodes got survey `id`'s query.
    pub fn expect(&self, id: u64, n: usize) {
        let mut map = self.lock();
        if let Some(p) = map.get_mut(&id) {
            p.expected = Some(n);
            if p.complete() {
                map.remove(&id);
            }
        }
    }

    /// A node answered survey `id`; false when no such survey waits (late, or not
    /// ours).
    pub fn answered(&self, id: u64, report: Report) -> bool {
        let mut map = self.lock();
        let Some(p) = map.get_mut(&id) else {
            return false;
        };
        p.reports.push(report);
        if p.complete() {
            map.remove(&id);
        }
        true
    }

    /// Drops survey `id` (its caller gave up: an error or the deadline).
    pub fn forget(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Surveys waiting now.
    pub fn waiting(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn info(node: u32) -> Report {
        Report::Info(NodeInfo {
            node,
            ..NodeInfo::default()
        })
    }

    #[test]
    fn a_survey_completes_once_every_counted_node_answered() {
        let s = Surveys::starting_at(u64::MAX - 1);
        let (id, mut rx) = s.open();
        assert_eq!(id, u64::MAX);
        // An answer may arrive before PUBLISH's count.
        assert!(s.answered(id, info(1)));
        assert!(rx.try_recv().is_err());
        s.expect(id, 3);
        assert!(rx.try_recv().is_err());
        assert!(s.answered(id, info(2)));
        assert!(rx.try_recv().is_err());
        assert!(s.answered(id, info(3)));
        assert_eq!(rx.try_recv().unwrap(), vec![info(1), info(2), info(3)]);
        assert_eq!(s.waiting(), 0);
        // Late answers find nothing; ids wrap.
        assert!(!s.answered(id, info(4)));
        assert_eq!(s.open().0, 0);
    }

    #[test]
    fn answers_in_before_the_count_complete_at_the_count() {
        let s = Surveys::default();
        let (id, mut rx) = s.open();
        assert!(s.answered(id, info(4)));
        s.expect(id, 1);
        assert_eq!(rx.try_recv().unwrap(), vec![info(4)]);
        let (other, _rx) = s.open();
        assert_ne!(other, id);
        s.forget(other);
        assert_eq!(s.waiting(), 0);
    }

    #[test]
    fn by_user_commands_reach_only_that_users_connections() {
        let hub = Hub::default();
        let me = Identity::new(0);
        let subscribe = UserCommand::Subscribe {
            user: "nobody".into(),
            channel: "c".into(),
        };
        assert_eq!(apply_user(&hub, &subscribe), 0);
        assert_eq!(
            report(
                &hub,
                &me,
                &Query::Presence {
                    channel: "c".into()
                }
            ),
            Report::Presence { members: vec![] }
        );
        match report(&hub, &me, &Query::Info) {
            Report::Info(i) => assert_eq!((i.node, i.clients, i.uid.len()), (0, 0, 16)),
            other => panic!("{other:?}"),
        }
    }
}
