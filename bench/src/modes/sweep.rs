//! `sweep`: the same produce workload over partition counts; throughput and ack latency for each.

use super::emit;
use super::prepare_topic;
use super::produce::{config_json, run_fleet, validate};
use crate::cli::SweepArgs;
use crate::report::{self, Throughput};
use serde_json::json;
use std::fmt::Write as _;

pub fn run(args: SweepArgs) -> anyhow::Result<bool> {
    validate(&args.producer)?;
    anyhow::ensure!(!args.partition_counts.is_empty(), "no --partition-counts");
    let mut rows = Vec::new();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:>10} {:>12} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "partitions", "msgs/s", "MB/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "failed"
    );
    let mut ok = true;
    let mut curve = Vec::new();
    for &n in &args.partition_counts {
        let mut c = args.common.clone();
        c.partitions = n;
        c.topic = format!("{}-p{n}", args.common.topic);
        let layout = prepare_topic(&c)?;
        let (s, measure_start) = run_fleet(&c, &args.producer, layout)?;
        let t = Throughput {
            messages: s.measured_messages,
            bytes: s.measured_bytes,
            seconds: s.last_ack.map_or(0.0, |l| {
                l.saturating_duration_since(measure_start).as_secs_f64()
            }),
        };
        let p = report::percentiles_ms(&s.ack);
        let get = |k: &str| p.iter().find(|(n, _)| *n == k).map_or(0.0, |x| x.1);
        let _ = writeln!(
            text,
            "{:>10} {:>12.0} {:>10.2} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>8}",
            n,
            t.msgs_per_sec(),
            t.mb_per_sec(),
            get("p50"),
            get("p99"),
            get("p99.9"),
            get("max"),
            s.failed
        );
        for (name, k) in &s.errors.0 {
            let _ = writeln!(text, "{:>10} error {name}: {k}", "");
        }
        ok &= s.failed == 0 && s.fatal.is_none();
        curve.push((n, t.mb_per_sec(), get("p99")));
        rows.push(json!({
            "partitions": n,
            "throughput": t.json(),
            "ack_latency": report::latency_json(&s.ack),
            "failed": s.failed,
            "errors": s.errors.0,
            "fatal": s.fatal,
        }));
        if let Some(dir) = &args.common.out {
            report::write_out(
                &dir.join(format!("p{n}")),
                rows.last().expect("just pushed"),
                &[("produce-ack-latency", &s.ack)],
            )?;
        }
    }
    let summary = json!({
        "mode": "sweep",
        "ok": ok,
        "config": config_json(&args.common, &args.producer),
        "sweep": rows,
    });
    if let Some(dir) = &args.common.out {
        report::write_out(dir, &summary, &[])?;
        if args.common.plot {
            crate::plot::sweep(&dir.join("sweep.svg"), &curve)?;
        }
    }
    emit(&args.common, &text, &summary);
    Ok(ok)
}
