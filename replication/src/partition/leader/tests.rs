//! The leader's rules, one scenario each, with explicit time.

use super::*;
use std::collections::BTreeMap;

/// Brokers 1, 2, 3 registered with epoch 10 + id, unfenced, unless changed.
struct Brokers(BTreeMap<NodeId, BrokerStatus>);

impl Brokers {
    fn three() -> Self {
        Self(
            (1..=3)
                .map(|id| {
                    (
                        id,
                        BrokerStatus {
                            epoch: 10 + id as i64,
                            fenced: false,
                            shutting_down: false,
                        },
                    )
                })
                .collect(),
        )
    }
}

impl BrokerView for Brokers {
    fn broker(&self, id: NodeId) -> Option<BrokerStatus> {
        self.0.get(&id).copied()
    }
}

const LAG: i64 = 30_000;

fn config(min_isr: usize) -> LeaderConfig {
    LeaderConfig {
        replica_lag_time_max_ms: LAG,
        min_insync_replicas: min_isr,
    }
}

fn state(isr: &[NodeId], leader_epoch: i32, partition_epoch: i32) -> PartitionState {
    PartitionState {
        leader: 1,
        leader_epoch,
        partition_epoch,
        replicas: vec![1, 2, 3],
        isr: isr.to_vec(),
    }
}

fn fetch(l: &mut LeaderState, b: &Brokers, id: NodeId, offset: Offset, now: i64) -> LeaderActions {
    l.on_follower_fetch(id, 10 + id as i64, offset, 0, now, b)
        .expect("fetch accepted")
}

#[test]
fn the_high_watermark_is_the_smallest_log_end_of_the_isr() {
    let b = Brokers::three();
    let mut l = LeaderState::new(1, state(&[1, 2, 3], 1, 1), 0, 0, config(1), 0);
    assert_eq!(
        l.on_append(10, 1),
        None,
        "followers of the ISR hold it back"
    );
    assert_eq!(fetch(&mut l, &b, 2, 10, 2).high_watermark, None);
    assert_eq!(fetch(&mut l, &b, 3, 6, 3).high_watermark, Some(6));
    assert_eq!(l.ack_status(5), AckStatus::Done);
    assert_eq!(l.ack_status(6), AckStatus::Waiting);
    assert_eq!(fetch(&mut l, &b, 3, 10, 4).high_watermark, Some(10));
    assert_eq!(l.ack_status(9), AckStatus::Done);
}

#[test]
fn a_lone_leader_commits_on_append() {
    let mut l = LeaderState::new(1, state(&[1], 1, 1), 0, 0, config(1), 0);
    assert_eq!(l.on_append(3, 1), Some(3));
}

#[test]
fn a_follower_that_stops_fetching_leaves_the_isr_after_the_lag_time() {
    let b = Brokers::three();
    let mut l = LeaderState::new(1, state(&[1, 2, 3], 1, 1), 0, 0, config(1), 0);
    l.on_append(10, 0);
    fetch(&mut l, &b, 2, 10, 100);
    // Broker 3 never fetches: within the lag time it stays.
    assert_eq!(l.tick(LAG).propose, None);
    fetch(&mut l, &b, 2, 10, LAG);
    let p = l.tick(LAG + 1).propose.expect("shrink");
    assert_eq!(p.members(), [1, 2]);
    assert_eq!((p.leader_epoch, p.partition_epoch), (1, 1));
    assert_eq!(p.isr, [(1, -1), (2, 12)], "broker epochs as fetched");
    // One proposal at a time.
    assert_eq!(l.tick(LAG + 2).propose, None);
    // Until the controller answers, the HW still waits for 3 (a shrink is never assumed).
    assert_eq!(l.high_watermark(), 0);
    let a = l.on_proposal_result(ProposalResult::Committed(state(&[1, 2], 1, 2)), LAG + 3);
    assert_eq!(a.high_watermark, Some(10));
    assert_eq!(l.isr(), [1, 2]);
}

#[test]
fn a_follower_always_slightly_behind_a_busy_leader_stays_in_sync() {
    let b = Brokers::three();
    let mut l = LeaderState::new(1, state(&[1, 2], 1, 1), 0, 0, config(1), 0);
    let mut now = 0;
    let mut end = 0;
    for _ in 0..100 {
        // Each fetch asks for the leader's end as of the previous fetch; the leader has
        // moved on by then.
        let asked = end;
        end += 5;
        l.on_append(end, now);
        now += 1000;
        fetch(&mut l, &b, 2, asked, now);
        assert_eq!(l.tick(now).propose, None, "at {now} ms");
    }
}

