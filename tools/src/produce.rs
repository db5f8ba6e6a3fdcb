//! `produce`: Kafka's console producer. Each line of standard input is a message; with
//! `parse.key` and `parse.headers` the line also carries a key and headers, split exactly as
//! Kafka's `LineMessageReader` splits them. Messages go to an explicit partition, to the
//! partition of their key (murmur2, as Kafka's Java client), or round-robin.

use crate::client::{topic_name, Client};
use crate::error::{check, AdminError, Result};
use crate::metadata::{self, TopicMeta};
use crate::props::{parse_bool, parse_pairs, unescape, unknown};
use crate::records::{encode_batch, Outgoing};
use crate::table::{Report, Table};
use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest};
use kafka_protocol::records::Compression;
use kafka_protocol::ResponseError as K;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many times a batch is sent again after a retriable error (leader moving, topic just
/// created), with [`RETRY_BACKOFF`] between tries.
const SEND_ATTEMPTS: usize = 20;
const RETRY_BACKOFF: Duration = Duration::from_millis(250);
/// How long the broker may wait for acknowledgements before answering REQUEST_TIMED_OUT.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;
/// Lines read ahead of the network: the reader thread blocks when this many wait.
const LINE_QUEUE: usize = 4096;
/// Bytes of all partitions' pending messages that force a send, so one request stays well under
/// the broker's `socket.request.max.bytes`.
const REQUEST_BYTES_MAX: usize = 4 << 20;

/// How a line becomes a message: Kafka's console producer properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFormat {
    pub parse_key: bool,
    pub key_separator: String,
    pub parse_headers: bool,
    pub headers_delimiter: String,
    pub headers_separator: String,
    pub headers_key_separator: String,
    /// A key, value or header value equal to this is null.
    pub null_marker: Option<String>,
    /// A line without the expected separator becomes a value instead of an error.
    pub ignore_error: bool,
}

impl Default for LineFormat {
    fn default() -> Self {
        LineFormat {
            parse_key: false,
            key_separator: "\t".into(),
            parse_headers: false,
            headers_delimiter: "\t".into(),
            headers_separator: ",".into(),
            headers_key_separator: ":".into(),
            null_marker: None,
            ignore_error: false,
        }
    }
}

const PROPERTIES: &[&str] = &[
    "parse.key",
    "key.separator",
    "parse.headers",
    "headers.delimiter",
    "headers.separator",
    "headers.key.separator",
    "null.marker",
    "ignore.error",
];

/// A message's parts as a line gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineMessage {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

impl LineFormat {
    pub fn from_properties(props: &[String]) -> Result<Self> {
        let mut f = LineFormat::default();
        for (k, v) in parse_pairs(props)? {
            match k.as_str() {
                "parse.key" => f.parse_key = parse_bool(&k, &v)?,
                "key.separator" => f.key_separator = unescape(&v),
                "parse.headers" => f.parse_headers = parse_bool(&k, &v)?,
                "headers.delimiter" => f.headers_delimiter = unescape(&v),
                "headers.separator" => f.headers_separator = unescape(&v),
                "headers.key.separator" => f.headers_key_separator = unescape(&v),
                "null.marker" => f.null_marker = Some(unescape(&v)),
                "ignore.error" => f.ignore_error = parse_bool(&k, &v)?,
                _ => return Err(unknown(&k, PROPERTIES)),
            }
        }
        for (name, sep) in [
            ("key.separator", &f.key_separator),
            ("headers.delimiter", &f.headers_delimiter),
            ("headers.separator", &f.headers_separator),
            ("headers.key.separator", &f.headers_key_separator),
        ] {
            if sep.is_empty() {
                return Err(AdminError::Invalid(format!("{name} must not be empty")));
            }
        }
        Ok(f)
    }

    fn nullable(&self, b: &[u8]) -> Option<Vec<u8>> {
        match &self.null_marker {
            Some(m) if m.as_bytes() == b => None,
            _ => Some(b.to_vec()),
        }
    }

