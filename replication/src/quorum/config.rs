//! What a voter is configured with: its id, the static voter set, and its timers in ticks.
//!
//! Time inside the quorum is counted in ticks the driver gives (`QuorumNode::tick`), never read
//! from a clock, so the same code runs on the broker's timer and in the deterministic simulator.
//! [`QuorumTimeouts`] holds Kafka's millisecond settings; [`QuorumConfig::new`] turns them into
//! ticks once.

use crate::types::NodeId;

/// How often the broker's driver ticks the quorum. 50 ms gives the default election timeout
/// (1000 ms) twenty ticks: fine enough that two voters rarely pick the same timeout, coarse
/// enough that an idle quorum costs nothing measurable on core 0.
pub const TICK_MS_DEFAULT: u64 = 50;

/// Kafka's `controller.quorum.election.timeout.ms` default: a follower that hears no leader for
/// this long (randomized up to [`ELECTION_TIMEOUT_SPREAD_NUM`]/[`ELECTION_TIMEOUT_SPREAD_DEN`]
/// times it, as `docs/CLUSTER.md` specifies) starts a (pre-)election.
pub const ELECTION_TIMEOUT_MS_DEFAULT: u64 = 1000;

/// The randomized election timeout is drawn from `[timeout, timeout * 3 / 2)`: wide enough that
/// voters which lost their leader at the same moment rarely campaign together (a split vote
/// costs another timeout), narrow enough to bound failover at 1.5 timeouts plus a round trip.
pub const ELECTION_TIMEOUT_SPREAD_NUM: u64 = 3;
pub const ELECTION_TIMEOUT_SPREAD_DEN: u64 = 2;

/// How often the leader heartbeats its followers (and so how fast a commit reaches followers
/// with nothing else to send). Kafka's followers fetch continuously instead; a tenth of the
/// election timeout keeps followers' timers far from firing while a leader lives.
pub const HEARTBEAT_MS_DEFAULT: u64 = 100;

/// Kafka's `controller.quorum.request.timeout.ms` default. Here: how long the leader waits for
/// a follower to confirm a snapshot it sent before sending it again (the WeirRaft API has no
/// responses, so a lost snapshot would otherwise stall that follower forever).
pub const REQUEST_TIMEOUT_MS_DEFAULT: u64 = 2000;

/// The largest entry (one batch of metadata records) a leader accepts: Kafka's KRaft bounds a
/// metadata batch at 8 MiB (`KafkaRaftClient.MAX_BATCH_SIZE_BYTES`).
pub const ENTRY_BYTES_MAX: usize = 8 << 20;

/// The most entry bytes one append message carries (at least one entry is always sent): Kafka's
/// KRaft fetches at most 8 MiB per request (`KafkaRaftClient.MAX_FETCH_SIZE_BYTES`).
pub const APPEND_BYTES_MAX: u64 = 8 << 20;

/// Append messages in flight to one follower before the leader waits for acknowledgements
/// (raft-rs's default): bounds what a slow follower costs the leader in memory.
pub const INFLIGHT_APPENDS_MAX: usize = 256;

/// Entry bytes proposed but not committed before further proposals are refused: eight maximal
/// entries. The active controller proposes one operation at a time, so this only bites when a
/// quorum is lost, when it stops the leader's memory from growing with refused work.
pub const UNCOMMITTED_BYTES_MAX: u64 = 8 * ENTRY_BYTES_MAX as u64;

/// The most voters a static quorum may list. KRaft quorums are 1, 3 or 5 voters in practice;
/// the bound keeps the quorum-state file and per-voter bookkeeping small and fixed.
pub const VOTERS_MAX: usize = 32;

/// Kafka's millisecond settings, before they are turned into ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumTimeouts {
    /// The driver's tick period.
    pub tick_ms: u64,
    /// `controller.quorum.election.timeout.ms`.
    pub election_timeout_ms: u64,
    pub heartbeat_ms: u64,
    /// `controller.quorum.request.timeout.ms`.
    pub request_timeout_ms: u64,
}

