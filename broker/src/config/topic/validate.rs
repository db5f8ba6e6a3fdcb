//! Checking a topic config's value as Kafka's `ConfigDef` does, and describing it as Kafka does.

use super::defs::{topic_config_def, Check, TopicConfigDef};
use crate::config::{invalid, parse_bool, parse_num, ConfigError, ConfigType};

/// Parses and checks a value as Kafka's `ConfigDef` does for `def`, returning it as Kafka
/// describes it (`ConfigDef.convertToString` of the parsed value: lists joined by commas, trimmed
/// strings, canonical booleans and numbers).
pub fn check_value(def: &TopicConfigDef, raw: &str) -> Result<String, ConfigError> {
    let key = def.name;
    let raw = raw.trim();
    let bad = |reason: String| invalid(key, raw, reason);
    let number = |n: i64| -> Result<String, ConfigError> {
        match def.check {
            Check::AtLeast(min) if n < min => Err(bad(format!("Value must be at least {min}"))),
            Check::Between(min, _) if n < min => Err(bad(format!("Value must be at least {min}"))),
            Check::Between(_, max) if n > max => {
                Err(bad(format!("Value must be no more than {max}")))
            }
            Check::GzipLevel if !(1..=9).contains(&n) && n != -1 => Err(bad(
                "Value must be between 1 and 9 or equal to -1".to_owned(),
            )),
            _ => Ok(n.to_string()),
        }
    };
    match def.ty {
        ConfigType::Int | ConfigType::Short => {
            let n: i32 = parse_num(key, raw, i32::MIN, "a 32-bit integer")?;
            number(i64::from(n))
        }
        ConfigType::Long => number(parse_num(key, raw, i64::MIN, "a 64-bit integer")?),
        ConfigType::Double => {
            let v: f64 = raw
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| bad("expected a number".to_owned()))?;
            if matches!(def.check, Check::Ratio) && !(0.0..=1.0).contains(&v) {
                return Err(bad(if v < 0.0 {
                    "Value must be at least 0".to_owned()
                } else {
                    "Value must be no more than 1".to_owned()
                }));
            }
            Ok(java_double(v))
        }
        ConfigType::Boolean => Ok(parse_bool(key, raw)?.to_string()),
        ConfigType::String => match def.check {
            Check::OneOf(allowed) if !allowed.contains(&raw) => Err(bad(format!(
                "String must be one of: {}",
                allowed.join(", ")
            ))),
            _ => Ok(raw.to_owned()),
        },
        ConfigType::List => {
            // Kafka splits on commas with the whitespace around them; "" is the empty list.
            let items: Vec<&str> = if raw.is_empty() {
                Vec::new()
            } else {
                raw.split(',').map(str::trim).collect()
            };
            match def.check {
                Check::ListOf(allowed) => {
                    for (i, item) in items.iter().enumerate() {
                        if item.is_empty() {
                            return Err(bad(format!(
                                "Configuration '{key}' values must not be empty."
                            )));
                        }
                        if items[..i].contains(item) {
                            return Err(bad(format!(
                                "Configuration '{key}' values must not be duplicated."
                            )));
                        }
                        if !allowed.contains(item) {
                            return Err(invalid(
                                key,
                                item,
                                format!("String must be one of: {}", allowed.join(", ")),
                            ));
                        }
                    }
                }
                Check::ThrottledReplicas => {
                    let pair = |s: &str| {
                        s.is_empty()
                            || s.split_once(':').is_some_and(|(p, b)| {
                                [p, b]
                                    .iter()
                                    .all(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
                            })
                    };
                    if !(items.iter().all(|s| pair(s)) || items.concat() == "*") {
                        return Err(bad(format!("{key} must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...")));
                    }
                }
                _ => {}
            }
            Ok(items.join(","))
        }
    }
}

/// Checks a broker config that has the same name and validator as a topic config (the
/// compression configs), returning it as described.
pub fn check_broker_value(key: &str, raw: &str) -> Result<String, ConfigError> {
    let def = topic_config_def(key).expect("a broker key shared with a topic config");
    check_value(def, raw)
}

/// Java's `Double.toString` for the values a ratio takes: an integral value keeps ".0".
fn java_double(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e7 {
        format!("{v:.1}")
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_and_described_as_kafka_does() {
        let d = |n| topic_config_def(n).unwrap();
        let ok = |n, v| check_value(d(n), v).unwrap();
        let err = |n, v| check_value(d(n), v).unwrap_err().to_string();
        assert_eq!(ok("cleanup.policy", " compact , delete "), "compact,delete");
        assert_eq!(ok("cleanup.policy", ""), "");
        assert!(err("cleanup.policy", "delete,delete").contains("duplicated"));
        assert!(err("cleanup.policy", "delete,").contains("must not be empty"));
        assert!(err("cleanup.policy", "shred").contains("String must be one of: compact, delete"));
        assert_eq!(ok("preallocate", "TRUE"), "true");
        assert_eq!(ok("min.cleanable.dirty.ratio", "1"), "1.0");
        assert_eq!(ok("min.cleanable.dirty.ratio", "0.25"), "0.25");
        assert!(err("min.cleanable.dirty.ratio", "1.5").contains("no more than 1"));
        assert_eq!(ok("compression.type", "zstd"), "zstd");
        assert!(err("compression.type", "ZSTD").contains("String must be one of"));
        assert_eq!(ok("compression.gzip.level", "-1"), "-1");
        assert!(err("compression.gzip.level", "0").contains("between 1 and 9 or equal to -1"));
        assert!(err("compression.lz4.level", "18").contains("no more than 17"));
        assert_eq!(ok("compression.zstd.level", "-131072"), "-131072");
        assert!(err("compression.zstd.level", "23").contains("no more than 22"));
        assert!(err("segment.bytes", "2147483648").contains("32-bit"));
        assert!(err("retention.ms", "-2").contains("at least -1"));
        assert_eq!(ok("retention.bytes", "-5"), "-5");
        assert_eq!(ok("leader.replication.throttled.replicas", "*"), "*");
        assert_eq!(
            ok("follower.replication.throttled.replicas", "0:1, 1:2"),
            "0:1,1:2"
        );
        assert!(err("leader.replication.throttled.replicas", "0:x").contains("[partitionId]"));
        assert!(err("message.timestamp.type", "createtime").contains("CreateTime"));
    }
}
