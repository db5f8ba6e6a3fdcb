//! Java `Properties` files as `java.util.Properties::load` reads them: Kafka's `server.properties`
//! syntax (comments, continuation lines, escapes, `=`/`:`/blank separators).

use std::collections::BTreeMap;
use std::path::Path;

use super::ConfigError;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn props(text: &str) -> Properties {
        Properties::parse(text).unwrap()
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
}
