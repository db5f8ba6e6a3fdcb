//! Command-line flags, named as Kafka's perf tools name them.

use crate::client::produce::Acks;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "weir-bench",
    version,
    about = "Thread-per-core Kafka load generator with HdrHistogram latencies"
)]
pub struct Cli {
    #[command(subcommand)]
    pub mode: Mode,
}

#[derive(Subcommand, Debug)]
pub enum Mode {
    /// N producers at a fixed rate or as fast as possible; throughput and ack latency.
    Produce(ProduceArgs),
    /// N consumers read a topic from a position; throughput and lag.
    Consume(ConsumeArgs),
    /// Producers at a fixed rate stamp each message, consumers measure end-to-end latency from
    /// the intended send time and verify every message arrives exactly once.
    E2e(E2eArgs),
    /// The same produce workload over several partition counts (one topic per count).
    Sweep(SweepArgs),
    /// A partition count from a target throughput and measured per-partition rates.
    Advise(AdviseArgs),
    /// The physical limit for the same bytes: raw TCP over loopback into a page-cached file.
    Baseline(BaselineArgs),
}

#[derive(Args, Debug, Clone)]
pub struct SweepArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub producer: ProducerArgs,
    /// Partition counts to try; topic `<topic>-p<count>` is created for each.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,10,100,500,1000,2000,4000"
    )]
    pub partition_counts: Vec<usize>,
    /// Visit every count this many times, alternating forwards and backwards, and report each
    /// count over all its visits (and each visit's MB/s): a broker that slows over a long run
    /// then does not penalise the last counts.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Produce this long, unmeasured, before the first visit (to `<topic>-settle`, with the
    /// first count's partitions), e.g. 20s. A machine's page cache takes the first gigabytes
    /// at memory speed and then slows to what writeback sustains; without settling, the first
    /// count visited is measured on a fresher machine than the others.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub settle: Duration,
}

#[derive(Args, Debug, Clone)]
pub struct AdviseArgs {
    /// Throughput the topic must carry, MB/s.
    #[arg(long)]
    pub target_mb_per_sec: f64,
    /// Producer throughput per partition, MB/s. Measured against the broker (one partition,
    /// topic `<topic>-advise`, for `--duration`) when not given.
    #[arg(long)]
    pub producer_mb_per_partition: Option<f64>,
    /// Consumer throughput per partition, MB/s. Measured by reading that topic back when not
    /// given.
    #[arg(long)]
    pub consumer_mb_per_partition: Option<f64>,
    /// Consumers the group will run (a partition feeds at most one of them).
    #[arg(long = "group-consumers", default_value_t = 1)]
    pub consumers: usize,
    #[arg(long, default_value_t = 1)]
    pub brokers: usize,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub producer: ProducerArgs,
}

