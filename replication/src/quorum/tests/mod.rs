//! Deterministic tests of the quorum: a simulated cluster of `QuorumNode`s driven as the
//! broker will drive them, over a simulated network and simulated disks. No threads, no
//! sleeps; every run replays from its seed. The replication simulator (`crate::sim`) drives
//! its controllers over the same cluster, network and disks.

pub(crate) mod cluster;
pub(crate) mod disk;
pub(crate) mod history;
mod hostile;
pub(crate) mod net;
pub(crate) mod random;
mod scenarios;
