//! The one place where typed errors become Kafka error codes.

use kafka_protocol::ResponseError as K;
use weir_storage::{BatchError, ProducerStateError, StorageError};

/// A Kafka error code with a message for the response's `error_message` where the API has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: i16,
    pub message: Option<String>,
}

impl ApiError {
    pub fn new(kind: K, message: impl Into<String>) -> Self {
        Self {
            code: kind.code(),
            message: Some(message.into()),
        }
    }

    pub fn bare(kind: K) -> Self {
        Self {
            code: kind.code(),
            message: None,
        }
    }
}

pub fn storage_error(e: &StorageError) -> K {
    match e {
        StorageError::InvalidBatch(BatchError::TooLarge { .. }) => K::MessageTooLarge,
        StorageError::InvalidBatch(_) => K::CorruptMessage,
        StorageError::OffsetOutOfRange { .. } => K::OffsetOutOfRange,
        StorageError::NonMonotonicOffset { .. } => K::UnknownServerError,
        StorageError::Io { .. } | StorageError::Offline(_) | StorageError::CorruptFile { .. } => {
            K::KafkaStorageError
        }
        // The partition was closed or deleted under the request: the client refreshes metadata.
        StorageError::Closed(_) => K::NotLeaderOrFollower,
        StorageError::Busy(_) => K::RequestTimedOut,
        StorageError::Records(_) => K::CorruptMessage,
        StorageError::RecordValidation {
            invalid_timestamp: true,
            ..
        } => K::InvalidTimestamp,
        StorageError::RecordValidation { .. } | StorageError::InvalidRecord(_) => K::InvalidRecord,
        StorageError::Producer(e) => producer_error(e),
    }
}

/// An idempotent producer's batch the leader's log refused (its sequence or epoch), as Kafka
/// answers it.
pub fn producer_error(e: &ProducerStateError) -> K {
    match e {
        ProducerStateError::OutOfOrderSequence { .. } => K::OutOfOrderSequenceNumber,
        ProducerStateError::InvalidProducerEpoch { .. } => K::InvalidProducerEpoch,
        // Kafka's LogValidator: a producer id with a negative base sequence.
        ProducerStateError::InvalidSequence { .. } => K::InvalidRecord,
        // A retry of a batch still being written: retriable, the retry gets its offsets.
        ProducerStateError::DuplicateInFlight { .. } => K::RequestTimedOut,
        // Snapshot files are the log's own; a corrupt one never reaches a client.
        ProducerStateError::CorruptSnapshot(_) => K::UnknownServerError,
    }
}

pub fn storage_code(e: &StorageError) -> i16 {
    storage_error(e).code()
}

pub fn code(kind: K) -> i16 {
    kind.code()
}

// Consumer groups: `group::GroupError` as the group APIs answer it.

/// The Kafka error a group failure is answered with. Failures that Kafka answers with a shared
/// code: a dead group, an `__consumer_offsets` that cannot be created and an unreachable core
/// all ask the client to find the coordinator again (COORDINATOR_NOT_AVAILABLE); what no
/// well-behaved client or correct broker causes is UNKNOWN_SERVER_ERROR.
pub fn group_error(e: crate::group::GroupError) -> K {
    use crate::group::GroupError as G;
    match e {
        G::InvalidGroupId => K::InvalidGroupId,
        G::UnknownMemberId => K::UnknownMemberId,
        G::IllegalGeneration => K::IllegalGeneration,
        G::RebalanceInProgress => K::RebalanceInProgress,
        G::FencedInstanceId => K::FencedInstanceId,
        G::InvalidSessionTimeout => K::InvalidSessionTimeout,
        G::InconsistentGroupProtocol => K::InconsistentGroupProtocol,
        G::MemberIdRequired => K::MemberIdRequired,
        G::StaticJoinWithPendingMemberId | G::UnexpectedReply => K::UnknownServerError,
        G::GroupIdNotFound => K::GroupIdNotFound,
        G::NonEmptyGroup => K::NonEmptyGroup,
        G::UnknownTopicOrPartition => K::UnknownTopicOrPartition,
        G::OffsetMetadataTooLarge => K::OffsetMetadataTooLarge,
        G::GroupSubscribedToTopic => K::GroupSubscribedToTopic,
        G::NotCoordinator => K::NotCoordinator,
        G::InvalidCommitOffsetSize => K::InvalidCommitOffsetSize,
        G::CoordinatorNotAvailable
        | G::GroupDead
        | G::OffsetsTopicNotCreated
        | G::CoordinatorUnreachable => K::CoordinatorNotAvailable,
    }
}

