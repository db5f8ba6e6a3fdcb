//! Outgoing responses as a list of parts: bytes we encoded, and file regions whose bytes go
//! from the page cache to the socket without passing through user space.

use crate::frame::FRAME_PREFIX_BYTES;
use crate::versions::SupportedApis;
use crate::weir_api::{WeirApi, WeirApis, WEIR_RESPONSE_HEADER_VERSION};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;
use std::fmt;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use thiserror::Error;

/// Kafka's UNSUPPORTED_VERSION error code.
pub const UNSUPPORTED_VERSION: i16 = 35;

/// The ApiVersionsResponse version every client can parse; Kafka answers an ApiVersions request
/// it cannot parse at this version.
pub const API_VERSIONS_FALLBACK_VERSION: i16 = 0;

/// A byte range of an open file. Holding the region holds the file open, so the bytes stay
/// sendable even if the segment is deleted or closed by its owner meanwhile.
#[derive(Clone)]
pub struct FileRegion {
    file: Rc<dyn AsRawFd>,
    offset: u64,
    len: u64,
}

impl FileRegion {
    /// `len` bytes of `file` starting at `offset`.
    pub fn new(file: Rc<dyn AsRawFd>, offset: u64, len: u64) -> Self {
        FileRegion { file, offset, len }
    }

    /// The descriptor to send from.
    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Offset of the first byte in the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for FileRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileRegion")
            .field("fd", &self.raw_fd())
            .field("offset", &self.offset)
            .field("len", &self.len)
            .finish()
    }
}

/// One piece of a response on the wire.
#[derive(Debug, Clone)]
pub enum Part {
    /// Bytes in memory.
    Bytes(Bytes),
    /// Bytes in a file, sent with `sendfile`.
    File(FileRegion),
}

impl Part {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Part::Bytes(b) => b.len() as u64,
            Part::File(r) => r.len(),
        }
    }

    /// Whether the part carries no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A complete response frame, size prefix included, ready to write.
#[derive(Debug, Clone)]
pub struct ResponseFrame {
    parts: Vec<Part>,
    len: u64,
}

impl ResponseFrame {
    /// Frames `body` (everything after the size prefix) by prepending the size.
    pub fn from_body_parts(body: Vec<Part>) -> Result<Self, EncodeError> {
        let body_len: u64 = body.iter().map(Part::len).sum();
        let size = i32::try_from(body_len).map_err(|_| EncodeError::TooLarge { len: body_len })?;
        let mut parts = Vec::with_capacity(body.len() + 1);
        parts.push(Part::Bytes(Bytes::copy_from_slice(&size.to_be_bytes())));
        parts.extend(body.into_iter().filter(|p| !p.is_empty()));
        Ok(ResponseFrame {
            parts,
            len: body_len + FRAME_PREFIX_BYTES as u64,
        })
    }

    /// A frame whose single buffer already starts with a correct size prefix.
    fn from_prefixed(buf: Bytes) -> Self {
        let len = buf.len() as u64;
        ResponseFrame {
            parts: vec![Part::Bytes(buf)],
            len,
        }
    }

