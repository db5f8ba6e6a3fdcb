//! What a replica's truncation gave up to an unclean election (Weir's record of it; Kafka only
//! logs a line). A replica truncates when its log diverges from the leader's. Records written
//! in leader epochs older than the partition's last unclean election can only be missing on
//! the leader because an election chose a leader without them: those are the election's loss.
//! Records of that epoch or later are an ordinary uncommitted tail (a leader that lost its
//! leadership before its followers copied them), as in any failover, and are not its loss.

use crate::metadata::records::DiscardedRange;
use crate::types::LeaderEpoch;

/// The part of a truncation of `[from, end)` that an unclean election at `election_epoch`
/// discarded, or None. `epochs` is the replica's epoch cache before truncating (`(epoch, start
/// offset)`, ascending); `high_watermark` its high watermark then.
pub fn unclean_discard(
    epochs: &[(LeaderEpoch, i64)],
    from: i64,
    end: i64,
    high_watermark: i64,
    election_epoch: LeaderEpoch,
    now_ms: i64,
) -> Option<DiscardedRange> {
    // The older epochs are a prefix of the log: cut the range where the election's epoch (or a
    // later one) begins.
    let older_end = epochs
        .iter()
        .find(|(e, _)| *e >= election_epoch)
        .map_or(end, |(_, start)| (*start).min(end));
    if from >= older_end {
        return None;
    }
    let mut runs: Vec<(LeaderEpoch, i64)> = Vec::new();
    for (i, (epoch, start)) in epochs.iter().enumerate() {
        let next = epochs.get(i + 1).map_or(i64::MAX, |(_, s)| *s);
        let lo = (*start).max(from);
        if lo < next.min(older_end) {
            runs.push((*epoch, lo));
        }
    }
    // Records before the first cached epoch (a log older than its cache) count as the first
    // epoch's, so the range is never reported narrower than what went.
    match runs.first_mut() {
        Some(first) => first.1 = from,
        None => return None,
    }
    Some(DiscardedRange {
        from_offset: from,
        to_offset: older_end,
        high_watermark,
        epochs: runs,
        time_ms: now_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CACHE: &[(LeaderEpoch, i64)] = &[(0, 0), (1, 100), (3, 150)];

    #[test]
    fn records_of_epochs_before_the_unclean_election_are_its_loss() {
        // The returning old leader had epochs 0, 1, 3 up to 200; the unclean leader (epoch 4)
        // ended at 120, so it truncates there.
        let d = unclean_discard(CACHE, 120, 200, 190, 4, 7).unwrap();
        assert_eq!(
            d,
            DiscardedRange {
                from_offset: 120,
                to_offset: 200,
                high_watermark: 190,
                epochs: vec![(1, 120), (3, 150)],
                time_ms: 7,
            }
        );
        assert_eq!(d.committed_count(), 70);
        let d = unclean_discard(CACHE, 20, 200, 10, 4, 7).unwrap();
        assert_eq!(d.epochs, vec![(0, 20), (1, 100), (3, 150)]);
        assert_eq!(d.committed_count(), 0, "nothing below its high watermark");
    }

    #[test]
    fn the_uncommitted_tail_of_later_epochs_is_not() {
        // The unclean election was epoch 3: records of epoch 3 are after it, an ordinary tail.
        assert_eq!(unclean_discard(CACHE, 160, 200, 160, 3, 7), None);
        // A truncation reaching back into older epochs reports only their part.
        let d = unclean_discard(CACHE, 120, 200, 180, 3, 7).unwrap();
        assert_eq!((d.from_offset, d.to_offset), (120, 150));
        assert_eq!(d.epochs, vec![(1, 120)]);
        assert_eq!(d.committed_count(), 30);
        // No unclean election yet (epoch 0 is every partition's first): nothing.
        assert_eq!(unclean_discard(CACHE, 120, 200, 180, 0, 7), None);
    }

    #[test]
    fn empty_ranges_and_caches_report_nothing_and_uncached_heads_count_as_the_first_epoch() {
        assert_eq!(unclean_discard(CACHE, 200, 200, 0, 9, 7), None);
        assert_eq!(unclean_discard(&[], 0, 50, 0, 9, 7), None);
        let d = unclean_discard(&[(2, 10)], 0, 50, 0, 9, 7).unwrap();
        assert_eq!(d.epochs, vec![(2, 0)]);
        assert_eq!((d.from_offset, d.to_offset), (0, 50));
    }
}
