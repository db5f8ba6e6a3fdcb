//! An outbound, pipelined Kafka client on glommio: what a broker uses to reach other nodes
//! (replica fetchers, broker → controller calls, raft between controllers) and what the bench
//! and tools use to reach brokers.
//!
//! One [`Connection`] is one TCP connection owned by one executor: a writer task drains a
//! bounded queue of frames into the socket (gathering whatever is queued into one `sendmsg`),
//! a reader task matches responses to callers by correlation id, so any number of calls (up
//! to `max.in.flight.requests.per.connection`) are in flight at once. At connect it negotiates
//! versions with ApiVersions, which also lists the private apis a controller listener accepts.
//!
//! Invariants:
//! - A response frame's size is checked against [`ClientConfig::response_max_bytes`] before
//!   any buffer for it exists.
//! - Response bytes are read once from the socket into the frame's buffer and never copied
//!   after: a decoded response's `Bytes` fields (a Fetch's records) and a private response's
//!   body are slices of it.
//! - When the connection dies every pending caller is woken with the same
//!   [`ClientError::ConnectionClosed`], later calls fail at once, and
//!   [`Connection::closed`] resolves; nothing hangs until a timeout.
//! - Everything is per executor (`Rc`, `Cell`): a connection is `!Send`.

mod config;
mod connection;
mod error;
mod oneshot;
mod reconnect;
mod tasks;
mod versions;

pub use config::{
    ClientConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_IN_FLIGHT_REQUESTS, DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_RESPONSE_MAX_BYTES, DEFAULT_WRITE_QUEUE_FRAMES,
};
pub use connection::Connection;
pub use error::{ClientError, CloseCause, ProtocolError};
pub use reconnect::{
    Backoff, BackoffConfig, Reconnecting, DEFAULT_RECONNECT_BACKOFF, DEFAULT_RECONNECT_BACKOFF_MAX,
};
pub use versions::PeerVersions;
