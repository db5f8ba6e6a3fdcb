//! `consume`: Kafka's console consumer. Reads a topic from the beginning, the end, an offset or
//! a timestamp, alone or as a member of a group (committing its progress), and prints each
//! message as Kafka's `DefaultMessageFormatter` does, through a template, or as JSON lines.

use crate::client::{topic_name, Client};
use crate::error::{check, AdminError, Result};
use crate::member::Member;
use crate::metadata::{self, Tp, EARLIEST, LATEST};
use crate::props::{parse_bool, parse_pairs, unescape, unknown};
use crate::records::{decode_fetched, Message};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest};
use kafka_protocol::ResponseError as K;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long the broker holds a fetch open when there is nothing new: short, so heartbeats, the
/// timeout and Ctrl-C are noticed promptly.
const FETCH_MAX_WAIT_MS: i32 = 500;
/// Bytes per partition and per response a fetch asks for.
const PARTITION_FETCH_BYTES: i32 = 1 << 20;
const FETCH_BYTES: i32 = 50 << 20;
/// How often a group member commits its positions (Kafka's auto.commit.interval.ms).
const COMMIT_INTERVAL: Duration = Duration::from_secs(5);
/// Back-off after a retriable fetch error (leader moving) before asking metadata again.
const RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// Consecutive rounds of retriable errors tolerated before giving up.
const RETRY_ROUNDS_MAX: u32 = 100;

/// Set by SIGINT/SIGTERM: stop fetching, commit, leave the group, exit 0, as Kafka's console
/// consumer does on Ctrl-C.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_stop_handler() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// How each message is printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Kafka's DefaultMessageFormatter, configured by `--property`.
    Kafka(KafkaFormat),
    /// A `--format` template.
    Template(Vec<Piece>),
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaFormat {
    pub print_timestamp: bool,
    pub print_partition: bool,
    pub print_offset: bool,
    pub print_headers: bool,
    pub print_key: bool,
    pub print_value: bool,
    pub key_separator: String,
    pub line_separator: String,
    pub headers_separator: String,
    pub null_literal: String,
}

impl Default for KafkaFormat {
    fn default() -> Self {
        KafkaFormat {
            print_timestamp: false,
            print_partition: false,
            print_offset: false,
            print_headers: false,
            print_key: false,
            print_value: true,
            key_separator: "\t".into(),
            line_separator: "\n".into(),
            headers_separator: ",".into(),
            null_literal: "null".into(),
        }
    }
}

const PROPERTIES: &[&str] = &[
    "print.timestamp",
    "print.partition",
    "print.offset",
    "print.headers",
    "print.key",
    "print.value",
    "key.separator",
    "line.separator",
    "headers.separator",
    "null.literal",
];

impl KafkaFormat {
    pub fn from_properties(props: &[String]) -> Result<Self> {
        let mut f = KafkaFormat::default();
        for (k, v) in parse_pairs(props)? {
            match k.as_str() {
                "print.timestamp" => f.print_timestamp = parse_bool(&k, &v)?,
                "print.partition" => f.print_partition = parse_bool(&k, &v)?,
                "print.offset" => f.print_offset = parse_bool(&k, &v)?,
                "print.headers" => f.print_headers = parse_bool(&k, &v)?,
                "print.key" => f.print_key = parse_bool(&k, &v)?,
                "print.value" => f.print_value = parse_bool(&k, &v)?,
                "key.separator" => f.key_separator = unescape(&v),
                "line.separator" => f.line_separator = unescape(&v),
                "headers.separator" => f.headers_separator = unescape(&v),
                "null.literal" => f.null_literal = unescape(&v),
                _ => return Err(unknown(&k, PROPERTIES)),
            }
        }
        Ok(f)
    }

    fn bytes<'a>(&'a self, b: &'a Option<bytes::Bytes>) -> &'a [u8] {
        b.as_deref().unwrap_or(self.null_literal.as_bytes())
    }