#[test]
fn a_caught_up_follower_rejoins_once_past_the_hw_and_the_epoch_start() {
    let b = Brokers::three();
    let mut l = LeaderState::new(1, state(&[1, 2], 2, 5), 20, 15, config(1), 0);
    assert_eq!(l.epoch_start_offset(), 20);
    // 3 has the committed data but not this epoch's start: not yet.
    assert_eq!(fetch(&mut l, &b, 3, 18, 1).propose, None);
    let a = fetch(&mut l, &b, 3, 20, 2);
    let p = a.propose.expect("expand");
    assert_eq!(p.members(), [1, 2, 3]);
    assert_eq!(p.isr[2], (3, 13));
    // Counted at once for the HW (maximal ISR): 2 has not fetched yet, so it stays.
    assert_eq!(l.maximal_isr(), [1, 2, 3]);
    fetch(&mut l, &b, 2, 20, 3);
    assert_eq!(l.high_watermark(), 20);
    l.on_proposal_result(ProposalResult::Committed(state(&[1, 2, 3], 2, 6)), 4);
    assert_eq!(l.isr(), [1, 2, 3]);
}

#[test]
fn fenced_shutting_down_or_stale_brokers_do_not_join() {
    let mut b = Brokers::three();
    let mut l = LeaderState::new(1, state(&[1, 2], 1, 1), 0, 0, config(1), 0);
    b.0.get_mut(&3).unwrap().fenced = true;
    assert_eq!(fetch(&mut l, &b, 3, 0, 1).propose, None);
    b.0.get_mut(&3).unwrap().fenced = false;
    b.0.get_mut(&3).unwrap().shutting_down = true;
    assert_eq!(fetch(&mut l, &b, 3, 0, 2).propose, None);
    b.0.get_mut(&3).unwrap().shutting_down = false;
    // An older incarnation of broker 3 is refused outright.
    assert_eq!(
        l.on_follower_fetch(3, 5, 0, 0, 3, &b),
        Err(FollowerFetchError::StaleBrokerEpoch {
            fetch: 5,
            registered: 13
        })
    );
    assert_eq!(
        l.on_follower_fetch(4, 14, 0, 0, 3, &b),
        Err(FollowerFetchError::NotAReplica(4))
    );
    assert!(fetch(&mut l, &b, 3, 0, 4).propose.is_some());
}

#[test]
fn under_min_isr_the_hw_stops_and_acks_all_is_refused() {
    let b = Brokers::three();
    let mut l = LeaderState::new(1, state(&[1, 2], 1, 1), 0, 0, config(2), 0);
    assert_eq!(l.check_acks_all_append(), Ok(()));
    l.on_append(5, 0);
    fetch(&mut l, &b, 2, 5, 1);
    assert_eq!(l.high_watermark(), 5);
    l.on_append(8, 2);
    // 2 stops; the ISR shrinks to the leader alone, below min.insync.replicas = 2.
    let p = l.tick(LAG + 10).propose.unwrap();
    l.on_proposal_result(ProposalResult::Committed(state(&[1], 1, 2)), LAG + 11);
    assert!(l.is_under_min_isr());
    assert_eq!(
        l.check_acks_all_append(),
        Err(NotEnoughReplicas { isr: 1, min_isr: 2 })
    );
    // The leader alone has 8, but the HW stays at 5 (strict min ISR).
    assert_eq!(l.on_append(9, LAG + 12), None);
    assert_eq!(l.high_watermark(), 5);
    assert_eq!(l.ack_status(6), AckStatus::Waiting);
    let _ = p;
}

#[test]
fn a_batch_committed_while_the_isr_shrank_reports_not_enough_after_append() {
    let b = Brokers::three();
    // min ISR 2 with ISR {1,2,3}: commit needs everyone; 3 lags behind.
    let mut l = LeaderState::new(1, state(&[1, 2, 3], 1, 1), 0, 0, config(2), 0);
    l.on_append(4, 0);
    fetch(&mut l, &b, 2, 4, 1);
    fetch(&mut l, &b, 3, 4, 1);
    assert_eq!(l.ack_status(3), AckStatus::Done);
    // A new leader epoch where only the leader is in the ISR but min.isr was lowered to 1.
    l.set_config(config(1));
    l.update_state(state(&[1], 2, 3), 2);
    l.set_config(config(2));
    assert_eq!(l.ack_status(3), AckStatus::NotEnoughReplicasAfterAppend);
}

