//! The bench's Kafka requests on weir-net's client: cluster metadata, topic creation, offsets,
//! produce batching and fetch, all through `kafka-protocol`.

pub mod admin;
pub mod batch;
pub mod conn;
pub mod errors;
pub mod fetch;
pub mod produce;

pub use conn::Conn;
