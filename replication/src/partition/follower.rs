//! A follower's side of one partition (Kafka's `AbstractFetcherThread` for one partition): where
//! the next fetch starts, and what to do with each answer — append, truncate to where the logs
//! diverge, start over at the leader's log start, retry later, or wait for metadata that names a
//! newer leader epoch.

use super::epochs::{truncation_offset, DivergingEpoch, EpochLookup};
use crate::types::{LeaderEpoch, NodeId, Offset};

/// How long a partition waits before fetching again after a retriable error (Kafka's
/// `replica.fetch.backoff.ms` default).
pub const FETCH_BACKOFF_MS_DEFAULT: i64 = 1000;

/// What a follower sends for this partition in its next fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPosition {
    pub fetch_offset: Offset,
    /// The epoch of the last batch in the local log (KIP-595's `LastFetchedEpoch`); -1 if none.
    pub last_fetched_epoch: LeaderEpoch,
    pub current_leader_epoch: LeaderEpoch,
}

/// The leader's answer for this partition, as far as the follower's decisions go (the records
/// themselves stay with the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchAnswer {
    pub error: FetchError,
    pub high_watermark: Offset,
    pub log_start_offset: Offset,
    pub diverging_epoch: Option<DivergingEpoch>,
}

/// The partition-level errors a follower tells apart (Kafka's codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchError {
    None,
    OffsetOutOfRange,
    /// The request's leader epoch is older than the leader's: new metadata is on its way.
    FencedLeaderEpoch,
    /// The leader does not know the request's epoch yet: retry.
    UnknownLeaderEpoch,
    /// NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, KAFKA_STORAGE_ERROR, a lost
    /// connection...: retry after the backoff.
    Retriable,
}

/// What the caller does with an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowerAction {
    /// Append the records (if any; they must start at the fetch offset), then call
    /// [`FollowerState::on_appended`]. The follower's high watermark becomes the leader's,
    /// capped at the local log end after the append ([`follower_high_watermark`]), and its log
    /// start follows the leader's.
    Append {
        leader_high_watermark: Offset,
        log_start_offset: Offset,
    },
    /// Truncate the local log to `offset` (records at and after it go), then call
    /// [`FollowerState::on_truncated`]. `complete` false: another divergence check follows.
    Truncate { offset: Offset, complete: bool },
    /// The log is entirely below the leader's log start: empty it and start at `offset`.
    TruncateFullyAndStartAt { offset: Offset },
    /// Nothing to do now: fetch again after the backoff, or once metadata says more.
    Wait,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Fetching,
    /// Until `until_ms`.
    Backoff {
        until_ms: i64,
    },
    /// Until a newer leader epoch arrives with the metadata.
    AwaitingMetadata,
}

/// A follower's high watermark: the leader's, but never past what the follower has (Kafka's
/// `UnifiedLog.updateHighWatermark` caps it at the log end).
pub fn follower_high_watermark(leader_high_watermark: Offset, log_end: Offset) -> Offset {
    leader_high_watermark.min(log_end).max(0)
}

/// One partition this broker follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerState {
    leader: NodeId,
    leader_epoch: LeaderEpoch,
    fetch_offset: Offset,
    last_fetched_epoch: LeaderEpoch,
    phase: Phase,
    backoff_ms: i64,
}

impl FollowerState {
    /// Starts following `leader` at `leader_epoch`, from the local log's end and its latest epoch.
    pub fn new(
        leader: NodeId,
        leader_epoch: LeaderEpoch,
        log_end: Offset,
        latest_epoch: Option<LeaderEpoch>,
        backoff_ms: i64,
    ) -> Self {
        Self {
            leader,
            leader_epoch,
            fetch_offset: log_end,
            last_fetched_epoch: latest_epoch.unwrap_or(-1),
            phase: Phase::Fetching,
            backoff_ms,
        }
    }

    pub fn leader(&self) -> NodeId {
        self.leader
    }

    pub fn leader_epoch(&self) -> LeaderEpoch {
        self.leader_epoch
    }

