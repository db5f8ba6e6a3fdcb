//! Weir's private APIs: the cluster's own calls (raft between controllers, metadata fetch and
//! controller requests from brokers), carried in ordinary Kafka frames so one listener, one
//! framing and one client serve both.
//!
//! A private request is a Kafka frame (size, then request header v2: api key, version,
//! correlation id, client id, tagged fields) whose api key is one Kafka never assigns; its body
//! is opaque to this crate and reaches the handler as [`Bytes`] (a slice of the frame, never
//! copied). A response, when there is one, is a response header v1 (correlation id, tagged
//! fields) then the handler's bytes. A listener accepts them only when configured to
//! ([`crate::Listener::accepting_weir_apis`], the `CONTROLLER` listener); anywhere else such a
//! request closes the connection, as an unknown api key does.
//!
//! Why keys from 32000: Kafka's keys are dense from 0 (under 100 in Kafka 4) and grow by a few
//! per release; 32000..32767 stays clear of them for the foreseeable future while fitting the
//! header's signed 16-bit field. Real Kafka clients that see these keys in ApiVersions ignore
//! them: the Java client files keys that `ApiKeys.hasId` does not know under "unknown apis"
//! (`NodeApiVersions`), librdkafka keeps every entry and looks keys up by value.

use crate::config::ConfigError;
use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::RequestHeader;
use kafka_protocol::protocol::VersionRange;
use std::fmt;

/// One raft message between controllers per frame; never answered.
pub const WEIR_RAFT: i16 = 32000;
/// A broker pulls committed metadata from the active controller (request/response).
pub const WEIR_METADATA_FETCH: i16 = 32001;
/// A broker's call to the active controller: registration, heartbeat, forwarded
/// administration (request/response).
pub const WEIR_CONTROLLER: i16 = 32002;

/// Request header version of every private API: flexible (tagged fields), with a client id.
pub const WEIR_REQUEST_HEADER_VERSION: i16 = 2;
/// Response header version of every private API: correlation id and tagged fields.
pub const WEIR_RESPONSE_HEADER_VERSION: i16 = 1;

/// A private API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WeirApi {
    /// [`WEIR_RAFT`]
    Raft,
    /// [`WEIR_METADATA_FETCH`]
    MetadataFetch,
    /// [`WEIR_CONTROLLER`]
    Controller,
}

impl WeirApi {
    /// Every private API, in key order.
    pub const ALL: [WeirApi; 3] = [WeirApi::Raft, WeirApi::MetadataFetch, WeirApi::Controller];

    /// The api key on the wire.
    pub const fn key(self) -> i16 {
        match self {
            WeirApi::Raft => WEIR_RAFT,
            WeirApi::MetadataFetch => WEIR_METADATA_FETCH,
            WeirApi::Controller => WEIR_CONTROLLER,
        }
    }

    /// The private API with this key, if it is one.
    pub fn from_key(key: i16) -> Option<Self> {
        WeirApi::ALL.into_iter().find(|api| api.key() == key)
    }

    /// The name used in logs and in CLUSTER.md.
    pub const fn name(self) -> &'static str {
        match self {
            WeirApi::Raft => "WeirRaft",
            WeirApi::MetadataFetch => "WeirMetadataFetch",
            WeirApi::Controller => "WeirController",
        }
    }

    fn index(self) -> usize {
        (self.key() - WEIR_RAFT) as usize
    }
}

impl fmt::Display for WeirApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.key())
    }
}

/// The private APIs a listener accepts, and at which versions. Empty on client-facing
/// listeners.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeirApis {
    // (min, max) per api, indexed by `WeirApi::index`; kafka-protocol's `VersionRange` is not
    // `Eq`, and connections compare their info in tests.
    ranges: [Option<(i16, i16)>; WeirApi::ALL.len()],
}

impl WeirApis {
    /// Accepts none (every listener but the controller's).
    pub fn none() -> Self {
        WeirApis::default()
    }

