//! `key=value` arguments (`--config`, `--property`) and the escapes Kafka's console tools accept
//! in separator properties.

use crate::error::{AdminError, Result};

/// Splits `key=value` at the first `=`. The value may be empty (`null.marker=`); the key may not.
pub fn parse_pair(arg: &str) -> Result<(String, String)> {
    match arg.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(AdminError::Invalid(format!(
            "expected key=value, got '{arg}'"
        ))),
    }
}

pub fn parse_pairs(args: &[String]) -> Result<Vec<(String, String)>> {
    args.iter().map(|a| parse_pair(a)).collect()
}

/// `true`/`false` as Kafka's tools read boolean properties (case-insensitive).
pub fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(AdminError::Invalid(format!(
            "property {key} must be true or false, got '{value}'"
        ))),
    }
}

/// Turns `\t`, `\n`, `\r` and `\\` written on a command line into the characters, so
/// `--property key.separator='\t'` means a tab as it does for Kafka's tools.
pub fn unescape(s: &str) -> String {
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
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Refuses a property this tool does not know, naming the ones it does: a typo must not be
/// silently ignored.
pub fn unknown(key: &str, known: &[&str]) -> AdminError {
    AdminError::Invalid(format!(
        "unknown property '{key}'; known: {}",
        known.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split_at_the_first_equals() {
        assert_eq!(
            parse_pair("retention.ms=1000").unwrap(),
            ("retention.ms".into(), "1000".into())
        );
        assert_eq!(parse_pair("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(
            parse_pair("null.marker=").unwrap(),
            ("null.marker".into(), "".into())
        );
        assert!(parse_pair("novalue").is_err());
        assert!(parse_pair("=x").is_err());
    }

    #[test]
    fn escapes_become_characters() {
        assert_eq!(unescape(r"\t"), "\t");
        assert_eq!(unescape(r"a\nb\\c"), "a\nb\\c");
        assert_eq!(unescape(r"\x"), r"\x");
        assert_eq!(unescape(":"), ":");
    }

    #[test]
    fn booleans_are_strict() {
        assert!(parse_bool("parse.key", "TRUE").unwrap());
        assert!(!parse_bool("parse.key", "false").unwrap());
        assert!(parse_bool("parse.key", "yes").is_err());
    }
}
