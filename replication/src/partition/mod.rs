//! One partition's replication as its owning core drives it: the leader's view of its
//! followers (ISR, high watermark) and a follower's fetch and truncation decisions.
