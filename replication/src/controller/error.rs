//! The controller's refusals. Each variant is one Kafka error code and carries the message the
//! client sees; `kafka_code` is the one place the numbers live (from Kafka's `Errors.java`), so
//! the broker copies the code and the message into its response without a mapping of its own.

/// A refused operation (or item of one), as Kafka's controller would refuse it.
#[derive(
    Debug, Clone, PartialEq, Eq, thiserror::Error, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub enum ControllerError {
    #[error("UNKNOWN_SERVER_ERROR: {0}")]
    UnknownServerError(String),
    #[error("UNKNOWN_TOPIC_OR_PARTITION: {0}")]
    UnknownTopicOrPartition(String),
    #[error("NOT_LEADER_OR_FOLLOWER: {0}")]
    NotLeaderOrFollower(String),
    #[error("INVALID_TOPIC_EXCEPTION: {0}")]
    InvalidTopic(String),
    #[error("TOPIC_ALREADY_EXISTS: {0}")]
    TopicAlreadyExists(String),
    #[error("INVALID_PARTITIONS: {0}")]
    InvalidPartitions(String),
    #[error("INVALID_REPLICATION_FACTOR: {0}")]
    InvalidReplicationFactor(String),
    #[error("INVALID_REPLICA_ASSIGNMENT: {0}")]
    InvalidReplicaAssignment(String),
    #[error("INVALID_CONFIG: {0}")]
    InvalidConfig(String),
    /// This node is not the active controller (or stopped being it before the records
    /// committed); the caller retries at the active one.
    #[error("NOT_CONTROLLER: {0}")]
    NotController(String),
    #[error("INVALID_REQUEST: {0}")]
    InvalidRequest(String),
    #[error("OPERATION_NOT_ATTEMPTED: {0}")]
    OperationNotAttempted(String),
    #[error("TOPIC_DELETION_DISABLED: {0}")]
    TopicDeletionDisabled(String),
    #[error("FENCED_LEADER_EPOCH: {0}")]
    FencedLeaderEpoch(String),
    #[error("STALE_BROKER_EPOCH: {0}")]
    StaleBrokerEpoch(String),
    #[error("PREFERRED_LEADER_NOT_AVAILABLE: {0}")]
    PreferredLeaderNotAvailable(String),
    #[error("ELIGIBLE_LEADERS_NOT_AVAILABLE: {0}")]
    EligibleLeadersNotAvailable(String),
    #[error("ELECTION_NOT_NEEDED: {0}")]
    ElectionNotNeeded(String),
    #[error("INVALID_UPDATE_VERSION: {0}")]
    InvalidUpdateVersion(String),
    #[error("UNKNOWN_TOPIC_ID: {0}")]
    UnknownTopicId(String),
    #[error("DUPLICATE_BROKER_REGISTRATION: {0}")]
    DuplicateBrokerRegistration(String),
    #[error("BROKER_ID_NOT_REGISTERED: {0}")]
    BrokerIdNotRegistered(String),
    #[error("INCONSISTENT_CLUSTER_ID: {0}")]
    InconsistentClusterId(String),
    #[error("INELIGIBLE_REPLICA: {0}")]
    IneligibleReplica(String),
    #[error("NEW_LEADER_ELECTED: {0}")]
    NewLeaderElected(String),
    #[error("INVALID_REGISTRATION: {0}")]
    InvalidRegistration(String),
}

impl ControllerError {
    /// Kafka's error code (`org.apache.kafka.common.protocol.Errors`).
    pub fn kafka_code(&self) -> i16 {
        use ControllerError::*;
        match self {
            UnknownServerError(_) => -1,
            UnknownTopicOrPartition(_) => 3,
            NotLeaderOrFollower(_) => 6,
            InvalidTopic(_) => 17,
            TopicAlreadyExists(_) => 36,
            InvalidPartitions(_) => 37,
            InvalidReplicationFactor(_) => 38,
            InvalidReplicaAssignment(_) => 39,
            InvalidConfig(_) => 40,
            NotController(_) => 41,
            InvalidRequest(_) => 42,
            OperationNotAttempted(_) => 55,
            TopicDeletionDisabled(_) => 73,
            FencedLeaderEpoch(_) => 74,
            StaleBrokerEpoch(_) => 77,
            PreferredLeaderNotAvailable(_) => 80,
            EligibleLeadersNotAvailable(_) => 83,
            ElectionNotNeeded(_) => 84,
            InvalidUpdateVersion(_) => 95,
            UnknownTopicId(_) => 100,
            DuplicateBrokerRegistration(_) => 101,
            BrokerIdNotRegistered(_) => 102,
            InconsistentClusterId(_) => 104,
            IneligibleReplica(_) => 107,
            NewLeaderElected(_) => 108,
            InvalidRegistration(_) => 119,
        }
    }

    /// The message for the response's `error_message`.
    pub fn message(&self) -> &str {
        use ControllerError::*;
        match self {
            UnknownServerError(m)
            | UnknownTopicOrPartition(m)
            | NotLeaderOrFollower(m)
            | InvalidTopic(m)
            | TopicAlreadyExists(m)
            | InvalidPartitions(m)
            | InvalidReplicationFactor(m)
            | InvalidReplicaAssignment(m)
            | InvalidConfig(m)
            | NotController(m)
            | InvalidRequest(m)
            | OperationNotAttempted(m)
            | TopicDeletionDisabled(m)
            | FencedLeaderEpoch(m)
            | StaleBrokerEpoch(m)
            | PreferredLeaderNotAvailable(m)
            | EligibleLeadersNotAvailable(m)
            | ElectionNotNeeded(m)
            | InvalidUpdateVersion(m)
            | UnknownTopicId(m)
            | DuplicateBrokerRegistration(m)
            | BrokerIdNotRegistered(m)
            | InconsistentClusterId(m)
            | IneligibleReplica(m)
            | NewLeaderElected(m)
            | InvalidRegistration(m) => m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ControllerError::*;

    #[test]
    fn codes_are_kafkas() {
        // A few anchors from Kafka's Errors.java; the match above is the table.
        assert_eq!(StaleBrokerEpoch(String::new()).kafka_code(), 77);
        assert_eq!(InvalidUpdateVersion(String::new()).kafka_code(), 95);
        assert_eq!(IneligibleReplica(String::new()).kafka_code(), 107);
        assert_eq!(ElectionNotNeeded(String::new()).kafka_code(), 84);
        let e = InvalidReplicationFactor("only 1 broker".into());
        assert_eq!((e.kafka_code(), e.message()), (38, "only 1 broker"));
        assert_eq!(e.to_string(), "INVALID_REPLICATION_FACTOR: only 1 broker");
    }
}
