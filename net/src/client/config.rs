//! A client's settings. Where a Kafka client has the same setting, the field carries its name
//! and default.

use crate::config::{ConfigError, DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION, DEFAULT_READ_BUFFER_BYTES};
use std::time::Duration;

/// Kafka's `socket.connection.setup.timeout.ms` default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Kafka's `request.timeout.ms` default for clients.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest response frame accepted by default. Kafka's clients accept any size; a bound keeps
/// one bad peer from making a core allocate gigabytes. 256 MiB is far above what a Fetch
/// bounded by `fetch.max.bytes` (50 MiB) or `replica.fetch.response.max.bytes` (10 MiB) returns.
pub const DEFAULT_RESPONSE_MAX_BYTES: usize = 256 << 20;

/// Default of `max.in.flight.requests.per.connection`. Kafka's producer default is 5, chosen
/// for ordering of retried batches; these connections carry independent calls, and a Weir
/// server reads at most this many requests of one connection ahead anyway, so more would only
/// queue there.
pub const DEFAULT_MAX_IN_FLIGHT_REQUESTS: usize = DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION;

/// Frames waiting for the socket before a caller waits: what `send_only` callers (raft
/// messages, acks=0 produces) feel as backpressure.
pub const DEFAULT_WRITE_QUEUE_FRAMES: usize = 64;

/// Settings of one outbound connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Kafka's `client.id`: named in every request header, so the peer's logs say who called.
    pub client_id: String,
    /// KIP-511 `client.software.name`, sent in ApiVersions.
    pub software_name: String,
    /// KIP-511 `client.software.version`, sent in ApiVersions.
    pub software_version: String,
    /// Kafka's `socket.connection.setup.timeout.ms`: connecting and the ApiVersions exchange
    /// must finish within it.
    pub connect_timeout: Duration,
    /// Kafka's `request.timeout.ms`: how long a call waits for its response, queueing
    /// included. The connection stays open after a timeout (the late answer is dropped).
    pub request_timeout: Duration,
    /// Largest response frame accepted; a larger one closes the connection.
    pub response_max_bytes: usize,
    /// Kafka's `max.in.flight.requests.per.connection`: calls awaiting a response at once;
    /// more wait for a slot.
    pub max_in_flight_requests: usize,
    /// Frames queued for the socket before callers wait.
    pub write_queue_frames: usize,
    /// Read buffer per connection: small responses arrive several per read.
    pub read_buffer_bytes: usize,
}

impl ClientConfig {
    /// Kafka's defaults with `client_id` as both the client id and the software name.
    pub fn new(client_id: impl Into<String>) -> Self {
        let client_id = client_id.into();
        ClientConfig {
            software_name: client_id.clone(),
            client_id,
            software_version: env!("CARGO_PKG_VERSION").to_string(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            response_max_bytes: DEFAULT_RESPONSE_MAX_BYTES,
            max_in_flight_requests: DEFAULT_MAX_IN_FLIGHT_REQUESTS,
            write_queue_frames: DEFAULT_WRITE_QUEUE_FRAMES,
            read_buffer_bytes: DEFAULT_READ_BUFFER_BYTES,
        }
    }

    /// Checks that every limit can work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("response_max_bytes", self.response_max_bytes as u64),
            (
                "max.in.flight.requests.per.connection",
                self.max_in_flight_requests as u64,
            ),
            ("write_queue_frames", self.write_queue_frames as u64),
            ("read_buffer_bytes", self.read_buffer_bytes as u64),
            (
                "socket.connection.setup.timeout.ms",
                self.connect_timeout.as_millis() as u64,
            ),
            (
                "request.timeout.ms",
                self.request_timeout.as_millis() as u64,
            ),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(ConfigError::Zero { name });
            }
        }
        let max = i32::MAX as usize;
        if self.response_max_bytes > max {
            return Err(ConfigError::TooLarge {
                name: "response_max_bytes",
                value: self.response_max_bytes as u64,
                max: max as u64,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas_and_valid() {
        let c = ClientConfig::new("weir-test");
        assert_eq!(c.client_id, "weir-test");
        assert_eq!(c.request_timeout, Duration::from_millis(30_000));
        assert_eq!(c.connect_timeout, Duration::from_millis(10_000));
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn zero_and_oversized_limits_are_refused() {
        let mut c = ClientConfig::new("t");
        c.request_timeout = Duration::ZERO;
        assert_eq!(
            c.validate(),
            Err(ConfigError::Zero {
                name: "request.timeout.ms"
            })
        );
        let mut c = ClientConfig::new("t");
        c.response_max_bytes = i32::MAX as usize + 1;
        assert!(matches!(c.validate(), Err(ConfigError::TooLarge { .. })));
    }
}