    /// Kafka's order: timestamp, partition, offset, headers, key, value, each followed by the
    /// key separator but the last; then the line separator.
    pub fn write(&self, out: &mut Vec<u8>, partition: i32, m: &Message) {
        let sep = self.key_separator.as_bytes();
        let mut first = true;
        let mut field = |out: &mut Vec<u8>, bytes: &[u8]| {
            if !first {
                out.extend_from_slice(sep);
            }
            first = false;
            out.extend_from_slice(bytes);
        };
        if self.print_timestamp {
            let ts = if m.timestamp < 0 {
                "NO_TIMESTAMP".to_string()
            } else {
                format!("{}:{}", m.timestamp_type, m.timestamp)
            };
            field(out, ts.as_bytes());
        }
        if self.print_partition {
            field(out, format!("Partition:{partition}").as_bytes());
        }
        if self.print_offset {
            field(out, format!("Offset:{}", m.offset).as_bytes());
        }
        if self.print_headers {
            let h = if m.headers.is_empty() {
                b"NO_HEADERS".to_vec()
            } else {
                headers_text(
                    m,
                    self.headers_separator.as_bytes(),
                    self.null_literal.as_bytes(),
                )
            };
            field(out, &h);
        }
        if self.print_key {
            field(out, self.bytes(&m.key));
        }
        if self.print_value {
            field(out, self.bytes(&m.value));
        }
        out.extend_from_slice(self.line_separator.as_bytes());
    }
}

/// `k1:v1,k2:v2`.
fn headers_text(m: &Message, separator: &[u8], null: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (k, v)) in m.headers.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(separator);
        }
        out.extend_from_slice(k.as_bytes());
        out.push(b':');
        out.extend_from_slice(v.as_deref().unwrap_or(null));
    }
    out
}

/// One part of a `--format` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    Headers,
    Timestamp,
}

/// Parses a template: `%t %p %o %k %v %h %T %%`, with `\n`, `\t` escapes (kcat's letters).
pub fn parse_template(t: &str) -> Result<Vec<Piece>> {
    let t = unescape(t);
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = t.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            text.push(c);
            continue;
        }
        let piece = match chars.next() {
            Some('%') => {
                text.push('%');
                continue;
            }
            Some('t') => Piece::Topic,
            Some('p') => Piece::Partition,
            Some('o') => Piece::Offset,
            Some('k') => Piece::Key,
            Some('v') => Piece::Value,
            Some('h') => Piece::Headers,
            Some('T') => Piece::Timestamp,
            other => {
                return Err(AdminError::Invalid(format!(
                    "unknown format token %{}; use %t %p %o %k %v %h %T %%",
                    other.map(String::from).unwrap_or_default()
                )))
            }
        };
        if !text.is_empty() {
            out.push(Piece::Text(std::mem::take(&mut text)));
        }
        out.push(piece);
    }
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

fn lossy(b: &Option<bytes::Bytes>) -> serde_json::Value {
    b.as_ref().map_or(serde_json::Value::Null, |b| {
        json!(String::from_utf8_lossy(b))
    })
}

impl Output {
    pub fn write(&self, out: &mut Vec<u8>, topic: &str, partition: i32, m: &Message) {
        match self {
            Output::Kafka(f) => f.write(out, partition, m),
            Output::Template(pieces) => {
                for p in pieces {
                    match p {
                        Piece::Text(t) => out.extend_from_slice(t.as_bytes()),
                        Piece::Topic => out.extend_from_slice(topic.as_bytes()),
                        Piece::Partition => out.extend_from_slice(partition.to_string().as_bytes()),
                        Piece::Offset => out.extend_from_slice(m.offset.to_string().as_bytes()),
                        Piece::Key => out.extend_from_slice(m.key.as_deref().unwrap_or(b"")),
                        Piece::Value => out.extend_from_slice(m.value.as_deref().unwrap_or(b"")),
                        Piece::Headers => out.extend_from_slice(&headers_text(m, b",", b"")),
                        Piece::Timestamp => {
                            out.extend_from_slice(m.timestamp.to_string().as_bytes())
                        }
                    }
                }
            }
            Output::Json => {
                let v = json!({
                    "topic": topic,
                    "partition": partition,
                    "offset": m.offset,
                    "timestamp": m.timestamp,
                    "timestamp_type": m.timestamp_type,
                    "key": lossy(&m.key),
                    "value": lossy(&m.value),
                    "headers": m.headers.iter().map(|(k, v)| json!({"key": k, "value": lossy(v)})).collect::<Vec<_>>(),
                });
                out.extend_from_slice(v.to_string().as_bytes());
                out.push(b'\n');
            }
        }
    }
}

/// Where consumption starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Earliest,
    Latest,
    Offset(i64),
    Timestamp(i64),
    /// The group's committed offsets; partitions without one start at `reset` (Kafka's
    /// auto.offset.reset: earliest with --from-beginning, else latest).
    Committed {
        reset_earliest: bool,
    },
}

pub struct ConsumeOptions {
    pub topic: String,
    pub partition: Option<i32>,
    pub group: Option<String>,
    pub start: Start,
    pub max_messages: Option<u64>,
    pub exit_at_end: bool,
    pub timeout: Option<Duration>,
    pub output: Output,
}

