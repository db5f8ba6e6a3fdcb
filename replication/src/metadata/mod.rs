//! The metadata log's records and the image they build. See `docs/CLUSTER.md`.