pub fn group_code(e: crate::group::GroupError) -> i16 {
    group_error(e).code()
}

/// A group result as Kafka's error fields carry it: 0 for success.
pub fn group_result_code(r: Result<(), crate::group::GroupError>) -> i16 {
    r.err().map_or(0, group_code)
}

// The controller: `replication::controller::ControllerError` carries Kafka's code itself (its
// variants are one per code, named as Kafka names them), so the edge copies code and message.

/// The code and message a controller refusal is answered with.
pub fn controller_error(e: &weir_replication::controller::ControllerError) -> (i16, String) {
    (e.kafka_code(), e.message().to_string())
}

#[cfg(test)]
mod group_error_tests {
    use super::*;
    use crate::group::GroupError as G;

    #[test]
    fn group_failures_get_kafkas_codes() {
        // The codes Kafka's protocol defines, written out so a renamed variant cannot move one.
        let expected = [
            (G::InvalidGroupId, 24),
            (G::UnknownMemberId, 25),
            (G::IllegalGeneration, 22),
            (G::RebalanceInProgress, 27),
            (G::FencedInstanceId, 82),
            (G::InvalidSessionTimeout, 26),
            (G::InconsistentGroupProtocol, 23),
            (G::MemberIdRequired, 79),
            (G::StaticJoinWithPendingMemberId, -1),
            (G::UnexpectedReply, -1),
            (G::GroupIdNotFound, 69),
            (G::NonEmptyGroup, 68),
            (G::UnknownTopicOrPartition, 3),
            (G::OffsetMetadataTooLarge, 12),
            (G::GroupSubscribedToTopic, 86),
            (G::NotCoordinator, 16),
            (G::InvalidCommitOffsetSize, 28),
            (G::CoordinatorNotAvailable, 15),
            (G::GroupDead, 15),
            (G::OffsetsTopicNotCreated, 15),
            (G::CoordinatorUnreachable, 15),
        ];
        for (e, code) in expected {
            assert_eq!(group_code(e), code, "{e:?}");
        }
        assert_eq!(group_result_code(Ok(())), 0);
        assert_eq!(group_result_code(Err(G::FencedInstanceId)), 82);
    }

    #[test]
    fn write_failures_keep_kafkas_names_in_the_rebalance_reason() {
        // The state machine names a failed assignment write by its variant, as Kafka names the
        // error in the same log line.
        for e in [
            G::NotCoordinator,
            G::InvalidCommitOffsetSize,
            G::CoordinatorNotAvailable,
        ] {
            assert_eq!(format!("{e:?}"), format!("{:?}", group_error(e)));
        }
    }
}

#[cfg(test)]
mod producer_error_tests {
    use super::*;

    #[test]
    fn producer_refusals_get_kafkas_codes() {
        let e = |p: ProducerStateError| storage_code(&StorageError::Producer(p));
        let ooo = ProducerStateError::OutOfOrderSequence {
            producer_id: 1,
            epoch: 0,
            got: 5,
            expected: 3,
        };
        assert_eq!(e(ooo), 45);
        let fenced = ProducerStateError::InvalidProducerEpoch {
            producer_id: 1,
            got: 0,
            current: 2,
        };
        assert_eq!(e(fenced), 47);
        let negative = ProducerStateError::InvalidSequence {
            producer_id: 1,
            sequence: -1,
        };
        assert_eq!(e(negative), 87);
        let in_flight = ProducerStateError::DuplicateInFlight {
            producer_id: 1,
            epoch: 0,
            first_seq: 0,
            last_seq: 4,
        };
        assert_eq!(e(in_flight), 7);
        assert_eq!(e(ProducerStateError::CorruptSnapshot("x".into())), -1);
    }
}
