//! Time and randomness from the operating system, in one place: everything else takes `now_ms`
//! as an input (the replication state machines never read a clock).

/// Milliseconds since the Unix epoch (Kafka's timestamps).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A random (v4) UUID: topic ids, broker incarnation ids. Kafka never hands out the all-zero id
/// (it means "no id"), and a v4 UUID never is.
pub fn random_uuid() -> [u8; 16] {
    let mut id = [0u8; 16];
    let mut filled = 0;
    while filled < id.len() {
        // SAFETY: getrandom writes at most `len` bytes into the part of the buffer we own.
        let n = unsafe { libc::getrandom(id[filled..].as_mut_ptr().cast(), id.len() - filled, 0) };
        if n > 0 {
            filled += n as usize;
        }
    }
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    id
}

/// A seed that differs per process start (the quorum's election jitter must not repeat across
/// voters or restarts).
pub fn random_seed() -> u64 {
    let id = random_uuid();
    u64::from_le_bytes(id[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_v4_and_differ() {
        let a = random_uuid();
        let b = random_uuid();
        assert_ne!(a, b);
        assert_eq!(a[6] >> 4, 4);
        assert_eq!(a[8] >> 6, 0b10);
        assert!(now_ms() > 1_600_000_000_000);
    }
}
