//! Weir's Kafka wire edge.
//!
//! Owns: frames, request decoding and response encoding (over kafka-protocol), the zero-copy
//! FetchResponse framing, per-connection drivers and per-core listeners on glommio, `sendfile`
//! of file regions, Weir's private api keys ([`weir_api`]), and the outbound client
//! ([`client`]) that nodes use to reach each other. It knows nothing of logs, partitions or
//! storage: the broker plugs a [`Handler`] in and gets decoded requests out.
//!
//! Invariants:
//! - A frame size is checked against `socket.request.max.bytes` before any buffer for it
//!   exists; a core's request bytes in flight are bounded by `queued.max.request.bytes`.
//! - Responses on a connection are written strictly in request order, whatever order their
//!   handlers finish in.
//! - Bad input closes that one connection with a log line; it never panics the core.
//! - Record bytes in a [`FileRegion`] reach the socket with `sendfile`; at most one byte per
//!   full-socket stall is copied through user space (to park on glommio's writability poll).
//! - Weir's private apis are accepted only on a listener configured for them
//!   ([`Listener::accepting_weir_apis`]); anywhere else one closes the connection.
//! - Everything is per core (`Rc`, `Cell`, glommio's single-threaded semaphore): no locks,
//!   nothing `Send` on the data path.
//!
//! Plugging a broker in, on each core's executor:
//!
//! ```no_run
//! use std::rc::Rc;
//! use weir_net::kafka_protocol::messages::{ApiVersionsResponse, RequestKind, ResponseKind};
//! use weir_net::{ConnectionInfo, Listener, NetConfig, NetCore, Reply, Request, SupportedApis};
//!
//! glommio::LocalExecutorBuilder::default()
//!     .spawn(|| async move {
//!         let supported = SupportedApis::everything_decodable();
//!         let core = NetCore::new(NetConfig::default(), supported).expect("valid config");
//!         let addr = "127.0.0.1:9092".parse().expect("address");
//!         let listener = Listener::bind(addr, core.clone()).expect("bind");
//!         let handler = Rc::new(move |_conn: Rc<ConnectionInfo>, request: Request| async move {
//!             let Request::Kafka(request) = request else {
//!                 return Reply::Close; // a private api: only a controller listener gets them
//!             };
//!             match request.body {
//!                 RequestKind::ApiVersions(_) => Reply::Message(ResponseKind::ApiVersions(
//!                     ApiVersionsResponse::default(),
//!                 )),
//!                 _ => Reply::Close,
//!             }
//!         });
//!         listener.serve(handler, std::future::pending()).await;
//!     })
//!     .expect("executor")
//!     .join()
//!     .expect("clean exit");
//! ```

pub mod client;
pub mod config;
pub mod connection;
pub mod core_state;
pub mod fetch_response;
pub mod frame;
pub mod listener;
pub mod request;
pub mod response;
pub mod sendfile;
pub mod socket;
pub mod versions;
pub mod weir_api;
pub mod writer;

pub use config::{ConfigError, NetConfig};
pub use connection::{serve_connection, Closed, ConnectionError, ConnectionInfo, Handler, Reply};
pub use core_state::NetCore;
pub use listener::{ensure_port_free, ListenError, Listener};
pub use request::{decode_any_request, decode_request, KafkaRequest, Request, RequestError};
pub use response::{
    encode_raw_response, encode_response, encode_weir_response, EncodeError, FileRegion, Part,
    ResponseFrame,
};
pub use sendfile::{send_stats, SendStats};
pub use versions::SupportedApis;
pub use weir_api::{
    WeirApi, WeirApis, WeirRequest, WEIR_CONTROLLER, WEIR_METADATA_FETCH, WEIR_RAFT,
};

/// Re-exported so the broker names exactly the protocol types this crate decodes into.
pub use kafka_protocol;

#[cfg(test)]
mod test_alloc;
#[cfg(test)]
mod test_socket;
