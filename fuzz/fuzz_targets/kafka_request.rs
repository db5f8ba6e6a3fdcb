//! A request frame body (size prefix stripped) as a broker's connection reader gets it, decoded
//! exactly as `weir_net::connection` does: the broker's own table of apis and versions
//! (`weir::handlers::supported_apis`) plus the private apis the CONTROLLER listener accepts,
//! whose bodies then go through the decoder the broker's `Cluster::handle_weir` uses.
//!
//! Properties: no panic, no hang, and no more memory than `PER_BYTE` times the frame (a decoded
//! request's structures are larger than its wire form: a 1-byte compact array element becomes
//! a struct of a hundred or more bytes; a count read off the wire must never size anything).
#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::RequestKind;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use weir_net::{decode_any_request, Request, SupportedApis, WeirApi, WeirApis};

/// Fixed costs: kafka-protocol's error chains (anyhow, with their formatted reasons).
const BASE: usize = 64 << 10;
/// Decoded bytes per frame byte; see the module doc and scripts/fuzz.sh's report of peaks.
const PER_BYTE: usize = 512;

/// The tables a broker's listeners decode with: the Kafka apis every listener serves (the
/// table ApiVersions advertises) and the private apis of the CONTROLLER listener.
fn tables() -> &'static (SupportedApis, WeirApis) {
    static T: OnceLock<(SupportedApis, WeirApis)> = OnceLock::new();
    T.get_or_init(|| {
        (
            weir::handlers::supported_apis(),
            weir::cluster::private_apis(),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let (supported, weir_apis) = tables();
    let frame = Bytes::copy_from_slice(data);
    let guard = weir_fuzz::bound(data.len(), BASE, PER_BYTE);
    match decode_any_request(frame, supported, weir_apis) {
        Ok(Request::Kafka(req)) => {
            // What the handlers read first; cheap, and it touches every decoded field.
            let _ = req.correlation_id();
            drop(guard);
            // A request that decodes must encode again at its version: the broker's own
            // clients (replica fetchers, weir-admin) encode these types, and an encoder that
            // refuses what its decoder accepted is a bug in one of the two.
            re_encode(&req.body, req.api_version());
        }
        Ok(Request::Weir(req)) => {
            let body = req.body.clone();
            match req.api {
                WeirApi::Controller => {
                    let _ = weir_replication::controller::wire::decode_request(&body);
                }
                WeirApi::MetadataFetch => {
                    let _ = weir::cluster::observer::FetchRequest::decode(&body);
                }
                WeirApi::Raft => {
                    let _ = weir_replication::quorum::wire::decode(&body);
                }
            }
            drop(guard);
        }
        Err(e) => {
            let _ = e.to_string();
            drop(guard);
        }
    }
});

fn re_encode(body: &RequestKind, version: i16) {
    let mut out = bytes::BytesMut::new();
    if let Err(e) = body.encode(&mut out, version) {
        // Strings or arrays too long for their length prefix cannot come off the wire.
        panic!("a decoded request does not encode at v{version}: {e:#}");
    }
}
