//! Leader epochs: where two replicas' logs diverge (KIP-101, KIP-279).
//!
//! A log's epoch cache maps each leader epoch to the offset its first batch got; an epoch's end
//! offset is the next epoch's start offset (or the log end for the latest). Truncation follows
//! epochs, never the high watermark alone: a follower that kept batches of an epoch the leader
//! never had (or had fewer of) cuts them exactly where the leader's copy of that epoch ends.

use crate::types::{LeaderEpoch, Offset};

/// Kafka's "unknown" answers (`UNDEFINED_EPOCH`, `UNDEFINED_EPOCH_OFFSET`).
pub const UNDEFINED_EPOCH: LeaderEpoch = -1;
pub const UNDEFINED_EPOCH_OFFSET: Offset = -1;

/// What a log answers to "where does epoch E end on you", exactly as Kafka's
/// `LeaderEpochFileCache.endOffsetFor` ([`weir_storage::checkpoint::end_offset_for_epoch`]):
/// the largest epoch ≤ E it knows (E itself when its cache starts after E), and the offset where
/// that epoch ended (the next known epoch's start, or the log end for its latest epoch). `None`
/// when E is newer than its latest epoch, or its cache is empty.
pub trait EpochLookup {
    fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<(LeaderEpoch, Offset)>;
}

/// An epoch cache as a plain list, for tests and the simulator: `(epoch, start offset)` in
/// increasing order, and the log end offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochList {
    pub entries: Vec<(LeaderEpoch, Offset)>,
    pub log_end: Offset,
}

impl EpochLookup for EpochList {
    fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        weir_storage::checkpoint::end_offset_for_epoch(&self.entries, epoch, self.log_end)
    }
}

/// The leader's answer to a follower whose last fetched batch had `last_fetched_epoch` and which
/// asks for `fetch_offset`: `Some(diverging)` when the follower's log may hold batches the leader
/// does not (the follower then truncates, see [`truncation_offset`]), `None` when the fetch can
/// be served. Kafka's rule (`Partition.readRecords`): the follower diverges when the leader's
/// copy of that epoch ends before `fetch_offset`, or the leader never had that epoch (its answer
/// is an earlier one).
pub fn diverging_epoch(
    leader: &impl EpochLookup,
    last_fetched_epoch: LeaderEpoch,
    fetch_offset: Offset,
) -> Option<DivergingEpoch> {
    if last_fetched_epoch < 0 {
        return None;
    }
    // An epoch newer than the leader's latest has no answer (-1/-1), which counts as diverging.
    // An epoch older than the leader's cache is answered as ending where the cache starts: a
    // follower still below that offset is not diverging, its fetch is out of range instead.
    let (epoch, end_offset) = leader
        .end_offset_for_epoch(last_fetched_epoch)
        .unwrap_or((UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET));
    (epoch < last_fetched_epoch || end_offset < fetch_offset)
        .then_some(DivergingEpoch { epoch, end_offset })
}

/// A fetch response's `DivergingEpoch`: the leader's largest epoch ≤ the follower's last fetched
/// one, and where it ends on the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DivergingEpoch {
    pub epoch: LeaderEpoch,
    pub end_offset: Offset,
}

/// Where a follower truncates after the leader reported `diverging` (Kafka's
/// `AbstractFetcherThread.getOffsetTruncationState`). `complete` is false when the follower does
/// not know the epoch the leader answered with: it truncates to the end of its own earlier
/// epoch and asks again with the next fetch (its last fetched epoch is now smaller).
pub fn truncation_offset(
    follower: &impl EpochLookup,
    follower_log_end: Offset,
    fetch_offset: Offset,
    diverging: DivergingEpoch,
) -> Truncation {
    if diverging.end_offset == UNDEFINED_EPOCH_OFFSET {
        // The leader cannot say: keep what was fetched so far (the follower's high watermark in
        // Kafka; the fetch offset here, which never passes what the leader confirmed).
        return Truncation {
            offset: fetch_offset.min(follower_log_end),
            complete: true,
        };
    }
    match follower.end_offset_for_epoch(diverging.epoch) {
        Some((epoch, end)) if epoch != diverging.epoch => Truncation {
            offset: end.min(follower_log_end),
            complete: false,
        },
        Some((_, end)) => Truncation {
            offset: end.min(diverging.end_offset).min(follower_log_end),
            complete: true,
        },
        // The follower tracked no epoch that early: the leader's end offset is safe.
        None => Truncation {
            offset: diverging.end_offset.min(follower_log_end),
            complete: true,
        },
    }
}

