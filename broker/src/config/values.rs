//! Value types shared by broker and topic configs (cleanup policy, timestamp type, process roles,
//! DescribeConfigs' sources and types) and the parsers of Kafka's scalar types.

use std::fmt;
use std::str::FromStr;

use super::{invalid, ConfigError, ConfigSynonym};

/// `cleanup.policy` / `log.cleanup.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupPolicy {
    Delete,
    Compact,
    CompactDelete,
    /// The empty list (Kafka 4.2+, KIP-1161): neither retention deletes nor the cleaner.
    Neither,
}

impl CleanupPolicy {
    pub(super) fn parse(key: &str, raw: &str) -> Result<Self, ConfigError> {
        // The broker's list is checked as the topic's is (Kafka's `ValidList.in` for both).
        let def = super::topic::topic_config_def("cleanup.policy").expect("defined");
        let list = super::topic::check_value(def, raw).map_err(|e| match e {
            ConfigError::InvalidValue { value, reason, .. } => invalid(key, &value, reason),
            e => e,
        })?;
        Ok(Self::from_list(&list))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delete => "delete",
            Self::Compact => "compact",
            Self::CompactDelete => "compact,delete",
            Self::Neither => "",
        }
    }

    /// From a checked list (as `check_value` returns it).
    pub(crate) fn from_list(list: &str) -> Self {
        let (delete, compact) = csv(list).fold((false, false), |(d, c), p| {
            (d || p == "delete", c || p == "compact")
        });
        match (delete, compact) {
            (true, true) => Self::CompactDelete,
            (false, true) => Self::Compact,
            (true, false) => Self::Delete,
            (false, false) => Self::Neither,
        }
    }

    /// Retention deletes old segments.
    pub fn deletes(self) -> bool {
        matches!(self, Self::Delete | Self::CompactDelete)
    }

    /// The cleaner keeps the latest record per key.
    pub fn compacts(self) -> bool {
        matches!(self, Self::Compact | Self::CompactDelete)
    }
}

/// `message.timestamp.type` / `log.message.timestamp.type` (case-sensitive, as in Kafka).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

impl TimestampType {
    pub(super) fn parse(key: &str, raw: &str) -> Result<Self, ConfigError> {
        match raw {
            "CreateTime" => Ok(Self::CreateTime),
            "LogAppendTime" => Ok(Self::LogAppendTime),
            _ => Err(invalid(key, raw, "expected CreateTime or LogAppendTime")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateTime => "CreateTime",
            Self::LogAppendTime => "LogAppendTime",
        }
    }
}

/// Where a described value comes from; the discriminants are Kafka's wire ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigSource {
    DynamicTopic = 1,
    StaticBroker = 4,
    DefaultConfig = 5,
}

/// A config's type as DescribeConfigs (v3+) reports it; the discriminants are Kafka's wire ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
}

/// One row of a DescribeConfigs answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    /// `None` for a nullable config that is not set (Kafka reports null).
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    pub sensitive: bool,
    pub config_type: ConfigType,
    /// Where else the value could come from, most significant first (DescribeConfigs v1+).
    pub synonyms: Vec<ConfigSynonym>,
}

pub(crate) fn parse_num<T>(key: &str, raw: &str, min: T, what: &str) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + fmt::Display,
{
    let n: T = raw
        .parse()
        .map_err(|_| invalid(key, raw, format!("expected {what}")))?;
    if n < min {
        return Err(invalid(key, raw, format!("must be at least {min}")));
    }
    Ok(n)
}

pub(crate) fn parse_int(key: &str, raw: &str, min: i32) -> Result<i32, ConfigError> {
    parse_num(key, raw, min, "a 32-bit integer")
}

pub(crate) fn parse_long(key: &str, raw: &str, min: i64) -> Result<i64, ConfigError> {
    parse_num(key, raw, min, "a 64-bit integer")
}

/// A double in [0, 1], as Kafka's `min.cleanable.dirty.ratio` validates it.
pub(crate) fn parse_ratio(key: &str, raw: &str) -> Result<f64, ConfigError> {
    match raw.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(invalid(key, raw, "expected a number between 0 and 1")),
    }
}

pub(crate) fn parse_bool(key: &str, raw: &str) -> Result<bool, ConfigError> {
    if raw.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if raw.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(invalid(key, raw, "expected true or false"))
    }
}

pub(crate) fn csv(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty())
}
