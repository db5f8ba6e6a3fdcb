//! Tests of the idempotence check, the in-flight view, replay and expiry.

use super::entry::last_sequence;
use super::test_support::*;
use super::*;

#[test]
fn in_order_batches_are_appended_and_tracked() {
    let mut m = ProducerStateManager::default();
    let mut log = Log::default();
    assert_eq!(
        produce(&mut m, &mut log, hdr(PID, 0, 0, 3)),
        Ok(Check::Append)
    );
    assert_eq!(
        produce(&mut m, &mut log, hdr(PID, 0, 3, 2)),
        Ok(Check::Append)
    );
    assert_eq!(
        produce(&mut m, &mut log, hdr(PID, 0, 5, 1)),
        Ok(Check::Append)
    );
    let p = m.producer(PID).unwrap();
    assert_eq!(p.epoch, 0);
    assert_eq!(p.last_sequence(), 5);
    assert_eq!(p.batches.len(), 3);
    assert_eq!(p.batches[1].first_offset, 3);
    assert_eq!(p.batches[1].last_offset, 4);
    assert_eq!(m.map_end_offset(), 6);
    assert_eq!(m.in_flight_count(), 0);
}

#[test]
fn untracked_batches_are_not_tracked() {
    let mut m = ProducerStateManager::default();
    let mut log = Log::default();
    for seq in [-1, 0, 7] {
        let h = hdr(NO_PRODUCER_ID, -1, seq, 2);
        assert_eq!(produce(&mut m, &mut log, h), Ok(Check::Untracked));
    }
    assert_eq!(m.check(&hdr(-7, 0, 0, 1)), Ok(Check::Untracked));
    assert_eq!(m.producer_count(), 0);
    assert_eq!(m.in_flight_count(), 0);
    assert_eq!(m.map_end_offset(), 6);
}

#[test]
fn negative_sequence_with_a_producer_id_is_an_invalid_record() {
    let mut m = ProducerStateManager::default();
    let e = m.check(&hdr(PID, 0, -1, 1)).unwrap_err();
    assert_eq!(
        e,
        ProducerStateError::InvalidSequence {
            producer_id: PID,
            sequence: -1
        }
    );
    assert_eq!(m.in_flight_count(), 0);
}

#[test]
fn duplicates_of_each_of_the_last_five_return_the_original_offsets() {
    let mut m = ProducerStateManager::default();
    let mut log = Log {
        end: 100, // offsets unrelated to sequences
        ..Log::default()
    };
    let mut sent = Vec::new();
    for i in 0..7 {
        let h = hdr(PID, 0, i * 2, 2);
        assert_eq!(produce(&mut m, &mut log, h), Ok(Check::Append));
        sent.push(*log.written.last().unwrap());
    }
    let end = log.end;
    for w in &sent[2..] {
        let retry = hdr(PID, 0, w.base_sequence, 2);
        assert_eq!(
            produce(&mut m, &mut log, retry),
            Ok(Check::Duplicate {
                first_offset: w.base_offset,
                last_offset: w.last_offset(),
                timestamp: T0
            })
        );
    }
    assert_eq!(log.end, end, "no duplicate was appended");
    // Sixth back and older: outside the window, so out of order.
    for w in &sent[..2] {
        let retry = hdr(PID, 0, w.base_sequence, 2);
        assert_eq!(
            produce(&mut m, &mut log, retry),
            Err(ooo(w.base_sequence, 14))
        );
    }
    assert_eq!(m.in_flight_count(), 0);
}

#[test]
fn sixth_back_duplicate_is_out_of_order() {
    let mut m = ProducerStateManager::default();
    let mut log = Log::default();
    for seq in 0..6 {
        produce(&mut m, &mut log, hdr(PID, 0, seq, 1)).unwrap();
    }
    assert_eq!(m.check(&hdr(PID, 0, 0, 1)), Err(ooo(0, 6)));
    assert!(matches!(
        m.check(&hdr(PID, 0, 1, 1)),
        Ok(Check::Duplicate {
            first_offset: 1,
            ..
        })
    ));
    assert_eq!(m.check(&hdr(PID, 0, 0, 1)), Err(ooo(0, 6)));
}

