//! Placeholder until the net crate lands.
