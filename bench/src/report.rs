//! Latency histograms (HdrHistogram, microsecond resolution), percentile tables, `.hgrm`
//! percentile distributions and the JSON summary.

use anyhow::Context;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// Latencies in microseconds, 1 µs to 1 h, 3 significant digits.
pub type Latency = Histogram<u64>;

pub fn new_latency() -> Latency {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

pub fn record(h: &mut Latency, d: Duration) {
    let us = (d.as_micros() as u64).max(1);
    h.saturating_record(us);
}

/// The percentiles every report shows, in milliseconds.
pub const PERCENTILES: [(&str, f64); 6] = [
    ("p50", 50.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
    ("p99.99", 99.99),
    ("max", 100.0),
];

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

pub fn percentiles_ms(h: &Latency) -> Vec<(&'static str, f64)> {
    PERCENTILES
        .iter()
        .map(|&(name, q)| {
            let v = if q >= 100.0 {
                h.max()
            } else {
                h.value_at_percentile(q)
            };
            (name, ms(v))
        })
        .collect()
}

/// A one-table text rendering: count, mean and the percentiles, in ms.
pub fn latency_table(title: &str, h: &Latency) -> String {
    let mut s = String::new();
    if h.is_empty() {
        let _ = writeln!(s, "{title}: no samples");
        return s;
    }
    let _ = writeln!(
        s,
        "{title} (ms, {} samples, mean {:.3}):",
        h.len(),
        h.mean() / 1000.0
    );
    let mut head = String::new();
    let mut vals = String::new();
    for (name, v) in percentiles_ms(h) {
        let _ = write!(head, "{name:>10}");
        let _ = write!(vals, "{v:>10.3}");
    }
    let _ = writeln!(s, "{head}\n{vals}");
    s
}

/// HdrHistogram's classic percentile distribution text (values in ms), as read by the
/// HdrHistogram plotter.
pub fn hgrm(h: &Latency) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if h.is_empty() {
        return s;
    }
    for v in h.iter_quantiles(5) {
        let q = v.quantile_iterated_to();
        let inv = if q < 1.0 {
            format!("{:>14.2}", 1.0 / (1.0 - q))
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "{:>12.3} {:>14.12} {:>10} {}",
            ms(v.value_iterated_to()),
            q,
            v.count_since_last_iteration(),
            inv
        );
    }
    let _ = writeln!(
        s,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        h.mean() / 1000.0,
        h.stdev() / 1000.0
    );
    let _ = writeln!(
        s,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        ms(h.max()),
        h.len()
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        // the counts array holds (buckets + 1) half-ranges of sub-buckets
        2 * h.distinct_values() / (h.buckets() as usize + 1)
    );
    s
}

/// Latency as a JSON object of percentiles (ms), count and mean.
pub fn latency_json(h: &Latency) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("count".into(), json!(h.len()));
    if !h.is_empty() {
        m.insert("mean_ms".into(), json!(h.mean() / 1000.0));
        for (name, v) in percentiles_ms(h) {
            m.insert(format!("{name}_ms"), json!(v));
        }
    }
    Value::Object(m)
}

/// Messages and bytes over a measured window.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    pub messages: u64,
    pub bytes: u64,
    pub seconds: f64,
}

impl Throughput {
    pub fn msgs_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.messages as f64 / self.seconds
        } else {
            0.0
        }
    }
    /// MB/s with MB = 10^6 bytes.
    pub fn mb_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.bytes as f64 / self.seconds / 1e6
        } else {
            0.0
        }
    }
    pub fn line(&self, what: &str) -> String {
        format!(
            "{what}: {} messages, {:.1} MB in {:.2} s = {:.0} msgs/s, {:.2} MB/s",
            self.messages,
            self.bytes as f64 / 1e6,
            self.seconds,
            self.msgs_per_sec(),
            self.mb_per_sec()
        )
    }
    pub fn json(&self) -> Value {
        json!({
            "messages": self.messages,
            "bytes": self.bytes,
            "seconds": self.seconds,
            "msgs_per_sec": self.msgs_per_sec(),
            "mb_per_sec": self.mb_per_sec(),
        })
    }
}

/// Writes `summary.json` and one `<name>.hgrm` per histogram into `dir`.
pub fn write_out(dir: &Path, summary: &Value, hists: &[(&str, &Latency)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(summary)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    for (name, h) in hists {
        let path = dir.join(format!("{name}.hgrm"));
        std::fs::write(&path, hgrm(h)).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Latency {
        let mut h = new_latency();
        for us in 1..=10_000u64 {
            h.record(us).unwrap();
        }
        h
    }

    #[test]
    fn percentiles_are_in_ms() {
        let p = percentiles_ms(&sample());
        let get = |n: &str| p.iter().find(|(k, _)| *k == n).unwrap().1;
        assert!((get("p50") - 5.0).abs() < 0.01, "{}", get("p50"));
        assert!((get("p99") - 9.9).abs() < 0.01);
        assert!((get("max") - 10.0).abs() < 0.01);
    }

    #[test]
    fn table_and_hgrm_render() {
        let h = sample();
        let t = latency_table("produce ack latency", &h);
        assert!(t.contains("10000 samples"));
        assert!(t.contains("p99.99") && t.contains("5.003"));
        let g = hgrm(&h);
        assert!(g.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"));
        assert!(g.contains("#[Max     =       10.007, Total count    =        10000]"));
        assert!(g.contains("SubBuckets     =         2048]"), "{g}");
        let last_value_line = g.lines().rfind(|l| !l.starts_with('#')).unwrap();
        assert!(last_value_line.contains("1.000000000000"));
        assert_eq!(latency_table("x", &new_latency()), "x: no samples\n");
    }

    #[test]
    fn throughput_math_and_json() {
        let t = Throughput {
            messages: 2_000,
            bytes: 2_000_000,
            seconds: 2.0,
        };
        assert_eq!(t.msgs_per_sec(), 1000.0);
        assert_eq!(t.mb_per_sec(), 1.0);
        assert_eq!(t.json()["mb_per_sec"], json!(1.0));
        let zero = Throughput {
            messages: 0,
            bytes: 0,
            seconds: 0.0,
        };
        assert_eq!(zero.msgs_per_sec(), 0.0);
    }
}
