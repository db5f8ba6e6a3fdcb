//! Configuration text: `server.properties` as `java.util.Properties::load` reads it, then
//! `--override KEY=VALUE` arguments parsed by the real command line (`weir::config::Cli`), then
//! the broker's validation of every known key (`BrokerConfig::from_properties`, which checks the
//! compression keys it shares with topics through `check_broker_value`), then topic configs as
//! CreateTopics / AlterConfigs / IncrementalAlterConfigs carry them from clients
//! (`TopicConfig::with_overrides`, `apply`, `to_log_config`).
//!
//! Input: two bytes giving the length of the properties text, that text, then override lines
//! (one `--override` argument per line; each also tried as a topic config `key=value`).
#![no_main]

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use weir::config::{BrokerConfig, Cli, Properties, TopicConfig};

const BASE: usize = 1 << 20;
const PER_BYTE: usize = 256;

fuzz_target!(|data: &[u8]| {
    let (props_text, overrides) = weir_fuzz::split_u16(data);
    let props_text = String::from_utf8_lossy(props_text);
    let overrides = String::from_utf8_lossy(overrides);
    let _guard = weir_fuzz::bound(data.len(), BASE, PER_BYTE);
    let Ok(mut props) = Properties::parse(&props_text) else {
        return;
    };
    let mut args = vec!["weir".to_string()];
    for line in overrides.lines().take(64) {
        args.push("--override".into());
        args.push(line.to_string());
    }
    if let Ok(cli) = Cli::try_parse_from(&args) {
        for (k, v) in &cli.overrides {
            props.set(k, v);
        }
    }
    let broker = match BrokerConfig::from_properties(&props) {
        Ok((c, _warnings)) => c,
        Err(e) => {
            let _ = e.to_string();
            match BrokerConfig::from_properties(&Properties::new()) {
                Ok((c, _)) => c,
                Err(e) => panic!("the defaults must load: {e}"),
            }
        }
    };
    let _ = (broker.log_config(), broker.topic_defaults());
    let mut topic_overrides = BTreeMap::new();
    let mut topic = TopicConfig::from_broker(&broker);
    for line in overrides.lines().take(64) {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let _ = topic.apply(k, Some(v));
        let _ = topic.apply(k, None);
        topic_overrides.insert(k.to_string(), v.to_string());
    }
    if let Ok(t) = TopicConfig::with_overrides(&broker, &topic_overrides) {
        let _ = t.to_log_config();
        let _ = t.describe(&topic_overrides);
    }
});