#[test]
fn partial_overlap_and_gaps_are_out_of_order() {
    let mut m = ProducerStateManager::default();
    let mut log = Log::default();
    produce(&mut m, &mut log, hdr(PID, 0, 0, 5)).unwrap();
    produce(&mut m, &mut log, hdr(PID, 0, 5, 5)).unwrap(); // seqs 5..=9
                                                           // Same first sequence, different last: not a duplicate.
    assert_eq!(m.check(&hdr(PID, 0, 5, 3)), Err(ooo(5, 10)));
    assert_eq!(m.check(&hdr(PID, 0, 6, 4)), Err(ooo(6, 10)));
    // A gap.
    assert_eq!(m.check(&hdr(PID, 0, 11, 1)), Err(ooo(11, 10)));
    // A big jump backwards.
    assert_eq!(m.check(&hdr(PID, 0, 2, 1)), Err(ooo(2, 10)));
    assert_eq!(m.in_flight_count(), 0, "refused batches are not in flight");
    assert_eq!(
        produce(&mut m, &mut log, hdr(PID, 0, 10, 1)),
        Ok(Check::Append)
    );
}

#[test]
fn older_epoch_is_fenced_and_newer_epoch_restarts_at_zero() {
    let mut m = ProducerStateManager::default();
    let mut log = Log::default();
    produce(&mut m, &mut log, hdr(PID, 3, 0, 2)).unwrap();
    produce(&mut m, &mut log, hdr(PID, 3, 2, 2)).unwrap();

    let e = m.check(&hdr(PID, 2, 4, 1)).unwrap_err();
    assert_eq!(
        e,
        ProducerStateError::InvalidProducerEpoch {
            producer_id: PID,
            got: 2,
            current: 3
        }
    );
    // A retry from an older epoch is fenced even if it matches sequences of the current one.
    assert!(matches!(
        m.check(&hdr(PID, 2, 0, 2)),
        Err(ProducerStateError::InvalidProducerEpoch { .. })
    ));

    // A bump must start at 0.
    assert_eq!(
        m.check(&hdr(PID, 4, 4, 1)),
        Err(ProducerStateError::OutOfOrderSequence {
            producer_id: PID,
            epoch: 4,
            got: 4,
            expected: 0
        })
    );
    assert_eq!(
        produce(&mut m, &mut log, hdr(PID, 4, 0, 1)),
        Ok(Check::Append)
    );
    let p = m.producer(PID).unwrap();
    assert_eq!((p.epoch, p.batches.len(), p.last_sequence()), (4, 1, 0));
    // The old epoch's batches are gone: a retry of one is now fenced, not a duplicate.
    assert!(matches!(
        m.check(&hdr(PID, 3, 2, 2)),
        Err(ProducerStateError::InvalidProducerEpoch { current: 4, .. })
    ));
    // And the new epoch's sequence 0 batch is a duplicate.
    assert_eq!(
        m.check(&hdr(PID, 4, 0, 1)),
        Ok(Check::Duplicate {
            first_offset: 4,
            last_offset: 4,
            timestamp: T0
        })
    );
}

#[test]
fn sequences_wrap_from_i32_max_to_zero() {
    let mut m = ProducerStateManager::default();
    let mut log = Log::default();
    // Unknown producer: start near the top.
    produce(&mut m, &mut log, hdr(PID, 0, i32::MAX - 2, 2)).unwrap(); // MAX-2..=MAX-1
                                                                      // A batch spanning the wrap: MAX, 0, 1.
    let spanning = hdr(PID, 0, i32::MAX, 3);
    assert_eq!(last_sequence(&spanning), 1);
    assert_eq!(produce(&mut m, &mut log, spanning), Ok(Check::Append));
    assert_eq!(m.producer(PID).unwrap().last_sequence(), 1);
    assert_eq!(
        produce(&mut m, &mut log, hdr(PID, 0, 2, 1)),
        Ok(Check::Append)
    );
    // The spanning batch is still recognised as a duplicate.
    assert_eq!(
        m.check(&hdr(PID, 0, i32::MAX, 3)),
        Ok(Check::Duplicate {
            first_offset: 2,
            last_offset: 4,
            timestamp: T0
        })
    );
    // A batch ending exactly at MAX is followed by 0.
    let mut m = ProducerStateManager::default();
    produce(&mut m, &mut log, hdr(PID, 0, i32::MAX - 1, 2)).unwrap();
    assert_eq!(m.check(&hdr(PID, 0, 1, 1)), Err(ooo(1, 0)));
    assert_eq!(
        produce(&mut m, &mut log, hdr(PID, 0, 0, 1)),
        Ok(Check::Append)
    );
}

