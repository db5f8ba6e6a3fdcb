//! Broker configuration, loaded the way `kafka-server-start.sh server.properties --override k=v`
//! loads Kafka's: built-in defaults, then a Java-`Properties` file, then command-line overrides.
//!
//! Property names, types, defaults and range checks are Apache Kafka's, so an existing
//! `server.properties` works unchanged: keys Weir does not implement are reported as warnings, never
//! as errors. Weir's own settings live under `weir.`. Topic-level configs ([`TopicConfig`]) fall back
//! to their broker-wide `log.*` counterparts, exactly as in Kafka, and describe themselves with the
//! sources DescribeConfigs reports.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use clap::Parser;
use weir_storage::LogConfig;

// ---------------------------------------------------------------------------------------------
// Errors and the command line
// ---------------------------------------------------------------------------------------------

/// Why a configuration could not be loaded or applied.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A known key with a value of the wrong type or outside Kafka's allowed range.
    #[error("invalid value {value:?} for {key}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
    /// A topic config name Kafka does not define (Kafka answers `INVALID_CONFIG`, in these
    /// words).
    #[error("Unknown topic config name: {key}")]
    UnknownKey { key: String },
    /// Topic configs valid one by one that Kafka refuses together (e.g. a min compaction lag
    /// above the max); the message is Kafka's.
    #[error("{0}")]
    Conflict(String),
    /// The configuration file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A malformed line; `origin` is the file path, or `<input>` for parsed text.
    #[error("{origin}:{line}: {reason}")]
    Parse {
        origin: String,
        line: usize,
        reason: String,
    },
}

/// Parses a CPU list as Linux writes them (`0,2-3,8`): ascending or not, no duplicates.
fn parse_cpu_list(text: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let lo: usize = lo
            .parse()
            .map_err(|_| format!("'{part}' is not a CPU number or range"))?;
        let hi: usize = hi
            .parse()
            .map_err(|_| format!("'{part}' is not a CPU number or range"))?;
        if lo > hi || hi >= libc::CPU_SETSIZE as usize {
            return Err(format!("'{part}' is not a valid CPU range"));
        }
        for c in lo..=hi {
            if cpus.contains(&c) {
                return Err(format!("CPU {c} is listed twice"));
            }
            cpus.push(c);
        }
    }
    if cpus.is_empty() {
        return Err("expected at least one CPU, e.g. 0,2-3".into());
    }
    Ok(cpus)
}

pub(crate) fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

const AFTER_HELP: &str = "\
Settings are applied in this order, later ones winning: built-in defaults (Apache Kafka's), the
--config file, each --override in order, then the shorthand flags (--listeners, --log-dirs,
--cores). Names, meanings and defaults follow Apache Kafka's broker configuration
(https://kafka.apache.org/documentation/#brokerconfigs); Weir's own settings start with `weir.`.
Kafka settings Weir does not implement are accepted with a warning.

Examples:
  weir --config config/server.properties
  weir --listeners PLAINTEXT://0.0.0.0:9092 --log-dirs /var/lib/weir --cores 4
  weir -c server.properties --override log.retention.hours=24 --override num.partitions=6";

/// The `weir` command line: Kafka's `kafka-server-start.sh` model of a properties file plus
/// `--override key=value`.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "weir",
    version,
    about = "Weir: a Kafka-compatible, thread-per-core message broker",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Read settings from FILE, in Kafka's server.properties format
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Set one property, overriding the file (repeatable), e.g. --override num.partitions=3
    #[arg(long = "override", value_name = "KEY=VALUE", value_parser = parse_override)]
    pub overrides: Vec<(String, String)>,

    /// Shorthand for --override listeners=LISTENERS, e.g. PLAINTEXT://0.0.0.0:9092
    #[arg(long, value_name = "LISTENERS")]
    pub listeners: Option<String>,

    /// Shorthand for --override log.dirs=DIRS: where partition data lives
    #[arg(long, value_name = "DIRS")]
    pub log_dirs: Option<String>,

    /// Shorthand for --override weir.cores=N: pin one shard to each of N cores [default: all]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub cores: Option<u32>,
}

fn parse_override(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Loads the configuration the command line describes; the strings are warnings to log.
pub fn load(cli: &Cli) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
    let mut props = match &cli.config {
        Some(path) => Properties::load_file(path)?,
        None => Properties::new(),
    };
    for (key, value) in &cli.overrides {
        props.set(key, value);
    }
    let mut warnings = Vec::new();
    let shorthands = [
        ("listeners", "--listeners", cli.listeners.clone()),
        ("log.dirs", "--log-dirs", cli.log_dirs.clone()),
        ("weir.cores", "--cores", cli.cores.map(|n| n.to_string())),
    ];
    for (key, flag, value) in shorthands {
        let Some(value) = value else { continue };
        if let Some((_, other)) = cli.overrides.iter().rev().find(|(k, _)| k == key) {
            if *other != value {
                warnings.push(format!(
                    "{flag} {value} takes precedence over --override {key}={other}"
                ));
            }
        }
        props.set(key, &value);
    }
    let (mut config, more) = BrokerConfig::from_properties(&props)?;
    warnings.extend(more);
    let cwd = std::env::current_dir().map_err(|e| ConfigError::Io {
        path: PathBuf::from("."),
        source: e,
    })?;
    config.resolve_relative_paths(&cwd);
    Ok((config, warnings))
}

// ---------------------------------------------------------------------------------------------
// Java Properties
// ---------------------------------------------------------------------------------------------

/// Key/value pairs as `java.util.Properties::load` reads them; a later definition of a key
/// replaces an earlier one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    entries: BTreeMap<String, String>,
}

/// Java treats only these as whitespace in properties files.
const PROP_WS: [char; 3] = [' ', '\t', '\x0c'];

impl Properties {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses properties text; errors name `<input>` as the origin.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Self::parse_from(text, "<input>")
    }

    /// Reads and parses a UTF-8 properties file.
    pub fn load_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse_from(&text, &path.display().to_string())
    }

    fn parse_from(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let mut props = Self::new();
        let mut lines = text.lines().enumerate();
        while let Some((index, line)) = lines.next() {
            let first = line.trim_start_matches(PROP_WS);
            // Only a line that starts a logical line can be a comment; a comment never continues.
            if first.is_empty() || first.starts_with(['#', '!']) {
                continue;
            }
            let mut logical = String::new();
            let mut segment = first;
            loop {
                let trailing = segment.len() - segment.trim_end_matches('\\').len();
                if trailing % 2 == 0 {
                    logical.push_str(segment);
                    break;
                }
                logical.push_str(&segment[..segment.len() - 1]);
                match lines.next() {
                    Some((_, next)) => segment = next.trim_start_matches(PROP_WS),
                    None => break,
                }
            }
            let (key, value) = split_entry(&logical).map_err(|reason| ConfigError::Parse {
                origin: origin.to_owned(),
                line: index + 1,
                reason,
            })?;
            props.entries.insert(key, value);
        }
        Ok(props)
    }

    /// Sets `key`, trimming both sides as the file parser does.
    pub fn set(&mut self, key: &str, value: &str) {
        self.entries
            .insert(key.trim().to_owned(), value.trim().to_owned());
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Splits one logical line: the key ends at the first unescaped `=`, `:` or whitespace, and one
/// `=`/`:` surrounded by whitespace may separate it from the value.
fn split_entry(line: &str) -> Result<(String, String), String> {
    let bytes = line.as_bytes();
    let mut end = 0;
    while end < bytes.len() {
        match bytes[end] {
            b'\\' => end += 2,
            b'=' | b':' | b' ' | b'\t' | b'\x0c' => break,
            _ => end += 1,
        }
    }
    let end = end.min(bytes.len());
    let rest = line[end..].trim_start_matches(PROP_WS);
    let rest = rest
        .strip_prefix(['=', ':'])
        .map_or(rest, |r| r.trim_start_matches(PROP_WS));
    let key = unescape(&line[..end])?.trim().to_owned();
    if key.is_empty() {
        return Err("missing key before the separator".to_owned());
    }
    // Kafka trims every value it parses, so trailing blanks never matter.
    Ok((key, unescape(rest)?.trim().to_owned()))
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let ch = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("malformed \\uxxxx escape \"\\u{hex}\""))?;
                out.push(ch);
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Value types
// ---------------------------------------------------------------------------------------------

/// Kafka's `SecurityProtocol`; Weir serves only `PLAINTEXT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl FromStr for SecurityProtocol {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(Self::Plaintext),
            "SSL" => Ok(Self::Ssl),
            "SASL_PLAINTEXT" => Ok(Self::SaslPlaintext),
            "SASL_SSL" => Ok(Self::SaslSsl),
            _ => Err(()),
        }
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        })
    }
}