struct Consumer<'a> {
    client: &'a mut Client,
    opts: &'a ConsumeOptions,
    leaders: BTreeMap<i32, i32>,
    /// Next offset to read, per assigned partition.
    positions: BTreeMap<i32, i64>,
    /// With --exit-at-end: the log end offsets when consumption started.
    ends: BTreeMap<i32, i64>,
    member: Option<Member>,
    consumed: u64,
    /// The reader of our output went away (`| head`): stop as if the count was reached.
    output_closed: bool,
}

impl Consumer<'_> {
    fn refresh_leaders(&mut self) -> Result<()> {
        let meta = metadata::topic(self.client, &self.opts.topic)?;
        self.leaders = meta
            .partitions
            .iter()
            .map(|p| (p.partition, p.leader))
            .collect();
        Ok(())
    }

    fn offsets_at(&mut self, partitions: &[i32], timestamp: i64) -> Result<BTreeMap<i32, i64>> {
        let leaders: BTreeMap<Tp, i32> = partitions
            .iter()
            .map(|p| {
                let leader = self.leaders.get(p).copied().unwrap_or(-1);
                ((self.opts.topic.clone(), *p), leader)
            })
            .collect();
        Ok(metadata::list_offsets(self.client, &leaders, timestamp)?
            .into_iter()
            .map(|((_, p), o)| (p, o))
            .collect())
    }

    /// Positions for `partitions` from where the options say to start.
    fn start_positions(&mut self, partitions: &[i32]) -> Result<()> {
        let topic = self.opts.topic.clone();
        let positions = match self.opts.start {
            Start::Earliest => self.offsets_at(partitions, EARLIEST)?,
            Start::Latest => self.offsets_at(partitions, LATEST)?,
            Start::Offset(o) => {
                // Kept within the log, as Kafka resets an out-of-range fetch position.
                let lo = self.offsets_at(partitions, EARLIEST)?;
                let hi = self.offsets_at(partitions, LATEST)?;
                partitions
                    .iter()
                    .map(|p| (*p, o.clamp(lo[p], hi[p])))
                    .collect()
            }
            Start::Timestamp(ts) => {
                let at = self.offsets_at(partitions, ts)?;
                let hi = self.offsets_at(partitions, LATEST)?;
                // No message at or after the time: start at the end, as Kafka's tools do.
                partitions
                    .iter()
                    .map(|p| (*p, if at[p] < 0 { hi[p] } else { at[p] }))
                    .collect()
            }
            Start::Committed { reset_earliest } => {
                let tps: Vec<Tp> = partitions.iter().map(|p| (topic.clone(), *p)).collect();
                let member = self.member.as_mut().expect("committed start needs a group");
                let committed = member.committed(self.client, &tps)?;
                let missing: Vec<i32> = partitions
                    .iter()
                    .copied()
                    .filter(|p| !committed.contains_key(&(topic.clone(), *p)))
                    .collect();
                let reset =
                    self.offsets_at(&missing, if reset_earliest { EARLIEST } else { LATEST })?;
                partitions
                    .iter()
                    .map(|p| {
                        (
                            *p,
                            committed
                                .get(&(topic.clone(), *p))
                                .copied()
                                .unwrap_or_else(|| reset[p]),
                        )
                    })
                    .collect()
            }
        };
        self.positions = positions;
        Ok(())
    }

    fn done(&self, last_message: Instant) -> bool {
        if STOP.load(Ordering::SeqCst) || self.output_closed {
            return true;
        }
        if self.opts.max_messages.is_some_and(|n| self.consumed >= n) {
            return true;
        }
        if self.opts.exit_at_end
            && self
                .positions
                .iter()
                .all(|(p, pos)| self.ends.get(p).is_none_or(|end| pos >= end))
        {
            return true;
        }
        self.opts
            .timeout
            .is_some_and(|t| last_message.elapsed() >= t)
    }

    /// One fetch per leader. Returns whether a retriable error wants metadata refreshed.
    fn fetch_round(&mut self, out: &mut dyn Write) -> Result<bool> {
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in self.positions.keys() {
            if self.opts.exit_at_end && self.ends.get(p).is_some_and(|e| self.positions[p] >= *e) {
                continue;
            }
            let leader = self.leaders.get(p).copied().unwrap_or(-1);
            by_leader.entry(leader).or_default().push(*p);
        }
        let mut retry = by_leader.contains_key(&-1);
        for (leader, partitions) in by_leader.into_iter().filter(|(l, _)| *l >= 0) {
            match self.fetch_from(leader, &partitions, out) {
                Ok(r) => retry |= r,
                Err(e @ (AdminError::Io { .. } | AdminError::Connect { .. })) => {
                    self.client.drop_broker(leader);
                    eprintln!("weir-admin: {e}; retrying");
                    retry = true;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(retry)
    }

    fn fetch_from(&mut self, leader: i32, partitions: &[i32], out: &mut dyn Write) -> Result<bool> {
        let topic = self.opts.topic.clone();
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(FETCH_MAX_WAIT_MS)
            .with_min_bytes(1)
            .with_max_bytes(FETCH_BYTES)
            .with_isolation_level(0)
            // No fetch session (KIP-227): every fetch is a full one.
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic_name(&topic))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|p| {
                            FetchPartition::default()
                                .with_partition(*p)
                                .with_current_leader_epoch(-1)
                                .with_fetch_offset(self.positions[p])
                                .with_log_start_offset(-1)
                                .with_partition_max_bytes(PARTITION_FETCH_BYTES)
                        })
                        .collect(),
                )]);
        let conn = self.client.broker(leader)?;
        // v4 is the first with record batches and isolation levels; v13 names topics by id.
        let v = conn.version(ApiKey::Fetch, 4, 12)?;
        let resp = conn.call(&req, v)?;
        check(resp.error_code, None, || format!("fetch from {topic}"))?;
        let mut retry = false;
        let mut buf = Vec::new();
        for t in resp.responses {
            for p in t.partitions {
                let partition = p.partition_index;
                let Some(&position) = self.positions.get(&partition) else {
                    continue;
                };
                match K::try_from_code(p.error_code) {
                    None => {}
                    Some(K::OffsetOutOfRange) => {
                        // Below the log start (retention) or past the end: Kafka's reset.
                        let lo = self.offsets_at(&[partition], EARLIEST)?[&partition];
                        let hi = self.offsets_at(&[partition], LATEST)?[&partition];
                        let to = if position < lo { lo } else { hi };
                        eprintln!(
                            "weir-admin: offset {position} of {topic}-{partition} is out of range; \
                             resetting to {to}"
                        );
                        self.positions.insert(partition, to);
                        continue;
                    }
                    Some(e) if e.is_retriable() => {
                        retry = true;
                        continue;
                    }
                    Some(_) => check(p.error_code, None, || format!("fetch {topic}-{partition}"))?,
                }
                let Some(records) = p.records else { continue };
                let fetched = decode_fetched(&records)?;
                for m in &fetched.messages {
                    // A compressed batch starts before the position asked for; skip what was read.
                    if m.offset < position {
                        continue;
                    }
                    if self.opts.max_messages.is_some_and(|n| self.consumed >= n) {
                        break;
                    }
                    self.opts.output.write(&mut buf, &topic, partition, m);
                    self.consumed += 1;
                    self.positions.insert(partition, m.offset + 1);
                }
                if self.opts.max_messages.is_none_or(|n| self.consumed < n) {
                    if let Some(next) = fetched.next_offset {
                        self.positions.insert(partition, next.max(position));
                    }
                }
            }
        }
        match out.write_all(&buf).and_then(|_| out.flush()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => self.output_closed = true,
            Err(e) => return Err(AdminError::Invalid(format!("writing output: {e}"))),
        }
        Ok(retry)
    }

    fn commit(&mut self) -> Result<()> {
        let topic = self.opts.topic.clone();
        let positions: BTreeMap<Tp, i64> = self
            .positions
            .iter()
            .map(|(p, o)| ((topic.clone(), *p), *o))
            .collect();
        match self.member.as_mut() {
            Some(m) => m.commit(self.client, &positions),
            None => Ok(()),
        }
    }

    /// Joins (or rejoins) the group and starts the assigned partitions.
    fn rejoin(&mut self) -> Result<()> {
        let member = self.member.as_mut().expect("group consumer");
        let assigned = member.join(self.client)?;
        let mine: Vec<i32> = assigned
            .into_iter()
            .filter(|(t, _)| *t == self.opts.topic)
            .map(|(_, p)| p)
            .collect();
        self.refresh_leaders()?;
        self.start_positions(&mine)
    }
}