    /// Splits one line (without its newline). `line_no` counts from 1, for error messages.
    pub fn parse(&self, line: &[u8], line_no: u64) -> Result<LineMessage> {
        let mut rest = line;
        let mut headers = Vec::new();
        if self.parse_headers {
            match find(rest, self.headers_delimiter.as_bytes()) {
                Some(i) => {
                    let part = &rest[..i];
                    rest = &rest[i + self.headers_delimiter.len()..];
                    if self.null_marker.as_deref().map(str::as_bytes) != Some(part) {
                        headers = self.parse_headers(part, line_no)?;
                    }
                }
                None if self.ignore_error => {}
                None => {
                    return Err(AdminError::Invalid(format!(
                        "no headers delimiter {:?} on line {line_no}",
                        self.headers_delimiter
                    )))
                }
            }
        }
        let mut key = None;
        if self.parse_key {
            match find(rest, self.key_separator.as_bytes()) {
                Some(i) => {
                    key = self.nullable(&rest[..i]);
                    rest = &rest[i + self.key_separator.len()..];
                }
                None if self.ignore_error => {}
                None => {
                    return Err(AdminError::Invalid(format!(
                        "no key separator {:?} on line {line_no}",
                        self.key_separator
                    )))
                }
            }
        }
        Ok(LineMessage {
            key,
            value: self.nullable(rest),
            headers,
        })
    }

    fn parse_headers(&self, part: &[u8], line_no: u64) -> Result<Vec<(String, Option<Vec<u8>>)>> {
        let mut out = Vec::new();
        let sep = self.headers_separator.as_bytes();
        let mut rest = part;
        loop {
            let (one, more) = match find(rest, sep) {
                Some(i) => (&rest[..i], Some(&rest[i + sep.len()..])),
                None => (rest, None),
            };
            let (k, v) = match find(one, self.headers_key_separator.as_bytes()) {
                Some(i) => (
                    &one[..i],
                    self.nullable(&one[i + self.headers_key_separator.len()..]),
                ),
                None => (one, None),
            };
            let k = String::from_utf8(k.to_vec()).map_err(|_| {
                AdminError::Invalid(format!("header key on line {line_no} is not UTF-8"))
            })?;
            if k.is_empty() {
                return Err(AdminError::Invalid(format!(
                    "empty header key on line {line_no}"
                )));
            }
            out.push((k, v));
            match more {
                Some(m) => rest = m,
                None => return Ok(out),
            }
        }
    }
}

/// Kafka's `Utils.murmur2`, so keyed messages land on the partition a Java producer picks.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const SEED: u32 = 0x9747_b28c;
    let len = data.len();
    let mut h: u32 = SEED ^ len as u32;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    if tail.len() >= 3 {
        h ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        h ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        h ^= tail[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's default partition of a key: `toPositive(murmur2(key)) % partitions`.
pub fn partition_for_key(key: &[u8], partitions: usize) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) as usize % partitions) as i32
}

/// Kafka's `acks`: all (-1), 1, 0.
pub fn parse_acks(s: &str) -> Result<i16> {
    match s {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        "0" => Ok(0),
        _ => Err(AdminError::Invalid(format!(
            "--acks must be all, -1, 1 or 0, got '{s}'"
        ))),
    }
}

/// Parses `--header key:value` (split at the first `:`; no `:` gives a null value).
pub fn parse_header_arg(s: &str) -> Result<(String, Option<Vec<u8>>)> {
    let (k, v) = match s.split_once(':') {
        Some((k, v)) => (k, Some(v.as_bytes().to_vec())),
        None => (s, None),
    };
    if k.is_empty() {
        return Err(AdminError::Invalid(format!("--header '{s}' has no key")));
    }
    Ok((k.to_string(), v))
}

pub struct ProduceOptions {
    pub topic: String,
    pub partition: Option<i32>,
    pub acks: i16,
    pub format: LineFormat,
    pub extra_headers: Vec<(String, Option<Vec<u8>>)>,
    pub compression: Compression,
    pub batch_bytes: usize,
    pub linger: Duration,
}

