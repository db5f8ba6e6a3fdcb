//! The active controller: validates topic administration, broker registrations and heartbeats,
//! ISR changes and elections against the committed metadata image, and answers with the
//! records to commit. See `docs/CLUSTER.md`.
