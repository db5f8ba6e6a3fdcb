//! What a command prints: aligned tables for people, JSON for scripts, from the same values so
//! the two never disagree.
//!
//! A [`Report`] is a list of sections (tables, key/value blocks, warnings). Text output prints
//! them in order; JSON output is the single section itself when there is one (a table is an array
//! of objects keyed by column), or an object keyed by section name otherwise.

use serde_json::{json, Map, Value};
use std::fmt::Write as _;

/// One cell: typed, so JSON gets numbers and nulls, and numbers align right in text.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    Bool(bool),
    List(Vec<i64>),
    /// Not known or not applicable: `-` in text, `null` in JSON.
    None,
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Bool(b) => b.to_string(),
            Cell::List(l) => l
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(","),
            Cell::None => "-".into(),
        }
    }

    fn is_numeric(&self) -> bool {
        matches!(self, Cell::Int(_))
    }

    pub fn json(&self) -> Value {
        match self {
            Cell::Text(s) => json!(s),
            Cell::Int(i) => json!(i),
            Cell::Bool(b) => json!(b),
            Cell::List(l) => json!(l),
            Cell::None => Value::Null,
        }
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(s.to_string())
    }
}
impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Text(s)
    }
}
impl From<i64> for Cell {
    fn from(i: i64) -> Self {
        Cell::Int(i)
    }
}
impl From<i32> for Cell {
    fn from(i: i32) -> Self {
        Cell::Int(i.into())
    }
}
impl From<usize> for Cell {
    fn from(i: usize) -> Self {
        Cell::Int(i as i64)
    }
}
impl From<bool> for Cell {
    fn from(b: bool) -> Self {
        Cell::Bool(b)
    }
}
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(o: Option<T>) -> Self {
        o.map_or(Cell::None, Into::into)
    }
}

