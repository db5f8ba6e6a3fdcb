//! The `quorum-state` file: the hard state (term, vote, commit) and the voter set, beside the
//! metadata log as in Kafka (whose file is JSON; this one is binary with a version and a CRC,
//! since a torn or rotted hard state must be detected, never trusted: a forgotten vote can
//! elect two leaders in one term).
//!
//! Layout, big-endian: magic `WQST`, version u16 (1), term u64, vote i32 (-1: none), commit
//! u64, voter count u16, voters i32 each, CRC-32C u32 over everything before it. The driver
//! writes it atomically (write a temporary file, fsync, rename: `weir_storage::write_atomic`).

use super::config::VOTERS_MAX;
use super::ready::QuorumHardState;
use super::TERM_MAX;
use crate::types::{NodeId, NO_NODE};

/// Kafka's file name, in the metadata log's directory.
pub const QUORUM_STATE_FILE: &str = "quorum-state";

const MAGIC: &[u8; 4] = b"WQST";
const VERSION: u16 = 1;
/// magic, version, term, vote, commit, voter count.
const FIXED_LEN: usize = 4 + 2 + 8 + 4 + 8 + 2;
const CRC_LEN: usize = 4;

/// The file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStateFile {
    pub hard_state: QuorumHardState,
    pub voters: Vec<NodeId>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateFileError {
    #[error("quorum-state file is {len} bytes, too short")]
    TooShort { len: usize },
    #[error("quorum-state file does not start with the WQST magic")]
    BadMagic,
    #[error(
        "quorum-state file version {0} is not supported (this broker reads version {VERSION})"
    )]
    UnsupportedVersion(u16),
    #[error("quorum-state file is {len} bytes, its voter count says {expected}")]
    LengthMismatch { len: usize, expected: usize },
    #[error("quorum-state file CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("quorum-state file holds an invalid {0}")]
    Invalid(&'static str),
}

pub fn encode(state: &QuorumStateFile) -> Vec<u8> {
    let hs = &state.hard_state;
    let mut out = Vec::with_capacity(FIXED_LEN + 4 * state.voters.len() + CRC_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&hs.term.to_be_bytes());
    out.extend_from_slice(&hs.vote.unwrap_or(NO_NODE).to_be_bytes());
    out.extend_from_slice(&hs.commit.to_be_bytes());
    out.extend_from_slice(&(state.voters.len() as u16).to_be_bytes());
    for v in &state.voters {
        out.extend_from_slice(&v.to_be_bytes());
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

pub fn decode(b: &[u8]) -> Result<QuorumStateFile, StateFileError> {
    if b.len() < FIXED_LEN + CRC_LEN {
        return Err(StateFileError::TooShort { len: b.len() });
    }
    if &b[..4] != MAGIC {
        return Err(StateFileError::BadMagic);
    }
    // The version is read before the CRC so that a newer file is reported as such, not as rot.
    let version = u16::from_be_bytes([b[4], b[5]]);
    if version != VERSION {
        return Err(StateFileError::UnsupportedVersion(version));
    }
    let count = u16::from_be_bytes([b[FIXED_LEN - 2], b[FIXED_LEN - 1]]) as usize;
    let expected = FIXED_LEN + 4 * count + CRC_LEN;
    if b.len() != expected {
        return Err(StateFileError::LengthMismatch {
            len: b.len(),
            expected,
        });
    }
    let (body, crc) = b.split_at(b.len() - CRC_LEN);
    let stored = u32::from_be_bytes(crc.try_into().expect("4 bytes"));
    let computed = crc32c::crc32c(body);
    if stored != computed {
        return Err(StateFileError::CrcMismatch { stored, computed });
    }
    let u64_at = |at: usize| u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let i32_at = |at: usize| i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"));
    let term = u64_at(6);
    let vote = i32_at(14);
    let commit = u64_at(18);
    if term > TERM_MAX {
        return Err(StateFileError::Invalid("term"));
    }
    if vote < NO_NODE {
        return Err(StateFileError::Invalid("vote"));
    }
    if count == 0 || count > VOTERS_MAX {
        return Err(StateFileError::Invalid("voter count"));
    }
    let voters: Vec<NodeId> = (0..count).map(|i| i32_at(FIXED_LEN + 4 * i)).collect();
    if voters.iter().any(|v| *v < 0) {
        return Err(StateFileError::Invalid("voter id"));
    }
    Ok(QuorumStateFile {
        hard_state: QuorumHardState {
            term,
            vote: (vote != NO_NODE).then_some(vote),
            commit,
        },
        voters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> QuorumStateFile {
        QuorumStateFile {
            hard_state: QuorumHardState {
                term: 12,
                vote: Some(0),
                commit: 345,
            },
            voters: vec![0, 1, 2],
        }
    }

    #[test]
    fn round_trips() {
        assert_eq!(decode(&encode(&sample())).unwrap(), sample());
        let mut none = sample();
        none.hard_state.vote = None;
        assert_eq!(decode(&encode(&none)).unwrap(), none);
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let b = encode(&sample());
        for i in 0..b.len() {
            for bit in 0..8 {
                let mut c = b.clone();
                c[i] ^= 1 << bit;
                assert!(decode(&c).is_err(), "flip of bit {bit} at {i} passed");
            }
        }
    }

    #[test]
    fn errors_are_specific() {
        let b = encode(&sample());
        assert_eq!(decode(&b[..10]), Err(StateFileError::TooShort { len: 10 }));
        assert!(matches!(
            decode(&b[..b.len() - 1]),
            Err(StateFileError::LengthMismatch { .. })
        ));
        let mut v = b.clone();
        v[5] = 9;
        assert_eq!(decode(&v), Err(StateFileError::UnsupportedVersion(9)));
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = decode(&bytes);
        }
    }
}