/// Consumes until the options say to stop; returns how many messages were printed.
pub fn run(client: &mut Client, opts: &ConsumeOptions, out: &mut dyn Write) -> Result<u64> {
    install_stop_handler();
    let meta = metadata::topic(client, &opts.topic)?;
    let all: Vec<i32> = meta.partitions.iter().map(|p| p.partition).collect();
    let partitions = match opts.partition {
        Some(p) if all.contains(&p) => vec![p],
        Some(p) => {
            return Err(AdminError::Invalid(format!(
                "topic {} has no partition {p}",
                opts.topic
            )))
        }
        None => all.clone(),
    };
    let mut c = Consumer {
        client,
        opts,
        leaders: meta
            .partitions
            .iter()
            .map(|p| (p.partition, p.leader))
            .collect(),
        positions: BTreeMap::new(),
        ends: BTreeMap::new(),
        member: opts
            .group
            .as_ref()
            .map(|g| Member::new(g, vec![opts.topic.clone()])),
        consumed: 0,
        output_closed: false,
    };
    if opts.exit_at_end {
        c.ends = c.offsets_at(&all, LATEST)?;
    }
    if c.member.is_some() {
        c.rejoin()?;
    } else {
        c.start_positions(&partitions)?;
    }
    let mut last_message = Instant::now();
    let mut last_commit = Instant::now();
    let mut retry_rounds = 0;
    while !c.done(last_message) {
        let before = c.consumed;
        let retry = c.fetch_round(out)?;
        if c.positions.is_empty() {
            // A group member without partitions waits for a rebalance.
            std::thread::sleep(Duration::from_millis(FETCH_MAX_WAIT_MS as u64));
        }
        if c.consumed > before {
            last_message = Instant::now();
        }
        if retry {
            retry_rounds += 1;
            if retry_rounds > RETRY_ROUNDS_MAX {
                return Err(AdminError::Timeout(format!(
                    "partitions of {} stayed without a usable leader",
                    opts.topic
                )));
            }
            std::thread::sleep(RETRY_BACKOFF);
            c.refresh_leaders()?;
        } else {
            retry_rounds = 0;
        }
        if c.member.is_some() {
            if last_commit.elapsed() >= COMMIT_INTERVAL {
                c.commit()?;
                last_commit = Instant::now();
            }
            let rebalance = {
                let client = &mut *c.client;
                c.member
                    .as_mut()
                    .expect("member")
                    .heartbeat_if_due(client)?
            };
            if rebalance {
                // Commit what was consumed under the old generation (may be refused if it
                // already ended), then take the new assignment.
                if let Err(e) = c.commit() {
                    eprintln!("weir-admin: commit before rejoining: {e}");
                }
                c.rejoin()?;
            }
        }
    }
    if c.member.is_some() {
        c.commit()?;
        let client = &mut *c.client;
        if let Err(e) = c.member.as_mut().expect("member").leave(client) {
            eprintln!("weir-admin: leaving the group: {e}");
        }
    }
    Ok(c.consumed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg() -> Message {
        Message {
            offset: 42,
            timestamp: 1_700_000_000_000,
            timestamp_type: "CreateTime",
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: vec![
                ("h1".into(), Some(Bytes::from_static(b"x"))),
                ("h2".into(), None),
            ],
        }
    }

    fn render(o: &Output, m: &Message) -> String {
        let mut out = Vec::new();
        o.write(&mut out, "orders", 3, m);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn default_output_is_the_value_alone() {
        assert_eq!(
            render(&Output::Kafka(KafkaFormat::default()), &msg()),
            "v\n"
        );
    }

    #[test]
    fn kafka_properties_print_fields_in_kafkas_order() {
        let props: Vec<String> = [
            "print.key=true",
            "print.timestamp=true",
            "print.partition=true",
            "print.offset=true",
            "print.headers=true",
            "key.separator=|",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let f = KafkaFormat::from_properties(&props).unwrap();
        assert_eq!(
            render(&Output::Kafka(f.clone()), &msg()),
            "CreateTime:1700000000000|Partition:3|Offset:42|h1:x,h2:null|k|v\n"
        );
        let mut bare = msg();
        bare.key = None;
        bare.headers.clear();
        assert_eq!(
            render(&Output::Kafka(f), &bare),
            "CreateTime:1700000000000|Partition:3|Offset:42|NO_HEADERS|null|v\n"
        );
        assert!(KafkaFormat::from_properties(&["print.keys=true".to_string()]).is_err());
    }

    #[test]
    fn templates_substitute_every_token() {
        let t = parse_template(r"%t/%p@%o %k=%v [%h] %T 100%%\n").unwrap();
        assert_eq!(
            render(&Output::Template(t), &msg()),
            "orders/3@42 k=v [h1:x,h2:] 1700000000000 100%\n"
        );
        assert!(parse_template("%x").is_err());
        assert!(parse_template("50%").is_err());
    }

    #[test]
    fn json_lines_carry_every_field() {
        let line = render(&Output::Json, &msg());
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["partition"], 3);
        assert_eq!(v["offset"], 42);
        assert_eq!(v["key"], "k");
        assert_eq!(v["headers"][1], json!({"key": "h2", "value": null}));
    }
}
