//! Deterministic tests of the quorum: a simulated cluster.