/// One `NAME://host:port` entry of `listeners` / `advertised.listeners`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Upper-cased, as Kafka normalises listener names.
    pub name: String,
    /// Empty means every interface (when binding) or the machine's hostname (when advertising).
    pub host: String,
    pub port: u16,
    /// From `listener.security.protocol.map`.
    pub security_protocol: SecurityProtocol,
}

impl Listener {
    /// The address to bind, e.g. `0.0.0.0:9092` or `[::1]:9092`.
    pub fn bind_addr(&self) -> String {
        match self.host.as_str() {
            "" => format!("0.0.0.0:{}", self.port),
            h if h.contains(':') => format!("[{h}]:{}", self.port),
            h => format!("{h}:{}", self.port),
        }
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.name, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.name, self.host, self.port)
        }
    }
}

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
    fn parse(key: &str, raw: &str) -> Result<Self, ConfigError> {
        // The broker's list is checked as the topic's is (Kafka's `ValidList.in` for both).
        let def = crate::topic_config::topic_config_def("cleanup.policy").expect("defined");
        let list = crate::topic_config::check_value(def, raw).map_err(|e| match e {
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
    fn parse(key: &str, raw: &str) -> Result<Self, ConfigError> {
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

/// An entry of `process.roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessRole {
    Broker,
    Controller,
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

// ---------------------------------------------------------------------------------------------
// Broker configuration
// ---------------------------------------------------------------------------------------------

pub(crate) struct KeyDef {
    pub(crate) name: &'static str,
    pub(crate) ty: ConfigType,
    /// Kafka's default as text; `None` for nullable configs (and `weir.cores`, computed).
    pub(crate) default: Option<&'static str>,
}

const fn key(name: &'static str, ty: ConfigType, default: Option<&'static str>) -> KeyDef {
    KeyDef { name, ty, default }
}

// Short aliases keep the key tables to one line per key (J for LONG, as in JVM descriptors).
use ConfigType::{
    Boolean as B, Double as D, Int as I, List as L, Long as J, Short as S, String as Str,
};

/// Every broker key Weir understands; the single source of defaults for parsing and describing.
pub(crate) const BROKER_KEYS: &[KeyDef] = &[
    key("node.id", I, Some("1")),
    key("broker.id", I, None),
    key("process.roles", L, Some("broker,controller")),
    key("controller.quorum.voters", L, None),
    key("controller.listener.names", L, None),
    key("cluster.id", Str, None),
    key("listeners", L, Some("PLAINTEXT://127.0.0.1:9092")),
    key("advertised.listeners", L, None),
    key(
        "listener.security.protocol.map",
        Str,
        Some("PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"),
    ),
    key("log.dirs", L, None),
    key("log.dir", Str, Some("./weir-data")),
    key("num.partitions", I, Some("1")),
    key("default.replication.factor", I, Some("1")),
    key("auto.create.topics.enable", B, Some("true")),
    key("delete.topic.enable", B, Some("true")),
    key("message.max.bytes", I, Some("1048588")),
    key("socket.request.max.bytes", I, Some("104857600")),
    key("queued.max.request.bytes", J, Some("-1")),
    key("max.connections", I, Some("2147483647")),
    key("log.segment.bytes", I, Some("1073741824")),
    key("log.roll.ms", J, None),
    key("log.roll.hours", I, Some("168")),
    key("log.retention.ms", J, None),
    key("log.retention.minutes", I, None),
    key("log.retention.hours", I, Some("168")),
    key("log.retention.bytes", J, Some("-1")),
    key("log.retention.check.interval.ms", J, Some("300000")),
    key("log.index.interval.bytes", I, Some("4096")),
    key(
        "log.flush.interval.messages",
        J,
        Some("9223372036854775807"),
    ),
    key("log.flush.interval.ms", J, None),
    key(
        "log.flush.scheduler.interval.ms",
        J,
        Some("9223372036854775807"),
    ),
    key("log.cleaner.enable", B, Some("true")),
    key("log.cleanup.policy", L, Some("delete")),
    key("log.cleaner.delete.retention.ms", J, Some("86400000")),
    key("log.cleaner.min.compaction.lag.ms", J, Some("0")),
    key(
        "log.cleaner.max.compaction.lag.ms",
        J,
        Some("9223372036854775807"),
    ),
    key("log.cleaner.min.cleanable.ratio", D, Some("0.5")),
    key("log.cleaner.backoff.ms", J, Some("15000")),
    key("log.cleaner.dedupe.buffer.size", J, Some("134217728")),
    key("offsets.topic.segment.bytes", I, Some("104857600")),
    key("log.message.timestamp.type", Str, Some("CreateTime")),
    key("min.insync.replicas", I, Some("1")),
    key("unclean.leader.election.enable", B, Some("false")),
    key(
        "replica.high.watermark.checkpoint.interval.ms",
        J,
        Some("5000"),
    ),
    key("offsets.topic.num.partitions", I, Some("50")),
    key("offsets.topic.replication.factor", S, Some("3")),
    key("offsets.retention.minutes", I, Some("10080")),
    key("group.initial.rebalance.delay.ms", I, Some("3000")),
    key("group.min.session.timeout.ms", I, Some("6000")),
    key("group.max.session.timeout.ms", I, Some("1800000")),
    key("transaction.state.log.num.partitions", I, Some("50")),
    key("weir.cores", I, None),
    key("weir.cpus", L, None),
    key("weir.log.open.segments.max", I, Some("16384")),
    key("log.preallocate", B, Some("false")),
    key("weir.log.preallocate.step.bytes", J, Some("16777216")),
    key("log.roll.jitter.ms", J, None),
    key("log.roll.jitter.hours", I, Some("0")),
    key("log.index.size.max.bytes", I, Some("10485760")),
    key("log.segment.delete.delay.ms", J, Some("60000")),
    key("compression.type", Str, Some("producer")),
    key("compression.gzip.level", I, Some("-1")),
    key("compression.lz4.level", I, Some("9")),
    key("compression.zstd.level", I, Some("3")),
    key(
        "log.message.timestamp.before.max.ms",
        J,
        Some("9223372036854775807"),
    ),
    // Kafka 4.0 (KIP-1030): an hour; it was unlimited before.
    key("log.message.timestamp.after.max.ms", J, Some("3600000")),
    key("log.local.retention.ms", J, Some("-2")),
    key("log.local.retention.bytes", J, Some("-2")),
];

/// Kafka keys Weir accepts without acting on them, so stock `server.properties` files load.
const NO_EFFECT_KEYS: &[&str] = &[
    "num.network.threads",
    "num.io.threads",
    "num.recovery.threads.per.data.dir",
    "num.replica.fetchers",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "inter.broker.listener.name",
    "security.inter.broker.protocol",
    "controller.quorum.bootstrap.servers",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "auto.leader.rebalance.enable",
    "authorizer.class.name",
    "log.cleaner.threads",
    // Tiered storage: Weir has none, so topics are refused `remote.storage.enable=true` as a
    // Kafka broker with the system disabled refuses them.
    "remote.log.storage.system.enable",
    "metadata.log.dir",
    "metric.reporters",
];
const NO_EFFECT_PREFIXES: &[&str] = &["ssl.", "sasl.", "zookeeper.", "share.coordinator."];

/// Each `-1` (unbounded) `queued.max.request.bytes` becomes this much per core, so one core's
/// clients cannot buffer without limit.
pub const QUEUED_REQUEST_BYTES_PER_CORE_DEFAULT: u64 = 256 << 20;

/// The broker's static configuration. Each field documents its Kafka property; integer types are
/// Kafka's (INT = i32, LONG = i64, SHORT = i16) so values pass to the protocol unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfig {
    /// `node.id` (legacy `broker.id`; if both are set they must match). Default 1.
    pub node_id: i32,
    /// `process.roles`. Default `broker,controller`.
    pub process_roles: Vec<ProcessRole>,
    /// `controller.quorum.voters`, kept verbatim.
    pub controller_quorum_voters: Option<String>,
    /// `controller.listener.names`, upper-cased.
    pub controller_listener_names: Vec<String>,
    /// `cluster.id`.
    pub cluster_id: Option<String>,
    /// `listeners`. Default `PLAINTEXT://127.0.0.1:9092` (Kafka binds all interfaces; Weir stays
    /// local until told otherwise). See [`BrokerConfig::client_listener`].
    pub listeners: Vec<Listener>,
    /// `advertised.listeners`; default: `listeners` without the controller listeners.
    pub advertised_listeners: Vec<Listener>,
    /// `log.dirs`, else `log.dir`. Default `./weir-data`; Weir uses the first.
    pub log_dirs: Vec<PathBuf>,
    /// `num.partitions` (≥ 1). Default 1.
    pub num_partitions: i32,
    /// `default.replication.factor` (≥ 1). Default 1.
    pub default_replication_factor: i32,
    /// `auto.create.topics.enable`. Default true.
    pub auto_create_topics_enable: bool,
    /// `delete.topic.enable`. Default true.
    pub delete_topic_enable: bool,
    /// `message.max.bytes` (≥ 0). Default 1048588.
    pub message_max_bytes: i32,
    /// `socket.request.max.bytes` (≥ 1). Default 104857600.
    pub socket_request_max_bytes: i32,
    /// `queued.max.request.bytes`; ≤ 0 is unbounded in Kafka. Default -1. See
    /// [`BrokerConfig::queued_request_bytes_per_core`].
    pub queued_max_request_bytes: i64,
    /// `max.connections` (≥ 0). Default `i32::MAX`.
    pub max_connections: i32,
    /// `log.segment.bytes` (≥ 14). Default 1073741824.
    pub log_segment_bytes: i32,
    /// `log.roll.ms`, else `log.roll.hours` (≥ 1). Default 168 h.
    pub log_roll_ms: i64,
    /// `log.retention.ms`, else `.minutes`, else `.hours`; -1 (any negative) = forever.
    /// Default 168 h.
    pub log_retention_ms: i64,
    /// `log.retention.bytes`; negative = no limit. Default -1.
    pub log_retention_bytes: i64,
    /// `log.retention.check.interval.ms` (≥ 1). Default 300000.
    pub log_retention_check_interval_ms: i64,
    /// `log.index.interval.bytes` (≥ 4). Default 4096.
    pub log_index_interval_bytes: i32,
    /// `log.flush.interval.messages` (≥ 1). Default `i64::MAX`.
    pub log_flush_interval_messages: i64,
    /// `log.flush.interval.ms`, else `log.flush.scheduler.interval.ms` (≥ 0). Default `i64::MAX`.
    pub log_flush_interval_ms: i64,
    /// `log.cleaner.enable`. Default true.
    pub log_cleaner_enable: bool,
    /// `log.cleanup.policy`. Default delete.
    pub log_cleanup_policy: CleanupPolicy,
    /// `log.cleaner.delete.retention.ms` (≥ 0). Default 86400000.
    pub log_cleaner_delete_retention_ms: i64,
    /// `log.cleaner.min.compaction.lag.ms` (≥ 0). Default 0.
    pub log_cleaner_min_compaction_lag_ms: i64,
    /// `log.cleaner.max.compaction.lag.ms` (≥ 1). Default `i64::MAX`.
    pub log_cleaner_max_compaction_lag_ms: i64,
    /// `log.cleaner.min.cleanable.ratio` (0 to 1). Default 0.5.
    pub log_cleaner_min_cleanable_ratio: f64,
    /// `log.cleaner.backoff.ms` (≥ 0): how often each core looks for logs to clean. Default 15000.
    pub log_cleaner_backoff_ms: i64,
    /// `log.cleaner.dedupe.buffer.size` (≥ 1 MiB): key-map memory, shared by the cores' cleaners
    /// (Kafka shares it by cleaner threads). Default 134217728.
    pub log_cleaner_dedupe_buffer_size: i64,
    /// `offsets.topic.segment.bytes` (≥ 1). Default 104857600.
    pub offsets_topic_segment_bytes: i32,
    /// `log.message.timestamp.type`. Default CreateTime.
    pub log_message_timestamp_type: TimestampType,
    /// `min.insync.replicas` (≥ 1). Default 1.
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable`. Default false.
    pub unclean_leader_election_enable: bool,
    /// `log.preallocate`: reserve a new segment's whole `segment.bytes` of disk blocks at once
    /// (Kafka's meaning). Default false.
    pub log_preallocate: bool,
    /// `weir.log.preallocate.step.bytes` (≥ 0): otherwise the active segment's blocks are
    /// reserved ahead of its writes by as much as it holds, up to this (0: off). Why: on ext4,
    /// appends otherwise wait for the flusher's block allocation (tens of ms of produce
    /// latency). Default 16777216.
    pub weir_log_preallocate_step_bytes: i64,
    /// `log.roll.jitter.ms`, else `log.roll.jitter.hours` (≥ 0). Default 0.
    pub log_roll_jitter_ms: i64,
    /// `log.index.size.max.bytes` (≥ 4). Default 10485760.
    pub log_index_size_max_bytes: i32,
    /// `log.segment.delete.delay.ms` (≥ 0). Default 60000.
    pub log_segment_delete_delay_ms: i64,
    /// `compression.type`: `producer`, `uncompressed` or a codec. Default producer.
    pub compression_type: String,
    /// `compression.gzip.level` (1 to 9, or -1). Default -1.
    pub compression_gzip_level: i32,
    /// `compression.lz4.level` (1 to 17). Default 9.
    pub compression_lz4_level: i32,
    /// `compression.zstd.level` (-131072 to 22). Default 3.
    pub compression_zstd_level: i32,
    /// `log.message.timestamp.before.max.ms` (≥ 0). Default `i64::MAX`.
    pub log_message_timestamp_before_max_ms: i64,
    /// `log.message.timestamp.after.max.ms` (≥ 0). Default 3600000.
    pub log_message_timestamp_after_max_ms: i64,
    /// `log.local.retention.ms` (≥ -2; -2: as retention). Default -2.
    pub log_local_retention_ms: i64,
    /// `log.local.retention.bytes` (≥ -2; -2: as retention). Default -2.
    pub log_local_retention_bytes: i64,
    /// `replica.high.watermark.checkpoint.interval.ms` (≥ 1). Default 5000.
    pub replica_high_watermark_checkpoint_interval_ms: i64,
    /// `offsets.topic.num.partitions` (≥ 1). Default 50.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor` (≥ 1). Default 3; stored as configured, the effective
    /// factor is min(this, live brokers).
    pub offsets_topic_replication_factor: i16,
    /// `offsets.retention.minutes` (≥ 1). Default 10080.
    pub offsets_retention_minutes: i32,
    /// `group.initial.rebalance.delay.ms` (≥ 0). Default 3000.
    pub group_initial_rebalance_delay_ms: i32,
    /// `group.min.session.timeout.ms` (≥ 0, ≤ max). Default 6000.
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`. Default 1800000.
    pub group_max_session_timeout_ms: i32,
    /// `transaction.state.log.num.partitions` (≥ 1). Default 50.
    pub transaction_state_log_num_partitions: i32,
    /// `weir.cores` (≥ 1): executors pinned one per core. Default: the length of `weir.cpus`
    /// if set, else available parallelism.
    pub cores: usize,
    /// `weir.cpus`: which CPUs the executors are pinned to, e.g. `0,2-3`, in order (executor i
    /// on the i-th CPU, wrapping if there are more executors). Default: the CPUs this process
    /// may run on (its affinity mask, so `taskset` also chooses).
    pub cpus: Option<Vec<usize>>,
    /// `weir.log.open.segments.max` (≥ 1): open segment descriptors across the broker, split
    /// evenly between cores. Default 16384.
    pub open_segments_max: usize,
    /// Known keys set explicitly (trimmed), for DescribeConfigs sources.
    static_values: BTreeMap<String, String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self::from_properties(&Properties::new())
            .expect("built-in defaults are valid")
            .0
    }
}

/// Typed access to properties, falling back to [`BROKER_KEYS`] defaults.
struct Reader<'a> {
    props: &'a Properties,
}

impl Reader<'_> {
    fn raw(&self, key: &'static str) -> Option<&str> {
        self.props.get(key).or_else(|| {
            let def = BROKER_KEYS.iter().find(|k| k.name == key);
            debug_assert!(def.is_some(), "{key} missing from BROKER_KEYS");
            def.and_then(|k| k.default)
        })
    }

    fn required(&self, key: &'static str) -> Result<&str, ConfigError> {
        self.raw(key)
            .ok_or_else(|| invalid(key, "", "a value is required"))
    }

    fn int(&self, key: &'static str, min: i32) -> Result<i32, ConfigError> {
        parse_int(key, self.required(key)?, min)
    }

    fn opt_int(&self, key: &'static str, min: i32) -> Result<Option<i32>, ConfigError> {
        self.raw(key).map(|v| parse_int(key, v, min)).transpose()
    }

    fn long(&self, key: &'static str, min: i64) -> Result<i64, ConfigError> {
        parse_long(key, self.required(key)?, min)
    }

    fn opt_long(&self, key: &'static str, min: i64) -> Result<Option<i64>, ConfigError> {
        self.raw(key).map(|v| parse_long(key, v, min)).transpose()
    }

    fn boolean(&self, key: &'static str) -> Result<bool, ConfigError> {
        parse_bool(key, self.required(key)?)
    }

    fn opt_string(&self, key: &'static str) -> Option<String> {
        self.raw(key).filter(|v| !v.is_empty()).map(str::to_owned)
    }
}

impl BrokerConfig {
    /// Builds the configuration from properties (file plus overrides), validating every known
    /// key; the strings are warnings (unknown or ineffective keys, ignored listeners).
    pub fn from_properties(props: &Properties) -> Result<(Self, Vec<String>), ConfigError> {
        let r = Reader { props };
        let mut warnings = Vec::new();
        for (key, _) in props.iter() {
            if BROKER_KEYS.iter().any(|k| k.name == key) {
                continue;
            }
            if NO_EFFECT_KEYS.contains(&key)
                || NO_EFFECT_PREFIXES.iter().any(|p| key.starts_with(p))
            {
                warnings.push(format!(
                    "configuration '{key}' is accepted but has no effect in Weir"
                ));
            } else {
                warnings.push(format!("unknown configuration '{key}' ignored"));
            }
        }

        let mut node_id = r.int("node.id", 0)?;
        if let Some(broker_id) = r.opt_int("broker.id", 0)? {
            if props.get("node.id").is_some() && broker_id != node_id {
                return Err(invalid(
                    "broker.id",
                    &broker_id.to_string(),
                    format!("must match node.id ({node_id}) when both are set"),
                ));
            }
            node_id = broker_id;
        }

        let process_roles = parse_roles(r.required("process.roles")?, &mut warnings)?;
        let controller_listener_names: Vec<String> = r
            .raw("controller.listener.names")
            .map(|v| csv(v).map(str::to_ascii_uppercase).collect())
            .unwrap_or_default();
        let (listeners, advertised_listeners) =
            resolve_listeners(&r, &controller_listener_names, &mut warnings)?;

        let log_dirs: Vec<PathBuf> = match r.raw("log.dirs") {
            Some(dirs) => csv(dirs).map(PathBuf::from).collect(),
            None => csv(r.required("log.dir")?).map(PathBuf::from).collect(),
        };
        if log_dirs.is_empty() {
            let key = if props.get("log.dirs").is_some() {
                "log.dirs"
            } else {
                "log.dir"
            };
            return Err(invalid(
                key,
                r.raw(key).unwrap_or(""),
                "expected at least one directory",
            ));
        }
        if log_dirs.len() > 1 {
            warnings.push(format!(
                "Weir stores data in the first log directory only ({}); the others are ignored",
                log_dirs[0].display()
            ));
        }

        let socket_request_max_bytes = r.int("socket.request.max.bytes", 1)?;
        let queued_max_request_bytes = r.long("queued.max.request.bytes", i64::MIN)?;
        if queued_max_request_bytes > 0
            && queued_max_request_bytes < i64::from(socket_request_max_bytes)
        {
            return Err(invalid(
                "queued.max.request.bytes",
                &queued_max_request_bytes.to_string(),
                format!(
                    "must be -1 or at least socket.request.max.bytes ({socket_request_max_bytes})"
                ),
            ));
        }

        // Kafka parses every synonym even when a higher-precedence one wins.
        let roll_ms = r.opt_long("log.roll.ms", 1)?;
        let roll_hours = r.int("log.roll.hours", 1)?;
        let retention_ms = r.opt_long("log.retention.ms", i64::MIN)?;
        let retention_minutes = r.opt_int("log.retention.minutes", i32::MIN)?;
        let retention_hours = r.int("log.retention.hours", i32::MIN)?;
        let retention = retention_ms
            .or(retention_minutes.map(|m| i64::from(m) * 60_000))
            .unwrap_or(i64::from(retention_hours) * 3_600_000);
        let roll_jitter_ms = r.opt_long("log.roll.jitter.ms", i64::MIN)?;
        let roll_jitter_hours = r.int("log.roll.jitter.hours", 0)?;
        let flush_ms = r.opt_long("log.flush.interval.ms", 0)?;
        let flush_scheduler_ms = r.long("log.flush.scheduler.interval.ms", 0)?;

        let group_min_session_timeout_ms = r.int("group.min.session.timeout.ms", 0)?;
        let group_max_session_timeout_ms = r.int("group.max.session.timeout.ms", 0)?;
        if group_max_session_timeout_ms < group_min_session_timeout_ms {
            return Err(invalid(
                "group.max.session.timeout.ms",
                &group_max_session_timeout_ms.to_string(),
                format!("must be at least group.min.session.timeout.ms ({group_min_session_timeout_ms})"),
            ));
        }

        let available = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpus = match r.opt_string("weir.cpus") {
            Some(list) => {
                Some(parse_cpu_list(&list).map_err(|reason| invalid("weir.cpus", &list, reason))?)
            }
            None => None,
        };
        let cores = match (r.opt_int("weir.cores", 1)?, &cpus) {
            (Some(n), _) => n as usize,
            (None, Some(list)) => list.len(),
            (None, None) => available,
        };
        if cores > available {
            warnings.push(format!(
                "weir.cores={cores} exceeds the {available} cores available; shards will share cores"
            ));
        }

        let config = Self {
            node_id,
            process_roles,
            controller_quorum_voters: r.opt_string("controller.quorum.voters"),
            controller_listener_names,
            cluster_id: r.opt_string("cluster.id"),
            listeners,
            advertised_listeners,
            log_dirs,
            num_partitions: r.int("num.partitions", 1)?,
            default_replication_factor: r.int("default.replication.factor", 1)?,
            auto_create_topics_enable: r.boolean("auto.create.topics.enable")?,
            delete_topic_enable: r.boolean("delete.topic.enable")?,
            message_max_bytes: r.int("message.max.bytes", 0)?,
            socket_request_max_bytes,
            queued_max_request_bytes,
            max_connections: r.int("max.connections", 0)?,
            log_segment_bytes: r.int("log.segment.bytes", 14)?,
            log_roll_ms: roll_ms.unwrap_or(i64::from(roll_hours) * 3_600_000),
            log_retention_ms: retention.max(-1),
            log_retention_bytes: r.long("log.retention.bytes", i64::MIN)?,
            log_retention_check_interval_ms: r.long("log.retention.check.interval.ms", 1)?,
            log_index_interval_bytes: r.int("log.index.interval.bytes", 4)?,
            log_flush_interval_messages: r.long("log.flush.interval.messages", 1)?,
            log_flush_interval_ms: flush_ms.unwrap_or(flush_scheduler_ms),
            log_cleaner_enable: r.boolean("log.cleaner.enable")?,
            log_cleanup_policy: CleanupPolicy::parse(
                "log.cleanup.policy",
                r.required("log.cleanup.policy")?,
            )?,
            log_cleaner_delete_retention_ms: r.long("log.cleaner.delete.retention.ms", 0)?,
            log_cleaner_min_compaction_lag_ms: r.long("log.cleaner.min.compaction.lag.ms", 0)?,
            log_cleaner_max_compaction_lag_ms: r.long("log.cleaner.max.compaction.lag.ms", 1)?,
            log_cleaner_min_cleanable_ratio: parse_ratio(
                "log.cleaner.min.cleanable.ratio",
                r.required("log.cleaner.min.cleanable.ratio")?,
            )?,
            log_cleaner_backoff_ms: r.long("log.cleaner.backoff.ms", 0)?,
            log_cleaner_dedupe_buffer_size: r.long("log.cleaner.dedupe.buffer.size", 1 << 20)?,
            offsets_topic_segment_bytes: r.int("offsets.topic.segment.bytes", 1)?,
            log_message_timestamp_type: TimestampType::parse(
                "log.message.timestamp.type",
                r.required("log.message.timestamp.type")?,
            )?,
            min_insync_replicas: r.int("min.insync.replicas", 1)?,
            unclean_leader_election_enable: r.boolean("unclean.leader.election.enable")?,
            log_preallocate: r.boolean("log.preallocate")?,
            weir_log_preallocate_step_bytes: r.long("weir.log.preallocate.step.bytes", 0)?,
            log_roll_jitter_ms: roll_jitter_ms.unwrap_or(i64::from(roll_jitter_hours) * 3_600_000),
            log_index_size_max_bytes: r.int("log.index.size.max.bytes", 4)?,
            log_segment_delete_delay_ms: r.long("log.segment.delete.delay.ms", 0)?,
            compression_type: crate::topic_config::check_broker_value(
                "compression.type",
                r.required("compression.type")?,
            )?,
            compression_gzip_level: crate::topic_config::check_broker_value(
                "compression.gzip.level",
                r.required("compression.gzip.level")?,
            )?
            .parse()
            .expect("checked"),
            compression_lz4_level: crate::topic_config::check_broker_value(
                "compression.lz4.level",
                r.required("compression.lz4.level")?,
            )?
            .parse()
            .expect("checked"),
            compression_zstd_level: crate::topic_config::check_broker_value(
                "compression.zstd.level",
                r.required("compression.zstd.level")?,
            )?
            .parse()
            .expect("checked"),
            log_message_timestamp_before_max_ms: r
                .long("log.message.timestamp.before.max.ms", 0)?,
            log_message_timestamp_after_max_ms: r.long("log.message.timestamp.after.max.ms", 0)?,
            log_local_retention_ms: r.long("log.local.retention.ms", -2)?,
            log_local_retention_bytes: r.long("log.local.retention.bytes", -2)?,
            replica_high_watermark_checkpoint_interval_ms: r
                .long("replica.high.watermark.checkpoint.interval.ms", 1)?,
            offsets_topic_num_partitions: r.int("offsets.topic.num.partitions", 1)?,
            offsets_topic_replication_factor: parse_num(
                "offsets.topic.replication.factor",
                r.required("offsets.topic.replication.factor")?,
                1i16,
                "a 16-bit integer",
            )?,
            offsets_retention_minutes: r.int("offsets.retention.minutes", 1)?,
            group_initial_rebalance_delay_ms: r.int("group.initial.rebalance.delay.ms", 0)?,
            group_min_session_timeout_ms,
            group_max_session_timeout_ms,
            transaction_state_log_num_partitions: r
                .int("transaction.state.log.num.partitions", 1)?,
            cores,
            cpus,
            open_segments_max: r.int("weir.log.open.segments.max", 1)? as usize,
            static_values: props
                .iter()
                .filter(|(k, _)| BROKER_KEYS.iter().any(|d| d.name == *k))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        };
        Ok((config, warnings))
    }

    /// The listener clients connect to: the first PLAINTEXT listener that is not a controller
    /// listener (validation guarantees one exists).
    pub fn client_listener(&self) -> &Listener {
        self.listeners
            .iter()
            .find(|l| self.is_client_listener(l))
            .expect("validated in from_properties")
    }

    /// What Metadata advertises for [`Self::client_listener`]: its `advertised.listeners` entry,
    /// or the listener itself if not advertised. An empty host means the machine's hostname.
    pub fn advertised_client_listener(&self) -> &Listener {
        let client = self.client_listener();
        self.advertised_listeners
            .iter()
            .find(|l| l.name == client.name)
            .unwrap_or(client)
    }

    fn is_client_listener(&self, l: &Listener) -> bool {
        l.security_protocol == SecurityProtocol::Plaintext
            && !self.controller_listener_names.contains(&l.name)
    }

    /// The data directory Weir uses (the first of `log.dirs`).
    /// Makes every relative path in the configuration absolute against `cwd`, once, at load:
    /// Kafka resolves them against the working directory, and everything below the config
    /// (glommio's `Directory::open` and `OpenOptions` open relative to descriptor -1, which
    /// fails with EBADF) then only ever sees absolute paths.
    pub fn resolve_relative_paths(&mut self, cwd: &Path) {
        for dir in &mut self.log_dirs {
            if dir.is_relative() {
                // `components()` drops `.` segments: `./weir-data` becomes `<cwd>/weir-data`.
                *dir = cwd.join(&*dir).components().collect();
            }
        }
    }

    pub fn log_dir(&self) -> &Path {
        &self.log_dirs[0]
    }

    /// Bytes of requests one core may hold in memory. Kafka's `queued.max.request.bytes` is
    /// broker-wide, so a positive value is split between cores; unbounded (≤ 0) becomes
    /// [`QUEUED_REQUEST_BYTES_PER_CORE_DEFAULT`]. Never below `socket.request.max.bytes`, so the
    /// largest legal request always fits.
    pub fn queued_request_bytes_per_core(&self) -> u64 {
        let floor = self.socket_request_max_bytes as u64;
        let budget = if self.queued_max_request_bytes <= 0 {
            QUEUED_REQUEST_BYTES_PER_CORE_DEFAULT
        } else {
            self.queued_max_request_bytes as u64 / self.cores as u64
        };
        budget.max(floor)
    }

    /// Capacity of each core's `SegmentFileCache`.
    pub fn open_segments_per_core(&self) -> usize {
        (self.open_segments_max / self.cores).max(1)
    }

    /// Topic configuration for a topic without overrides.
    pub fn topic_defaults(&self) -> TopicConfig {
        TopicConfig::from_broker(self)
    }

    /// Storage settings for a topic without overrides.
    pub fn log_config(&self) -> LogConfig {
        self.topic_defaults().to_log_config()
    }

    /// Whether `key` was set by the file or an override (Kafka's STATIC_BROKER_CONFIG).
    pub fn is_set(&self, key: &str) -> bool {
        self.static_values.contains_key(key)
    }

    /// The value `key` was set to by the file or an override.
    pub fn static_value(&self, key: &str) -> Option<&str> {
        self.static_values.get(key).map(String::as_str)
    }

    /// Every broker config Weir knows, for DescribeConfigs on a broker resource. All are
    /// read-only: Weir does not alter broker configs at runtime.
    pub fn describe(&self) -> Vec<ConfigEntry> {
        BROKER_KEYS
            .iter()
            .map(|k| {
                let (value, source) = match self.static_values.get(k.name) {
                    Some(v) => (Some(v.clone()), ConfigSource::StaticBroker),
                    None if k.name == "weir.cores" => {
                        (Some(self.cores.to_string()), ConfigSource::DefaultConfig)
                    }
                    None => (k.default.map(str::to_owned), ConfigSource::DefaultConfig),
                };
                ConfigEntry {
                    name: k.name.to_owned(),
                    value,
                    source,
                    read_only: true,
                    sensitive: false,
                    config_type: k.ty,
                    synonyms: Vec::new(),
                }
            })
            .collect()
    }
}

fn parse_roles(raw: &str, warnings: &mut Vec<String>) -> Result<Vec<ProcessRole>, ConfigError> {
    let mut roles = Vec::new();
    for item in csv(raw) {
        let role = match item {
            "broker" => ProcessRole::Broker,
            "controller" => ProcessRole::Controller,
            _ => {
                return Err(invalid(
                    "process.roles",
                    raw,
                    format!("unknown role {item:?}"),
                ))
            }
        };
        if roles.contains(&role) {
            return Err(invalid(
                "process.roles",
                raw,
                format!("duplicate role {item:?}"),
            ));
        }
        roles.push(role);
    }
    if !roles.contains(&ProcessRole::Broker) {
        return Err(invalid(
            "process.roles",
            raw,
            "Weir requires the broker role",
        ));
    }
    if !roles.contains(&ProcessRole::Controller) {
        warnings.push(
            "process.roles has no controller role; Weir runs its controller in-process anyway"
                .to_owned(),
        );
    }
    Ok(roles)
}

/// Parses `NAME://host:port[,...]` into (name, host, port), as Kafka's listener regex does.
fn parse_endpoints(key: &str, raw: &str) -> Result<Vec<(String, String, u16)>, ConfigError> {
    let mut out: Vec<(String, String, u16)> = Vec::new();
    for item in csv(raw) {
        let bad = |why: &str| invalid(key, raw, format!("{item:?}: {why}"));
        let (name, addr) = item
            .split_once("://")
            .ok_or_else(|| bad("expected NAME://host:port"))?;
        let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
            let (host, port) = rest
                .split_once("]:")
                .ok_or_else(|| bad("expected [host]:port"))?;
            (host, port)
        } else {
            addr.rsplit_once(':')
                .ok_or_else(|| bad("expected host:port"))?
        };
        let valid_host = host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-%._:".contains(c));
        if name.is_empty() || !valid_host {
            return Err(bad("expected NAME://host:port"));
        }
        let port: u16 = port.parse().map_err(|_| bad("port must be 0-65535"))?;
        let name = name.to_ascii_uppercase();
        if out.iter().any(|(n, _, _)| *n == name) {
            return Err(bad("each listener must have a different name"));
        }
        out.push((name, host.to_owned(), port));
    }
    if out.is_empty() {
        return Err(invalid(key, raw, "expected at least one NAME://host:port"));
    }
    Ok(out)
}

fn resolve_listeners(
    r: &Reader<'_>,
    controller_names: &[String],
    warnings: &mut Vec<String>,
) -> Result<(Vec<Listener>, Vec<Listener>), ConfigError> {
    const MAP: &str = "listener.security.protocol.map";
    let map_raw = r.required(MAP)?;
    let mut map: Vec<(String, SecurityProtocol)> = Vec::new();
    for item in csv(map_raw) {
        let (name, proto) = item
            .split_once(':')
            .and_then(|(n, p)| Some((n.trim(), p.trim().parse().ok()?)))
            .ok_or_else(|| invalid(MAP, map_raw, format!("{item:?}: expected NAME:PROTOCOL")))?;
        map.push((name.to_ascii_uppercase(), proto));
    }
    // Kafka (KRaft) maps controller listeners to PLAINTEXT when the map is left at its default.
    if r.props.get(MAP).is_none() {
        for name in controller_names {
            if !map.iter().any(|(n, _)| n == name) {
                map.push((name.clone(), SecurityProtocol::Plaintext));
            }
        }
    }

    let listeners_raw = r.required("listeners")?;
    let mut listeners = Vec::new();
    for (name, host, port) in parse_endpoints("listeners", listeners_raw)? {
        let Some(&(_, security_protocol)) = map.iter().find(|(n, _)| *n == name) else {
            return Err(invalid(
                "listeners",
                listeners_raw,
                format!("no security protocol defined for listener {name} in {MAP}"),
            ));
        };
        listeners.push(Listener {
            name,
            host,
            port,
            security_protocol,
        });
    }
    let is_controller = |l: &Listener| controller_names.contains(&l.name);
    let Some(client) = listeners
        .iter()
        .find(|l| l.security_protocol == SecurityProtocol::Plaintext && !is_controller(l))
    else {
        return Err(invalid(
            "listeners",
            listeners_raw,
            "Weir needs a PLAINTEXT listener that is not a controller listener",
        ));
    };
    for l in listeners.iter().filter(|l| *l != client) {
        warnings.push(if is_controller(l) {
            format!("controller listener {l} is not opened: Weir's controller is in-process")
        } else if l.security_protocol != SecurityProtocol::Plaintext {
            format!(
                "listener {l} uses {}, which Weir does not support; it is not opened",
                l.security_protocol
            )
        } else {
            format!("listener {l} is not opened: Weir serves clients on {client} only")
        });
    }

    let advertised = match r.raw("advertised.listeners") {
        None => listeners
            .iter()
            .filter(|l| !is_controller(l))
            .cloned()
            .collect(),
        Some(raw) => {
            let mut out = Vec::new();
            for (name, host, port) in parse_endpoints("advertised.listeners", raw)? {
                let Some(bound) = listeners.iter().find(|l| l.name == name) else {
                    return Err(invalid(
                        "advertised.listeners",
                        raw,
                        format!("listener {name} is not defined in listeners"),
                    ));
                };
                if host == "0.0.0.0" || host == "::" {
                    return Err(invalid(
                        "advertised.listeners",
                        raw,
                        format!("cannot advertise the non-routable meta-address {host}"),
                    ));
                }
                out.push(Listener {
                    name,
                    host,
                    port,
                    security_protocol: bound.security_protocol,
                });
            }
            out
        }
    };
    Ok((listeners, advertised))
}

// ---------------------------------------------------------------------------------------------
// Topic configuration: the table of Kafka's topic configs and a topic's effective values live in
// `topic_config`.
// ---------------------------------------------------------------------------------------------

pub use crate::topic_config::{ConfigSynonym, TopicConfig};

#[cfg(test)]
mod tests {
    use super::*;

    fn props(text: &str) -> Properties {
        Properties::parse(text).unwrap()
    }

    fn broker(text: &str) -> (BrokerConfig, Vec<String>) {
        BrokerConfig::from_properties(&props(text)).unwrap()
    }

    fn broker_err(text: &str) -> String {
        BrokerConfig::from_properties(&props(text))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn parses_java_properties_syntax() {
        let p = props(
            "# comment\n! also a comment\n\n  a = 1  \nb:2\nc 3\nd=x=y\ne\n\
             long = one, \\\n       two, \\\n  three\n\
             esc\\=key = tab\\there\\u0041\n\
             f=ends\\\\\n# a comment ending in a backslash \\\ng=after\n",
        );
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), Some("2"));
        assert_eq!(p.get("c"), Some("3"));
        assert_eq!(p.get("d"), Some("x=y"));
        assert_eq!(p.get("e"), Some(""));
        assert_eq!(p.get("long"), Some("one, two, three"));
        assert_eq!(p.get("esc=key"), Some("tab\there\u{41}"));
        assert_eq!(p.get("f"), Some("ends\\"));
        assert_eq!(p.get("g"), Some("after"));
        assert_eq!(p.len(), 9);
    }

    #[test]
    fn continuation_lines_are_not_comments_and_later_keys_win() {
        let p = props("a=1\\\n#2\na=first\r\na=second\r\n");
        assert_eq!(p.get("a"), Some("second"));
        assert_eq!(props("x=1\\\n#2\n").get("x"), Some("1#2"));
    }

    #[test]
    fn parse_errors_carry_line_numbers() {
        let err = Properties::parse("a=1\n\n = 2\n").unwrap_err();
        assert!(matches!(err, ConfigError::Parse { line: 3, .. }), "{err}");
        let err = Properties::parse("a=\\u12\n").unwrap_err();
        assert!(err.to_string().starts_with("<input>:1:"), "{err}");
    }

    #[test]
    fn defaults_are_kafkas() {
        let (c, warnings) = broker("");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.node_id, 1);
        assert_eq!(
            c.process_roles,
            [ProcessRole::Broker, ProcessRole::Controller]
        );
        assert_eq!(
            c.client_listener().to_string(),
            "PLAINTEXT://127.0.0.1:9092"
        );
        assert_eq!(c.advertised_listeners, c.listeners);
        assert_eq!(c.log_dir(), Path::new("./weir-data"));
        assert_eq!(c.num_partitions, 1);
        assert_eq!(c.default_replication_factor, 1);
        assert!(c.auto_create_topics_enable && c.delete_topic_enable && c.log_cleaner_enable);
        assert_eq!(c.message_max_bytes, 1_048_588);
        assert_eq!(c.socket_request_max_bytes, 104_857_600);
        assert_eq!(c.queued_max_request_bytes, -1);
        assert_eq!(c.max_connections, i32::MAX);
        assert_eq!(c.log_segment_bytes, 1 << 30);
        assert_eq!(c.log_roll_ms, 168 * 3_600_000);
        assert_eq!(c.log_retention_ms, 168 * 3_600_000);
        assert_eq!(c.log_retention_bytes, -1);
        assert_eq!(c.log_retention_check_interval_ms, 300_000);
        assert_eq!(c.log_index_interval_bytes, 4096);
        assert_eq!(c.log_flush_interval_messages, i64::MAX);
        assert_eq!(c.log_flush_interval_ms, i64::MAX);
        assert_eq!(c.log_cleanup_policy, CleanupPolicy::Delete);
        assert_eq!(c.log_cleaner_delete_retention_ms, 86_400_000);
        assert_eq!(c.log_cleaner_min_compaction_lag_ms, 0);
        assert_eq!(c.log_message_timestamp_type, TimestampType::CreateTime);
        assert_eq!(c.min_insync_replicas, 1);
        assert!(!c.unclean_leader_election_enable);
        assert_eq!(c.replica_high_watermark_checkpoint_interval_ms, 5000);
        assert_eq!(c.offsets_topic_num_partitions, 50);
        assert_eq!(c.offsets_topic_replication_factor, 3);
        assert_eq!(c.offsets_retention_minutes, 10080);
        assert_eq!(c.group_initial_rebalance_delay_ms, 3000);
        assert_eq!(c.group_min_session_timeout_ms, 6000);
        assert_eq!(c.group_max_session_timeout_ms, 1_800_000);
        assert_eq!(c.transaction_state_log_num_partitions, 50);
        assert_eq!(
            (
                c.controller_quorum_voters.as_deref(),
                c.cluster_id.as_deref()
            ),
            (None, None)
        );
        let available = std::thread::available_parallelism().unwrap().get();
        assert_eq!(c.cores, available);
        assert_eq!(c.open_segments_max, 16384);
        assert_eq!(c.log_config(), LogConfig::default());
    }

    #[test]
    fn retention_precedence_is_ms_then_minutes_then_hours() {
        assert_eq!(
            broker("log.retention.hours=1").0.log_retention_ms,
            3_600_000
        );
        let both = "log.retention.hours=1\nlog.retention.minutes=2";
        assert_eq!(broker(both).0.log_retention_ms, 120_000);
        let all = format!("{both}\nlog.retention.ms=5");
        assert_eq!(broker(&all).0.log_retention_ms, 5);
        assert_eq!(broker("log.retention.ms=-7").0.log_retention_ms, -1);
        assert_eq!(broker("log.retention.hours=-1").0.log_retention_ms, -1);
        // A losing synonym is still validated, as Kafka parses every key.
        assert!(
            broker_err("log.retention.ms=5\nlog.retention.hours=x").contains("log.retention.hours")
        );
        assert_eq!(broker("log.roll.hours=2").0.log_roll_ms, 7_200_000);
        assert_eq!(broker("log.roll.hours=2\nlog.roll.ms=9").0.log_roll_ms, 9);
    }

    #[test]
    fn errors_name_the_key_and_value() {
        let e = broker_err("log.segment.bytes=abc");
        assert_eq!(
            e,
            "invalid value \"abc\" for log.segment.bytes: expected a 32-bit integer"
        );
        for (text, key) in [
            ("log.segment.bytes=13", "log.segment.bytes"),
            ("num.partitions=0", "num.partitions"),
            ("message.max.bytes=-1", "message.max.bytes"),
            ("min.insync.replicas=0", "min.insync.replicas"),
            ("auto.create.topics.enable=yes", "auto.create.topics.enable"),
            ("listeners=PLAINTEXT://:70000", "listeners"),
            ("listeners=localhost:9092", "listeners"),
            ("log.cleanup.policy=shred", "log.cleanup.policy"),
            (
                "log.message.timestamp.type=createtime",
                "log.message.timestamp.type",
            ),
            ("node.id=2\nbroker.id=3", "broker.id"),
            ("process.roles=controller", "process.roles"),
            ("queued.max.request.bytes=1000", "queued.max.request.bytes"),
            (
                "group.min.session.timeout.ms=10\ngroup.max.session.timeout.ms=5",
                "group.max",
            ),
            ("weir.cores=0", "weir.cores"),
            ("log.dirs= , ", "log.dirs"),
        ] {
            let e = broker_err(text);
            assert!(e.contains(key), "{text}: {e}");
        }
        assert!(broker_err("num.partitions=0").contains("must be at least 1"));
    }

    #[test]
    fn unknown_and_ineffective_keys_warn() {
        let (_, w) = broker("foo.bar=1\nnum.io.threads=8\nssl.keystore.location=/x\n");
        assert!(
            w.contains(&"unknown configuration 'foo.bar' ignored".to_owned()),
            "{w:?}"
        );
        let no_effect =
            |k: &str| format!("configuration '{k}' is accepted but has no effect in Weir");
        assert!(w.contains(&no_effect("num.io.threads")), "{w:?}");
        assert!(w.contains(&no_effect("ssl.keystore.location")), "{w:?}");
        assert_eq!(w.len(), 3);
    }

    #[test]
    fn kafkas_stock_kraft_file_loads() {
        let (c, w) = broker(
            "process.roles=broker,controller\nnode.id=1\n\
             controller.quorum.voters=1@localhost:9093\n\
             listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n\
             inter.broker.listener.name=PLAINTEXT\n\
             advertised.listeners=PLAINTEXT://localhost:9092\n\
             controller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL\n\
             num.network.threads=3\nlog.dirs=/tmp/kraft-combined-logs\n\
             offsets.topic.replication.factor=1\nlog.retention.hours=168\n",
        );
        assert!(w.iter().all(|w| !w.starts_with("unknown")), "{w:?}");
        assert_eq!(c.client_listener().bind_addr(), "0.0.0.0:9092");
        assert_eq!(
            c.advertised_client_listener().to_string(),
            "PLAINTEXT://localhost:9092"
        );
        assert_eq!(
            c.controller_quorum_voters.as_deref(),
            Some("1@localhost:9093")
        );
        assert_eq!(c.log_dir(), Path::new("/tmp/kraft-combined-logs"));
        assert!(w.iter().any(|w| w.contains("CONTROLLER://:9093")), "{w:?}");
    }

    #[test]
    fn listeners_parse_names_hosts_and_protocols() {
        let (c, w) = broker(
            "listeners=ssl://h:1,plaintext://[::1]:2,PLAINTEXT2://:3\n\
            listener.security.protocol.map=SSL:SSL,PLAINTEXT:PLAINTEXT,PLAINTEXT2:PLAINTEXT",
        );
        assert_eq!(c.listeners[0].security_protocol, SecurityProtocol::Ssl);
        assert_eq!(c.client_listener().bind_addr(), "[::1]:2");
        assert_eq!(c.client_listener().to_string(), "PLAINTEXT://[::1]:2");
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(broker_err("listeners=FOO://:1").contains("no security protocol"));
        assert!(broker_err("listeners=SSL://:1").contains("PLAINTEXT listener"));
        assert!(broker_err("advertised.listeners=OTHER://h:1").contains("advertised.listeners"));
        assert!(broker_err("advertised.listeners=PLAINTEXT://0.0.0.0:1").contains("meta-address"));
        // Kafka maps controller listeners to PLAINTEXT when the map is left at its default.
        let (c, _) = broker(
            "listeners=PLAINTEXT://:1,CONTROLLER://:2\ncontroller.listener.names=CONTROLLER",
        );
        assert_eq!(
            c.listeners[1].security_protocol,
            SecurityProtocol::Plaintext
        );
        assert_eq!(c.advertised_listeners.len(), 1);
    }

    #[test]
    fn relative_log_dirs_resolve_against_the_working_directory() {
        let (mut c, _) = broker("log.dirs=./weir-data,../other,/abs/dir");
        c.resolve_relative_paths(Path::new("/home/u/weir"));
        assert_eq!(
            c.log_dirs,
            [
                PathBuf::from("/home/u/weir/weir-data"),
                PathBuf::from("/home/u/weir/../other"),
                PathBuf::from("/abs/dir"),
            ]
        );
        let cli = Cli {
            log_dirs: Some("rel-data".into()),
            ..Cli::default()
        };
        let (loaded, _) = load(&cli).unwrap();
        assert!(loaded.log_dir().is_absolute());
        assert!(loaded.log_dir().ends_with("rel-data"));
    }

    #[test]
    fn log_dirs_wins_over_log_dir() {
        assert_eq!(broker("log.dir=/a").0.log_dir(), Path::new("/a"));
        let (c, w) = broker("log.dir=/a\nlog.dirs=/b, /c");
        assert_eq!(c.log_dirs, [PathBuf::from("/b"), PathBuf::from("/c")]);
        assert_eq!(w.len(), 1, "{w:?}");
    }

    #[test]
    fn per_core_budgets() {
        let (c, _) = broker("weir.cores=4\nweir.log.open.segments.max=100");
        assert_eq!(
            c.queued_request_bytes_per_core(),
            QUEUED_REQUEST_BYTES_PER_CORE_DEFAULT
        );
        assert_eq!(c.open_segments_per_core(), 25);
        let (c, _) = broker("weir.cores=4\nqueued.max.request.bytes=1000000000");
        assert_eq!(c.queued_request_bytes_per_core(), 250_000_000);
        let (c, _) = broker("weir.cores=4\nqueued.max.request.bytes=104857600");
        assert_eq!(c.queued_request_bytes_per_core(), 104_857_600);
    }

    #[test]
    fn file_then_overrides_then_shorthands() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.properties");
        std::fs::write(
            &path,
            "num.partitions=3\nlog.segment.bytes=1000\nlisteners=PLAINTEXT://:1\n",
        )
        .unwrap();
        let cli = Cli::try_parse_from([
            "weir",
            "--config",
            path.to_str().unwrap(),
            "--override",
            "num.partitions=5",
            "--override",
            "listeners=PLAINTEXT://:2",
            "--listeners",
            "PLAINTEXT://:3",
            "--cores",
            "1",
        ])
        .unwrap();
        let (c, w) = load(&cli).unwrap();
        assert_eq!(c.num_partitions, 5);
        assert_eq!(c.log_segment_bytes, 1000);
        assert_eq!(c.client_listener().port, 3);
        assert_eq!(c.cores, 1);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("--listeners"));

        assert!(Cli::try_parse_from(["weir", "--override", "novalue"]).is_err());
        assert!(Cli::try_parse_from(["weir", "--cores", "0"]).is_err());
        let missing = Cli {
            config: Some(dir.path().join("nope")),
            ..Cli::default()
        };
        assert!(matches!(load(&missing), Err(ConfigError::Io { .. })));
    }

    #[test]
    fn help_renders() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let help = Cli::command().render_long_help().to_string();
        for flag in [
            "--config",
            "--override",
            "--listeners",
            "--log-dirs",
            "--cores",
        ] {
            assert!(help.contains(flag), "{help}");
        }
    }

    #[test]
    fn topic_config_falls_back_to_broker_values() {
        let (b, _) = broker("log.retention.minutes=10\nlog.segment.bytes=2048\nmessage.max.bytes=500\nlog.flush.interval.ms=7");
        let t = b.topic_defaults();
        assert_eq!(t.retention_ms, 600_000);
        assert_eq!(t.segment_bytes, 2048);
        assert_eq!(t.max_message_bytes, 500);
        assert_eq!(t.flush_ms, 7);
        let log = t.to_log_config();
        assert_eq!(
            (log.retention_ms, log.segment_bytes, log.max_message_bytes),
            (600_000, 2048, 500)
        );
    }

    #[test]
    fn topic_apply_validates_and_resets() {
        let b = BrokerConfig::default();
        let mut t = b.topic_defaults();
        t.apply("retention.ms", Some("1000")).unwrap();
        t.apply("cleanup.policy", Some("delete,compact")).unwrap();
        assert_eq!(t.retention_ms, 1000);
        assert_eq!(t.cleanup_policy, CleanupPolicy::CompactDelete);
        t.apply("retention.ms", None).unwrap();
        assert_eq!(t.retention_ms, b.log_retention_ms);

        let before = t.clone();
        let err = t.apply("segment.bytes", Some("13")).unwrap_err();
        assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "segment.bytes"));
        assert!(t.apply("retention.ms", Some("-2")).is_err());
        assert!(t
            .apply("unclean.leader.election.enable", Some("1"))
            .is_err());
        assert_eq!(t, before);
        assert!(matches!(
            t.apply("nope", Some("1")),
            Err(ConfigError::UnknownKey { .. })
        ));
        // Kafka's topic configs are all accepted (compression.type among them).
        t.apply("compression.type", Some("lz4")).unwrap();
        // Every broker-derived default must be a valid topic value, or a reset could fail.
        for d in crate::topic_config::TOPIC_CONFIGS {
            t.apply(d.name, None).unwrap();
        }
        assert_eq!(t, b.topic_defaults());
    }

    #[test]
    fn describe_reports_sources() {
        let (b, _) = broker("log.retention.hours=24\nnum.partitions=3");
        let overrides = BTreeMap::from([("segment.bytes".to_owned(), "4096".to_owned())]);
        let t = TopicConfig::with_overrides(&b, &overrides).unwrap();
        let entries = t.describe(&overrides);
        let public = crate::topic_config::TOPIC_CONFIGS
            .iter()
            .filter(|d| !d.internal)
            .count();
        assert_eq!(entries.len(), public);
        let find = |name: &str| entries.iter().find(|e| e.name == name).unwrap().clone();
        let seg = find("segment.bytes");
        assert_eq!(
            (seg.value.as_deref(), seg.source),
            (Some("4096"), ConfigSource::DynamicTopic)
        );
        // Kafka describes retention.ms as a default when only log.retention.hours is set (its
        // synonym list starts at log.retention.ms; see topic_synonyms).
        let ret = find("retention.ms");
        assert_eq!(
            (ret.value.as_deref(), ret.source),
            (Some("86400000"), ConfigSource::DefaultConfig)
        );
        assert_eq!(find("flush.ms").source, ConfigSource::DefaultConfig);
        assert!(entries.iter().all(|e| !e.read_only && !e.sensitive));

        let entries = b.describe();
        let find = |name: &str| entries.iter().find(|e| e.name == name).unwrap().clone();
        assert_eq!(find("num.partitions").source, ConfigSource::StaticBroker);
        assert_eq!(find("num.partitions").value.as_deref(), Some("3"));
        assert_eq!(
            find("log.segment.bytes").source,
            ConfigSource::DefaultConfig
        );
        assert_eq!(
            find("log.segment.bytes").value.as_deref(),
            Some("1073741824")
        );
        assert_eq!(find("log.retention.ms").value, None);
        assert_eq!(find("weir.cores").value, Some(b.cores.to_string()));
        assert!(entries.iter().all(|e| e.read_only));
        assert_eq!(ConfigSource::StaticBroker as i8, 4);
    }

    #[test]
    fn cpu_lists_choose_the_pinned_set() {
        assert_eq!(parse_cpu_list("0,2-3").unwrap(), vec![0, 2, 3]);
        assert_eq!(parse_cpu_list(" 5 ").unwrap(), vec![5]);
        for bad in ["", "a", "3-1", "1,1", "0-"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad:?}");
        }
        let (c, _) = broker("weir.cpus=0-1");
        assert_eq!((c.cores, c.cpus.clone()), (2, Some(vec![0, 1])));
        let (c, _) = broker("weir.cpus=1\nweir.cores=3");
        assert_eq!(
            c.cores, 3,
            "an explicit count wins; executors wrap over the CPUs"
        );
    }
}
