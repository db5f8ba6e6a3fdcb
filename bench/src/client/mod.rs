//! A minimal asynchronous Kafka client on glommio: connections with pipelined requests, cluster
//! metadata, topic creation, offsets, produce and fetch, all through `kafka-protocol`.

pub mod admin;
pub mod batch;
pub mod conn;
pub mod errors;
pub mod fetch;
mod oneshot;
pub mod produce;

pub use conn::Conn;
