//! The table of API versions the broker answers, as advertised in ApiVersions and enforced on
//! every request before its body is decoded.

use crate::config::ConfigError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::VersionRange;

/// Supported version range per [`ApiKey`]. Every range lies inside what kafka-protocol can
/// decode, so "supported" always implies "decodable".
#[derive(Debug, Clone, PartialEq)]
pub struct SupportedApis {
    // Indexed by api key; the protocol's keys are small dense integers.
    ranges: Vec<Option<VersionRange>>,
}

impl SupportedApis {
    /// Builds the table, refusing empty ranges and versions kafka-protocol cannot decode.
    pub fn new(
        entries: impl IntoIterator<Item = (ApiKey, VersionRange)>,
    ) -> Result<Self, ConfigError> {
        let mut ranges = Vec::new();
        for (key, range) in entries {
            let valid = key.valid_versions();
            if range.is_empty() || range.min < valid.min || range.max > valid.max {
                return Err(ConfigError::UnsupportedRange {
                    api_key: key as i16,
                    min: range.min,
                    max: range.max,
                    valid_min: valid.min,
                    valid_max: valid.max,
                });
            }
            let index = key as i16 as usize;
            if ranges.len() <= index {
                ranges.resize(index + 1, None);
            }
            ranges[index] = Some(range);
        }
        Ok(SupportedApis { ranges })
    }

    /// Every API at every version kafka-protocol can decode; for tools and tests, not for a
    /// broker, which must advertise only what it implements.
    pub fn everything_decodable() -> Self {
        let ranges = ApiKey::iter().map(|k| (k, k.valid_versions()));
        SupportedApis::new(ranges).unwrap_or(SupportedApis { ranges: Vec::new() })
    }

    /// The supported range of `key`, if the broker answers it at all.
    pub fn range(&self, key: ApiKey) -> Option<VersionRange> {
        self.ranges.get(key as i16 as usize).copied().flatten()
    }

    /// Whether `key` is answered at `version`.
    pub fn supports(&self, key: ApiKey, version: i16) -> bool {
        self.range(key)
            .is_some_and(|r| (r.min..=r.max).contains(&version))
    }

    /// The table as ApiVersionsResponse entries, ordered by api key.
    pub fn api_versions(&self) -> Vec<ApiVersion> {
        self.ranges
            .iter()
            .enumerate()
            .filter_map(|(key, range)| {
                let range = (*range)?;
                Some(
                    ApiVersion::default()
                        .with_api_key(key as i16)
                        .with_min_version(range.min)
                        .with_max_version(range.max),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_answers_what_was_configured() {
        let t = SupportedApis::new([
            (ApiKey::ApiVersions, VersionRange { min: 0, max: 3 }),
            (ApiKey::Metadata, VersionRange { min: 4, max: 12 }),
        ])
        .unwrap();
        assert!(t.supports(ApiKey::ApiVersions, 3));
        assert!(!t.supports(ApiKey::ApiVersions, 4));
        assert!(!t.supports(ApiKey::Metadata, 3));
        assert!(!t.supports(ApiKey::Produce, 9));
        let listed: Vec<(i16, i16, i16)> = t
            .api_versions()
            .iter()
            .map(|v| (v.api_key, v.min_version, v.max_version))
            .collect();
        assert_eq!(listed, vec![(3, 4, 12), (18, 0, 3)]);
    }

    #[test]
    fn ranges_beyond_kafka_protocol_or_empty_are_refused() {
        let beyond = ApiKey::Fetch.valid_versions().max + 1;
        assert!(matches!(
            SupportedApis::new([(
                ApiKey::Fetch,
                VersionRange {
                    min: 4,
                    max: beyond
                }
            )]),
            Err(ConfigError::UnsupportedRange { api_key: 1, .. })
        ));
        assert!(SupportedApis::new([(ApiKey::Fetch, VersionRange { min: 9, max: 8 })]).is_err());
    }

    #[test]
    fn everything_decodable_covers_all_keys() {
        let t = SupportedApis::everything_decodable();
        for key in ApiKey::iter() {
            assert_eq!(t.range(key), Some(key.valid_versions()));
        }
    }
}