/// What was written to each partition.
#[derive(Debug, Default, Clone, Copy)]
struct Written {
    messages: u64,
    /// First offset written (unknown with acks=0).
    first_offset: Option<i64>,
    last_offset: Option<i64>,
}

struct Producer<'a> {
    client: &'a mut Client,
    opts: &'a ProduceOptions,
    meta: TopicMeta,
    next_round_robin: usize,
    pending: BTreeMap<i32, Vec<Outgoing>>,
    pending_bytes: BTreeMap<i32, usize>,
    written: BTreeMap<i32, Written>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Producer<'_> {
    fn partition_of(&mut self, key: Option<&[u8]>) -> i32 {
        let n = self.meta.partitions.len();
        match (self.opts.partition, key) {
            (Some(p), _) => p,
            (None, Some(k)) => partition_for_key(k, n),
            (None, None) => {
                let p = self.next_round_robin % n;
                self.next_round_robin = self.next_round_robin.wrapping_add(1);
                p as i32
            }
        }
    }

    /// Queues a message; returns whether a send is due (a batch or the request is full).
    fn push(&mut self, m: LineMessage) -> bool {
        let partition = self.partition_of(m.key.as_deref());
        let mut headers: Vec<(String, Option<Bytes>)> = self
            .opts
            .extra_headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().map(Bytes::from)))
            .collect();
        headers.extend(m.headers.into_iter().map(|(k, v)| (k, v.map(Bytes::from))));
        let size = m.key.as_ref().map_or(0, Vec::len)
            + m.value.as_ref().map_or(0, Vec::len)
            + headers
                .iter()
                .map(|(k, v)| k.len() + v.as_ref().map_or(0, Bytes::len))
                .sum::<usize>();
        self.pending.entry(partition).or_default().push(Outgoing {
            key: m.key.map(Bytes::from),
            value: m.value.map(Bytes::from),
            headers,
            timestamp: now_ms(),
        });
        let b = self.pending_bytes.entry(partition).or_default();
        *b += size;
        *b >= self.opts.batch_bytes
            || self.pending_bytes.values().sum::<usize>() >= REQUEST_BYTES_MAX
    }

    /// Sends every pending batch, retrying retriable errors a bounded number of times.
    fn flush(&mut self) -> Result<()> {
        let mut batches: BTreeMap<i32, Vec<Outgoing>> = std::mem::take(&mut self.pending);
        self.pending_bytes.clear();
        let mut last_error = None;
        for attempt in 0..SEND_ATTEMPTS {
            if batches.is_empty() {
                return Ok(());
            }
            if attempt > 0 {
                std::thread::sleep(RETRY_BACKOFF);
                self.meta = metadata::topic_auto_create(self.client, &self.opts.topic)?;
            }
            let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
            for p in batches.keys() {
                match self.meta.leader_of(*p) {
                    Some(l) => by_leader.entry(l).or_default().push(*p),
                    None => {
                        last_error = Some(AdminError::Kafka {
                            context: format!("produce to {}-{p}", self.opts.topic),
                            error: K::LeaderNotAvailable,
                            message: None,
                        })
                    }
                }
            }
            for (leader, partitions) in by_leader {
                match self.send(leader, &partitions, &batches) {
                    Ok(results) => {
                        for (p, result) in results {
                            match result {
                                Ok(()) => {
                                    batches.remove(&p);
                                }
                                Err(e) if e.kafka_error().is_some_and(|k| k.is_retriable()) => {
                                    last_error = Some(e)
                                }
                                Err(e) => return Err(e),
                            }
                        }
                    }
                    Err(e @ (AdminError::Io { .. } | AdminError::Connect { .. })) => {
                        self.client.drop_broker(leader);
                        last_error = Some(e);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if batches.is_empty() {
            return Ok(());
        }
        Err(last_error.unwrap_or_else(|| {
            AdminError::Timeout(format!(
                "{} batches for {} still unsent after {SEND_ATTEMPTS} attempts",
                batches.len(),
                self.opts.topic
            ))
        }))
    }

    /// One Produce request to `leader` for `partitions`; per partition, whether it was written.
    fn send(
        &mut self,
        leader: i32,
        partitions: &[i32],
        batches: &BTreeMap<i32, Vec<Outgoing>>,
    ) -> Result<Vec<(i32, Result<()>)>> {
        let topic = self.opts.topic.clone();
        let mut data = Vec::with_capacity(partitions.len());
        for p in partitions {
            let records = encode_batch(&batches[p], self.opts.compression)?;
            data.push(
                PartitionProduceData::default()
                    .with_index(*p)
                    .with_records(Some(records)),
            );
        }
        let req = ProduceRequest::default()
            .with_acks(self.opts.acks)
            .with_timeout_ms(PRODUCE_TIMEOUT_MS)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(&topic))
                .with_partition_data(data)]);
        let conn = self.client.broker(leader)?;
        // v3 is the first with record batches (magic 2); v13 names topics by id only.
        let v = conn.version(ApiKey::Produce, 3, 12)?;
        if self.opts.acks == 0 {
            conn.send_only(&req, v)?;
            for p in partitions {
                let w = self.written.entry(*p).or_default();
                w.messages += batches[p].len() as u64;
            }
            return Ok(partitions.iter().map(|p| (*p, Ok(()))).collect());
        }
        let resp = conn.call(&req, v)?;
        let mut out = Vec::new();
        for t in &resp.responses {
            for r in &t.partition_responses {
                let Some(sent) = batches.get(&r.index) else {
                    continue;
                };
                let result = check(r.error_code, r.error_message.as_deref(), || {
                    format!("produce to {topic}-{}", r.index)
                });
                if result.is_ok() {
                    let w = self.written.entry(r.index).or_default();
                    w.messages += sent.len() as u64;
                    w.first_offset.get_or_insert(r.base_offset);
                    w.last_offset = Some(r.base_offset + sent.len() as i64 - 1);
                }
                out.push((r.index, result));
            }
        }
        if let Some(p) = partitions
            .iter()
            .find(|p| !out.iter().any(|(q, _)| q == *p))
        {
            return Err(AdminError::Protocol(format!(
                "Produce answer lacks {topic}-{p}"
            )));
        }
        Ok(out)
    }
}

