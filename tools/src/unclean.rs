//! `topic unclean`: what unclean leader elections cost, as the cluster recorded it (Weir's own;
//! Kafka only logs a line). Per partition, its last unclean election — the leader, its epoch,
//! when, which ISR and ELR it passed over, the new leader's log end when it took over — and per
//! replica that truncated to it the offsets it discarded, in which leader epochs, and how many
//! of them it had as committed. Any broker answers: the records are in the metadata image.
//!
//! Asked with a Metadata request (v9+) carrying Weir's tag [`UNCLEAN_ELECTION_TAG`]; a broker
//! without it answers plain Metadata, and then there is nothing to show.

use crate::client::{topic_name, Client};
use crate::error::{check, AdminError, Result};
use crate::table::{Cell, Report, Table};
use crate::timefmt::format_ms;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest};
use std::collections::BTreeMap;

/// The broker's tag (`broker/src/handlers/metadata.rs`, `UNCLEAN_ELECTION_TAG`).
pub const UNCLEAN_ELECTION_TAG: i32 = 0x5745;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Election {
    pub leader: i32,
    pub epoch: i32,
    pub time_ms: i64,
    pub replaced_isr: Vec<i64>,
    pub replaced_elr: Vec<i64>,
    pub leader_log_end: Option<i64>,
    pub discarded: Vec<Discarded>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Discarded {
    pub broker: i32,
    pub from: i64,
    pub to: i64,
    pub high_watermark: i64,
    pub time_ms: i64,
    /// `(epoch, first offset)`.
    pub epochs: Vec<(i64, i64)>,
}

impl Discarded {
    pub fn committed(&self) -> i64 {
        (self.high_watermark.min(self.to) - self.from).max(0)
    }
}

fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split(' ')
        .skip(1)
        .filter_map(|f| f.split_once('='))
        .collect()
}

fn bad(what: &str) -> AdminError {
    AdminError::Protocol(format!("malformed unclean election record: {what}"))
}

fn num(f: &BTreeMap<&str, &str>, key: &str) -> Result<i64> {
    f.get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad(key))
}

fn list(f: &BTreeMap<&str, &str>, key: &str) -> Result<Vec<i64>> {
    let v = f.get(key).ok_or_else(|| bad(key))?;
    v.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad(key)))
        .collect()
}