    pub fn fetch_offset(&self) -> Offset {
        self.fetch_offset
    }

    /// New metadata while still a follower: a new leader or epoch restarts fetching from the
    /// local log's end (an older epoch is ignored).
    pub fn update_leader(&mut self, leader: NodeId, leader_epoch: LeaderEpoch) {
        if leader_epoch < self.leader_epoch {
            return;
        }
        if leader_epoch > self.leader_epoch || leader != self.leader {
            self.phase = Phase::Fetching;
        }
        self.leader = leader;
        self.leader_epoch = leader_epoch;
    }

    /// What to put in the next fetch, or `None` while waiting.
    pub fn position(&mut self, now_ms: i64) -> Option<FetchPosition> {
        match self.phase {
            Phase::Fetching => {}
            Phase::Backoff { until_ms } if now_ms >= until_ms => self.phase = Phase::Fetching,
            Phase::Backoff { .. } | Phase::AwaitingMetadata => return None,
        }
        Some(FetchPosition {
            fetch_offset: self.fetch_offset,
            last_fetched_epoch: self.last_fetched_epoch,
            current_leader_epoch: self.leader_epoch,
        })
    }

    /// The leader answered a fetch made at `asked` (the position it was given). An answer to a
    /// position that is no longer current (the partition was truncated or re-led meanwhile) is
    /// dropped, as Kafka drops it.
    pub fn on_answer(
        &mut self,
        asked: FetchPosition,
        answer: FetchAnswer,
        local: &impl EpochLookup,
        local_log_end: Offset,
        now_ms: i64,
    ) -> FollowerAction {
        if asked.fetch_offset != self.fetch_offset
            || asked.current_leader_epoch != self.leader_epoch
            || self.phase != Phase::Fetching
        {
            return FollowerAction::Wait;
        }
        match answer.error {
            FetchError::None => match answer.diverging_epoch {
                Some(d) => {
                    let t = truncation_offset(local, local_log_end, self.fetch_offset, d);
                    FollowerAction::Truncate {
                        offset: t.offset,
                        complete: t.complete,
                    }
                }
                None => FollowerAction::Append {
                    leader_high_watermark: answer.high_watermark,
                    log_start_offset: answer.log_start_offset,
                },
            },
            FetchError::OffsetOutOfRange => {
                if self.fetch_offset < answer.log_start_offset {
                    // Down for long: the leader deleted what this log would continue from.
                    FollowerAction::TruncateFullyAndStartAt {
                        offset: answer.log_start_offset,
                    }
                } else {
                    // Past the leader's end, which only a log without epochs can be (with epochs
                    // the diverging-epoch check answers first): keep what the leader committed.
                    FollowerAction::Truncate {
                        offset: answer.high_watermark.max(0).min(local_log_end),
                        complete: true,
                    }
                }
            }
            FetchError::FencedLeaderEpoch => {
                self.phase = Phase::AwaitingMetadata;
                FollowerAction::Wait
            }
            FetchError::UnknownLeaderEpoch | FetchError::Retriable => {
                self.phase = Phase::Backoff {
                    until_ms: now_ms + self.backoff_ms,
                };
                FollowerAction::Wait
            }
        }
    }

    /// The records were appended: the log ends at `log_end`, its last batch has `last_epoch`.
    pub fn on_appended(&mut self, log_end: Offset, last_epoch: Option<LeaderEpoch>) {
        debug_assert!(log_end >= self.fetch_offset, "an append never moves back");
        self.fetch_offset = log_end;
        if let Some(e) = last_epoch {
            self.last_fetched_epoch = e;
        }
    }

    /// The log was truncated (or emptied and restarted): fetch from its new end.
    pub fn on_truncated(&mut self, log_end: Offset, latest_epoch: Option<LeaderEpoch>) {
        self.fetch_offset = log_end;
        self.last_fetched_epoch = latest_epoch.unwrap_or(-1);
    }

