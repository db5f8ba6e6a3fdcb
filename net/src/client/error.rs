//! The client's typed errors. Each names the peer, so a caller's log line needs nothing else.
//! They are `Clone`: one connection failure is handed to every caller that was waiting on it.

use std::io;
use std::time::Duration;
use thiserror::Error;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ClientError {
    /// The configuration cannot work.
    #[error("client configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    /// No connection could be made (refused, unreachable, or not within the connect timeout).
    #[error("cannot connect to {peer}: {reason}")]
    Connect {
        /// The address dialled.
        peer: String,
        /// What the socket said.
        reason: String,
    },
    /// The connection is gone. Every call that was in flight on it fails with this, and so
    /// does every later call: make a new connection.
    #[error("connection to {peer} closed: {cause}")]
    ConnectionClosed {
        /// The peer.
        peer: String,
        /// What closed it.
        cause: CloseCause,
    },
    /// No response within the timeout. The connection stays usable; a late answer is
    /// dropped.
    #[error("no response from {peer} to api key {api_key} v{api_version} (correlation id {correlation_id}) within {timeout:?}")]
    Timeout {
        /// The peer.
        peer: String,
        /// The api key of the request.
        api_key: i16,
        /// Its version.
        api_version: i16,
        /// Its correlation id.
        correlation_id: i32,
        /// The timeout that ran out.
        timeout: Duration,
    },
    /// A response arrived but cannot be read. The framing is intact, so the connection
    /// stays usable.
    #[error("bad response from {peer}: {error}")]
    Protocol {
        /// The peer.
        peer: String,
        /// What is wrong with the response.
        error: ProtocolError,
    },
    /// The peer does not offer a version of the api this client can speak.
    #[error("{peer} offers api key {api_key} at {}, this client needs v{oldest}..=v{preferred}",
        offered.map_or_else(|| "no version".to_string(), |(min, max)| format!("v{min}..=v{max}")))]
    UnsupportedVersion {
        /// The peer.
        peer: String,
        /// The api key.
        api_key: i16,
        /// What the peer offers, if anything.
        offered: Option<(i16, i16)>,
        /// The oldest version this client can use.
        oldest: i16,
        /// The newest version this client can use.
        preferred: i16,
    },
    /// The request cannot be encoded (a field its version cannot carry, or a frame over the
    /// protocol's 2 GiB).
    #[error("cannot encode api key {api_key} v{api_version} for {peer}: {reason}")]
    Encode {
        /// The peer.
        peer: String,
        /// The api key.
        api_key: i16,
        /// The version.
        api_version: i16,
        /// kafka-protocol's account.
        reason: String,
    },
}

impl ClientError {
    /// Whether the connection this error came from is gone (a caller should reconnect).
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            ClientError::ConnectionClosed { .. } | ClientError::Connect { .. }
        )
    }
}

/// What ended a connection.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CloseCause {
    /// The peer closed it between responses.
    #[error("closed by the peer")]
    ByPeer,
    /// The peer closed it in the middle of a response frame.
    #[error("closed by the peer mid-response: got {received} of {expected} bytes")]
    MidFrame {
        /// Bytes the frame (or its size prefix) needed.
        expected: usize,
        /// Bytes that arrived.
        received: usize,
    },
    /// This side dropped the connection.
    #[error("closed by this client")]
    ByClient,
    /// The socket failed.
    #[error("i/o error ({kind:?}): {message}")]
    Io {
        /// The error's kind, for matching.
        kind: io::ErrorKind,
        /// Its text.
        message: String,
    },
    /// The peer broke the framing; nothing after it can be trusted.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

impl From<io::Error> for CloseCause {
    fn from(e: io::Error) -> Self {
        CloseCause::Io {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

/// Something the peer sent that this client cannot read.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ProtocolError {
    /// A response frame declares a size outside `0..=response_max_bytes`.
    #[error("response frame size {size} is outside 0..={limit} (response_max_bytes)")]
    FrameSize {
        /// The declared size.
        size: i32,
        /// The configured limit.
        limit: usize,
    },
    /// A response frame is too short to hold a correlation id.
    #[error("response frame of {len} bytes has no correlation id")]
    ShortFrame {
        /// The frame length.
        len: usize,
    },
    /// A response header does not decode.
    #[error("response header (correlation id {correlation_id}): {reason}")]
    Header {
        /// The correlation id.
        correlation_id: i32,
        /// kafka-protocol's account.
        reason: String,
    },
    /// A response body does not decode as the response to the request.
    #[error("api key {api_key} v{api_version} response body: {reason}")]
    Body {
        /// The api key.
        api_key: i16,
        /// The version.
        api_version: i16,
        /// kafka-protocol's account.
        reason: String,
    },
    /// ApiVersions was answered with an error.
    #[error("ApiVersions answered error code {error_code}")]
    ApiVersions {
        /// Kafka's error code.
        error_code: i16,
    },
}