impl Default for QuorumTimeouts {
    fn default() -> Self {
        Self {
            tick_ms: TICK_MS_DEFAULT,
            election_timeout_ms: ELECTION_TIMEOUT_MS_DEFAULT,
            heartbeat_ms: HEARTBEAT_MS_DEFAULT,
            request_timeout_ms: REQUEST_TIMEOUT_MS_DEFAULT,
        }
    }
}

/// One voter's configuration, timers in ticks. Build it with [`QuorumConfig::new`], which
/// checks every relation raft-rs relies on, so constructing a node never fails on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumConfig {
    /// This voter (`node.id`).
    pub node_id: NodeId,
    /// `controller.quorum.voters`, sorted, without duplicates; contains `node_id`.
    pub voters: Vec<NodeId>,
    /// A follower campaigns after a timeout drawn from
    /// `[election_timeout_ticks, election_timeout_max_ticks)`; the leader steps down when it
    /// has not heard from a majority for `election_timeout_ticks` (check-quorum).
    pub election_timeout_ticks: usize,
    pub election_timeout_max_ticks: usize,
    pub heartbeat_ticks: usize,
    /// A snapshot sent to a follower and not confirmed within this many ticks is sent again.
    pub request_timeout_ticks: u64,
    pub entry_bytes_max: usize,
    pub append_bytes_max: u64,
    pub inflight_appends_max: usize,
    pub uncommitted_bytes_max: u64,
    /// Seeds the election-timeout jitter. The broker passes something that differs per
    /// process start (voters must not draw the same sequence); the simulator passes its seed.
    pub rng_seed: u64,
}

/// Why a quorum configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("node id {0} is negative")]
    NegativeNodeId(NodeId),
    #[error("the voter set is empty")]
    NoVoters,
    #[error("the voter set has {0} voters, more than the {VOTERS_MAX} supported")]
    TooManyVoters(usize),
    #[error("voter {0} is listed twice")]
    DuplicateVoter(NodeId),
    #[error("node {node_id} is not one of the voters {voters:?}; a controller must be a voter")]
    NotAVoter {
        node_id: NodeId,
        voters: Vec<NodeId>,
    },
    #[error("{name} must be positive")]
    Zero { name: &'static str },
    #[error(
        "the heartbeat ({heartbeat_ticks} ticks) must be shorter than the election timeout \
         ({election_timeout_ticks} ticks), or followers campaign against a live leader"
    )]
    HeartbeatNotShorter {
        heartbeat_ticks: usize,
        election_timeout_ticks: usize,
    },
}

