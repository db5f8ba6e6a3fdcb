//! Limits of the wire edge. Where Kafka has a broker setting for the same thing, the field
//! carries Kafka's name and default so operators can reason in Kafka terms.

use thiserror::Error;

/// Kafka's `socket.request.max.bytes` default: the largest request frame a broker accepts.
pub const DEFAULT_SOCKET_REQUEST_MAX_BYTES: usize = 104_857_600;

/// Per-core default for Kafka's `queued.max.request.bytes`. Kafka's default is -1 (unbounded);
/// a thread-per-core broker needs a finite budget or one greedy client can exhaust a core's
/// memory, so we default to a bit over two maximum-size requests.
pub const DEFAULT_QUEUED_MAX_REQUEST_BYTES: u64 = 256 * 1024 * 1024;

/// Per-core default for Kafka's `max.connections`. Kafka's default is effectively unlimited
/// (`Int.MaxValue`) and broker-wide; ours is per core, bounded so file descriptors and
/// per-connection buffers cannot grow without limit.
pub const DEFAULT_MAX_CONNECTIONS_PER_CORE: usize = 16_384;

/// Default bound on requests read but not yet answered on one connection. Kafka's broker
/// handles one request per connection at a time; we pipeline, but bounded, so a client that
/// never reads its responses cannot make us queue unbounded work.
pub const DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION: usize = 64;

/// Default size of the per-connection read buffer. Small requests (the common case) are then
/// read with one syscall for several frames instead of two per frame.
pub const DEFAULT_READ_BUFFER_BYTES: usize = 64 * 1024;

/// Configuration of the wire edge on one core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// Kafka's `socket.request.max.bytes`: frames larger than this close the connection.
    pub socket_request_max_bytes: usize,
    /// Kafka's `queued.max.request.bytes`, per core: request bytes read but not yet handled.
    pub queued_max_request_bytes: u64,
    /// Kafka's `max.connections`, per core: connections beyond this are closed on accept.
    pub max_connections: usize,
    /// Requests read but not yet answered on one connection before we stop reading it.
    pub max_in_flight_per_connection: usize,
    /// Per-connection read buffer size.
    pub read_buffer_bytes: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            socket_request_max_bytes: DEFAULT_SOCKET_REQUEST_MAX_BYTES,
            queued_max_request_bytes: DEFAULT_QUEUED_MAX_REQUEST_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS_PER_CORE,
            max_in_flight_per_connection: DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
            read_buffer_bytes: DEFAULT_READ_BUFFER_BYTES,
        }
    }
}

/// A configuration that cannot work.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A limit that must be positive is zero.
    #[error("{name} must be greater than zero")]
    Zero {
        /// The setting's name.
        name: &'static str,
    },
    /// The frame limit does not fit the wire's signed 32-bit size prefix.
    #[error("socket.request.max.bytes {value} exceeds the protocol maximum {max}")]
    FrameLimitTooLarge {
        /// The configured value.
        value: usize,
        /// The largest size a Kafka frame can declare.
        max: usize,
    },
    /// A limit is above what the protocol or the platform can use.
    #[error("{name} {value} exceeds the maximum {max}")]
    TooLarge {
        /// The setting's name.
        name: &'static str,
        /// The configured value.
        value: u64,
        /// The largest usable value.
        max: u64,
    },
    /// A supported version range is empty or outside what kafka-protocol can decode.
    #[error("supported versions {min}..={max} of api key {api_key} are outside {valid_min}..={valid_max}")]
    UnsupportedRange {
        /// The api key.
        api_key: i16,
        /// Configured minimum.
        min: i16,
        /// Configured maximum.
        max: i16,
        /// Lowest version kafka-protocol decodes.
        valid_min: i16,
        /// Highest version kafka-protocol decodes.
        valid_max: i16,
    },
}

impl NetConfig {
    /// Checks that every limit can work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            (
                "socket.request.max.bytes",
                self.socket_request_max_bytes as u64,
            ),
            ("queued.max.request.bytes", self.queued_max_request_bytes),
            ("max.connections", self.max_connections as u64),
            (
                "max_in_flight_per_connection",
                self.max_in_flight_per_connection as u64,
            ),
            ("read_buffer_bytes", self.read_buffer_bytes as u64),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(ConfigError::Zero { name });
            }
        }
        let max = i32::MAX as usize;
        if self.socket_request_max_bytes > max {
            return Err(ConfigError::FrameLimitTooLarge {
                value: self.socket_request_max_bytes,
                max,
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
        let c = NetConfig::default();
        assert_eq!(c.socket_request_max_bytes, 104_857_600);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn zero_and_oversized_limits_are_rejected() {
        let c = NetConfig {
            max_connections: 0,
            ..NetConfig::default()
        };
        assert_eq!(
            c.validate(),
            Err(ConfigError::Zero {
                name: "max.connections"
            })
        );
        let c = NetConfig {
            socket_request_max_bytes: i32::MAX as usize + 1,
            ..NetConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::FrameLimitTooLarge { .. })
        ));
    }
}