    /// Accepts each listed api at its versions. Refuses empty or negative ranges.
    pub fn new(
        entries: impl IntoIterator<Item = (WeirApi, VersionRange)>,
    ) -> Result<Self, ConfigError> {
        let mut apis = WeirApis::none();
        for (api, range) in entries {
            if range.is_empty() || range.min < 0 {
                return Err(ConfigError::UnsupportedRange {
                    api_key: api.key(),
                    min: range.min,
                    max: range.max,
                    valid_min: 0,
                    valid_max: i16::MAX,
                });
            }
            apis.ranges[api.index()] = Some((range.min, range.max));
        }
        Ok(apis)
    }

    /// Whether no private api is accepted.
    pub fn is_empty(&self) -> bool {
        self.ranges.iter().all(Option::is_none)
    }

    /// The accepted versions of `api`, if it is accepted.
    pub fn range(&self, api: WeirApi) -> Option<VersionRange> {
        self.ranges[api.index()].map(|(min, max)| VersionRange { min, max })
    }

    /// Whether `api` is accepted at `version`.
    pub fn supports(&self, api: WeirApi, version: i16) -> bool {
        self.ranges[api.index()].is_some_and(|(min, max)| (min..=max).contains(&version))
    }

    /// The accepted apis as ApiVersions entries, in key order, so a Weir client can check
    /// what the listener takes before calling it.
    pub fn api_versions(&self) -> Vec<ApiVersion> {
        WeirApi::ALL
            .into_iter()
            .filter_map(|api| {
                let (min, max) = self.ranges[api.index()]?;
                Some(
                    ApiVersion::default()
                        .with_api_key(api.key())
                        .with_min_version(min)
                        .with_max_version(max),
                )
            })
            .collect()
    }

    /// Adds the accepted apis to an ApiVersions answer, leaving entries already there alone.
    pub(crate) fn advertise(&self, keys: &mut Vec<ApiVersion>) {
        for entry in self.api_versions() {
            if !keys.iter().any(|k| k.api_key == entry.api_key) {
                keys.push(entry);
            }
        }
    }
}

/// A private request: the header decoded, the body left as the bytes that arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct WeirRequest {
    /// Which private api.
    pub api: WeirApi,
    /// The request header (v2).
    pub header: RequestHeader,
    /// The body, a slice of the frame: its encoding belongs to the caller and the handler.
    pub body: Bytes,
    /// Size of the frame body this request arrived in, for accounting and logs.
    pub frame_len: usize,
}

impl WeirRequest {
    /// The version the caller spoke.
    pub fn api_version(&self) -> i16 {
        self.header.request_api_version
    }

    /// The correlation id to echo in the response.
    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_outside_kafkas_and_round_trip() {
        for api in WeirApi::ALL {
            assert_eq!(WeirApi::from_key(api.key()), Some(api));
            assert!(kafka_protocol::messages::ApiKey::try_from(api.key()).is_err());
        }
        assert_eq!(WeirApi::from_key(WEIR_RAFT - 1), None);
        assert_eq!(WeirApi::from_key(WEIR_CONTROLLER + 1), None);
        assert_eq!(WeirApi::Controller.to_string(), "WeirController(32002)");
    }

    #[test]
    fn table_accepts_what_was_configured_and_advertises_it() {
        let v = |min, max| VersionRange { min, max };
        let t = WeirApis::new([(WeirApi::Raft, v(0, 0)), (WeirApi::Controller, v(0, 2))]).unwrap();
        assert!(!t.is_empty());
        assert!(t.supports(WeirApi::Raft, 0));
        assert!(!t.supports(WeirApi::Raft, 1));
        assert!(!t.supports(WeirApi::MetadataFetch, 0));
        assert!(t.supports(WeirApi::Controller, 2));
        let mut keys = vec![ApiVersion::default().with_api_key(18).with_max_version(3)];
        t.advertise(&mut keys);
        let listed: Vec<(i16, i16, i16)> = keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        assert_eq!(listed, vec![(18, 0, 3), (32000, 0, 0), (32002, 0, 2)]);
        assert!(WeirApis::none().is_empty());
        assert!(WeirApis::new([(WeirApi::Raft, v(2, 1))]).is_err());
        assert!(WeirApis::new([(WeirApi::Raft, v(-1, 1))]).is_err());
    }
}
