//! Tests of the snapshot format: round trips, what a snapshot may describe, corruption.

use super::snapshot::{frame, FRAME_HEADER};
use super::test_support::*;
use super::*;

#[test]
fn snapshot_round_trip_then_replay_restores_the_state() {
    let batches = sample_log();
    let full = replayed(&batches);
    for cut in 0..=batches.len() {
        let before = replayed(&batches[..cut]);
        let snap_offset = batches
            .get(cut)
            .map_or(full.map_end_offset(), |h| h.base_offset);
        let bytes = before.encode_snapshot(snap_offset);
        let (mut m, offset) = ProducerStateManager::decode_snapshot(&bytes).unwrap();
        assert_eq!(offset, snap_offset);
        if cut > 0 {
            assert_eq!(m.producers, before.producers, "cut {cut}");
        }
        // Replay from the snapshot offset; then replay everything again for good measure.
        m.rebuild_from_batches(batches.iter().filter(|h| h.base_offset >= offset));
        assert_eq!(m, full, "cut {cut}");
        m.rebuild_from_batches(&batches);
        assert_eq!(m, full, "cut {cut}, second replay");
    }
}

#[test]
fn snapshot_keeps_only_batches_below_its_offset() {
    let batches = sample_log();
    let full = replayed(&batches);
    // A snapshot of the full state labelled with a lower offset (as when appends were in
    // flight) must not describe batches at or past that offset: after an unclean restart
    // those may be gone from the log.
    let offset = batches[10].base_offset;
    let (mut m, got) =
        ProducerStateManager::decode_snapshot(&full.encode_snapshot(offset)).unwrap();
    assert_eq!(got, offset);
    let truth = replayed(&batches[..10]);
    for p in m.producers() {
        assert!(p.batches.iter().all(|b| b.last_offset < offset));
        // What is kept is true as of the offset: a suffix of the real window, same epoch.
        let t = truth.producer(p.producer_id).unwrap();
        assert_eq!(p.epoch, t.epoch);
        assert!(t.batches.ends_with(&p.batches));
    }
    // PID + 1 bumped its epoch past the offset: its entry is dropped, not mislabelled.
    assert!(m.producer(PID + 1).is_none());
    m.rebuild_from_batches(batches.iter().filter(|h| h.base_offset >= offset));
    assert_eq!(m, full);
}

#[test]
fn snapshot_with_batches_in_flight_starts_below_them() {
    let mut m = ProducerStateManager::default();
    let mut log = Log::default();
    produce(&mut m, &mut log, hdr(PID, 0, 0, 1)).unwrap();
    produce(&mut m, &mut log, hdr(PID + 1, 0, 0, 1)).unwrap();
    let a = hdr(PID, 0, 1, 1);
    m.check(&a).unwrap();
    // Another producer's batch, enqueued after A, completes and is recorded first.
    let b = hdr(PID + 1, 0, 1, 1);
    m.check(&b).unwrap();
    let wa = log.enqueue(a);
    let wb = log.enqueue(b);
    m.record(&wb);
    // The log end is past A, but A is not reflected yet: the snapshot must start at A.
    assert_eq!(m.snapshot_offset(log.end), wa.base_offset);
    let (mut restored, offset) =
        ProducerStateManager::decode_snapshot(&m.encode_snapshot(log.end)).unwrap();
    assert_eq!(offset, 2);
    restored.rebuild_from_batches(log.written.iter().filter(|h| h.base_offset >= offset));
    m.record(&wa);
    assert_eq!(m.snapshot_offset(log.end), log.end);
    assert_eq!(restored, m);
}

#[test]
fn empty_snapshot_round_trips() {
    let m = ProducerStateManager::default();
    let (d, off) = ProducerStateManager::decode_snapshot(&m.encode_snapshot(42)).unwrap();
    assert_eq!(off, 42);
    assert_eq!(d.producer_count(), 0);
    assert_eq!(d.map_end_offset(), 42);
}

#[test]
fn corrupt_snapshots_are_refused_without_panicking() {
    let batches = sample_log();
    let m = replayed(&batches);
    let good = m.encode_snapshot(m.map_end_offset());
    assert!(ProducerStateManager::decode_snapshot(&good).is_ok());
    // Every truncation, and every single-bit flip, is detected.
    for len in 0..good.len() {
        assert!(ProducerStateManager::decode_snapshot(&good[..len]).is_err());
    }
    for i in 0..good.len() {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[i] ^= 1 << bit;
            assert!(matches!(
                ProducerStateManager::decode_snapshot(&bad),
                Err(ProducerStateError::CorruptSnapshot(_))
            ));
        }
    }
    // Structurally bad bodies with a valid checksum.
    let body_of = |b: &[u8]| b[FRAME_HEADER..].to_vec();
    let mut body = body_of(&good);
    body[8..12].copy_from_slice(&u32::MAX.to_be_bytes()); // absurd producer count
    assert!(ProducerStateManager::decode_snapshot(&frame(1, &body)).is_err());
    let mut body = body_of(&good);
    body.push(0); // trailing byte
    assert!(ProducerStateManager::decode_snapshot(&frame(1, &body)).is_err());
    let mut body = body_of(&good);
    body[0..8].copy_from_slice(&1i64.to_be_bytes()); // offset below the batches
    assert!(ProducerStateManager::decode_snapshot(&frame(1, &body)).is_err());
    let mut body = body_of(&good);
    body[12 + 10] = 6; // first producer claims 6 batches
    assert!(ProducerStateManager::decode_snapshot(&frame(1, &body)).is_err());
    assert!(ProducerStateManager::decode_snapshot(&frame(2, &body_of(&good))).is_err());
}

/// The bytes the broker's own encoder (before producer state moved into storage) wrote for this
/// state: data directories written then must still load, and what is written now must read the
/// same in both directions.
#[test]
fn the_format_is_unchanged_since_the_broker_wrote_it() {
    const GOLDEN: &str = "0001c4d63227000000000000000a0000\
        0002000000000000004d0003017fffff\
        fe000000010000000000000005000000\
        00000000080000018bcfe56802000000\
        00000003e80000020000000000000002\
        00000000000000000000000000000002\
        0000018bcfe568000000000300000003\
        00000000000000090000000000000009\
        0000018bcfe56803";
    let golden: Vec<u8> = {
        let hex: String = GOLDEN.chars().filter(|c| !c.is_whitespace()).collect();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    };
    let with = |pid: i64, epoch: i16, seq: i32, count: i32, base: i64, ts: i64| {
        let mut h = at(hdr(pid, epoch, seq, count), base);
        h.max_timestamp = ts;
        h
    };
    let mut m = ProducerStateManager::default();
    m.rebuild_from_batches([
        with(PID, 0, 0, 3, 0, T0),
        with(NO_PRODUCER_ID, -1, -1, 2, 3, T0 + 1),
        with(77, 3, i32::MAX - 1, 4, 5, T0 + 2), // sequences wrap: MAX-1, MAX, 0, 1
        with(PID, 0, 3, 1, 9, T0 + 3),
    ]);
    assert_eq!(m.encode_snapshot(10), golden);
    let (decoded, offset) = ProducerStateManager::decode_snapshot(&golden).unwrap();
    assert_eq!((offset, decoded.map_end_offset()), (10, 10));
    assert_eq!(decoded.producers, m.producers);
    // The frame's checksum is the standard CRC-32C (Castagnoli) of the body, as Kafka's.
    assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(
        golden[2..FRAME_HEADER],
        crc32c::crc32c(&golden[FRAME_HEADER..]).to_be_bytes()
    );
}
