//! The controller quorum as DescribeQuorum shows it (`kafka-metadata-quorum.sh describe
//! --status` and `--replication`), in Kafka's units: the leader and its epoch (the raft term),
//! the high watermark and each replica's log end as offsets (raft entry `i` is metadata offset
//! `i - 1`, so an index is the offset just past it), and wall-clock timestamps in milliseconds.
//!
//! Only the leader knows the followers' positions (KRaft's LeaderState): any other node answers
//! that it is not the leader and names the leader it knows, for the caller to ask there.

use super::observer::ObserverState;
use super::Voter;
use weir_replication::quorum::{QuorumStatus, Role};
use weir_replication::types::NodeId;

/// One replica of the metadata log: a voter, or an observer (a broker-only node fetching).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaDescription {
    pub node_id: NodeId,
    /// The offset after its last entry; -1 when unknown.
    pub log_end_offset: i64,
    /// When the leader last heard from it (Kafka's LastFetchTimestamp); -1 when never.
    pub last_fetch_ms: i64,
    /// When it last held everything the leader had (Kafka's LastCaughtUpTimestamp); -1 when
    /// never.
    pub last_caught_up_ms: i64,
}

/// A voter's CONTROLLER listener (DescribeQuorum v2's `Nodes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoterEndpoint {
    pub node_id: NodeId,
    pub listener: String,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumDescription {
    pub leader_id: NodeId,
    /// The raft term.
    pub leader_epoch: i32,
    /// The offset after the last committed entry.
    pub high_watermark: i64,
    pub voters: Vec<ReplicaDescription>,
    pub observers: Vec<ReplicaDescription>,
    pub endpoints: Vec<VoterEndpoint>,
}

/// Why this node cannot describe the quorum itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescribeError {
    /// Kafka's NOT_LEADER_OR_FOLLOWER; `leader` is the one this node knows of.
    #[error("this node is not the leader of the controller quorum (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
}

/// The leader's description of the quorum from its raft status (times in ticks of `tick_ms`
/// before `now_ms`) and the observers it tracks.
pub fn describe(
    status: &QuorumStatus,
    tick_ms: u64,
    now_ms: i64,
    voters: &[Voter],
    controller_listener: &str,
    observers: &[ObserverState],
) -> Result<QuorumDescription, DescribeError> {
    if status.role != Role::Leader {
        return Err(DescribeError::NotLeader {
            leader: status.leader.filter(|l| *l != status.node_id),
        });
    }
    let ago = |ticks: Option<u64>| {
        ticks.map_or(-1, |t| {
            now_ms.saturating_sub((t.saturating_mul(tick_ms)).min(i64::MAX as u64) as i64)
        })
    };
    let voter_states = status
        .voters
        .iter()
        .map(|v| {
            if v.node_id == status.node_id {
                // Kafka reports the leader as fetching and caught up now.
                ReplicaDescription {
                    node_id: v.node_id,
                    log_end_offset: offset(status.last_index),
                    last_fetch_ms: now_ms,
                    last_caught_up_ms: now_ms,
                }
            } else {
                ReplicaDescription {
                    node_id: v.node_id,
                    log_end_offset: v.match_index.map_or(-1, offset),
                    last_fetch_ms: ago(v.last_contact_ticks_ago),
                    last_caught_up_ms: ago(v.last_caught_up_ticks_ago),
                }
            }
        })
        .collect();
    let observers = observers
        .iter()
        .map(|o| ReplicaDescription {
            node_id: o.node_id,
            log_end_offset: o.log_end_offset,
            last_fetch_ms: o.last_fetch_ms,
            last_caught_up_ms: o.last_caught_up_ms,
        })
        .collect();
    let endpoints = voters
        .iter()
        .filter_map(|v| {
            // A quorum of one without a controller listener has no address to show.
            let (host, port) = v.addr.rsplit_once(':')?;
            let port = port.parse().ok().filter(|p| *p != 0)?;
            Some(VoterEndpoint {
                node_id: v.id,
                listener: controller_listener.to_string(),
                host: host.to_string(),
                port,
            })
        })
        .collect();
    Ok(QuorumDescription {
        leader_id: status.node_id,
        leader_epoch: i32::try_from(status.term).unwrap_or(i32::MAX),
        high_watermark: offset(status.commit_index),
        voters: voter_states,
        observers,
        endpoints,
    })
}