    /// A failure on the follower's side (an append that failed validation, a storage error):
    /// retry after the backoff from the same position.
    pub fn back_off(&mut self, now_ms: i64) {
        self.phase = Phase::Backoff {
            until_ms: now_ms + self.backoff_ms,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::epochs::EpochList;

    fn ok(hw: Offset) -> FetchAnswer {
        FetchAnswer {
            error: FetchError::None,
            high_watermark: hw,
            log_start_offset: 0,
            diverging_epoch: None,
        }
    }

    #[test]
    fn appends_and_moves_on() {
        let local = EpochList {
            entries: vec![(0, 0)],
            log_end: 5,
        };
        let mut f = FollowerState::new(1, 3, 5, Some(0), 100);
        let p = f.position(0).unwrap();
        assert_eq!(
            p,
            FetchPosition {
                fetch_offset: 5,
                last_fetched_epoch: 0,
                current_leader_epoch: 3
            }
        );
        assert_eq!(
            f.on_answer(p, ok(7), &local, 5, 0),
            FollowerAction::Append {
                leader_high_watermark: 7,
                log_start_offset: 0
            }
        );
        assert_eq!(follower_high_watermark(7, 9), 7);
        assert_eq!(follower_high_watermark(12, 9), 9);
        f.on_appended(9, Some(3));
        let p = f.position(1).unwrap();
        assert_eq!((p.fetch_offset, p.last_fetched_epoch), (9, 3));
        // A stale answer (to the old position) is dropped.
        let stale = FetchPosition {
            fetch_offset: 5,
            ..p
        };
        assert_eq!(
            f.on_answer(stale, ok(9), &local, 9, 2),
            FollowerAction::Wait
        );
    }

    #[test]
    fn diverging_answers_truncate() {
        let local = EpochList {
            entries: vec![(0, 0), (1, 5)],
            log_end: 15,
        };
        let mut f = FollowerState::new(2, 2, 15, Some(1), 100);
        let p = f.position(0).unwrap();
        let answer = FetchAnswer {
            diverging_epoch: Some(DivergingEpoch {
                epoch: 1,
                end_offset: 10,
            }),
            ..ok(10)
        };
        assert_eq!(
            f.on_answer(p, answer, &local, 15, 0),
            FollowerAction::Truncate {
                offset: 10,
                complete: true
            }
        );
        f.on_truncated(10, Some(1));
        assert_eq!(f.position(1).unwrap().fetch_offset, 10);
    }

    #[test]
    fn out_of_range_below_the_leaders_start_starts_over_there() {
        let local = EpochList::default();
        let mut f = FollowerState::new(2, 2, 3, None, 100);
        let p = f.position(0).unwrap();
        let answer = FetchAnswer {
            error: FetchError::OffsetOutOfRange,
            log_start_offset: 50,
            ..ok(80)
        };
        assert_eq!(
            f.on_answer(p, answer, &local, 3, 0),
            FollowerAction::TruncateFullyAndStartAt { offset: 50 }
        );
    }

    #[test]
    fn errors_back_off_or_wait_for_metadata() {
        let local = EpochList::default();
        let mut f = FollowerState::new(2, 2, 0, None, 100);
        let p = f.position(0).unwrap();
        let retriable = FetchAnswer {
            error: FetchError::Retriable,
            ..ok(0)
        };
        assert_eq!(
            f.on_answer(p, retriable, &local, 0, 10),
            FollowerAction::Wait
        );
        assert_eq!(f.position(50), None);
        assert!(f.position(110).is_some());
        let fenced = FetchAnswer {
            error: FetchError::FencedLeaderEpoch,
            ..ok(0)
        };
        let p = f.position(120).unwrap();
        f.on_answer(p, fenced, &local, 0, 120);
        assert_eq!(f.position(10_000), None, "waits for metadata, however long");
        f.update_leader(2, 1);
        assert_eq!(f.position(10_001), None, "an older epoch changes nothing");
        f.update_leader(3, 3);
        assert_eq!(f.position(10_002).unwrap().current_leader_epoch, 3);
    }
}