/// Reads lines on a thread, so the producer can send what it has when input pauses (a person
/// typing) and batch when it does not (a pipe).
fn spawn_line_reader(input: Box<dyn BufRead + Send>) -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::sync_channel(LINE_QUEUE);
    std::thread::spawn(move || {
        for line in input.split(b'\n') {
            let line = line.map(|mut l| {
                if l.last() == Some(&b'\r') {
                    l.pop();
                }
                l
            });
            let failed = line.is_err();
            if tx.send(line).is_err() || failed {
                return;
            }
        }
    });
    rx
}

/// Produces every line of `input`. Returns a per-partition summary.
pub fn run(
    client: &mut Client,
    opts: &ProduceOptions,
    input: Box<dyn BufRead + Send>,
) -> Result<Report> {
    let meta = metadata::topic_auto_create(client, &opts.topic)?;
    if meta.partitions.is_empty() {
        return Err(AdminError::Invalid(format!(
            "topic {} has no partitions",
            opts.topic
        )));
    }
    if let Some(p) = opts.partition {
        if p < 0 || p as usize >= meta.partitions.len() {
            return Err(AdminError::Invalid(format!(
                "topic {} has partitions 0..{}, not {p}",
                opts.topic,
                meta.partitions.len() - 1
            )));
        }
    }
    let mut producer = Producer {
        client,
        opts,
        meta,
        next_round_robin: 0,
        pending: BTreeMap::new(),
        pending_bytes: BTreeMap::new(),
        written: BTreeMap::new(),
    };
    let lines = spawn_line_reader(input);
    let mut line_no = 0u64;
    loop {
        // Wait as long as it takes for a line while nothing is pending; linger once something is.
        let next = if producer.pending.is_empty() {
            lines
                .recv()
                .map_err(|_| mpsc::RecvTimeoutError::Disconnected)
        } else {
            lines.recv_timeout(opts.linger)
        };
        match next {
            Ok(line) => {
                let line = line.map_err(|e| AdminError::Invalid(format!("reading input: {e}")))?;
                line_no += 1;
                let m = opts.format.parse(&line, line_no)?;
                if producer.push(m) {
                    producer.flush()?;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => producer.flush()?,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                producer.flush()?;
                break;
            }
        }
    }
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "MESSAGES",
        "FIRST-OFFSET",
        "LAST-OFFSET",
    ]);
    for (p, w) in &producer.written {
        table.push(vec![
            opts.topic.clone().into(),
            (*p).into(),
            (w.messages as i64).into(),
            w.first_offset.into(),
            w.last_offset.into(),
        ]);
    }
    let mut report = Report::new();
    report.table("produced", None, table);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(p: &[&str]) -> LineFormat {
        LineFormat::from_properties(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn murmur2_matches_kafkas_test_vectors() {
        // From Apache Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973_932_308);
        assert_eq!(murmur2(b"foobar"), -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58_897_971
        );
        assert_eq!(murmur2(b"abc"), 479_470_107);
        assert!((0..3).contains(&partition_for_key(b"foobar", 3)));
    }

    #[test]
    fn plain_lines_are_values() {
        let m = LineFormat::default().parse(b"hello\tworld", 1).unwrap();
        assert_eq!(m.key, None);
        assert_eq!(m.value.as_deref(), Some(&b"hello\tworld"[..]));
        assert!(m.headers.is_empty());
    }

    #[test]
    fn keys_split_at_the_first_separator() {
        let f = props(&["parse.key=true", "key.separator=:"]);
        let m = f.parse(b"user1:a:b", 1).unwrap();
        assert_eq!(m.key.as_deref(), Some(&b"user1"[..]));
        assert_eq!(m.value.as_deref(), Some(&b"a:b"[..]));
        let e = f.parse(b"nosep", 7).unwrap_err().to_string();
        assert!(e.contains("line 7"), "{e}");
        let lenient = props(&["parse.key=true", "key.separator=:", "ignore.error=true"]);
        let m = lenient.parse(b"nosep", 1).unwrap();
        assert_eq!((m.key, m.value.as_deref()), (None, Some(&b"nosep"[..])));
    }

    #[test]
    fn headers_then_key_then_value_as_kafka_reads_them() {
        let f = props(&[
            "parse.headers=true",
            "parse.key=true",
            "null.marker=NULL",
            r"key.separator=\t",
        ]);
        let m = f.parse(b"h1:v1,h2,h3:NULL\tk\tNULL", 1).unwrap();
        assert_eq!(
            m.headers,
            vec![
                ("h1".to_string(), Some(b"v1".to_vec())),
                ("h2".to_string(), None),
                ("h3".to_string(), None)
            ]
        );
        assert_eq!(m.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(m.value, None);
        let m = f.parse(b"NULL\tNULL\tv", 1).unwrap();
        assert!(m.headers.is_empty());
        assert_eq!((m.key, m.value.as_deref()), (None, Some(&b"v"[..])));
    }

    #[test]
    fn bad_properties_are_refused() {
        let bad = |p: &str| LineFormat::from_properties(&[p.to_string()]).is_err();
        assert!(bad("parse.keys=true"));
        assert!(bad("parse.key=yes"));
        assert!(bad("key.separator="));
        assert_eq!(parse_acks("all").unwrap(), -1);
        assert!(parse_acks("2").is_err());
        assert_eq!(
            parse_header_arg("a:b:c").unwrap(),
            ("a".into(), Some(b"b:c".to_vec()))
        );
        assert_eq!(parse_header_arg("a").unwrap(), ("a".into(), None));
        assert!(parse_header_arg(":x").is_err());
    }
}