#[test]
fn refusals_return_to_the_committed_state_or_wait_or_retry() {
    let b = Brokers::three();
    let mut l = LeaderState::new(1, state(&[1, 2], 1, 1), 0, 0, config(1), 0);
    let sent = fetch(&mut l, &b, 3, 0, 1).propose.unwrap();
    let retry = l.on_proposal_result(
        ProposalResult::Refused {
            kind: Refusal::Retry,
        },
        2,
    );
    assert_eq!(retry.propose, Some(sent));
    l.on_proposal_result(
        ProposalResult::Refused {
            kind: Refusal::NotApplied,
        },
        3,
    );
    assert_eq!(l.maximal_isr(), [1, 2], "back to the committed ISR");
    // It may be proposed again at the next fetch.
    assert!(fetch(&mut l, &b, 3, 0, 4).propose.is_some());
    l.on_proposal_result(
        ProposalResult::Refused {
            kind: Refusal::Stale,
        },
        5,
    );
    assert_eq!(
        fetch(&mut l, &b, 3, 0, 6).propose,
        None,
        "waits for metadata"
    );
    // The metadata arrives: a newer partition epoch ends the wait.
    l.update_state(state(&[1, 2], 1, 2), 7);
    assert!(fetch(&mut l, &b, 3, 0, 8).propose.is_some());
}

#[test]
fn stale_metadata_and_stale_answers_are_ignored() {
    let b = Brokers::three();
    let mut l = LeaderState::new(1, state(&[1, 2], 3, 7), 0, 0, config(1), 0);
    assert_eq!(
        l.update_state(state(&[1], 3, 6), 1),
        LeaderActions::default()
    );
    assert_eq!(l.isr(), [1, 2]);
    fetch(&mut l, &b, 3, 0, 2).propose.unwrap();
    // An answer for an older leader epoch is not applied.
    l.on_proposal_result(ProposalResult::Committed(state(&[1, 2, 3], 2, 8)), 3);
    assert_eq!(l.isr(), [1, 2]);
}

#[test]
fn a_new_leader_epoch_gives_isr_members_a_full_lag_period() {
    let b = Brokers::three();
    let mut l = LeaderState::new(1, state(&[1, 2, 3], 1, 1), 0, 0, config(1), 0);
    l.on_append(3, 0);
    fetch(&mut l, &b, 2, 3, 1);
    fetch(&mut l, &b, 3, 3, 1);
    l.update_state(state(&[1, 2, 3], 2, 2), 50_000);
    assert_eq!(l.epoch_start_offset(), 3);
    assert_eq!(l.tick(50_000 + LAG).propose, None);
    assert!(l.tick(50_000 + LAG + 1).propose.is_some());
}

/// The record of a state the leader already has (the AlterPartition answer came first, or the
/// image was replayed) says nothing of the expansion proposed since: the follower being added
/// keeps holding the high watermark back. Were it dropped, the controller could commit the
/// expansion while the leader commits past that follower's log end, and electing the follower
/// would lose committed records (found by the simulator, seed 29).
#[test]
fn the_same_partition_epoch_again_keeps_a_pending_expansion() {
    let b = Brokers::three();
    let mut l = LeaderState::new(1, state(&[1, 2], 1, 5), 10, 10, config(1), 0);
    fetch(&mut l, &b, 2, 10, 1);
    l.on_append(20, 2);
    let p = fetch(&mut l, &b, 3, 10, 3).propose.expect("expand");
    assert_eq!(p.members(), [1, 2, 3]);
    assert_eq!(
        l.update_state(state(&[1, 2], 1, 5), 4),
        LeaderActions::default()
    );
    assert_eq!(l.maximal_isr(), [1, 2, 3]);
    fetch(&mut l, &b, 2, 20, 5);
    assert_eq!(l.high_watermark(), 10, "3 is at 10: the HW waits for it");
    l.on_proposal_result(ProposalResult::Committed(state(&[1, 2, 3], 1, 6)), 6);
    assert_eq!(l.isr(), [1, 2, 3]);
    assert_eq!(l.high_watermark(), 10);
}
