//! The per-core runtime and the cross-core mesh.

pub mod core;
pub mod mesh;
pub mod messages;
pub mod replicas;
mod roles;
pub mod server;
pub mod settings;
pub mod validator;
