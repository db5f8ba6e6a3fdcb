//! `consume`: N consumers read a topic from a position; throughput and lag.

use super::consumer::{run_consumer, ConsumeShared, ConsumerPlan, ConsumerStats};
use super::{block_on, emit, prepare_topic};
use crate::cli::{Common, ConsumeArgs, ConsumerArgs, From, Stop};
use crate::client::admin::{self, TopicLayout};
use crate::client::Conn;
use crate::report::{self, Throughput};
use crate::runtime::{run_on_cores, Progress};
use serde_json::json;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The offsets of every partition at `timestamp` (EARLIEST/LATEST), asking each leader.
pub fn positions(layout: &TopicLayout, timestamp: i64) -> anyhow::Result<BTreeMap<i32, i64>> {
    let layout = layout.clone();
    block_on(async move {
        let mut by_leader: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (p, l) in layout.leaders.iter().enumerate() {
            by_leader.entry(l.clone()).or_default().push(p as i32);
        }
        let mut out = BTreeMap::new();
        for (leader, parts) in by_leader {
            let conn: Rc<Conn> = Conn::connect(&leader).await?;
            out.extend(admin::list_offsets(&conn, &layout.topic, &parts, timestamp).await?);
        }
        Ok::<_, anyhow::Error>(out)
    })?
}

/// Everything about a consumer group that is the same for every consumer.
#[derive(Clone)]
pub struct Group {
    pub layout: TopicLayout,
    pub args: ConsumerArgs,
    pub start_offsets: BTreeMap<i32, i64>,
    pub stamped: bool,
    pub base: Instant,
    pub measure_start: Instant,
    pub shared: Arc<ConsumeShared>,
    pub progress: Arc<Progress>,
}

impl Group {
    /// Consumer `c` reads the partitions p with p % consumers == c.
    pub fn plan(&self, c: usize) -> ConsumerPlan {
        let n = self.args.consumers;
        ConsumerPlan {
            layout: Rc::new(self.layout.clone()),
            positions: self
                .start_offsets
                .iter()
                .filter(|(p, _)| **p as usize % n == c)
                .map(|(p, o)| (*p, *o))
                .collect(),
            fetch_max_wait_ms: self.args.fetch_max_wait_ms,
            partition_max_bytes: self.args.partition_max_bytes,
            idle_timeout: self.args.idle_timeout,
            stamped: self.stamped,
            base: self.base,
            measure_start: self.measure_start,
            shared: self.shared.clone(),
            progress: self.progress.clone(),
        }
    }

    pub async fn run_core(self, core: usize, cores: usize) -> ConsumerStats {
        let tasks: Vec<_> = (0..self.args.consumers)
            .filter(|c| c % cores == core)
            .map(|c| glommio::spawn_local(run_consumer(self.plan(c))))
            .collect();
        let mut total = ConsumerStats::default();
        for t in tasks {
            total.merge(t.await);
        }
        total
    }
}

pub fn consumer_json(s: &ConsumerStats, t: &Throughput) -> serde_json::Value {
    json!({
        "throughput": t.json(),
        "messages_read": s.messages,
        "lag": s.lag,
        "errors": s.errors.0,
        "fatal": s.fatal,
        "idle_timeout_hit": s.idle_stop,
    })
}

pub fn run(args: ConsumeArgs) -> anyhow::Result<bool> {
    let c = &args.common;
    let (total, t) = measure(c, &args.consumer, args.from)?;
    report_run(c, &args.consumer, total, t)
}

/// Reads the topic from `from` with the consumers of `consumer`, until `c`'s stop; the merged
/// stats and the throughput measured after the warm-up.
pub fn measure(
    c: &Common,
    consumer: &ConsumerArgs,
    from: From,
) -> anyhow::Result<(ConsumerStats, Throughput)> {
    anyhow::ensure!(consumer.consumers >= 1, "--consumers must be at least 1");
    let layout = prepare_topic(c)?;
    let ts = match from {
        From::Earliest => admin::EARLIEST,
        From::Latest => admin::LATEST,
    };
    let start_offsets = positions(&layout, ts)?;
    let progress = Arc::new(Progress::default());
    let shared = Arc::new(ConsumeShared::new());
    let base = Instant::now();
    let measure_start = base + c.warmup;
    match c.stop() {
        Stop::Messages(n) => shared.target.store(n, Ordering::Relaxed),
        Stop::Duration(d) => shared
            .deadline_ns
            .store((c.warmup + d).as_nanos() as u64, Ordering::Relaxed),
    }
    let group = Group {
        layout,
        args: consumer.clone(),
        start_offsets,
        stamped: false,
        base,
        measure_start,
        shared: shared.clone(),
        progress: progress.clone(),
    };
    let printer = (!c.quiet).then(|| progress.spawn_printer("consume"));
    let cores = c.cores.max(1);
    let g = group.clone();
    let results = run_on_cores(cores, c.cpu, move |core| g.clone().run_core(core, cores));
    progress.stop();
    if let Some(p) = printer {
        let _ = p.join();
    }
    let mut total = ConsumerStats::default();
    for r in results? {
        total.merge(r);
    }
    let seconds = total.last_message.map_or(0.0, |t| {
        t.saturating_duration_since(measure_start).as_secs_f64()
    });
    let t = Throughput {
        messages: total.measured_messages,
        bytes: total.measured_bytes,
        seconds,
    };
    Ok((total, t))
}

fn report_run(
    c: &Common,
    consumer: &ConsumerArgs,
    total: ConsumerStats,
    t: Throughput,
) -> anyhow::Result<bool> {
    let mut text = t.line("consumed") + "\n";
    text += &format!("lag at the end: {} messages\n", total.lag);
    for (name, n) in &total.errors.0 {
        text += &format!("  error {name}: {n}\n");
    }
    let mut ok = total.fatal.is_none() && total.errors.total() == 0;
    if let Some(f) = &total.fatal {
        text += &format!("consumer stopped: {f}\n");
    }
    let mut expected = serde_json::Value::Null;
    if let Stop::Messages(n) = c.stop() {
        expected = json!(n);
        if total.messages < n {
            ok = false;
            text += &format!(
                "FAILED: read {} of the {n} messages asked for (idle for {:?})\n",
                total.messages, consumer.idle_timeout
            );
        }
    }
    let _ = Duration::ZERO;
    let summary = json!({
        "mode": "consume",
        "ok": ok,
        "expected_messages": expected,
        "consume": consumer_json(&total, &t),
    });
    if let Some(dir) = &c.out {
        report::write_out(dir, &summary, &[])?;
    }
    emit(c, &text, &summary);
    Ok(ok)
}
