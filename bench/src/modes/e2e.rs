//! `e2e`: producers at a fixed rate stamp every message with its intended send time; consumers
//! measure end-to-end latency from it (no coordinated omission) and the run verifies that every
//! message arrived exactly once.

use super::consume::{consumer_json, positions, Group};
use super::consumer::{ConsumeShared, ConsumerStats};
use super::produce::{config_json, producer_report, validate, Fleet};
use super::producer::ProducerStats;
use super::{emit, prepare_topic};
use crate::cli::E2eArgs;
use crate::client::admin;
use crate::payload::STAMP_LEN;
use crate::report::{self, latency_table, Throughput};
use crate::runtime::{run_on_cores, Progress};
use serde_json::json;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tells the consumers how many messages to expect once every core's producers are done.
struct Finish {
    cores_left: AtomicUsize,
    sent: AtomicU64,
    shared: Arc<ConsumeShared>,
    base: Instant,
    drain: Duration,
}

impl Finish {
    fn core_done(&self, sent: u64) {
        self.sent.fetch_add(sent, Ordering::SeqCst);
        if self.cores_left.fetch_sub(1, Ordering::SeqCst) == 1 {
            let deadline = self.base.elapsed() + self.drain;
            self.shared
                .deadline_ns
                .store(deadline.as_nanos() as u64, Ordering::SeqCst);
            self.shared
                .target
                .store(self.sent.load(Ordering::SeqCst), Ordering::SeqCst);
        }
    }
}

/// What the exactly-once check found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub sent: u64,
    pub received_distinct: u64,
    pub lost: u64,
    pub duplicates: u64,
    /// Stamped with a producer or sequence number this run never sent.
    pub unexpected: u64,
    pub unstamped: u64,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.duplicates == 0 && self.unexpected == 0 && self.unstamped == 0
    }
}

pub fn verify(p: &ProducerStats, c: &ConsumerStats) -> Verdict {
    let mut v = Verdict {
        duplicates: c.duplicates,
        unstamped: c.unstamped,
        ..Default::default()
    };
    for (id, &sent) in &p.sent_by {
        v.sent += sent;
        let got = c.seen.get(id).map_or(0, |s| s.count_below(sent));
        v.received_distinct += got;
        v.lost += sent - got;
        v.unexpected += c.seen.get(id).map_or(0, |s| s.len() - got);
    }
    for (id, set) in &c.seen {
        if !p.sent_by.contains_key(id) {
            v.unexpected += set.len();
        }
    }
    v
}