/// The broker's text (see the broker's `unclean_election_text`).
pub fn parse(text: &str) -> Result<Election> {
    let mut lines = text.lines();
    let head = lines.next().ok_or_else(|| bad("empty"))?;
    if !head.starts_with("election ") {
        return Err(bad("no election line"));
    }
    let f = fields(head);
    let mut e = Election {
        leader: num(&f, "leader")? as i32,
        epoch: num(&f, "epoch")? as i32,
        time_ms: num(&f, "time_ms")?,
        replaced_isr: list(&f, "replaced_isr")?,
        replaced_elr: list(&f, "replaced_elr")?,
        leader_log_end: match f.get("leader_log_end") {
            Some(&"-") => None,
            _ => Some(num(&f, "leader_log_end")?),
        },
        discarded: Vec::new(),
    };
    for line in lines.filter(|l| l.starts_with("discarded ")) {
        let f = fields(line);
        let epochs = f
            .get("epochs")
            .ok_or_else(|| bad("epochs"))?
            .split(',')
            .map(|p| {
                let (e, s) = p.split_once('@').ok_or_else(|| bad("epochs"))?;
                Ok((
                    e.parse().map_err(|_| bad("epochs"))?,
                    s.parse().map_err(|_| bad("epochs"))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        e.discarded.push(Discarded {
            broker: num(&f, "broker")? as i32,
            from: num(&f, "from")?,
            to: num(&f, "to")?,
            high_watermark: num(&f, "high_watermark")?,
            time_ms: num(&f, "time_ms")?,
            epochs,
        });
    }
    Ok(e)
}

/// Every recorded unclean election of the named topics (all topics if none), by topic and
/// partition.
pub fn fetch(client: &mut Client, names: &[String]) -> Result<Vec<(String, i32, Election)>> {
    let conn = client.any();
    let v = conn.version(ApiKey::Metadata, 9, 12).map_err(|_| {
        AdminError::Unsupported(format!(
            "broker {} has no Metadata v9+ (needed to ask for unclean election records)",
            conn.addr()
        ))
    })?;
    let topics = (!names.is_empty()).then(|| {
        names
            .iter()
            .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
            .collect()
    });
    let req = MetadataRequest::default()
        .with_topics(topics)
        .with_allow_auto_topic_creation(false)
        .with_unknown_tagged_field(UNCLEAN_ELECTION_TAG, bytes::Bytes::new());
    let resp = conn.call(&req, v)?;
    let mut out = Vec::new();
    for t in &resp.topics {
        let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
        check(t.error_code, None, || format!("topic {name}"))?;
        for p in &t.partitions {
            if let Some(b) = p.unknown_tagged_fields.get(&UNCLEAN_ELECTION_TAG) {
                let e = parse(&String::from_utf8_lossy(b))?;
                out.push((name.clone(), p.partition_index, e));
            }
        }
    }
    out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    Ok(out)
}

pub fn show(client: &mut Client, names: &[String]) -> Result<Report> {
    let elections = fetch(client, names)?;
    let mut et = Table::new(&[
        "TOPIC",
        "PARTITION",
        "LEADER",
        "LEADER-EPOCH",
        "TIME",
        "REPLACED-ISR",
        "REPLACED-ELR",
        "LEADER-LOG-END",
    ]);
    let mut dt = Table::new(&[
        "TOPIC",
        "PARTITION",
        "LEADER-EPOCH",
        "BROKER",
        "FROM-OFFSET",
        "TO-OFFSET",
        "RECORDS",
        "COMMITTED",
        "EPOCHS",
        "TIME",
    ]);
    for (topic, partition, e) in &elections {
        et.push(vec![
            topic.clone().into(),
            (*partition).into(),
            e.leader.into(),
            e.epoch.into(),
            format_ms(e.time_ms).into(),
            Cell::List(e.replaced_isr.clone()),
            Cell::List(e.replaced_elr.clone()),
            e.leader_log_end.into(),
        ]);
        for d in &e.discarded {
            let epochs: Vec<String> = d.epochs.iter().map(|(e, s)| format!("{e}@{s}")).collect();
            dt.push(vec![
                topic.clone().into(),
                (*partition).into(),
                e.epoch.into(),
                d.broker.into(),
                d.from.into(),
                d.to.into(),
                (d.to - d.from).into(),
                d.committed().into(),
                epochs.join(",").into(),
                format_ms(d.time_ms).into(),
            ]);
        }
    }
    let mut report = Report::new();
    report.table(
        "elections",
        Some("Last unclean election per partition".into()),
        et,
    );
    report.table(
        "discarded",
        Some("Records replicas discarded to it ([FROM-OFFSET, TO-OFFSET), COMMITTED: below the replica's high watermark)".into()),
        dt,
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_brokers_text_parses() {
        let text = "election leader=3 epoch=5 time_ms=1700000000000 replaced_isr=1 replaced_elr= leader_log_end=120\n\
                    discarded broker=1 from=120 to=200 high_watermark=190 time_ms=1700000001000 epochs=3@120,4@150\n";
        let e = parse(text).unwrap();
        assert_eq!((e.leader, e.epoch, e.leader_log_end), (3, 5, Some(120)));
        assert_eq!(
            (e.replaced_isr.clone(), e.replaced_elr.clone()),
            (vec![1], vec![])
        );
        assert_eq!(e.discarded.len(), 1);
        let d = &e.discarded[0];
        assert_eq!((d.broker, d.from, d.to, d.committed()), (1, 120, 200, 70));
        assert_eq!(d.epochs, vec![(3, 120), (4, 150)]);
        let e = parse("election leader=3 epoch=5 time_ms=1 replaced_isr=1,2 replaced_elr=3 leader_log_end=-\n").unwrap();
        assert_eq!(e.leader_log_end, None);
        assert!(parse("").is_err());
        assert!(parse("election leader=x").is_err());
    }
}