    /// The parts in wire order; the first starts with the size prefix.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Total bytes on the wire, size prefix included.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Never true: a frame has at least its size prefix.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A response that cannot be encoded.
#[derive(Debug, Error, PartialEq)]
pub enum EncodeError {
    /// The body does not fit the frame's 32-bit signed size.
    #[error("response of {len} bytes does not fit a Kafka frame")]
    TooLarge {
        /// Body length.
        len: u64,
    },
    /// The message has no encoding at this version.
    #[error("{api_key:?} v{version} responses cannot be encoded")]
    UnsupportedVersion {
        /// The api.
        api_key: ApiKey,
        /// The version asked for.
        version: i16,
    },
    /// A field is set that this version cannot carry (Kafka refuses to drop it silently).
    #[error("{field} is set but {api_key:?} v{version} cannot carry it")]
    FieldNotInVersion {
        /// The api.
        api_key: ApiKey,
        /// The field.
        field: &'static str,
        /// The version.
        version: i16,
    },
    /// A string or array is longer than its length prefix can state.
    #[error("{field} of length {len} is too long for its length prefix")]
    LengthOverflow {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// The response header of a private api could not be encoded.
    #[error("encoding the {api} v{version} response header failed: {reason}")]
    WeirHeader {
        /// The api.
        api: WeirApi,
        /// The version.
        version: i16,
        /// kafka-protocol's account.
        reason: String,
    },
    /// kafka-protocol refused to encode the message.
    #[error("encoding {api_key:?} v{version} failed: {reason}")]
    Protocol {
        /// The api.
        api_key: ApiKey,
        /// The version.
        version: i16,
        /// kafka-protocol's account.
        reason: String,
    },
}

/// Writes the response header for `api_key` at `version` into `buf`. Header version comes from
/// kafka-protocol, which already encodes Kafka's rule that ApiVersions responses always use
/// header v0 (no tagged fields) even at flexible versions.
pub(crate) fn put_response_header(
    buf: &mut BytesMut,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
) -> Result<(), EncodeError> {
    let header_version = api_key.response_header_version(version);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(buf, header_version)
        .map_err(|e| EncodeError::Protocol {
            api_key,
            version,
            reason: format!("{e:#}"),
        })
}

/// Encodes `body` as the response to a request of `api_key` at `version`.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<ResponseFrame, EncodeError> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    put_response_header(&mut buf, api_key, version, correlation_id)?;
    body.encode(&mut buf, version)
        .map_err(|e| EncodeError::Protocol {
            api_key,
            version,
            reason: format!("{e:#}"),
        })?;
    let body_len = (buf.len() - FRAME_PREFIX_BYTES) as u64;
    let size = i32::try_from(body_len).map_err(|_| EncodeError::TooLarge { len: body_len })?;
    buf[..FRAME_PREFIX_BYTES].copy_from_slice(&size.to_be_bytes());
    Ok(ResponseFrame::from_prefixed(buf.freeze()))
}

/// Frames a body encoded by the handler (`parts`) behind the response header of a Kafka
/// `api_key` at `version`: for responses whose body the broker builds itself.
pub fn encode_raw_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    parts: Vec<Part>,
) -> Result<ResponseFrame, EncodeError> {
    let mut header = BytesMut::new();
    put_response_header(&mut header, api_key, version, correlation_id)?;
    frame_behind(header, parts)
}

/// Frames the response to a private request: response header v1, then the handler's bytes.
pub fn encode_weir_response(
    api: WeirApi,
    version: i16,
    correlation_id: i32,
    parts: Vec<Part>,
) -> Result<ResponseFrame, EncodeError> {
    let mut header = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut header, WEIR_RESPONSE_HEADER_VERSION)
        .map_err(|e| EncodeError::WeirHeader {
            api,
            version,
            reason: format!("{e:#}"),
        })?;
    frame_behind(header, parts)
}

fn frame_behind(header: BytesMut, parts: Vec<Part>) -> Result<ResponseFrame, EncodeError> {
    let mut body = Vec::with_capacity(parts.len() + 1);
    body.push(Part::Bytes(header.freeze()));
    body.extend(parts);
    ResponseFrame::from_body_parts(body)
}

