//! The controller quorum: tikv's raft-rs `RawNode` behind a pure interface (see
//! `docs/CLUSTER.md`). No I/O, no clock, no async: the broker's driver on core 0 feeds it
//! ticks, messages and proposals, and carries out the rounds of work it hands back; the
//! simulator in `tests/` does the same with a fake network and fake disks.
//!
//! # The driver's loop
//!
//! ```text
//! start:   node = QuorumNode::recover(config, state read from disk)   // or ::bootstrap
//! on each input (timer tick every tick_ms; a WeirRaft frame; a controller proposal):
//!          node.tick() | node.step(wire::decode(frame)?) | node.propose(records)
//!          while let Some(rd) = node.ready() {
//!              1. send rd.messages                          (may precede persistence)
//!              2. persist: rd.snapshot → rd.log_reset_after → rd.truncate_from
//!                          → rd.entries (entry_batch::encode) → fsync if rd.must_sync
//!                          → rd.hard_state (state_file::encode, atomic write)
//!              3. send rd.persisted_messages                (only once 2 is durable)
//!              4. install rd.snapshot's data; apply rd.committed in order;
//!                 act on rd.leader, rd.leadership, rd.proposals
//!              5. node.advance()
//!          }
//! compaction, when the applied state is worth a checkpoint:
//!          snap = node.compact(applied_index, image bytes)?; write the checkpoint;
//!          then move the log start to offset snap.index
//! ```
//!
//! Inputs arriving while a round is outstanding (between `ready` and `advance`, e.g. during
//! the fsync) wait in the driver: the node refuses them with `RoundOutstanding`. Step every
//! queued input before asking for the next round: raft-rs batches them into one round (one
//! fsync). `report_unreachable(node)` (a send failed), `report_snapshot(node, delivered)` and
//! `compact` may be called at any time; `status()` answers DescribeQuorum.
//!
//! # Modules
//! - [`config`]: a voter's configuration, Kafka's milliseconds turned into ticks.
//! - [`node`]: [`QuorumNode`] and its inputs; `round`: its output rounds ([`QuorumReady`]).
//! - [`recovery`]: rebuilding a voter from disk, repairing what a crash can leave.
//! - [`status`]: what DescribeQuorum shows.
//! - [`wire`]: raft messages on the wire; [`validate`]: what a received message must satisfy.
//! - [`entry_batch`]: raft entries as Kafka record batches (the `__cluster_metadata` log).
//! - [`state_file`]: the `quorum-state` file.
//! - `storage`: the raft log as raft-rs reads it; `ids`, `rng`, `logging`: small helpers.

pub mod config;
pub mod entry_batch;
mod ids;
mod logging;
pub mod node;
pub mod ready;
pub mod recovery;
pub mod rng;
mod round;
pub mod state_file;
pub mod status;
mod storage;
pub mod validate;
pub mod wire;

#[cfg(test)]
pub(crate) mod tests;

pub use config::{QuorumConfig, QuorumTimeouts};
pub use node::{CompactError, ProposeError, QuorumError, QuorumNode};
pub use raft::eraftpb::{Entry, EntryType, Message, MessageType};
pub use ready::{
    CommittedEntry, LeaderInfo, Leadership, Outgoing, Proposal, ProposalOutcome, ProposalResult,
    QuorumHardState, QuorumReady, SnapshotData,
};
pub use recovery::{RecoveredState, RecoveryError, RecoveryNotes};
pub use round::NoRound;
pub use status::{QuorumStatus, Role, VoterStatus};
pub use validate::StepError;

/// The largest term: KRaft's epochs, and a record batch's partition leader epoch, are int32.
pub const TERM_MAX: u64 = i32::MAX as u64;

/// The largest index: entry `i` is at offset `i - 1`, and offsets are int64.
pub const INDEX_MAX: u64 = i64::MAX as u64;
