//! Deterministic tests of the quorum: a simulated cluster of `QuorumNode`s driven as the
//! broker will drive them, over a simulated network and simulated disks. No threads, no
//! sleeps; every run replays from its seed.

mod cluster;
mod disk;
mod history;
mod hostile;
mod net;
mod random;
mod scenarios;