#[test]
fn unknown_producer_is_accepted_at_any_sequence() {
    let mut m = ProducerStateManager::default();
    let mut log = Log::default();
    assert_eq!(
        produce(&mut m, &mut log, hdr(PID, 5, 999, 3)),
        Ok(Check::Append)
    );
    let p = m.producer(PID).unwrap();
    assert_eq!((p.epoch, p.last_sequence()), (5, 1001));
    // From then on it is held to its sequence.
    assert!(matches!(
        m.check(&hdr(PID, 5, 999, 1)),
        Err(ProducerStateError::OutOfOrderSequence { expected: 1002, .. })
    ));
    // Other producers are independent.
    assert_eq!(
        produce(&mut m, &mut log, hdr(PID + 1, 0, 42, 1)),
        Ok(Check::Append)
    );
    assert_eq!(
        produce(&mut m, &mut log, hdr(PID, 5, 1002, 1)),
        Ok(Check::Append)
    );
}

#[test]
fn in_flight_batches_are_validated_against_each_other() {
    let mut m = ProducerStateManager::default();
    let mut log = Log::default();
    let a = hdr(PID, 0, 0, 5);
    let b = hdr(PID, 0, 5, 5);
    assert_eq!(m.check(&a), Ok(Check::Append));
    // B follows A although A is not written yet.
    assert_eq!(m.check(&b), Ok(Check::Append));
    // A batch that would follow the committed (empty) state but not A+B is refused.
    assert_eq!(m.check(&hdr(PID, 0, 5, 1)), Err(ooo(5, 10)));
    // Retries of in-flight batches cannot be answered yet.
    let e = m.check(&a).unwrap_err();
    assert_eq!(
        e,
        ProducerStateError::DuplicateInFlight {
            producer_id: PID,
            epoch: 0,
            first_seq: 0,
            last_seq: 4
        }
    );
    assert_eq!(m.in_flight_count(), 2);
    assert_eq!(m.producer(PID), None, "nothing committed yet");

    let wa = log.enqueue(a);
    let wb = log.enqueue(b);
    m.record(&wa);
    assert_eq!(m.producer(PID).unwrap().batches.len(), 1);
    assert_eq!(
        m.check(&a),
        Ok(Check::Duplicate {
            first_offset: 0,
            last_offset: 4,
            timestamp: T0
        })
    );
    assert!(matches!(
        m.check(&b),
        Err(ProducerStateError::DuplicateInFlight { .. })
    ));
    m.record(&wb);
    assert_eq!(m.in_flight_count(), 0);
    assert_eq!(m.producer(PID).unwrap().last_sequence(), 9);
    assert_eq!(
        m.check(&b),
        Ok(Check::Duplicate {
            first_offset: 5,
            last_offset: 9,
            timestamp: T0
        })
    );
}

