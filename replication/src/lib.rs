//! # weir-replication: the cluster's logic, without I/O
//!
//! Everything here is a pure state machine: inputs are messages and the current time (`now_ms`,
//! always passed in, never read from a clock), outputs are actions for the caller to carry out
//! (records to propose, messages to send, entries to persist, a high watermark to publish). The
//! broker drives them on its cores; a deterministic simulator drives them in tests.
//!
//! Modules: [`types`] (identifiers), [`metadata`] (the records of the metadata log and the image
//! they build), [`controller`] (the active controller: topic administration, broker
//! registration and fencing, elections), [`quorum`] (the controller quorum on raft-rs),
//! [`partition`] (one partition's replication: followers, ISR, high watermark, truncation).

pub mod controller;
pub mod metadata;
pub mod partition;
pub mod quorum;
#[cfg(test)]
mod sim;
pub mod types;

#[cfg(test)]
mod test_alloc;
