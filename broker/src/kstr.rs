//! Kafka's wire strings. A leaf: it depends on nothing in the broker, so any module (handlers,
//! groups, metadata) may build a response's strings without reaching into another layer.

use kafka_protocol::protocol::StrBytes;

/// A `String` (or anything that becomes one) as the `StrBytes` kafka-protocol's messages hold.
pub fn sb(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
