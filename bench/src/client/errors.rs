//! Broker errors counted by their Kafka name, never retried forever.

use std::collections::BTreeMap;

/// Error counts by name (Kafka error names, or a client-side description).
#[derive(Debug, Default, Clone)]
pub struct ErrorCounts(pub BTreeMap<String, u64>);

impl ErrorCounts {
    pub fn add(&mut self, name: impl Into<String>, n: u64) {
        *self.0.entry(name.into()).or_default() += n;
    }

    /// Counts a Kafka error code (0 is not an error). Returns whether it was an error.
    pub fn add_code(&mut self, code: i16, n: u64) -> bool {
        match kafka_protocol::ResponseError::try_from_code(code) {
            None => false,
            Some(e) => {
                self.add(e.to_string(), n);
                true
            }
        }
    }

    pub fn merge(&mut self, other: &ErrorCounts) {
        for (k, v) in &other.0 {
            self.add(k.clone(), *v);
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_kafka_name() {
        let mut e = ErrorCounts::default();
        assert!(!e.add_code(0, 1));
        assert!(e.add_code(6, 2));
        assert!(e.add_code(6, 1));
        e.add("ConnectionFailure (client)", 1);
        assert_eq!(e.total(), 4);
        assert_eq!(e.0.get("NotLeaderOrFollower").copied(), Some(3));
    }
}