/// Columns named as Kafka's tools name them (`LOG-END-OFFSET`); JSON keys are the same names in
/// snake case (`log_end_offset`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(columns: &[&str]) -> Self {
        Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.columns.len(), "row width");
        self.rows.push(row);
    }

    /// Columns padded to their widest cell, two spaces apart; numeric columns align right.
    /// Trailing spaces are trimmed so the output diffs cleanly.
    pub fn render(&self) -> String {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(Cell::text).collect())
            .collect();
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                cells
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([self.columns[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let numeric: Vec<bool> = (0..self.columns.len())
            .map(|i| {
                self.rows.iter().any(|r| r[i].is_numeric())
                    && self
                        .rows
                        .iter()
                        .all(|r| r[i].is_numeric() || r[i] == Cell::None)
            })
            .collect();
        let mut out = String::new();
        let mut line = |values: &[String]| {
            let mut l = String::new();
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    l.push_str("  ");
                }
                let pad = widths[i] - v.chars().count();
                if numeric[i] {
                    l.extend(std::iter::repeat_n(' ', pad));
                    l.push_str(v);
                } else {
                    l.push_str(v);
                    l.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&self.columns);
        for r in &cells {
            line(r);
        }
        out
    }

    pub fn json(&self) -> Value {
        let keys: Vec<String> = self.columns.iter().map(|c| json_key(c)).collect();
        Value::Array(
            self.rows
                .iter()
                .map(|r| {
                    let m: Map<String, Value> =
                        keys.iter().cloned().zip(r.iter().map(Cell::json)).collect();
                    Value::Object(m)
                })
                .collect(),
        )
    }
}

/// `LOG-END-OFFSET` → `log_end_offset`, `#PARTITIONS` → `partitions`, `PartitionCount` →
/// `partition_count`.
pub fn json_key(column: &str) -> String {
    let mut out = String::with_capacity(column.len() + 4);
    let mut prev_lower = false;
    for c in column.trim_start_matches('#').chars() {
        if c == '-' || c == ' ' {
            out.push('_');
        } else {
            if c.is_ascii_uppercase() && prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Body {
    Table(Table),
    Fields(Vec<(String, Cell)>),
    Lines(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
struct Section {
    key: String,
    title: Option<String>,
    body: Body,
}

/// Everything a command prints on stdout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    sections: Vec<Section>,
    warnings: Vec<String>,
}

impl Report {
    pub fn new() -> Self {
        Self::default()
    }

    /// A table; `title` is printed above it in text output.
    pub fn table(&mut self, key: &str, title: Option<String>, table: Table) -> &mut Self {
        self.sections.push(Section {
            key: key.into(),
            title,
            body: Body::Table(table),
        });
        self
    }

    /// `Name: value` lines in text, an object in JSON.
    pub fn fields(&mut self, key: &str, fields: Vec<(&str, Cell)>) -> &mut Self {
        self.sections.push(Section {
            key: key.into(),
            title: None,
            body: Body::Fields(fields.into_iter().map(|(k, v)| (k.into(), v)).collect()),
        });
        self
    }

    /// Sentences, e.g. "Created topic t." (a list of strings in JSON).
    pub fn lines(&mut self, key: &str, lines: Vec<String>) -> &mut Self {
        self.sections.push(Section {
            key: key.into(),
            title: None,
            body: Body::Lines(lines),
        });
        self
    }

    /// A warning: printed last in text (prefixed `WARNING:`), a `warnings` array in JSON.
    pub fn warn(&mut self, w: String) -> &mut Self {
        self.warnings.push(w);
        self
    }

    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.sections.iter().enumerate() {
            if i > 0 && !matches!(s.body, Body::Lines(_)) {
                out.push('\n');
            }
            if let Some(t) = &s.title {
                let _ = writeln!(out, "{t}");
            }
            match &s.body {
                Body::Table(t) => out.push_str(&t.render()),
                Body::Fields(f) => {
                    let w = f.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
                    for (k, v) in f {
                        let _ = writeln!(out, "{:<w$}  {}", format!("{k}:"), v.text(), w = w + 1);
                    }
                }
                Body::Lines(l) => {
                    for line in l {
                        let _ = writeln!(out, "{line}");
                    }
                }
            }
        }
        for w in &self.warnings {
            let _ = writeln!(out, "WARNING: {w}");
        }
        out
    }

    pub fn json(&self) -> Value {
        let value = |s: &Section| match &s.body {
            Body::Table(t) => t.json(),
            Body::Fields(f) => {
                Value::Object(f.iter().map(|(k, v)| (json_key(k), v.json())).collect())
            }
            Body::Lines(l) => json!(l),
        };
        if self.sections.len() == 1 && self.warnings.is_empty() {
            return value(&self.sections[0]);
        }
        let mut m = Map::new();
        for s in &self.sections {
            m.insert(s.key.clone(), value(s));
        }
        if !self.warnings.is_empty() {
            m.insert("warnings".into(), json!(self.warnings));
        }
        Value::Object(m)
    }

    pub fn render(&self, as_json: bool) -> String {
        if as_json {
            format!("{}\n", self.json())
        } else {
            self.render_text()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(&["TOPIC", "PARTITION", "LOG-END-OFFSET", "REPLICAS"]);
        t.push(vec![
            "orders".into(),
            0.into(),
            1234i64.into(),
            Cell::List(vec![1, 2]),
        ]);
        t.push(vec!["o".into(), 10.into(), Cell::None, Cell::List(vec![1])]);
        t
    }

    #[test]
    fn columns_align_and_numbers_sit_right() {
        assert_eq!(
            sample().render(),
            "TOPIC   PARTITION  LOG-END-OFFSET  REPLICAS\n\
             orders          0            1234  1,2\n\
             o              10               -  1\n"
        );
    }

    #[test]
    fn empty_table_prints_its_header() {
        assert_eq!(Table::new(&["GROUP", "STATE"]).render(), "GROUP  STATE\n");
    }

    #[test]
    fn json_uses_snake_case_keys_and_typed_values() {
        assert_eq!(
            sample().json(),
            json!([
                {"topic": "orders", "partition": 0, "log_end_offset": 1234, "replicas": [1, 2]},
                {"topic": "o", "partition": 10, "log_end_offset": null, "replicas": [1]},
            ])
        );
        assert_eq!(json_key("#PARTITIONS"), "partitions");
        assert_eq!(json_key("TopicId"), "topic_id");
    }

    #[test]
    fn a_report_of_one_section_is_that_section_in_json() {
        let mut r = Report::new();
        r.table("topics", None, sample());
        assert_eq!(r.json(), sample().json());
        r.fields(
            "summary",
            vec![("Topic", "orders".into()), ("PartitionCount", 2.into())],
        );
        r.warn("too many".into());
        let j = r.json();
        assert_eq!(
            j["summary"],
            json!({"topic": "orders", "partition_count": 2})
        );
        assert_eq!(j["warnings"], json!(["too many"]));
        let text = r.render_text();
        assert!(text.contains("Topic:           orders\n"), "{text}");
        assert!(text.ends_with("WARNING: too many\n"), "{text}");
    }
}
