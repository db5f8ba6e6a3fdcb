//! Files Weir reads back from disk, where a torn write or bit rot (or an operator's editor)
//! leaves any bytes: the partition checkpoint (version 1 and the two-slot version 2), the
//! leader-epoch checkpoint, producer-state snapshots, the quorum-state file, raft entry batches
//! of the metadata log, and the `__consumer_offsets` records a group coordinator loads.
//!
//! Input: a selector byte, then the file's bytes:
//! 0 partition checkpoint v1, 1 checkpoint slot v2, 2 leader-epoch checkpoint, 3 producer
//! snapshot, 4 quorum-state file, 5 raft entry batches, 6 offsets-topic key, 7 group metadata
//! value, 8 offset commit value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use weir::group::records as group;
use weir_replication::quorum::{entry_batch, state_file};
use weir_storage::checkpoint::{LeaderEpochCache, PartitionCheckpoint};
use weir_storage::producer::ProducerStateManager;

const BASE: usize = 64 << 10;
const PER_BYTE: usize = 128;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let path = Path::new("fuzz");
    let _guard = weir_fuzz::bound(data.len(), BASE, PER_BYTE);
    match sel % 9 {
        0 => {
            let _ = PartitionCheckpoint::decode(path, body);
        }
        1 => {
            let _ = PartitionCheckpoint::decode_slot(path, body);
        }
        2 => {
            if let Ok(mut cache) = LeaderEpochCache::decode(path, body) {
                // What replication asks of a loaded cache.
                let _ = cache.latest_epoch();
                let _ = cache.end_offset_for(0, 100);
                let _ = cache.end_offset_for(i32::MAX, i64::MAX);
                let _ = cache.truncate_from_end(50);
                let _ = cache.truncate_from_start(10);
            }
        }
        3 => {
            if let Ok((state, offset)) = ProducerStateManager::decode_snapshot(body) {
                let again = ProducerStateManager::decode_snapshot(&state.encode_snapshot(offset))
                    .expect("a decoded snapshot re-encodes");
                assert!(again.0 == state, "producer snapshot round trip");
            }
        }
        4 => {
            if let Ok(s) = state_file::decode(body) {
                assert_eq!(state_file::decode(&state_file::encode(&s)), Ok(s));
            }
        }
        5 => {
            let _ = entry_batch::decode_all(body);
        }
        6 => {
            let _ = group::decode_key(body);
        }
        7 => {
            if let Some(g) = group::decode_group_value(body) {
                let _ = group::group_value(&g);
            }
        }
        _ => {
            if let Some(c) = group::decode_offset_value(body) {
                let _ = group::offset_value(&c);
            }
        }
    }
});
