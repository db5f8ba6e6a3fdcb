//! `advise`: a partition count from a target throughput and measured per-partition rates:
//! enough partitions for the producers' rate and for the consumers' rate, at least as many as
//! consumers; a warning near the ~2000 partitions per broker limit.

use crate::cli::AdviseArgs;
use serde_json::json;

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
    anyhow::ensure!(
        a.target_mb_per_sec > 0.0
            && a.producer_mb_per_partition > 0.0
            && a.consumer_mb_per_partition > 0.0,
        "rates must be positive"
    );
    let adv = advise(
        a.target_mb_per_sec,
        a.producer_mb_per_partition,
        a.consumer_mb_per_partition,
        a.consumers as u64,
        a.brokers as u64,
    );
    let mut text = format!(
        "for {:.1} MB/s: {} partitions for the producers ({:.2} MB/s each), {} for the consumers \
         ({:.2} MB/s each), {} consumers\nrecommended: {} partitions ({} per broker over {} brokers)\n",
        a.target_mb_per_sec,
        adv.for_producers,
        a.producer_mb_per_partition,
        adv.for_consumers,
        a.consumer_mb_per_partition,
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
        "partitions": adv.partitions,
        "for_producers": adv.for_producers,
        "for_consumers": adv.for_consumers,
        "per_broker": adv.per_broker,
        "warnings": adv.warnings,
    });
    if a.json {
        eprint!("{text}");
        println!("{summary}");
    } else {
        print!("{text}");
    }
    Ok(true)
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