impl QuorumConfig {
    /// Builds a voter's configuration from Kafka's millisecond settings.
    pub fn new(
        node_id: NodeId,
        voters: &[NodeId],
        timeouts: QuorumTimeouts,
        rng_seed: u64,
    ) -> Result<Self, ConfigError> {
        for (name, v) in [
            ("tick_ms", timeouts.tick_ms),
            (
                "controller.quorum.election.timeout.ms",
                timeouts.election_timeout_ms,
            ),
            ("heartbeat_ms", timeouts.heartbeat_ms),
            (
                "controller.quorum.request.timeout.ms",
                timeouts.request_timeout_ms,
            ),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero { name });
            }
        }
        let ticks = |ms: u64| ms.div_ceil(timeouts.tick_ms).max(1);
        let election = ticks(timeouts.election_timeout_ms);
        let election_max = (election * ELECTION_TIMEOUT_SPREAD_NUM)
            .div_ceil(ELECTION_TIMEOUT_SPREAD_DEN)
            .max(election + 1);
        let config = Self {
            node_id,
            voters: voters.to_vec(),
            election_timeout_ticks: election as usize,
            election_timeout_max_ticks: election_max as usize,
            heartbeat_ticks: ticks(timeouts.heartbeat_ms) as usize,
            request_timeout_ticks: ticks(timeouts.request_timeout_ms),
            entry_bytes_max: ENTRY_BYTES_MAX,
            append_bytes_max: APPEND_BYTES_MAX,
            inflight_appends_max: INFLIGHT_APPENDS_MAX,
            uncommitted_bytes_max: UNCOMMITTED_BYTES_MAX,
            rng_seed,
        };
        config.validated()
    }

    /// Checks a configuration built by hand (tests shorten timers this way) and sorts its voters.
    pub fn validated(mut self) -> Result<Self, ConfigError> {
        if self.node_id < 0 {
            return Err(ConfigError::NegativeNodeId(self.node_id));
        }
        if self.voters.is_empty() {
            return Err(ConfigError::NoVoters);
        }
        if self.voters.len() > VOTERS_MAX {
            return Err(ConfigError::TooManyVoters(self.voters.len()));
        }
        self.voters.sort_unstable();
        for pair in self.voters.windows(2) {
            if pair[0] == pair[1] {
                return Err(ConfigError::DuplicateVoter(pair[0]));
            }
        }
        if let Some(&v) = self.voters.iter().find(|v| **v < 0) {
            return Err(ConfigError::NegativeNodeId(v));
        }
        if !self.voters.contains(&self.node_id) {
            return Err(ConfigError::NotAVoter {
                node_id: self.node_id,
                voters: self.voters,
            });
        }
        for (name, zero) in [
            ("heartbeat_ticks", self.heartbeat_ticks == 0),
            ("request_timeout_ticks", self.request_timeout_ticks == 0),
            ("entry_bytes_max", self.entry_bytes_max == 0),
            ("append_bytes_max", self.append_bytes_max == 0),
            ("inflight_appends_max", self.inflight_appends_max == 0),
        ] {
            if zero {
                return Err(ConfigError::Zero { name });
            }
        }
        if self.heartbeat_ticks >= self.election_timeout_ticks {
            return Err(ConfigError::HeartbeatNotShorter {
                heartbeat_ticks: self.heartbeat_ticks,
                election_timeout_ticks: self.election_timeout_ticks,
            });
        }
        // raft-rs's own rules, restated so they fail here with a name and not in raft-rs.
        self.election_timeout_max_ticks = self
            .election_timeout_max_ticks
            .max(self.election_timeout_ticks + 1);
        self.uncommitted_bytes_max = self
            .uncommitted_bytes_max
            .max(self.append_bytes_max)
            .max(self.entry_bytes_max as u64);
        Ok(self)
    }

    /// Whether this voter alone is the quorum: it can elect itself at once.
    pub fn is_single_voter(&self) -> bool {
        self.voters.len() == 1
    }

    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.binary_search(&id).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_defaults_become_ticks() {
        let c = QuorumConfig::new(1, &[3, 1, 2], QuorumTimeouts::default(), 7).unwrap();
        assert_eq!(c.voters, vec![1, 2, 3]);
        assert_eq!(
            (c.election_timeout_ticks, c.election_timeout_max_ticks),
            (20, 30)
        );
        assert_eq!((c.heartbeat_ticks, c.request_timeout_ticks), (2, 40));
    }

    #[test]
    fn bad_voter_sets_are_refused() {
        let t = QuorumTimeouts::default();
        assert_eq!(
            QuorumConfig::new(4, &[1, 2, 3], t, 0),
            Err(ConfigError::NotAVoter {
                node_id: 4,
                voters: vec![1, 2, 3]
            })
        );
        assert_eq!(
            QuorumConfig::new(1, &[1, 2, 2], t, 0),
            Err(ConfigError::DuplicateVoter(2))
        );
        assert_eq!(QuorumConfig::new(1, &[], t, 0), Err(ConfigError::NoVoters));
        assert_eq!(
            QuorumConfig::new(-1, &[-1], t, 0),
            Err(ConfigError::NegativeNodeId(-1))
        );
        let many: Vec<NodeId> = (0..=VOTERS_MAX as NodeId).collect();
        assert!(matches!(
            QuorumConfig::new(0, &many, t, 0),
            Err(ConfigError::TooManyVoters(_))
        ));
    }

    #[test]
    fn timers_must_relate() {
        let t = QuorumTimeouts {
            heartbeat_ms: 1000,
            ..QuorumTimeouts::default()
        };
        assert!(matches!(
            QuorumConfig::new(1, &[1], t, 0),
            Err(ConfigError::HeartbeatNotShorter { .. })
        ));
        let t = QuorumTimeouts {
            tick_ms: 0,
            ..QuorumTimeouts::default()
        };
        assert!(matches!(
            QuorumConfig::new(1, &[1], t, 0),
            Err(ConfigError::Zero { .. })
        ));
    }
}