/// Kafka's answer to an ApiVersions request at a version it does not support: an
/// ApiVersionsResponse at v0, error UNSUPPORTED_VERSION, listing the supported ranges so the
/// client can retry with the highest version both sides know (KIP-511). Kafka itself lists
/// only the ApiVersions entry; listing the whole table (and the private apis the listener
/// accepts) is a superset clients look up by key.
pub fn api_versions_unsupported(
    correlation_id: i32,
    supported: &SupportedApis,
    weir: &WeirApis,
) -> Result<ResponseFrame, EncodeError> {
    let mut keys = supported.api_versions();
    weir.advertise(&mut keys);
    let body = ApiVersionsResponse::default()
        .with_error_code(UNSUPPORTED_VERSION)
        .with_api_keys(keys);
    encode_response(
        ApiKey::ApiVersions,
        API_VERSIONS_FALLBACK_VERSION,
        correlation_id,
        &ResponseKind::ApiVersions(body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;
    use kafka_protocol::messages::MetadataResponse;
    use kafka_protocol::protocol::{Decodable, VersionRange};

    fn only_bytes(frame: &ResponseFrame) -> Bytes {
        match frame.parts() {
            [Part::Bytes(b)] => b.clone(),
            other => panic!("expected one in-memory part, got {other:?}"),
        }
    }

    #[test]
    fn metadata_response_round_trips_with_flexible_header() {
        let body = MetadataResponse::default()
            .with_throttle_time_ms(7)
            .with_cluster_id(Some("weir".into()));
        for version in [3i16, 8, 9, 12] {
            let frame = encode_response(
                ApiKey::Metadata,
                version,
                99,
                &ResponseKind::Metadata(body.clone()),
            )
            .unwrap();
            let mut wire = only_bytes(&frame);
            assert_eq!(wire.len() as u64, frame.len());
            assert_eq!(wire.get_i32() as usize, wire.len());
            let hv = ApiKey::Metadata.response_header_version(version);
            assert_eq!(hv, if version >= 9 { 1 } else { 0 });
            let header = ResponseHeader::decode(&mut wire, hv).unwrap();
            assert_eq!(header.correlation_id, 99);
            let decoded = MetadataResponse::decode(&mut wire, version).unwrap();
            assert_eq!(decoded, body);
            assert!(wire.is_empty());
        }
    }

    #[test]
    fn api_versions_responses_use_header_v0_even_when_flexible() {
        for version in 0..=4 {
            assert_eq!(ApiKey::ApiVersions.response_header_version(version), 0);
        }
        let frame = encode_response(
            ApiKey::ApiVersions,
            3,
            5,
            &ResponseKind::ApiVersions(ApiVersionsResponse::default()),
        )
        .unwrap();
        let mut wire = only_bytes(&frame);
        wire.advance(FRAME_PREFIX_BYTES);
        assert_eq!(wire.get_i32(), 5);
        // No tagged-field byte after the correlation id: the error code follows directly.
        assert_eq!(wire.get_i16(), 0);
    }

    #[test]
    fn unsupported_api_versions_answer_decodes_as_v0_with_error_35() {
        let table = SupportedApis::new([
            (ApiKey::Produce, VersionRange { min: 3, max: 9 }),
            (ApiKey::ApiVersions, VersionRange { min: 0, max: 3 }),
        ])
        .unwrap();
        let frame = api_versions_unsupported(1234, &table, &WeirApis::none()).unwrap();
        let mut wire = only_bytes(&frame);
        assert_eq!(wire.get_i32() as usize, wire.len());
        let header = ResponseHeader::decode(&mut wire, 0).unwrap();
        assert_eq!(header.correlation_id, 1234);
        let resp = ApiVersionsResponse::decode(&mut wire, 0).unwrap();
        assert!(wire.is_empty(), "v0 decode must consume the whole body");
        assert_eq!(resp.error_code, UNSUPPORTED_VERSION);
        let keys: Vec<(i16, i16, i16)> = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        assert_eq!(keys, vec![(0, 3, 9), (18, 0, 3)]);
    }

    #[test]
    fn frames_from_parts_count_every_part_and_drop_empty_ones() {
        let f = ResponseFrame::from_body_parts(vec![
            Part::Bytes(Bytes::from_static(b"abc")),
            Part::Bytes(Bytes::new()),
            Part::Bytes(Bytes::from_static(b"de")),
        ])
        .unwrap();
        assert_eq!(f.len(), 9);
        assert_eq!(f.parts().len(), 3);
        match &f.parts()[0] {
            Part::Bytes(b) => assert_eq!(&b[..], &[0, 0, 0, 5]),
            other => panic!("prefix must be bytes, got {other:?}"),
        }
    }
}
