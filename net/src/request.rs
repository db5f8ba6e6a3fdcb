//! Request decoding: peek the fixed header prefix, check the api and version against the
//! broker's table, then let kafka-protocol decode the header and body. Weir's private apis
//! ([`crate::weir_api`]) share the prefix and the header but keep their body as bytes.
//!
//! The fixed prefix (api_key, api_version, correlation_id) has the same layout in every request
//! header version, which is what lets us answer a request we cannot parse (Kafka's ApiVersions
//! fallback) and name the correlation id in every error.

use crate::versions::SupportedApis;
use crate::weir_api::{WeirApi, WeirApis, WeirRequest, WEIR_REQUEST_HEADER_VERSION};
use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::{Decodable, VersionRange};
use thiserror::Error;

/// Bytes of the header prefix whose layout never changes: api_key, api_version, correlation_id.
pub const FIXED_HEADER_PREFIX_BYTES: usize = 8;

/// A request as the handler gets it: a Kafka api, decoded, or one of Weir's private apis,
/// whose body stays bytes.
// Moved once per request from the reader to its handler task; boxing the Kafka variant would
// cost an allocation per request to save a memcpy.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// A Kafka api.
    Kafka(KafkaRequest),
    /// A private api, only ever from a listener that accepts it.
    Weir(WeirRequest),
}

impl Request {
    /// The correlation id to echo in the response.
    pub fn correlation_id(&self) -> i32 {
        match self {
            Request::Kafka(r) => r.correlation_id(),
            Request::Weir(r) => r.correlation_id(),
        }
    }

    /// Size of the frame body this request arrived in.
    pub fn frame_len(&self) -> usize {
        match self {
            Request::Kafka(r) => r.frame_len,
            Request::Weir(r) => r.frame_len,
        }
    }
}

/// A decoded Kafka request.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaRequest {
    /// The api, already validated.
    pub api_key: ApiKey,
    /// The request header (version chosen by kafka-protocol's `request_header_version`).
    pub header: RequestHeader,
    /// The request body.
    pub body: RequestKind,
    /// Size of the frame body this request arrived in, for accounting and logs.
    pub frame_len: usize,
}

impl KafkaRequest {
    /// The version the client spoke; responses must be encoded at the same version.
    pub fn api_version(&self) -> i16 {
        self.header.request_api_version
    }

    /// The correlation id to echo in the response.
    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }
}

/// Why a request frame could not become a [`Request`]. Each variant carries what is known about
/// the request, so a log line can name it.
#[derive(Debug, Error, PartialEq)]
pub enum RequestError {
    /// The frame is shorter than the fixed header prefix.
    #[error("request frame of {len} bytes is shorter than a request header")]
    TooShort {
        /// The frame length.
        len: usize,
    },
    /// The api key is not one kafka-protocol knows.
    #[error("unknown api key {api_key} (v{api_version}, correlation id {correlation_id})")]
    UnknownApiKey {
        /// The raw api key.
        api_key: i16,
        /// The raw api version.
        api_version: i16,
        /// The correlation id.
        correlation_id: i32,
    },
    /// The api is known but the broker does not answer this version of it (or the api at all).
    #[error("{api_key:?} v{api_version} is not supported (supported: {}, correlation id {correlation_id})",
        supported.map_or_else(|| "none".to_string(), |r| r.to_string()))]
    UnsupportedVersion {
        /// The api.
        api_key: ApiKey,
        /// The version asked for.
        api_version: i16,
        /// The correlation id.
        correlation_id: i32,
        /// What the broker supports for this api, if anything.
        supported: Option<VersionRange>,
    },
    /// The request header does not decode.
    #[error("malformed {api_key:?} v{api_version} request header (correlation id {correlation_id}): {reason}")]
    MalformedHeader {
        /// The api.
        api_key: ApiKey,
        /// The version.
        api_version: i16,
        /// The correlation id.
        correlation_id: i32,
        /// kafka-protocol's account of the failure.
        reason: String,
    },
    /// A private api (or a version of it) this listener does not accept: on a client-facing
    /// listener any private request is refused, as an unknown api key is.
    #[error("{api} v{api_version} is not accepted on this listener (accepted: {}, correlation id {correlation_id})",
        accepted.map_or_else(|| "none".to_string(), |r| r.to_string()))]
    WeirApiNotAccepted {
        /// The api.
        api: WeirApi,
        /// The version asked for.
        api_version: i16,
        /// The correlation id.
        correlation_id: i32,
        /// What the listener accepts of this api, if anything.
        accepted: Option<VersionRange>,
    },
    /// A private request's header does not decode.
    #[error(
        "malformed {api} v{api_version} request header (correlation id {correlation_id}): {reason}"
    )]
    MalformedWeirHeader {
        /// The api.
        api: WeirApi,
        /// The version.
        api_version: i16,
        /// The correlation id.
        correlation_id: i32,
        /// kafka-protocol's account of the failure.
        reason: String,
    },
    /// The request body does not decode.
    #[error("malformed {api_key:?} v{api_version} request body (correlation id {correlation_id}): {reason}")]
    MalformedBody {
        /// The api.
        api_key: ApiKey,
        /// The version.
        api_version: i16,
        /// The correlation id.
        correlation_id: i32,
        /// kafka-protocol's account of the failure.
        reason: String,
    },
}

