//! The one place where typed errors become Kafka error codes.

use kafka_protocol::ResponseError as K;
use weir_storage::{BatchError, StorageError};

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
    }
}

pub fn storage_code(e: &StorageError) -> i16 {
    storage_error(e).code()
}

pub fn code(kind: K) -> i16 {
    kind.code()
}
