//! The controller's requests and replies as bytes, for the private `WeirController` API:
//! a 2-byte magic, a u16 format version, then the value archived with rkyv. The bytes come
//! from the network, so decoding uses rkyv's checked access: a malformed frame is an error,
//! never a panic or undefined behaviour. A frame of another version is refused rather than
//! guessed at; both ends of a cluster run the same Weir, and a mixed upgrade learns of the
//! mismatch from the error.

use super::request::{ControllerReply, ControllerRequest};
use crate::types::NodeId;
use rkyv::rancor;

const MAGIC: &[u8; 2] = b"WC";
/// The encoding this code writes and reads (2: unclean election reports).
pub const WIRE_VERSION: u16 = 2;
const HEADER_BYTES: usize = 4;

/// What the controller sends back for one request.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum ControllerResponse {
    /// Handled: the records (if any) committed at `metadata_offset`, so the asking broker
    /// answers its client once its own image has applied that far.
    Done {
        metadata_offset: i64,
        reply: ControllerReply,
    },
    /// This node is not the active controller; `leader` is the one it knows of (-1: none).
    NotController { leader: NodeId },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("not a controller frame")]
    BadMagic,
    #[error("controller frame version {0} is not supported (this build speaks {WIRE_VERSION})")]
    UnsupportedVersion(u16),
    #[error("malformed controller frame: {0}")]
    Malformed(String),
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&WIRE_VERSION.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The payload, copied into an aligned buffer: rkyv reads archives in place and a network
/// buffer makes no alignment promise.
fn unframe(bytes: &[u8]) -> Result<rkyv::util::AlignedVec<16>, WireError> {
    if bytes.len() < HEADER_BYTES || &bytes[..2] != MAGIC {
        return Err(WireError::BadMagic);
    }
    let version = u16::from_be_bytes([bytes[2], bytes[3]]);
    if version != WIRE_VERSION {
        return Err(WireError::UnsupportedVersion(version));
    }
    let payload = &bytes[HEADER_BYTES..];
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(payload.len());
    aligned.extend_from_slice(payload);
    Ok(aligned)
}

// Archiving owned values into memory fails only by running out of memory, which aborts anyway.
const IN_MEMORY: &str = "archiving a controller message into memory";

pub fn encode_request(request: &ControllerRequest) -> Vec<u8> {
    frame(&rkyv::to_bytes::<rancor::Error>(request).expect(IN_MEMORY))
}

pub fn decode_request(bytes: &[u8]) -> Result<ControllerRequest, WireError> {
    let aligned = unframe(bytes)?;
    rkyv::from_bytes::<ControllerRequest, rancor::Error>(&aligned)
        .map_err(|e| WireError::Malformed(e.to_string()))
}

pub fn encode_response(response: &ControllerResponse) -> Vec<u8> {
    frame(&rkyv::to_bytes::<rancor::Error>(response).expect(IN_MEMORY))
}

pub fn decode_response(bytes: &[u8]) -> Result<ControllerResponse, WireError> {
    let aligned = unframe(bytes)?;
    rkyv::from_bytes::<ControllerResponse, rancor::Error>(&aligned)
        .map_err(|e| WireError::Malformed(e.to_string()))
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
