//! The private `WeirController` api's bodies: requests as the active controller reads them from
//! a broker, responses as a broker reads them back (`replication::controller::wire`, rkyv with
//! checked access). Input: a selector byte (even: request, odd: response), then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_replication::controller::wire;

const BASE: usize = 64 << 10;
/// rkyv deserializes into owned values: strings and vectors of at most what the frame holds,
/// in structures a few times larger than their archived form.
const PER_BYTE: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let _guard = weir_fuzz::bound(data.len(), BASE, PER_BYTE);
    if sel % 2 == 0 {
        if let Ok(r) = wire::decode_request(body) {
            // What decodes must encode and decode to the same value.
            let again = wire::decode_request(&wire::encode_request(&r)).expect("round trip");
            assert_eq!(again, r);
        }
    } else if let Ok(r) = wire::decode_response(body) {
        let again = wire::decode_response(&wire::encode_response(&r)).expect("round trip");
        assert_eq!(again, r);
    }
});