impl RequestError {
    /// The correlation id of an ApiVersions request at a version the broker does not support:
    /// Kafka still answers those (see [`crate::response::api_versions_unsupported`]) so the
    /// client can retry at a version both sides know. Every other error closes the connection.
    pub fn unsupported_api_versions(&self) -> Option<i32> {
        match self {
            RequestError::UnsupportedVersion {
                api_key: ApiKey::ApiVersions,
                correlation_id,
                ..
            } => Some(*correlation_id),
            _ => None,
        }
    }
}

/// The fixed prefix of a request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderPrefix {
    /// Raw api key.
    pub api_key: i16,
    /// Raw api version.
    pub api_version: i16,
    /// Correlation id.
    pub correlation_id: i32,
}

/// Reads the fixed prefix without consuming the frame.
pub fn peek_header_prefix(frame: &[u8]) -> Result<HeaderPrefix, RequestError> {
    if frame.len() < FIXED_HEADER_PREFIX_BYTES {
        return Err(RequestError::TooShort { len: frame.len() });
    }
    let mut p = &frame[..FIXED_HEADER_PREFIX_BYTES];
    Ok(HeaderPrefix {
        api_key: p.get_i16(),
        api_version: p.get_i16(),
        correlation_id: p.get_i32(),
    })
}

/// Decodes one request frame body (size prefix already stripped) arriving on a listener that
/// answers `supported` Kafka apis and accepts `weir` private ones.
pub fn decode_any_request(
    frame: Bytes,
    supported: &SupportedApis,
    weir: &WeirApis,
) -> Result<Request, RequestError> {
    let prefix = peek_header_prefix(&frame)?;
    match WeirApi::from_key(prefix.api_key) {
        Some(api) => decode_weir_request(frame, api, prefix, weir).map(Request::Weir),
        None => decode_request(frame, supported).map(Request::Kafka),
    }
}

fn decode_weir_request(
    frame: Bytes,
    api: WeirApi,
    prefix: HeaderPrefix,
    weir: &WeirApis,
) -> Result<WeirRequest, RequestError> {
    let frame_len = frame.len();
    if !weir.supports(api, prefix.api_version) {
        return Err(RequestError::WeirApiNotAccepted {
            api,
            api_version: prefix.api_version,
            correlation_id: prefix.correlation_id,
            accepted: weir.range(api),
        });
    }
    let mut body = frame;
    let header = RequestHeader::decode(&mut body, WEIR_REQUEST_HEADER_VERSION).map_err(|e| {
        RequestError::MalformedWeirHeader {
            api,
            api_version: prefix.api_version,
            correlation_id: prefix.correlation_id,
            reason: format!("{e:#}"),
        }
    })?;
    Ok(WeirRequest {
        api,
        header,
        body,
        frame_len,
    })
}

