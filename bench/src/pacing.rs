//! Fixed-rate pacing: message `i` of a producer is *intended* to be sent at `start + i / rate`.
//! Latency is measured from that intended time, so a stalled sender does not hide the stall
//! (no coordinated omission).

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    start: Instant,
    /// Messages per second for this sender; `None` = as fast as possible.
    rate: Option<f64>,
}

impl Pacer {
    pub fn new(start: Instant, rate: Option<f64>) -> Self {
        Self { start, rate }
    }

    pub fn is_paced(&self) -> bool {
        self.rate.is_some()
    }

    /// When message `i` is due (`start` for every message when unpaced).
    pub fn due(&self, i: u64) -> Instant {
        match self.rate {
            None => self.start,
            Some(r) => self.start + Duration::from_secs_f64(i as f64 / r),
        }
    }
}

/// Splits `total` into `parts` shares that differ by at most one and sum to `total`.
pub fn share(total: u64, parts: usize, index: usize) -> u64 {
    let parts = parts as u64;
    total / parts + u64::from((index as u64) < total % parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_are_evenly_spaced() {
        let t0 = Instant::now();
        let p = Pacer::new(t0, Some(1000.0));
        assert_eq!(p.due(0), t0);
        assert_eq!(p.due(1000) - t0, Duration::from_secs(1));
        assert_eq!(p.due(5) - t0, Duration::from_millis(5));
    }

    #[test]
    fn shares_sum_to_total() {
        for (total, parts) in [(10u64, 3usize), (0, 4), (7, 7), (1_000_003, 16)] {
            let s: Vec<u64> = (0..parts).map(|i| share(total, parts, i)).collect();
            assert_eq!(s.iter().sum::<u64>(), total);
            assert!(s.iter().max().unwrap() - s.iter().min().unwrap() <= 1);
        }
    }
}
