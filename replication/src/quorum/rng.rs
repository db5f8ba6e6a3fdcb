//! A small seeded PRNG (SplitMix64) for the election-timeout jitter and the simulator.
//!
//! raft-rs draws its randomized election timeout from the thread's OS-seeded generator, which
//! would make a simulated run impossible to replay from its seed. The node draws the timeout
//! here instead and imposes it on raft-rs before every tick (see `node.rs`).

/// SplitMix64: one 64-bit state, passes BigCrush, and is trivially reproducible.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `[low, high)`; `low` when the range is empty.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        // The modulo bias is below 2^-50 for the small ranges used here.
        low + self.next_u64() % (high - low)
    }

    /// True with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.range(0, denominator) < numerator
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_ranges_hold() {
        let (mut a, mut b) = (SplitMix64::new(42), SplitMix64::new(42));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut r = SplitMix64::new(1);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            let v = r.range(20, 30);
            assert!((20..30).contains(&v));
            seen[(v - 20) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s), "every value of the range is drawn");
        assert_eq!(r.range(5, 5), 5);
    }
}
