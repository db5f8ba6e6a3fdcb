//! # weir-tools: `weir-admin`, the operator's command line
//!
//! What it owns: speaking the Kafka protocol to any Kafka-compatible broker on an operator's
//! behalf (topics, configs, console produce and consume, consumer groups, the cluster), and
//! reading Weir's data directories offline (dump and verify segments and indexes).
//!
//! It depends only on storage (for the on-disk formats, parsed and validated exactly as the
//! broker does) and on the `kafka-protocol` codecs; nothing of the broker.
//!
//! Modules: [`cli`] (flags), [`client`] (a blocking Kafka client), [`metadata`] (topics, brokers,
//! offsets), [`topic`] and [`configs`] (topic administration), [`produce`] and [`consume`] (the
//! console producer and consumer), [`member`] (a classic consumer-group member), [`group`]
//! (group administration and lag), [`cluster`], [`logdump`] (offline dump and verify),
//! [`table`] (tables and JSON), [`props`] (key=value arguments), [`timefmt`] (timestamps),
//! [`error`].

pub mod cli;
pub mod client;
pub mod cluster;
pub mod configs;
pub mod error;
pub mod metadata;
pub mod props;
pub mod table;
pub mod topic;
