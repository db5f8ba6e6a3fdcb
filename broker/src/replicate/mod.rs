//! Partition replication on the broker (see `docs/REPLICATION.md`): the glue between a
//! partition's log on its owning core and the pure state machines of
//! `weir_replication::partition`.
//!
//! - [`role`]: what this broker is for a partition — leader (with the followers' positions, the
//!   high watermark and the acks=all waiters), follower (with its fetch position) or idle —
//!   and how a committed metadata change moves it between them.
//! - [`brokers`]: the other brokers as the metadata image says (who may join an ISR).
//! - [`fetcher`]: one fetcher per (core, leader broker) copying every partition this core
//!   follows from that leader.
//! - [`epochs`]: a log's leader-epoch cache as the state machines read it.

pub mod brokers;
pub mod epochs;
pub mod fetcher;
pub mod role;
