//! What the peer said it speaks in ApiVersions, and the choice of version per call.

use super::error::ClientError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use std::collections::HashMap;

/// The peer's (min, max) version per api key, Kafka's and Weir's private ones alike.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerVersions {
    peer: String,
    ranges: HashMap<i16, (i16, i16)>,
}

impl PeerVersions {
    /// The table from an ApiVersions answer of `peer`.
    pub fn new(peer: impl Into<String>, keys: &[ApiVersion]) -> Self {
        PeerVersions {
            peer: peer.into(),
            ranges: keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect(),
        }
    }

    /// What the peer offers of `api_key`, if anything.
    pub fn range(&self, api_key: i16) -> Option<(i16, i16)> {
        self.ranges.get(&api_key).copied()
    }

    /// The version to use for `api_key`: the highest both sides speak, capped at `preferred`
    /// (the newest layout the caller fills in) and at least `oldest` (the oldest it can use).
    pub fn pick(&self, api_key: i16, oldest: i16, preferred: i16) -> Result<i16, ClientError> {
        let unsupported = |offered| ClientError::UnsupportedVersion {
            peer: self.peer.clone(),
            api_key,
            offered,
            oldest,
            preferred,
        };
        let (min, max) = self.range(api_key).ok_or_else(|| unsupported(None))?;
        let version = preferred.min(max);
        if version < oldest.max(min) {
            return Err(unsupported(Some((min, max))));
        }
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_highest_common_version_within_the_callers_range() {
        let keys = [
            ApiVersion::default()
                .with_api_key(1)
                .with_min_version(4)
                .with_max_version(16),
            ApiVersion::default()
                .with_api_key(32002)
                .with_min_version(0)
                .with_max_version(0),
        ];
        let v = PeerVersions::new("n1:9093", &keys);
        assert_eq!(v.pick(1, 4, 12), Ok(12));
        assert_eq!(v.pick(1, 0, 20), Ok(16));
        assert_eq!(v.pick(32002, 0, 1), Ok(0));
        assert!(matches!(
            v.pick(1, 0, 3),
            Err(ClientError::UnsupportedVersion {
                offered: Some((4, 16)),
                ..
            })
        ));
        assert!(matches!(
            v.pick(32000, 0, 0),
            Err(ClientError::UnsupportedVersion { offered: None, .. })
        ));
    }
}
