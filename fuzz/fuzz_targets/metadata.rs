//! Cluster metadata from the network and from disk (`replication::metadata`): a single record,
//! a batch (a raft entry's data), a snapshot (a checkpoint, on disk or sent to an observer), and
//! the private `WeirMetadataFetch` response an observer reads (`broker/src/cluster/observer.rs`),
//! whose snapshot and entries it then decodes. Whatever decodes is applied to an image as the
//! applier does, and an image that came from a snapshot must encode and decode to itself.
//!
//! Input: a selector byte (0 record, 1 batch, 2 snapshot, 3 fetch response), then the bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir::cluster::observer::FetchResponse;
use weir_replication::metadata::{decode_batch, snapshot, MetadataImage, MetadataRecord};

const BASE: usize = 256 << 10;
const PER_BYTE: usize = 256;

fn apply_all(image: &mut MetadataImage, records: &[MetadataRecord]) {
    for r in records {
        let _ = image.apply(r);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let _guard = weir_fuzz::bound(data.len(), BASE, PER_BYTE);
    let mut image = MetadataImage::default();
    match sel % 4 {
        0 => {
            if let Ok(r) = MetadataRecord::decode(body) {
                assert_eq!(MetadataRecord::decode(&r.encode()).as_ref(), Ok(&r));
                apply_all(&mut image, &[r]);
            }
        }
        1 => {
            if let Ok(rs) = decode_batch(body) {
                apply_all(&mut image, &rs);
            }
        }
        2 => {
            if let Ok(img) = snapshot::decode(body) {
                let again = snapshot::decode(&snapshot::encode(&img)).expect("re-encoded snapshot");
                assert!(again == img, "a decoded snapshot must round-trip");
            }
        }
        _ => {
            let Ok(resp) = FetchResponse::decode(&Bytes::copy_from_slice(body)) else {
                return;
            };
            if let Some(s) = &resp.snapshot {
                if let Ok(img) = snapshot::decode(&s.data) {
                    image = img;
                }
            }
            for e in &resp.entries {
                if let Ok(rs) = decode_batch(&e.data) {
                    apply_all(&mut image, &rs);
                }
            }
        }
    }
});
