//! `advise`: a partition count from a target throughput and per-partition rates — given, or
//! measured here against the broker (one partition produced to, then read back): enough
//! partitions for the producers' rate and for the consumers' rate, at least as many as
//! consumers; a warning near the ~2000 partitions per broker limit.

use super::produce::{run_fleet, validate};
use super::{consume, emit, prepare_topic};
use crate::cli::{AdviseArgs, ConsumerArgs, From};
use crate::report::Throughput;
use serde_json::json;
use std::time::Duration;

/// How many times the producer rate is measured (each with twice the window) before giving up.
const MEASURE_ATTEMPTS: u32 = 4;

/// Recommended partitions per broker above which a warning is printed.
pub const PER_BROKER_LIMIT: u64 = 2000;

#[derive(Debug, PartialEq)]
pub struct Advice {
    pub for_producers: u64,
    pub for_consumers: u64,
    pub partitions: u64,
    pub per_broker: u64,
    pub warnings: Vec<String>,
}

pub fn advise(
    target_mb: f64,
    producer_mb_per_partition: f64,
    consumer_mb_per_partition: f64,
    consumers: u64,
    brokers: u64,
) -> Advice {
    let for_producers = (target_mb / producer_mb_per_partition).ceil() as u64;
    let for_consumers = (target_mb / consumer_mb_per_partition).ceil() as u64;
    let partitions = for_producers.max(for_consumers).max(consumers).max(1);
    let per_broker = partitions.div_ceil(brokers.max(1));
    let mut warnings = Vec::new();
    if per_broker > PER_BROKER_LIMIT {
        warnings.push(format!(
            "{per_broker} partitions per broker is above the recommended ~{PER_BROKER_LIMIT}: add brokers"
        ));
    } else if per_broker * 10 >= PER_BROKER_LIMIT * 8 {
        warnings.push(format!(
            "{per_broker} partitions per broker is close to the recommended ~{PER_BROKER_LIMIT}"
        ));
    }
    Advice {
        for_producers,
        for_consumers,
        partitions,
        per_broker,
        warnings,
    }
}

pub fn run(a: AdviseArgs) -> anyhow::Result<bool> {
    let (producer_rate, consumer_rate, measured) =
        match (a.producer_mb_per_partition, a.consumer_mb_per_partition) {
            (Some(p), Some(c)) => (p, c, None),
            (p, c) => {
                let m = measure_per_partition(&a)?;
                (
                    p.unwrap_or(m.producer_mb_per_sec),
                    c.unwrap_or(m.consumer_mb_per_sec),
                    Some(m),
                )
            }
        };
    anyhow::ensure!(
        a.target_mb_per_sec > 0.0 && producer_rate > 0.0 && consumer_rate > 0.0,
        "rates must be positive (target {}, producer {producer_rate}, consumer {consumer_rate} MB/s)",
        a.target_mb_per_sec
    );
    let adv = advise(
        a.target_mb_per_sec,
        producer_rate,
        consumer_rate,
        a.consumers as u64,
        a.brokers as u64,
    );
    let mut text = String::new();
    if let Some(m) = &measured {
        text += &format!(
            "measured on one partition of `{}`: producer {:.2} MB/s, consumer {:.2} MB/s\n",
            m.topic, m.producer_mb_per_sec, m.consumer_mb_per_sec
        );
    }
    text += &format!(
        "for {:.1} MB/s: {} partitions for the producers ({:.2} MB/s each), {} for the consumers \
         ({:.2} MB/s each), {} consumers\nrecommended: {} partitions ({} per broker over {} brokers)\n",
        a.target_mb_per_sec,
        adv.for_producers,
        producer_rate,
        adv.for_consumers,
        consumer_rate,
        a.consumers,
        adv.partitions,
        adv.per_broker,
        a.brokers
    );
    for w in &adv.warnings {
        text += &format!("warning: {w}\n");
    }
    text += "note: partitions can be added to a topic later but never removed (and adding them \
             moves keys to other partitions)\n";
    let summary = json!({
        "mode": "advise",
        "ok": true,
        "producer_mb_per_partition": producer_rate,
        "consumer_mb_per_partition": consumer_rate,
        "measured": measured.as_ref().map(|m| json!({
            "topic": m.topic,
            "producer_mb_per_sec": m.producer_mb_per_sec,
            "consumer_mb_per_sec": m.consumer_mb_per_sec,
        })),
        "partitions": adv.partitions,
        "for_producers": adv.for_producers,
        "for_consumers": adv.for_consumers,
        "per_broker": adv.per_broker,
        "warnings": adv.warnings,
    });
    emit(&a.common, &text, &summary);
    Ok(true)
}

