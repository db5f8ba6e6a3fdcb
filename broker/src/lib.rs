//! # weir: the broker
//!
//! Starts one pinned glommio executor per core, shards partitions to cores ([`shard`]), and
//! answers the Kafka protocol (through `weir-net`) from the partition logs (`weir-storage`).
//!
//! Modules: [`alloc`] (allocator settings), [`config`] (server.properties and CLI, broker and
//! topic configs, the cluster's settings), [`runtime`] (per-core state, mesh, start-up
//! and shutdown), [`handlers`] (one module per API family), [`replica`] (a partition on its
//! owning core), [`metadata`] (metadata log, images, controller), [`errors`] (typed errors to
//! Kafka error codes, in one place), [`group`] (consumer groups and committed
//! offsets), [`kstr`] (Kafka wire strings: a leaf any module may use).

pub mod alloc;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod errors;
pub mod group;
pub mod handlers;
pub mod kstr;
pub mod replica;
pub mod replicate;
pub mod runtime;
pub mod shard;