#[test]
fn records_out_of_check_order_commit_in_log_order() {
    let mut m = ProducerStateManager::default();
    let mut log = Log::default();
    let hs = [hdr(PID, 0, 0, 1), hdr(PID, 0, 1, 1), hdr(PID, 0, 2, 1)];
    for h in &hs {
        assert_eq!(m.check(h), Ok(Check::Append));
    }
    let w: Vec<_> = hs.iter().map(|h| log.enqueue(*h)).collect();
    // The third completes first: held back, but already answerable as a duplicate.
    m.record(&w[2]);
    assert_eq!(m.producer(PID), None);
    assert_eq!(
        m.check(&hs[2]),
        Ok(Check::Duplicate {
            first_offset: 2,
            last_offset: 2,
            timestamp: T0
        })
    );
    assert_eq!(m.check(&hdr(PID, 0, 3, 1)), Ok(Check::Append));
    m.record(&w[1]);
    assert_eq!(m.producer(PID), None);
    m.record(&w[0]);
    let p = m.producer(PID).unwrap();
    let offsets: Vec<_> = p.batches.iter().map(|b| b.first_offset).collect();
    assert_eq!(offsets, [0, 1, 2]);
    assert_eq!(m.in_flight_count(), 1, "seq 3 is still in flight");
    m.record(&log.enqueue(hdr(PID, 0, 3, 1)));
    assert_eq!(m.in_flight_count(), 0);
    assert_eq!(m.map_end_offset(), 4);
}

#[test]
fn abort_forgets_an_in_flight_batch() {
    let mut m = ProducerStateManager::default();
    let mut log = Log::default();
    produce(&mut m, &mut log, hdr(PID, 0, 0, 1)).unwrap();
    let a = hdr(PID, 0, 1, 1);
    assert_eq!(m.check(&a), Ok(Check::Append));
    m.abort(&a);
    assert_eq!(m.in_flight_count(), 0);
    // The producer's retry of A is accepted again.
    assert_eq!(produce(&mut m, &mut log, a), Ok(Check::Append));
    assert_eq!(m.producer(PID).unwrap().last_sequence(), 1);

    // Aborting the first of two in flight lets an already written second one commit.
    let b = hdr(PID, 0, 2, 1);
    let c = hdr(PID, 0, 3, 1);
    m.check(&b).unwrap();
    m.check(&c).unwrap();
    let wc = at(c, 10);
    m.record(&wc);
    assert_eq!(m.producer(PID).unwrap().last_sequence(), 1);
    m.abort(&b);
    assert_eq!(m.in_flight_count(), 0);
    assert_eq!(m.producer(PID).unwrap().last_sequence(), 3);

    // Aborting something unknown is harmless.
    m.abort(&hdr(PID, 0, 77, 1));
    m.abort(&hdr(PID + 9, 0, 0, 1));
    assert_eq!(m.producer(PID).unwrap().last_sequence(), 3);
}

#[test]
fn epoch_bump_while_the_old_epoch_is_in_flight() {
    let mut m = ProducerStateManager::default();
    let mut log = Log::default();
    produce(&mut m, &mut log, hdr(PID, 0, 0, 1)).unwrap();
    let old = hdr(PID, 0, 1, 1);
    let new = hdr(PID, 1, 0, 1);
    assert_eq!(m.check(&old), Ok(Check::Append));
    assert_eq!(m.check(&new), Ok(Check::Append));
    // The in-flight bump already fences the old epoch and hides its batches.
    assert!(matches!(
        m.check(&hdr(PID, 0, 2, 1)),
        Err(ProducerStateError::InvalidProducerEpoch { current: 1, .. })
    ));
    assert_eq!(
        m.check(&hdr(PID, 1, 1, 1)),
        Ok(Check::Append),
        "follows the in-flight bump"
    );
    m.record(&log.enqueue(old));
    assert_eq!(m.producer(PID).unwrap().epoch, 0);
    m.record(&log.enqueue(new));
    m.record(&log.enqueue(hdr(PID, 1, 1, 1)));
    let p = m.producer(PID).unwrap();
    assert_eq!((p.epoch, p.batches.len(), p.last_sequence()), (1, 2, 1));
}

#[test]
fn unknown_producer_in_flight_sets_the_expected_sequence() {
    let mut m = ProducerStateManager::default();
    assert_eq!(m.check(&hdr(PID, 0, 100, 2)), Ok(Check::Append));
    assert_eq!(m.check(&hdr(PID, 0, 500, 1)), Err(ooo(500, 102)));
    assert_eq!(m.check(&hdr(PID, 0, 102, 1)), Ok(Check::Append));
}

