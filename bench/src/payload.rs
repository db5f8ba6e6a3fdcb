//! The bench's message payload: a stamp (producer, sequence number, intended send time) followed
//! by padding up to the message size. Consumers use it to measure end-to-end latency from the
//! intended send time and to detect lost or duplicated messages.

/// Bytes of the stamp; messages must be at least this big for `e2e`.
pub const STAMP_LEN: usize = 24;
const MAGIC: [u8; 4] = *b"WBv1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub producer: u32,
    pub seq: u64,
    /// Intended send time, nanoseconds since the run's base instant.
    pub intended_ns: u64,
}

/// Writes the stamp at the front of `buf` (if it fits; smaller messages carry no stamp).
pub fn write(buf: &mut [u8], s: Stamp) {
    if buf.len() < STAMP_LEN {
        return;
    }
    buf[0..4].copy_from_slice(&MAGIC);
    buf[4..8].copy_from_slice(&s.producer.to_be_bytes());
    buf[8..16].copy_from_slice(&s.seq.to_be_bytes());
    buf[16..24].copy_from_slice(&s.intended_ns.to_be_bytes());
}

pub fn read(value: &[u8]) -> Option<Stamp> {
    if value.len() < STAMP_LEN || value[0..4] != MAGIC {
        return None;
    }
    Some(Stamp {
        producer: u32::from_be_bytes(value[4..8].try_into().ok()?),
        seq: u64::from_be_bytes(value[8..16].try_into().ok()?),
        intended_ns: u64::from_be_bytes(value[16..24].try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips() {
        let s = Stamp {
            producer: 7,
            seq: 1 << 40,
            intended_ns: 123_456_789,
        };
        let mut buf = vec![0xAA; 100];
        write(&mut buf, s);
        assert_eq!(read(&buf), Some(s));
        assert_eq!(buf[99], 0xAA);
        assert_eq!(read(&buf[..10]), None);
        assert_eq!(read(&[0u8; 30]), None);
        let mut tiny = [0u8; 8];
        write(&mut tiny, s);
        assert_eq!(tiny, [0u8; 8]);
    }
}