/// Per-partition rates measured against the broker.
struct Measured {
    topic: String,
    producer_mb_per_sec: f64,
    consumer_mb_per_sec: f64,
}

/// Produces to one partition of `<topic>-advise` for the run's duration (or message count),
/// then reads everything back with one consumer: what one partition carries on this broker.
fn measure_per_partition(a: &AdviseArgs) -> anyhow::Result<Measured> {
    validate(&a.producer)?;
    let mut c = a.common.clone();
    c.partitions = 1;
    c.topic = format!("{}-advise", a.common.topic);
    if c.messages.is_none() && c.duration.is_none() {
        c.duration = Some(Duration::from_secs(5));
    }
    let layout = prepare_topic(&c)?;
    // A window in which no acknowledgement arrived measures nothing (a broker slower than the
    // window, e.g. on a loaded machine): measure again with twice the window, a few times.
    let mut attempts = 0;
    let (s, produced) = loop {
        let (s, measure_start) = run_fleet(&c, &a.producer, layout.clone())?;
        anyhow::ensure!(
            s.fatal.is_none() && s.failed == 0,
            "measuring the producer rate failed: {} failed, {}",
            s.failed,
            s.fatal.as_deref().unwrap_or("no fatal error")
        );
        let produced = Throughput {
            messages: s.measured_messages,
            bytes: s.measured_bytes,
            seconds: s.last_ack.map_or(0.0, |l| {
                l.saturating_duration_since(measure_start).as_secs_f64()
            }),
        };
        attempts += 1;
        if produced.messages > 0 && produced.seconds > 0.0 {
            break (s, produced);
        }
        let Some(window) = c.duration.filter(|_| attempts < MEASURE_ATTEMPTS) else {
            anyhow::bail!(
                "no acknowledgement arrived within the measurement window ({attempts} attempts): \
                 give a longer --duration or more --messages"
            );
        };
        c.duration = Some(window * 2);
        eprintln!(
            "advise: no acknowledgement within {window:?} of measuring; measuring again for {:?}",
            window * 2
        );
    };
    // Read back all that was acknowledged, as fast as one consumer can.
    let mut rc = c.clone();
    rc.warmup = Duration::ZERO;
    rc.duration = None;
    rc.messages = Some(s.acked);
    let (_, consumed) = consume::measure(&rc, &ConsumerArgs::one(), From::Earliest)?;
    Ok(Measured {
        topic: c.topic,
        producer_mb_per_sec: produced.mb_per_sec(),
        consumer_mb_per_sec: consumed.mb_per_sec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_larger_need_and_warns_near_the_limit() {
        let a = advise(100.0, 10.0, 20.0, 3, 1);
        assert_eq!(
            (a.for_producers, a.for_consumers, a.partitions),
            (10, 5, 10)
        );
        assert!(a.warnings.is_empty());
        assert_eq!(advise(10.0, 10.0, 10.0, 12, 1).partitions, 12);
        let near = advise(1700.0, 1.0, 2.0, 1, 1);
        assert_eq!(near.partitions, 1700);
        assert!(near.warnings[0].contains("close to"));
        let over = advise(5000.0, 1.0, 1.0, 1, 2);
        assert_eq!(over.per_broker, 2500);
        assert!(over.warnings[0].contains("above"));
    }
}