/// A truncation a follower must make before fetching again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncation {
    pub offset: Offset,
    /// False: truncate, then fetch again to learn more (another divergence may follow).
    pub complete: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(entries: &[(LeaderEpoch, Offset)], log_end: Offset) -> EpochList {
        EpochList {
            entries: entries.to_vec(),
            log_end,
        }
    }

    #[test]
    fn end_offsets_follow_the_next_epoch_or_the_log_end() {
        let l = log(&[(0, 0), (2, 10), (5, 30)], 42);
        assert_eq!(l.end_offset_for_epoch(0), Some((0, 10)));
        assert_eq!(l.end_offset_for_epoch(1), Some((0, 10)));
        assert_eq!(l.end_offset_for_epoch(2), Some((2, 30)));
        assert_eq!(l.end_offset_for_epoch(4), Some((2, 30)));
        assert_eq!(l.end_offset_for_epoch(5), Some((5, 42)));
        assert_eq!(l.end_offset_for_epoch(9), None);
        assert_eq!(log(&[(3, 7)], 9).end_offset_for_epoch(2), Some((2, 7)));
        assert_eq!(EpochList::default().end_offset_for_epoch(0), None);
    }

    #[test]
    fn a_follower_in_step_with_the_leader_does_not_diverge() {
        let leader = log(&[(0, 0), (1, 10)], 20);
        assert_eq!(diverging_epoch(&leader, 1, 15), None);
        assert_eq!(diverging_epoch(&leader, 1, 20), None);
        assert_eq!(diverging_epoch(&leader, 0, 10), None);
        // A consumer or a fresh follower sends no epoch.
        assert_eq!(diverging_epoch(&leader, -1, 0), None);
    }

    /// KIP-101's example: the old leader A wrote offsets 10..15 in epoch 1 that never reached B;
    /// B became leader in epoch 2 at offset 10. A, now a follower, must cut at 10.
    #[test]
    fn an_old_leaders_unreplicated_tail_is_cut_where_the_new_leader_started() {
        let new_leader = log(&[(0, 0), (1, 5), (2, 10)], 18);
        let old_leader = log(&[(0, 0), (1, 5)], 15);
        let d = diverging_epoch(&new_leader, 1, 15).expect("diverges");
        assert_eq!(
            d,
            DivergingEpoch {
                epoch: 1,
                end_offset: 10
            }
        );
        assert_eq!(
            truncation_offset(&old_leader, 15, 15, d),
            Truncation {
                offset: 10,
                complete: true
            }
        );
    }

    /// KIP-279: two quick failovers. The follower's last epoch (3) never existed on the leader,
    /// which answers with its largest epoch below (2); the follower, not knowing epoch 2, cuts to
    /// the end of its own epoch below 2 and asks again.
    #[test]
    fn an_epoch_unknown_to_one_side_truncates_in_steps() {
        let leader = log(&[(0, 0), (2, 8), (4, 12)], 20);
        let follower = log(&[(0, 0), (1, 6), (3, 9)], 14);
        let d = diverging_epoch(&leader, 3, 14).unwrap();
        assert_eq!(
            d,
            DivergingEpoch {
                epoch: 2,
                end_offset: 12
            }
        );
        // The follower has no epoch 2: its largest below is 1, ending at 9.
        let t = truncation_offset(&follower, 14, 14, d);
        assert_eq!(
            t,
            Truncation {
                offset: 9,
                complete: false
            }
        );
        // After cutting at 9 its last epoch is 1; the leader's epoch 0 ends at 8 < 9.
        let follower = log(&[(0, 0), (1, 6)], 9);
        let d = diverging_epoch(&leader, 1, 9).unwrap();
        assert_eq!(
            d,
            DivergingEpoch {
                epoch: 0,
                end_offset: 8
            }
        );
        assert_eq!(
            truncation_offset(&follower, 9, 9, d),
            Truncation {
                offset: 6,
                complete: true
            }
        );
    }

    /// Retention removed the leader's epochs before 5 (its log starts at 100, in epoch 5). A
    /// follower still at 40 is not diverging: its fetch is out of range and it starts over at the
    /// leader's log start. One that has epoch 2 up to 120 kept 20 batches the leader never had
    /// at those offsets, and cuts at 100.
    #[test]
    fn a_leader_that_lost_the_epoch_to_retention_answers_where_its_log_starts() {
        let leader = log(&[(5, 100)], 150);
        assert_eq!(diverging_epoch(&leader, 2, 40), None);
        let d = diverging_epoch(&leader, 2, 120).unwrap();
        assert_eq!(
            d,
            DivergingEpoch {
                epoch: 2,
                end_offset: 100
            }
        );
        let follower = log(&[(2, 0)], 120);
        assert_eq!(
            truncation_offset(&follower, 120, 120, d),
            Truncation {
                offset: 100,
                complete: true
            }
        );
    }

    /// A last fetched epoch newer than any the leader knows cannot be answered (-1/-1): the
    /// follower keeps what it fetched so far.
    #[test]
    fn an_epoch_newer_than_the_leaders_is_unknown() {
        let leader = log(&[(0, 0), (1, 10)], 20);
        let d = diverging_epoch(&leader, 3, 15).unwrap();
        assert_eq!(d.end_offset, UNDEFINED_EPOCH_OFFSET);
        let follower = log(&[(0, 0), (3, 12)], 15);
        assert_eq!(
            truncation_offset(&follower, 15, 15, d),
            Truncation {
                offset: 15,
                complete: true
            }
        );
    }
}
