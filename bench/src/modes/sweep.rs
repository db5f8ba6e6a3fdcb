//! `sweep`: the same produce workload over partition counts; throughput and ack latency for
//! each, optionally over several rounds that alternate the order of the counts.

use super::emit;
use super::prepare_topic;
use super::produce::{config_json, run_fleet, validate};
use super::producer::ProducerStats;
use crate::cli::SweepArgs;
use crate::report::{self, Throughput};
use serde_json::json;
use std::fmt::Write as _;
use std::time::Duration;

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
    // Each count's visits merged: stats, measured seconds, and each visit's MB/s.
    let mut merged: Vec<(ProducerStats, f64, Vec<f64>)> = args
        .partition_counts
        .iter()
        .map(|_| (ProducerStats::default(), 0.0, Vec::new()))
        .collect();
    let mut ok = true;
    if !args.settle.is_zero() {
        let mut c = args.common.clone();
        c.partitions = args.partition_counts[0];
        c.topic = format!("{}-settle", args.common.topic);
        c.warmup = Duration::ZERO;
        c.duration = Some(args.settle);
        c.messages = None;
        let layout = prepare_topic(&c)?;
        let (s, start) = run_fleet(&c, &args.producer, layout)?;
        let t = s.throughput(start);
        let _ = writeln!(
            text,
            "settled: {:.1} s unmeasured at {:.1} MB/s ({} partitions){}",
            t.seconds,
            t.mb_per_sec(),
            c.partitions,
            if s.failed > 0 || s.fatal.is_some() {
                format!(", {} failed", s.failed)
            } else {
                String::new()
            }
        );
        ok &= s.failed == 0 && s.fatal.is_none();
    }
    for round in 0..args.rounds.max(1) {
        // Odd rounds walk the counts backwards: a broker often slows over a long run (page
        // cache, writeback), and a fixed order would charge that to the later counts.
        let order: Vec<usize> = if round % 2 == 0 {
            (0..args.partition_counts.len()).collect()
        } else {
            (0..args.partition_counts.len()).rev().collect()
        };
        for i in order {
            let n = args.partition_counts[i];
            let mut c = args.common.clone();
            c.partitions = n;
            c.topic = format!("{}-p{n}", args.common.topic);
            let layout = prepare_topic(&c)?;
            let (s, measure_start) = run_fleet(&c, &args.producer, layout)?;
            let visit = s.throughput(measure_start);
            let m = &mut merged[i];
            m.0.merge(&s);
            m.1 += visit.seconds;
            m.2.push(visit.mb_per_sec());
        }
    }
    let mut curve = Vec::new();
    for (&n, (s, seconds, visits)) in args.partition_counts.iter().zip(&merged) {
        let t = Throughput {
            messages: s.measured_messages,
            bytes: s.measured_bytes,
            seconds: *seconds,
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
        if visits.len() > 1 {
            let each: Vec<String> = visits.iter().map(|v| format!("{v:.1}")).collect();
            let _ = writeln!(text, "{:>10} MB/s per round: {}", "", each.join(", "));
        }
        for (name, k) in &s.errors.0 {
            let _ = writeln!(text, "{:>10} error {name}: {k}", "");
        }
        ok &= s.failed == 0 && s.fatal.is_none();
        curve.push((n, t.mb_per_sec(), get("p99")));
        rows.push(json!({
            "partitions": n,
            "throughput": t.json(),
            "mb_per_sec_by_round": visits,
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
        "rounds": args.rounds.max(1),
        "settle_seconds": args.settle.as_secs_f64(),
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
