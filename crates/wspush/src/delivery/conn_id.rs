//! Connection ids carry their node: `node << 32 | local id` (node 0 with the embedded
//! broker, so ids stay small), below 2^53 so that JavaScript clients hold them exactly.

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
}
