//! Kafka node ids ↔ raft-rs peer ids.
//!
//! raft-rs reserves peer id 0 for "none", while Kafka's `node.id` 0 is a valid (and common)
//! id. Every raft peer id is therefore the node id plus one. The mapping stays inside the quorum
//! module: everything the driver sees names nodes by their Kafka ids.

use crate::types::NodeId;

/// raft-rs's "no peer" (no leader, no vote).
pub const NO_PEER: u64 = raft::INVALID_ID;

/// The raft peer id of a (non-negative) node id.
pub fn peer_of(node: NodeId) -> u64 {
    debug_assert!(node >= 0, "negative node ids are refused by the config");
    node as u64 + 1
}

/// The node id of a raft peer id; `None` for [`NO_PEER`] and ids no node id maps to.
pub fn node_of(peer: u64) -> Option<NodeId> {
    let node = peer.checked_sub(1)?;
    NodeId::try_from(node).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_zero_is_no_peer() {
        for n in [0, 1, 7, NodeId::MAX] {
            assert_eq!(node_of(peer_of(n)), Some(n));
        }
        assert_eq!(node_of(NO_PEER), None);
        assert_eq!(node_of(u64::MAX), None);
    }
}