#[derive(Args, Debug, Clone)]
pub struct BaselineArgs {
    /// Bytes per write (use the produce --batch-size to compare).
    #[arg(long, default_value_t = 16384)]
    pub batch_size: usize,
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub duration: Duration,
    /// Run this long first without counting (as produce's --warmup), e.g. 2s.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub warmup: Duration,
    /// Directory for the sink's files (on the broker's file system to compare).
    #[arg(long, default_value = "/tmp")]
    pub dir: PathBuf,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Broker to bootstrap from.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    #[arg(long, default_value = "weir-bench")]
    pub topic: String,
    /// Partitions of the topic; it is created with this many if missing.
    #[arg(long, default_value_t = 1)]
    pub partitions: usize,
    /// Replication factor used when creating the topic.
    #[arg(long, default_value_t = 1)]
    pub replication_factor: i16,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 1024)]
    pub message_size: usize,
    /// Messages to measure (after the warm-up), across all producers/consumers.
    #[arg(long, conflicts_with = "duration")]
    pub messages: Option<u64>,
    /// How long to measure (after the warm-up), e.g. 10s, 500ms, 2m. Default 10s.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Run this long first without counting, e.g. 2s.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub warmup: Duration,
    /// Executors (one pinned thread each) to spread the clients over.
    #[arg(long, default_value_t = 1)]
    pub cores: usize,
    /// First CPU to pin to; executors take CPUs counting down from it. Default: the last CPU,
    /// away from a broker on the same machine that pins from CPU 0 up.
    #[arg(long)]
    pub cpu: Option<usize>,
    /// Print the summary as one JSON object on stdout's last line.
    #[arg(long)]
    pub json: bool,
    /// Write the .hgrm percentile distributions and summary.json here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// With --out, also draw charts as SVG and PNG (latency percentile spectrum; sweep curves).
    #[arg(long, requires = "out")]
    pub plot: bool,
    /// No live progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ProducerArgs {
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Seal a partition's batch once it holds this many bytes.
    #[arg(long, default_value_t = 16384)]
    pub batch_size: usize,
    /// Longest a message waits for its batch to fill.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// 0, 1 or all.
    #[arg(long, default_value = "all")]
    pub acks: Acks,
    /// Total target rate in messages/s across producers; unlimited if absent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Produce requests in flight per producer and broker connection (Kafka's
    /// `max.in.flight.requests.per.connection`).
    #[arg(long, default_value_t = 5)]
    pub max_in_flight: usize,
    /// Largest produce request in bytes: the waiting batches of several partitions go in one
    /// request up to this size (Kafka's `max.request.size`).
    #[arg(long, default_value_t = 1_048_576)]
    pub max_request_size: usize,
    /// Bytes of sealed batches a producer may hold waiting or in flight before it stops
    /// generating messages (Kafka's `buffer.memory`). Default: five full requests, not Kafka's
    /// 32 MiB: an unpaced run keeps the buffer full, and latency from generation then measures
    /// mostly the client's own queue (32 MiB at 350 MB/s is ~90 ms before any broker work).
    #[arg(long, default_value_t = 5 << 20)]
    pub buffer_memory: usize,
    /// Produce request timeout sent to the broker.
    #[arg(long, default_value_t = 30_000)]
    pub request_timeout_ms: i32,
}

#[derive(Args, Debug, Clone)]
pub struct ConsumerArgs {
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Longest a fetch waits at the broker for data.
    #[arg(long, default_value_t = 100)]
    pub fetch_max_wait_ms: i32,
    /// Bytes per partition per fetch.
    #[arg(long, default_value_t = 1 << 20)]
    pub partition_max_bytes: i32,
    /// Give up after this long without new messages.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub idle_timeout: Duration,
}

impl ConsumerArgs {
    /// One consumer with the command line's defaults (for measurements of one partition).
    pub fn one() -> Self {
        Self {
            consumers: 1,
            fetch_max_wait_ms: 100,
            partition_max_bytes: 1 << 20,
            idle_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub producer: ProducerArgs,
    /// Also measure `baseline` (same batch size, same duration, before producing) and print the
    /// produce throughput as a ratio of it.
    #[arg(long)]
    pub baseline: bool,
    /// Directory for the baseline sink's files.
    #[arg(long, default_value = "/tmp")]
    pub baseline_dir: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub consumer: ConsumerArgs,
    /// Where to start: earliest or latest.
    #[arg(long, default_value = "earliest")]
    pub from: From,
}

#[derive(Args, Debug, Clone)]
pub struct E2eArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub producer: ProducerArgs,
    #[command(flatten)]
    pub consumer: ConsumerArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum From {
    Earliest,
    Latest,
}

/// "10s", "500ms", "2m", "1h", "1.5s" or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("bad duration unit in {s:?} (ms, s, m or h)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("bad duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl Common {
    /// What bounds the measured phase.
    pub fn stop(&self) -> Stop {
        match (self.messages, self.duration) {
            (Some(n), _) => Stop::Messages(n),
            (None, Some(d)) => Stop::Duration(d),
            (None, None) => Stop::Duration(Duration::from_secs(10)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Messages(u64),
    Duration(Duration),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from([
            "weir-bench",
            "produce",
            "--bootstrap-server",
            "127.0.0.1:1234",
            "--acks",
            "1",
            "--duration",
            "3s",
            "--rate",
            "1000",
        ])
        .unwrap();
        let Mode::Produce(p) = cli.mode else {
            panic!("not produce")
        };
        assert_eq!(p.common.stop(), Stop::Duration(Duration::from_secs(3)));
        assert_eq!(p.producer.acks, Acks::Leader);
        assert_eq!(p.producer.rate, Some(1000.0));
        assert!(Cli::try_parse_from([
            "weir-bench",
            "produce",
            "--messages",
            "1",
            "--duration",
            "1s"
        ])
        .is_err());
    }
}