/// The offset just past raft index `index` (entry `i` is offset `i - 1`).
fn offset(index: u64) -> i64 {
    i64::try_from(index).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_replication::quorum::VoterStatus;

    fn status(role: Role, leader: Option<NodeId>) -> QuorumStatus {
        QuorumStatus {
            node_id: 1,
            role,
            leader,
            term: 4,
            active: role == Role::Leader,
            commit_index: 40,
            applied_index: 40,
            first_index: 1,
            last_index: 42,
            voters: vec![
                VoterStatus {
                    node_id: 1,
                    match_index: Some(42),
                    last_contact_ticks_ago: Some(0),
                    last_caught_up_ticks_ago: Some(0),
                },
                VoterStatus {
                    node_id: 2,
                    match_index: Some(41),
                    last_contact_ticks_ago: Some(3),
                    last_caught_up_ticks_ago: Some(20),
                },
                VoterStatus {
                    node_id: 3,
                    match_index: None,
                    last_contact_ticks_ago: None,
                    last_caught_up_ticks_ago: None,
                },
            ],
        }
    }

    fn voters() -> Vec<Voter> {
        (1..=3)
            .map(|id| Voter {
                id,
                addr: format!("127.0.0.1:{}", 9091 + 2 * id),
            })
            .collect()
    }

    #[test]
    fn the_leader_describes_positions_as_offsets_and_times_as_timestamps() {
        let observer = ObserverState {
            node_id: 4,
            log_end_offset: 39,
            last_fetch_ms: 9_900,
            last_caught_up_ms: 9_400,
        };
        let d = describe(
            &status(Role::Leader, Some(1)),
            50,
            10_000,
            &voters(),
            "CONTROLLER",
            &[observer],
        )
        .unwrap();
        assert_eq!((d.leader_id, d.leader_epoch, d.high_watermark), (1, 4, 40));
        assert_eq!(
            d.voters,
            vec![
                ReplicaDescription {
                    node_id: 1,
                    log_end_offset: 42,
                    last_fetch_ms: 10_000,
                    last_caught_up_ms: 10_000
                },
                ReplicaDescription {
                    node_id: 2,
                    log_end_offset: 41,
                    last_fetch_ms: 10_000 - 150,
                    last_caught_up_ms: 10_000 - 1_000
                },
                ReplicaDescription {
                    node_id: 3,
                    log_end_offset: -1,
                    last_fetch_ms: -1,
                    last_caught_up_ms: -1
                },
            ]
        );
        assert_eq!(
            d.observers,
            vec![ReplicaDescription {
                node_id: 4,
                log_end_offset: 39,
                last_fetch_ms: 9_900,
                last_caught_up_ms: 9_400
            }]
        );
        assert_eq!(
            d.endpoints[1],
            VoterEndpoint {
                node_id: 2,
                listener: "CONTROLLER".into(),
                host: "127.0.0.1".into(),
                port: 9095
            }
        );
    }

    #[test]
    fn a_node_that_does_not_lead_names_the_leader_it_knows() {
        for (role, leader, named) in [
            (Role::Follower, Some(2), Some(2)),
            (Role::Follower, None, None),
            (Role::Candidate, None, None),
            (Role::PreCandidate, Some(1), None),
        ] {
            assert_eq!(
                describe(&status(role, leader), 50, 0, &voters(), "CONTROLLER", &[]),
                Err(DescribeError::NotLeader { leader: named }),
                "{role:?}"
            );
        }
    }
}
