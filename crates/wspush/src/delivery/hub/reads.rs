//! Reads of the hub's state for the programs' doors (the HTTP API's `presence`, `info`,
//! by-user commands): each takes the hub's read lock for a moment and copies out.

use super::Hub;

/// One subscriber of a channel, as `presence` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Present {
    /// Its connection id (cluster-wide).
    pub id: u64,
    /// The user its token named, if any.
    pub user: Option<String>,
}

/// Totals for `info`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Open connections.
    pub clients: usize,
    /// Distinct users among them.
    pub users: usize,
    /// Channels with a subscriber.
    pub channels: usize,
    /// Subscriptions to channels, summed over connections.
    pub subscriptions: usize,
}

impl Hub {
    /// This node's subscribers of `channel`, ordered by id.
    pub fn presence(&self, channel: &str) -> Vec<Present> {
        let state = self.read();
        let mut list: Vec<Present> = state
            .conns
            .values()
            .filter(|e| e.channels.contains(channel))
            .map(|e| Present {
                id: e.info.id,
                user: e.info.user.clone(),
            })
            .collect();
        list.sort_by_key(|p| p.id);
        list
    }

    /// The ids of `user`'s connections on this node, ordered.
    pub fn connections_of(&self, user: &str) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .read()
            .users
            .get(user)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default();
        ids.sort_unstable();
        ids
    }

    /// Whether connection `id` is open on this node, and its user.
    pub fn user_of(&self, id: u64) -> Option<Option<String>> {
        self.read().conns.get(&id).map(|e| e.info.user.clone())
    }

    /// Connections, users, channels and subscriptions on this node.
    pub fn totals(&self) -> Totals {
        let state = self.read();
        Totals {
            clients: state.conns.len(),
            users: state.users.len(),
            channels: state.channels.len(),
            subscriptions: state.conns.values().map(|e| e.channels.len()).sum(),
        }
    }
}
