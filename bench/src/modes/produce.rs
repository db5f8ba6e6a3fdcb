//! `produce`: N producers, throughput and acknowledgement latency.

use super::producer::{run_producer, ProducerPlan, ProducerStats, Until};
use super::{emit, prepare_topic};
use crate::cli::{Common, ProduceArgs, ProducerArgs, Stop};
use crate::client::admin::TopicLayout;
use crate::client::produce::Acks;
use crate::pacing::{share, Pacer};
use crate::report::{self, latency_table};
use crate::runtime::{run_on_cores, Progress};
use serde_json::json;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything about a producer fleet that is the same for every producer.
#[derive(Clone)]
pub struct Fleet {
    pub layout: TopicLayout,
    pub args: ProducerArgs,
    pub message_size: usize,
    pub stop: Stop,
    pub base: Instant,
    pub start: Instant,
    pub measure_start: Instant,
    pub progress: Arc<Progress>,
}

impl Fleet {
    /// The plan of producer `id`.
    pub fn plan(&self, id: usize) -> ProducerPlan {
        let n = self.args.producers;
        let rate = self.args.rate.map(|r| r / n as f64);
        ProducerPlan {
            id: id as u32,
            layout: Rc::new(self.layout.clone()),
            message_size: self.message_size,
            batch_size: self.args.batch_size,
            linger: Duration::from_millis(self.args.linger_ms),
            acks: self.args.acks,
            max_in_flight: self.args.max_in_flight.max(1),
            max_request_size: self.args.max_request_size,
            buffer_memory: self.args.buffer_memory,
            timeout_ms: self.args.request_timeout_ms,
            pacer: Pacer::new(self.start, rate),
            measure_start: self.measure_start,
            until: match self.stop {
                Stop::Messages(m) => Until::Measured(share(m, n, id)),
                Stop::Duration(d) => Until::Time(self.measure_start + d),
            },
            base: self.base,
            progress: self.progress.clone(),
        }
    }

    /// Runs the producers of core `core` (of `cores`) concurrently; their merged stats.
    pub async fn run_core(self, core: usize, cores: usize) -> ProducerStats {
        let tasks: Vec<_> = (0..self.args.producers)
            .filter(|j| j % cores == core)
            .map(|j| glommio::spawn_local(run_producer(self.plan(j))))
            .collect();
        let mut total = ProducerStats::default();
        for t in tasks {
            total.merge(&t.await);
        }
        total
    }
}

pub fn validate(p: &ProducerArgs) -> anyhow::Result<()> {
    anyhow::ensure!(p.producers >= 1, "--producers must be at least 1");
    if let Some(r) = p.rate {
        anyhow::ensure!(r > 0.0 && r.is_finite(), "--rate must be positive");
    }
    Ok(())
}

/// The producer part of a summary (text and JSON).
pub fn producer_report(
    s: &ProducerStats,
    measure_start: Instant,
    acks: Acks,
) -> (String, serde_json::Value) {
    let t = s.throughput(measure_start);
    let mut text = t.line("produced") + "\n";
    text += &format!(
        "sent {} messages: {} acknowledged, {} failed\n",
        s.sent, s.acked, s.failed
    );
    for (name, n) in &s.errors.0 {
        text += &format!("  error {name}: {n}\n");
    }
    if let Some(f) = &s.fatal {
        text += &format!("  producer stopped: {f}\n");
    }
    if acks == Acks::None {
        text += "acks=0: no acknowledgement latency to measure\n";
    } else {
        text += &latency_table("produce ack latency", &s.ack);
    }
    let j = json!({
        "throughput": t.json(),
        "sent": s.sent,
        "acked": s.acked,
        "failed": s.failed,
        "errors": s.errors.0,
        "fatal": s.fatal,
        "ack_latency": report::latency_json(&s.ack),
    });
    (text, j)
}

/// Runs the producers on their cores against `layout`; the merged stats and when measuring began.
pub fn run_fleet(
    c: &Common,
    p: &ProducerArgs,
    layout: TopicLayout,
) -> anyhow::Result<(ProducerStats, Instant)> {
    let progress = Arc::new(Progress::default());
    let base = Instant::now();
    let start = base + Duration::from_millis(500);
    let fleet = Fleet {
        layout,
        args: p.clone(),
        message_size: c.message_size,
        stop: c.stop(),
        base,
        start,
        measure_start: start + c.warmup,
        progress: progress.clone(),
    };
    let printer = (!c.quiet).then(|| progress.spawn_printer("produce"));
    let cores = c.cores.max(1);
    let f = fleet.clone();
    let results = run_on_cores(cores, c.cpu, move |core| f.clone().run_core(core, cores));
    progress.stop();
    if let Some(p) = printer {
        let _ = p.join();
    }
    let mut total = ProducerStats::default();
    for r in results? {
        total.merge(&r);
    }
    Ok((total, fleet.measure_start))
}

pub fn run(args: ProduceArgs) -> anyhow::Result<bool> {
    let c = &args.common;
    validate(&args.producer)?;
    let layout = prepare_topic(c)?;
    let baseline = if args.baseline {
        let d = match c.stop() {
            Stop::Duration(d) => d,
            Stop::Messages(_) => Duration::from_secs(5),
        };
        Some(super::baseline::measure(
            args.producer.batch_size,
            c.warmup,
            d,
            &args.baseline_dir,
        )?)
    } else {
        None
    };
    let (total, measure_start) = run_fleet(c, &args.producer, layout)?;
    let (mut text, pj) = producer_report(&total, measure_start, args.producer.acks);
    let ok = total.fatal.is_none() && total.failed == 0;
    let mut summary = json!({
        "mode": "produce",
        "ok": ok,
        "config": config_json(c, &args.producer),
        "produce": pj,
    });
    if let Some(b) = baseline {
        let produced = summary["produce"]["throughput"]["mb_per_sec"]
            .as_f64()
            .unwrap_or(0.0);
        let ratio = if b.mb_per_sec() > 0.0 {
            produced / b.mb_per_sec()
        } else {
            0.0
        };
        text += &format!(
            "baseline (raw TCP -> page-cached file, {} B writes): {:.2} MB/s; produce payload MB/s = {ratio:.3}x baseline\n",
            args.producer.batch_size,
            b.mb_per_sec()
        );
        summary["baseline"] = b.json();
        summary["ratio_to_baseline"] = json!(ratio);
    }
    if let Some(dir) = &c.out {
        report::write_out(dir, &summary, &[("produce-ack-latency", &total.ack)])?;
        if c.plot && args.producer.acks != Acks::None {
            crate::plot::latency_spectrum(
                &dir.join("produce-ack-latency.svg"),
                "produce ack latency",
                &[("ack", &total.ack)],
            )?;
        }
    }
    emit(c, &text, &summary);
    Ok(ok)
}

pub fn config_json(c: &crate::cli::Common, p: &ProducerArgs) -> serde_json::Value {
    json!({
        "bootstrap_server": c.bootstrap_server,
        "topic": c.topic,
        "partitions": c.partitions,
        "message_size": c.message_size,
        "messages": c.messages,
        "duration_s": c.duration.map(|d| d.as_secs_f64()),
        "warmup_s": c.warmup.as_secs_f64(),
        "cores": c.cores,
        "producers": p.producers,
        "batch_size": p.batch_size,
        "linger_ms": p.linger_ms,
        "acks": p.acks.wire(),
        "rate": p.rate,
        "max_in_flight": p.max_in_flight,
        "max_request_size": p.max_request_size,
        "buffer_memory": p.buffer_memory,
    })
}