pub fn run(args: E2eArgs) -> anyhow::Result<bool> {
    let c = &args.common;
    validate(&args.producer)?;
    anyhow::ensure!(
        args.producer.rate.is_some(),
        "e2e needs a fixed --rate (messages/s) so latency is measured from intended send times"
    );
    anyhow::ensure!(
        c.message_size >= STAMP_LEN,
        "e2e needs --message-size of at least {STAMP_LEN} bytes for the stamp"
    );
    anyhow::ensure!(
        args.consumer.consumers >= 1,
        "--consumers must be at least 1"
    );
    let layout = prepare_topic(c)?;
    let start_offsets = positions(&layout, admin::LATEST)?;
    let progress = Arc::new(Progress::default());
    let shared = Arc::new(ConsumeShared::new());
    let base = Instant::now();
    let start = base + Duration::from_millis(500);
    let measure_start = start + c.warmup;
    let cores = c.cores.max(1);
    let fleet = Fleet {
        layout: layout.clone(),
        args: args.producer.clone(),
        message_size: c.message_size,
        stop: c.stop(),
        base,
        start,
        measure_start,
        progress: progress.clone(),
    };
    let group = Group {
        layout,
        args: args.consumer.clone(),
        start_offsets,
        stamped: true,
        base,
        measure_start,
        shared: shared.clone(),
        progress: Arc::new(Progress::default()),
    };
    let finish = Arc::new(Finish {
        cores_left: AtomicUsize::new(cores),
        sent: AtomicU64::new(0),
        shared,
        base,
        drain: args.consumer.idle_timeout,
    });
    let printer = (!c.quiet).then(|| progress.spawn_printer("e2e produce"));
    let (f, g) = (fleet.clone(), group.clone());
    let results = run_on_cores(cores, c.cpu, move |core| {
        let (f, g, finish) = (f.clone(), g.clone(), finish.clone());
        async move {
            let consumers = glommio::spawn_local(g.run_core(core, cores));
            let p = f.run_core(core, cores).await;
            finish.core_done(p.sent);
            (p, consumers.await)
        }
    });
    progress.stop();
    if let Some(p) = printer {
        let _ = p.join();
    }
    let mut prod = ProducerStats::default();
    let mut cons = ConsumerStats::default();
    for (p, c) in results? {
        prod.merge(&p);
        cons.merge(c);
    }
    let verdict = verify(&prod, &cons);
    let (mut text, pj) = producer_report(&prod, measure_start, args.producer.acks);
    let seconds = cons.last_message.map_or(0.0, |t| {
        t.saturating_duration_since(measure_start).as_secs_f64()
    });
    let t = Throughput {
        messages: cons.measured_messages,
        bytes: cons.measured_bytes,
        seconds,
    };
    text += &(t.line("consumed") + "\n");
    for (name, n) in &cons.errors.0 {
        text += &format!("  consumer error {name}: {n}\n");
    }
    if let Some(f) = &cons.fatal {
        text += &format!("consumer stopped: {f}\n");
    }
    text += &latency_table("end-to-end latency (from intended send time)", &cons.e2e);
    text += &format!(
        "verification: sent {}, received {} distinct, lost {}, duplicated {}, unexpected {}, unstamped {}: {}\n",
        verdict.sent,
        verdict.received_distinct,
        verdict.lost,
        verdict.duplicates,
        verdict.unexpected,
        verdict.unstamped,
        if verdict.ok() { "OK" } else { "FAILED" }
    );
    let ok = verdict.ok()
        && prod.failed == 0
        && prod.fatal.is_none()
        && cons.fatal.is_none()
        && cons.errors.total() == 0;
    let summary = json!({
        "mode": "e2e",
        "ok": ok,
        "config": config_json(c, &args.producer),
        "produce": pj,
        "consume": consumer_json(&cons, &t),
        "e2e_latency": report::latency_json(&cons.e2e),
        "verification": {
            "sent": verdict.sent,
            "received_distinct": verdict.received_distinct,
            "lost": verdict.lost,
            "duplicates": verdict.duplicates,
            "unexpected": verdict.unexpected,
            "unstamped": verdict.unstamped,
        },
    });
    if let Some(dir) = &c.out {
        report::write_out(
            dir,
            &summary,
            &[
                ("produce-ack-latency", &prod.ack),
                ("e2e-latency", &cons.e2e),
            ],
        )?;
        if c.plot {
            crate::plot::latency_spectrum(
                &dir.join("latency.svg"),
                "latency by percentile",
                &[("end-to-end", &cons.e2e), ("produce ack", &prod.ack)],
            )?;
        }
    }
    emit(c, &text, &summary);
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_finds_losses_duplicates_and_strangers() {
        let mut p = ProducerStats::default();
        p.sent_by.insert(0, 10);
        p.sent_by.insert(1, 5);
        let mut c = ConsumerStats::default();
        for i in 0..10 {
            c.seen.entry(0).or_default().insert(i);
        }
        for i in 0..5 {
            c.seen.entry(1).or_default().insert(i);
        }
        let v = verify(&p, &c);
        assert!(v.ok(), "{v:?}");
        assert_eq!(v.sent, 15);
        assert_eq!(v.received_distinct, 15);

        c.seen.get_mut(&1).unwrap().words_clear_for_test(3);
        c.seen.entry(0).or_default().insert(10); // never sent
        c.seen.entry(9).or_default().insert(0); // unknown producer
        c.duplicates = 2;
        let v = verify(&p, &c);
        assert_eq!(v.lost, 1);
        assert_eq!(v.unexpected, 2);
        assert_eq!(v.duplicates, 2);
        assert!(!v.ok());
    }
}
