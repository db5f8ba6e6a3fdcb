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
//! offsets), [`topic`] and [`configs`] (topic administration), [`records`] (messages in and out
//! of batches), [`produce`] and [`consume`] (the console producer and consumer), [`member`] (a
//! classic consumer-group member), [`commits`] (committed offsets), [`group`] (group
//! administration and lag), [`cluster`], [`segwalk`] (reading segments offline), [`logdump`]
//! and [`logverify`], [`table`] (tables and JSON), [`props`] (key=value arguments),
//! [`timefmt`] (timestamps), [`error`].

pub mod cli;
pub mod client;
pub mod cluster;
pub mod commits;
pub mod configs;
pub mod consume;
pub mod error;
pub mod group;
pub mod logdump;
pub mod logverify;
pub mod member;
pub mod metadata;
pub mod produce;
pub mod props;
pub mod records;
pub mod segwalk;
pub mod table;
pub mod timefmt;
pub mod topic;
pub mod unclean;