#[test]
fn record_without_check_is_applied_like_replay() {
    let mut m = ProducerStateManager::default();
    m.record(&at(hdr(PID, 0, 0, 2), 0));
    m.record(&at(hdr(PID, 0, 2, 2), 2));
    m.record(&at(hdr(PID, 0, 2, 2), 2)); // twice: ignored
    assert_eq!(m.producer(PID).unwrap().batches.len(), 2);
    assert_eq!(m.map_end_offset(), 4);

    // Recorded twice while held back behind an earlier in-flight batch: applied once.
    let (a, b) = (hdr(PID, 0, 4, 1), hdr(PID, 0, 5, 1));
    m.check(&a).unwrap();
    m.check(&b).unwrap();
    m.record(&at(b, 5));
    m.record(&at(b, 5));
    m.record(&at(a, 4));
    let seqs: Vec<_> = m
        .producer(PID)
        .unwrap()
        .batches
        .iter()
        .map(|b| b.first_seq)
        .collect();
    assert_eq!(
        seqs,
        [0, 2, 5],
        "b went ahead via the replay path; a arrived too late"
    );
    assert_eq!(m.in_flight_count(), 0);
}

#[test]
fn replay_matches_live_state_and_is_idempotent() {
    let batches = sample_log();
    let mut live = ProducerStateManager::default();
    let mut log = Log::default();
    for h in &batches {
        let c = produce(&mut live, &mut log, at(*h, 0)).unwrap();
        assert_ne!(
            c,
            Check::Duplicate {
                first_offset: 0,
                last_offset: 0,
                timestamp: T0
            }
        );
    }
    assert_eq!(log.written, batches);

    let mut m = replayed(&batches);
    assert_eq!(m, live);
    // Replaying everything again, or any part of it, changes nothing.
    assert_eq!(m.rebuild_from_batches(&batches), 0);
    assert_eq!(m.rebuild_from_batches(batches[3..9].iter().copied()), 0);
    assert_eq!(m, live);
    assert_eq!(m.producer(PID + 1).unwrap().epoch, 8);
    assert_eq!(m.producer(PID).unwrap().batches.len(), 5);
}

#[test]
fn expiry_drops_idle_producers_but_not_in_flight_ones() {
    let mut m = ProducerStateManager::new(1000);
    let mut log = Log::default();
    let mut h = hdr(PID, 0, 0, 1);
    h.max_timestamp = 5000;
    produce(&mut m, &mut log, h).unwrap();
    let mut h2 = hdr(PID + 1, 0, 0, 1);
    h2.max_timestamp = 5500;
    produce(&mut m, &mut log, h2).unwrap();

    assert_eq!(m.expire(5999), 0);
    assert_eq!(m.expire(6000), 1, "expired at exactly the expiration time");
    assert!(m.producer(PID).is_none());
    assert!(m.producer(PID + 1).is_some());

    // PID is unknown again, so any sequence is accepted.
    assert_eq!(m.check(&hdr(PID, 0, 17, 1)), Ok(Check::Append));
    // PID + 1 has a batch in flight: kept despite its age.
    let mut h3 = hdr(PID + 1, 0, 1, 1);
    h3.max_timestamp = 9000;
    m.check(&h3).unwrap();
    assert_eq!(m.expire(100_000), 0);
    m.record(&log.enqueue(h3));
    assert_eq!(m.expire(9999), 0);
    assert_eq!(m.expire(10_000), 1);

    m.set_producer_id_expiration_ms(DEFAULT_PRODUCER_ID_EXPIRATION_MS);
    assert_eq!(m.expire(i64::MAX), 0, "PID's batch is still in flight");
}

#[test]
fn reset_forgets_everything() {
    let batches = sample_log();
    let mut m = replayed(&batches);
    m.check(&hdr(PID + 5, 0, 0, 1)).unwrap();
    m.reset_to(500);
    assert_eq!((m.producer_count(), m.in_flight_count()), (0, 0));
    assert_eq!(m.map_end_offset(), 500);
    assert_eq!(
        m.rebuild_from_batches(&batches),
        0,
        "all below the new start"
    );
}
