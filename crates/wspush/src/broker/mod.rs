//! Brokers: how a push reaches the nodes that hold the browsers.
//!
//! ```text
//! embedded (default):  rpc --> Hub (numbers, keeps history, fans out)
//! redis:               rpc --> publisher task --pipelined EVALSHA--> Redis (numbers, XADD, PUBLISH)
//!                      Redis --pub/sub--> reader --intake (bytes)--> deliverer --> Hub::deliver --> browsers
//!                      reader --receipts--> the publishing caller's answer
//! ```
//!
//! Connection ids carry their node: `node << 32 | local id` (node 0 in
//! embedded mode, so ids stay small), below 2^53 so that JavaScript clients
//! hold them exactly.

pub mod bus;
pub mod intake;
pub mod receipts;
pub mod redis;
pub mod resp;
pub mod subscriber;

use std::time::Duration;

pub use self::redis::{BrokerCounters, DEFAULT_INTAKE_BYTES, RedisBroker};

/// Node numbers stay below this so ids stay below 2^53.
pub const MAX_NODE: u32 = (1 << 21) - 1;

/// The cluster-wide id of a connection of `node`.
pub fn global_id(node: u32, local: u64) -> u64 {
    (u64::from(node) << 32) | (local & 0xFFFF_FFFF)
}

/// The node holding connection `id`.
pub fn node_of(id: u64) -> u32 {
    // At most 32 bits remain after the shift.
    u32::try_from(id >> 32).unwrap_or(u32::MAX)
}

/// Why a broker operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The broker URL is not one we understand.
    #[error("invalid broker {0:?}: use \"embedded\" or redis://HOST:PORT[/DB]")]
    Url(String),
    /// Redis cannot be reached or the connection broke.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// Redis did not answer in time.
    #[error("broker did not answer within {0:?}")]
    Timeout(Duration),
    /// Redis refused the command.
    #[error("broker error: {0}")]
    Redis(String),
    /// Redis answered something we did not expect.
    #[error("unexpected broker reply: {0}")]
    Reply(String),
    /// The node is shutting down.
    #[error("broker is shut down")]
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_node() {
        let id = global_id(MAX_NODE, 0xFFFF_FFFF);
        assert!(id < 1 << 53);
        assert_eq!(node_of(id), MAX_NODE);
        assert_eq!(global_id(0, 42), 42);
        assert_eq!(node_of(42), 0);
    }

    #[test]
    fn errors_stay_small() {
        assert!(std::mem::size_of::<BrokerError>() <= 32);
    }
}
