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
