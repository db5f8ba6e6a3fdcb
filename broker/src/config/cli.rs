//! The `weir` command line (Kafka's `kafka-server-start.sh` model: a properties file plus
//! `--override key=value`) and [`load`], which turns it into a [`BrokerConfig`].

use std::path::PathBuf;

use clap::Parser;

use super::{BrokerConfig, ConfigError, Properties};

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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(c.client_listener().unwrap().port, 3);
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
}
