//! The controller quorum: raft-rs's `RawNode` behind a pure interface. See `docs/CLUSTER.md`.