/// Decodes one Kafka request frame body (size prefix already stripped).
pub fn decode_request(
    frame: Bytes,
    supported: &SupportedApis,
) -> Result<KafkaRequest, RequestError> {
    let frame_len = frame.len();
    let prefix = peek_header_prefix(&frame)?;
    let api_key = ApiKey::try_from(prefix.api_key).map_err(|()| RequestError::UnknownApiKey {
        api_key: prefix.api_key,
        api_version: prefix.api_version,
        correlation_id: prefix.correlation_id,
    })?;
    let api_version = prefix.api_version;
    if !supported.supports(api_key, api_version) {
        return Err(RequestError::UnsupportedVersion {
            api_key,
            api_version,
            correlation_id: prefix.correlation_id,
            supported: supported.range(api_key),
        });
    }
    let mut buf = frame;
    let header_version = api_key.request_header_version(api_version);
    let header = RequestHeader::decode(&mut buf, header_version).map_err(|e| {
        RequestError::MalformedHeader {
            api_key,
            api_version,
            correlation_id: prefix.correlation_id,
            reason: format!("{e:#}"),
        }
    })?;
    let body = RequestKind::decode(api_key, &mut buf, api_version).map_err(|e| {
        RequestError::MalformedBody {
            api_key,
            api_version,
            correlation_id: prefix.correlation_id,
            reason: format!("{e:#}"),
        }
    })?;
    Ok(KafkaRequest {
        api_key,
        header,
        body,
        frame_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::{
        fetch_request::{FetchPartition, FetchTopic},
        metadata_request::MetadataRequestTopic,
        produce_request::{PartitionProduceData, TopicProduceData},
        ApiVersionsRequest, FetchRequest, MetadataRequest, ProduceRequest, TopicName,
    };
    use kafka_protocol::protocol::{Encodable, StrBytes};

    /// Encodes a request exactly as a kafka-protocol client would (header + body, no size
    /// prefix).
    fn client_encode(key: ApiKey, version: i16, correlation_id: i32, body: &RequestKind) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("weir-test")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    fn round_trip(key: ApiKey, version: i16, body: RequestKind) {
        let frame = client_encode(key, version, 4242, &body);
        let len = frame.len();
        let req = decode_request(frame, &SupportedApis::everything_decodable())
            .unwrap_or_else(|e| panic!("{key:?} v{version}: {e}"));
        assert_eq!(req.api_key, key);
        assert_eq!(req.api_version(), version);
        assert_eq!(req.correlation_id(), 4242);
        assert_eq!(req.header.client_id.as_deref(), Some("weir-test"));
        assert_eq!(req.frame_len, len);
        assert_eq!(req.body, body, "{key:?} v{version}");
    }

    fn produce() -> ProduceRequest {
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("orders")))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(3)
                    .with_records(Some(Bytes::from_static(b"opaque-record-batch")))])])
    }

    #[test]
    fn kafka_protocol_requests_round_trip_across_header_versions() {
        for v in [0, 2, 3, 4] {
            let body = ApiVersionsRequest::default();
            let body = if v >= 3 {
                body.with_client_software_name(StrBytes::from_static_str("librdkafka"))
                    .with_client_software_version(StrBytes::from_static_str("2.3.0"))
            } else {
                body
            };
            round_trip(ApiKey::ApiVersions, v, RequestKind::ApiVersions(body));
        }
        for v in [1, 8, 9, 12] {
            let topic = MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("orders"))));
            round_trip(
                ApiKey::Metadata,
                v,
                RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![topic]))),
            );
        }
        for v in [3, 8, 9, 11] {
            round_trip(ApiKey::Produce, v, RequestKind::Produce(produce()));
        }
        for v in [4, 11, 12] {
            let fetch = FetchRequest::default()
                .with_max_wait_ms(500)
                .with_min_bytes(1)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str("orders")))
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(77)
                        .with_partition_max_bytes(1 << 20)])]);
            round_trip(ApiKey::Fetch, v, RequestKind::Fetch(fetch));
        }
    }

    #[test]
    fn unknown_api_key_is_typed() {
        let mut frame = Vec::new();
        frame.extend_from_slice(&9999i16.to_be_bytes());
        frame.extend_from_slice(&1i16.to_be_bytes());
        frame.extend_from_slice(&77i32.to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        assert_eq!(
            decode_request(Bytes::from(frame), &SupportedApis::everything_decodable()),
            Err(RequestError::UnknownApiKey {
                api_key: 9999,
                api_version: 1,
                correlation_id: 77
            })
        );
    }

    #[test]
    fn versions_outside_the_brokers_table_are_typed() {
        let table = SupportedApis::new([
            (ApiKey::ApiVersions, VersionRange { min: 0, max: 3 }),
            (ApiKey::Produce, VersionRange { min: 7, max: 9 }),
        ])
        .unwrap();
        let frame = client_encode(ApiKey::Produce, 5, 9, &RequestKind::Produce(produce()));
        assert_eq!(
            decode_request(frame, &table),
            Err(RequestError::UnsupportedVersion {
                api_key: ApiKey::Produce,
                api_version: 5,
                correlation_id: 9,
                supported: Some(VersionRange { min: 7, max: 9 }),
            })
        );
        let meta = RequestKind::Metadata(MetadataRequest::default());
        let err = decode_request(client_encode(ApiKey::Metadata, 9, 10, &meta), &table)
            .expect_err("metadata is not in the table");
        assert_eq!(err.unsupported_api_versions(), None);
        assert!(matches!(
            err,
            RequestError::UnsupportedVersion {
                supported: None,
                ..
            }
        ));
        // ApiVersions at a version beyond the table is the one error that is still answered.
        let av = RequestKind::ApiVersions(ApiVersionsRequest::default());
        let err = decode_request(client_encode(ApiKey::ApiVersions, 4, 11, &av), &table)
            .expect_err("v4 is above the table");
        assert_eq!(err.unsupported_api_versions(), Some(11));
    }

    #[test]
    fn malformed_header_and_body_are_typed() {
        assert_eq!(
            decode_request(
                Bytes::from_static(&[0, 3, 0]),
                &SupportedApis::everything_decodable()
            ),
            Err(RequestError::TooShort { len: 3 })
        );
        // Metadata v1: client_id length claims 200 bytes but the frame ends.
        let mut header_cut = Vec::new();
        header_cut.extend_from_slice(&3i16.to_be_bytes());
        header_cut.extend_from_slice(&1i16.to_be_bytes());
        header_cut.extend_from_slice(&5i32.to_be_bytes());
        header_cut.extend_from_slice(&200i16.to_be_bytes());
        header_cut.extend_from_slice(b"abc");
        assert!(matches!(
            decode_request(
                Bytes::from(header_cut),
                &SupportedApis::everything_decodable()
            ),
            Err(RequestError::MalformedHeader {
                api_key: ApiKey::Metadata,
                api_version: 1,
                ..
            })
        ));
        // A valid Produce v9 with its body cut short.
        let full = client_encode(ApiKey::Produce, 9, 6, &RequestKind::Produce(produce()));
        let cut = full.slice(..full.len() - 5);
        match decode_request(cut, &SupportedApis::everything_decodable()) {
            Err(RequestError::MalformedBody {
                api_key: ApiKey::Produce,
                api_version: 9,
                correlation_id: 6,
                reason,
            }) => assert!(!reason.is_empty()),
            other => panic!("expected MalformedBody, got {other:?}"),
        }
    }

    /// A private request: header v2, then opaque bytes.
    fn weir_frame(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(api_key)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("weir-node-2")));
        let mut buf = BytesMut::new();
        header.encode(&mut buf, 2).unwrap();
        buf.extend_from_slice(body);
        buf.freeze()
    }

    #[test]
    fn private_requests_keep_their_body_as_a_slice_of_the_frame() {
        let weir = WeirApis::new([(WeirApi::Controller, VersionRange { min: 0, max: 1 })]).unwrap();
        let frame = weir_frame(32002, 1, 42, b"\x00opaque\xff");
        let request =
            decode_any_request(frame.clone(), &SupportedApis::everything_decodable(), &weir)
                .expect("accepted");
        let Request::Weir(r) = request else {
            panic!("expected a private request, got {request:?}");
        };
        assert_eq!(r.api, WeirApi::Controller);
        assert_eq!((r.api_version(), r.correlation_id()), (1, 42));
        assert_eq!(r.header.client_id.as_deref(), Some("weir-node-2"));
        assert_eq!(&r.body[..], b"\x00opaque\xff");
        assert_eq!(r.frame_len, frame.len());
        // The body is the frame's tail, not a copy.
        let tail = &frame[frame.len() - r.body.len()..];
        assert_eq!(r.body.as_ptr(), tail.as_ptr());
        // Kafka requests still decode through the same entry point.
        let kafka = client_encode(
            ApiKey::ApiVersions,
            3,
            7,
            &RequestKind::ApiVersions(ApiVersionsRequest::default()),
        );
        assert!(matches!(
            decode_any_request(kafka, &SupportedApis::everything_decodable(), &weir),
            Ok(Request::Kafka(KafkaRequest {
                api_key: ApiKey::ApiVersions,
                ..
            }))
        ));
    }

    #[test]
    fn private_requests_outside_the_listeners_table_are_refused() {
        let everything = SupportedApis::everything_decodable();
        let weir = WeirApis::new([(WeirApi::Controller, VersionRange { min: 0, max: 0 })]).unwrap();
        for (key, version, table, accepted) in [
            (32000, 0, WeirApis::none(), None),
            (32002, 0, WeirApis::none(), None),
            (32001, 0, weir.clone(), None),
            (
                32002,
                1,
                weir.clone(),
                Some(VersionRange { min: 0, max: 0 }),
            ),
        ] {
            let err = decode_any_request(weir_frame(key, version, 5, b"x"), &everything, &table)
                .expect_err("refused");
            assert_eq!(
                err,
                RequestError::WeirApiNotAccepted {
                    api: WeirApi::from_key(key).unwrap(),
                    api_version: version,
                    correlation_id: 5,
                    accepted,
                }
            );
        }
        // Accepted, but the header is cut inside its client id.
        let cut = weir_frame(32002, 0, 6, b"").slice(..12);
        assert!(matches!(
            decode_any_request(cut, &everything, &weir),
            Err(RequestError::MalformedWeirHeader {
                correlation_id: 6,
                ..
            })
        ));
        // Keys next to the private range are unknown Kafka keys, as before.
        assert!(matches!(
            decode_any_request(weir_frame(32003, 0, 7, b""), &everything, &weir),
            Err(RequestError::UnknownApiKey { api_key: 32003, .. })
        ));
    }

    /// kafka-protocol 0.18.0 pre-allocates `Vec::with_capacity(n)` from a wire array count
    /// before checking it against the bytes left, so this 12-byte Metadata v1 body-less frame
    /// (topics count i32::MAX) asks for ~150 GB and aborts the process: one unauthenticated
    /// client can kill every core. It must become a MalformedBody error once the workspace
    /// patches kafka-protocol (upstream PRs bound the count by the remaining bytes).
    #[test]
    fn hostile_array_count_is_a_decode_error_not_an_abort() {
        let mut frame = Vec::new();
        frame.extend_from_slice(&3i16.to_be_bytes());
        frame.extend_from_slice(&1i16.to_be_bytes());
        frame.extend_from_slice(&8i32.to_be_bytes());
        frame.extend_from_slice(&(-1i16).to_be_bytes());
        frame.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            decode_request(Bytes::from(frame), &SupportedApis::everything_decodable()),
            Err(RequestError::MalformedBody { .. })
        ));
    }
}
