//! The command line, with flags named as Apache Kafka's tools name them (`--bootstrap-server`,
//! `--partitions`, `--replication-factor`, `--config`, `--group`, `--from-beginning`,
//! `--max-messages`, `--property`), so an operator's habits carry over.

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "weir-admin",
    version,
    about = "Operate Weir (or any Kafka-compatible broker): topics, configs, console produce and \
             consume, consumer groups and lag, the cluster, and offline log dump/verify.",
    after_help = "Exit codes: 0 success; 1 the operation failed (the reason is printed on one \
                  line); 2 bad usage; 3 `log verify` found problems."
)]
pub struct Cli {
    /// Print JSON instead of tables (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list, describe, delete and grow topics; read and change their configs.
    #[command(subcommand)]
    Topic(TopicCmd),
    /// Console producer: one message per line of standard input.
    Produce(ProduceArgs),
    /// Console consumer: print messages of a topic.
    Consume(ConsumeArgs),
    /// Consumer groups: list, describe (members, offsets, lag), reset offsets, delete.
    #[command(subcommand)]
    Group(GroupCmd),
    /// The cluster: brokers, the controller, partitions per broker.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Offline: read a partition directory or segment file, no broker needed.
    #[command(subcommand)]
    Log(LogCmd),
}

#[derive(Debug, Clone, Args)]
pub struct Net {
    /// The broker to bootstrap from; a comma-separated list is tried in order.
    #[arg(
        long = "bootstrap-server",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_server: String,
}

/// A topic given as an argument or, as Kafka's tools take it, with `--topic`.
#[derive(Debug, Clone, Args)]
pub struct TopicArg {
    /// The topic.
    #[arg(value_name = "TOPIC", required_unless_present = "topic")]
    name: Option<String>,
    /// The topic (same as the positional argument).
    #[arg(long, value_name = "TOPIC", conflicts_with = "name")]
    topic: Option<String>,
}

impl TopicArg {
    pub fn get(&self) -> &str {
        self.name
            .as_deref()
            .or(self.topic.as_deref())
            .expect("clap requires one")
    }
}

/// Topics given as arguments and/or with repeated `--topic`.
#[derive(Debug, Clone, Args)]
pub struct TopicsArg {
    /// Topics.
    #[arg(value_name = "TOPIC")]
    names: Vec<String>,
    /// A topic (repeatable; same as the positional arguments).
    #[arg(long = "topic", value_name = "TOPIC")]
    topics: Vec<String>,
}

impl TopicsArg {
    pub fn get(&self) -> Vec<String> {
        self.names.iter().chain(&self.topics).cloned().collect()
    }
}

#[derive(Debug, Subcommand)]
pub enum TopicCmd {
    /// Create a topic.
    Create {
        #[command(flatten)]
        net: Net,
        #[command(flatten)]
        topic: TopicArg,
        /// Number of partitions (default: the broker's num.partitions).
        #[arg(long)]
        partitions: Option<i32>,
        /// Replicas per partition (default: the broker's default.replication.factor).
        #[arg(long = "replication-factor")]
        replication_factor: Option<i16>,
        /// A topic config override, key=value (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Succeed without doing anything if the topic already exists.
        #[arg(long = "if-not-exists")]
        if_not_exists: bool,
    },
    /// List topics with their partition count and replication factor.
    List {
        #[command(flatten)]
        net: Net,
        /// Leave out internal topics such as __consumer_offsets.
        #[arg(long = "exclude-internal")]
        exclude_internal: bool,
    },
    /// Per partition: leader, replicas, ISR, log start and end offsets (all topics if none given).
    Describe {
        #[command(flatten)]
        net: Net,
        #[command(flatten)]
        topics: TopicsArg,
        /// Leave out internal topics when describing all of them.
        #[arg(long = "exclude-internal")]
        exclude_internal: bool,
    },
    /// Delete topics.
    Delete {
        #[command(flatten)]
        net: Net,
        #[command(flatten)]
        topics: TopicsArg,
        /// Succeed for topics that do not exist.
        #[arg(long = "if-exists")]
        if_exists: bool,
    },
    /// Grow a topic to a new total number of partitions (partitions can only grow).
    AddPartitions {
        #[command(flatten)]
        net: Net,
        #[command(flatten)]
        topic: TopicArg,
        /// The new total number of partitions.
        #[arg(long)]
        partitions: i32,
    },
    /// Topic configs: get, set, delete (back to the default).
    #[command(subcommand)]
    Config(TopicConfigCmd),
    /// Unclean leader elections and what they discarded, as the cluster recorded them (all
    /// topics if none given).
    Unclean {
        #[command(flatten)]
        net: Net,
        #[command(flatten)]
        topics: TopicsArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum TopicConfigCmd {
    /// Show a topic's configs (all, or the keys given) with their source.
    Get {
        #[command(flatten)]
        net: Net,
        #[command(flatten)]
        topic: TopicArg,
        /// Only these keys.
        #[arg(long = "key", value_name = "KEY")]
        keys: Vec<String>,
    },
    /// Set topic config overrides.
    Set {
        #[command(flatten)]
        net: Net,
        #[command(flatten)]
        topic: TopicArg,
        /// key=value (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE", required = true)]
        configs: Vec<String>,
    },
    /// Remove topic config overrides, so the broker default applies again.
    Delete {
        #[command(flatten)]
        net: Net,
        #[command(flatten)]
        topic: TopicArg,
        /// A key to remove (repeatable).
        #[arg(long = "key", value_name = "KEY", required = true)]
        keys: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub net: Net,
    #[command(flatten)]
    pub topic: TopicArg,
    /// Send every message to this partition (default: by key hash as Kafka's Java client does,
    /// round-robin for messages without a key).
    #[arg(long)]
    pub partition: Option<i32>,
    /// Acknowledgements: all (-1), 1 or 0.
    #[arg(
        long,
        alias = "request-required-acks",
        default_value = "all",
        value_name = "ACKS"
    )]
    pub acks: String,
    /// Line parsing, as Kafka's console producer: parse.key=true, key.separator=:,
    /// parse.headers=true, headers.delimiter, headers.separator, headers.key.separator,
    /// null.marker, ignore.error (repeatable).
    #[arg(long = "property", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    /// A header added to every message, key:value (repeatable).
    #[arg(long = "header", value_name = "KEY:VALUE")]
    pub headers: Vec<String>,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long = "compression-codec", default_value = "none")]
    pub compression: String,
    /// Bytes of messages per partition batched into one request.
    #[arg(long = "batch-size", default_value_t = 16384)]
    pub batch_size: usize,
    /// How long to wait for more lines before sending what was read.
    #[arg(long = "linger-ms", default_value_t = 5)]
    pub linger_ms: u64,
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub net: Net,
    #[command(flatten)]
    pub topic: TopicArg,
    /// Consume as a member of this group: start from its committed offsets and commit progress.
    #[arg(long, conflicts_with_all = ["partition", "offset", "from_timestamp"])]
    pub group: Option<String>,
    /// Only this partition.
    #[arg(long)]
    pub partition: Option<i32>,
    /// Start at the earliest offset (with --group: where the group has no committed offset).
    #[arg(long = "from-beginning", conflicts_with_all = ["offset", "from_timestamp"])]
    pub from_beginning: bool,
    /// Start at earliest, latest, or an offset (a number needs --partition).
    #[arg(
        long,
        value_name = "earliest|latest|OFFSET",
        conflicts_with = "from_timestamp"
    )]
    pub offset: Option<String>,
    /// Start at the first message at or after this time: epoch milliseconds or
    /// YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM] (UTC when no zone is given).
    #[arg(long = "from-timestamp", value_name = "TIME")]
    pub from_timestamp: Option<String>,
    /// Stop after this many messages.
    #[arg(long = "max-messages")]
    pub max_messages: Option<u64>,
    /// Stop at the end: the log end offsets when consumption started.
    #[arg(long = "exit-at-end")]
    pub exit_at_end: bool,
    /// Stop when no message arrived for this long.
    #[arg(long = "timeout-ms")]
    pub timeout_ms: Option<u64>,
    /// Output, as Kafka's console consumer: print.key, print.timestamp, print.partition,
    /// print.offset, print.headers, print.value, key.separator, line.separator,
    /// headers.separator, null.literal (repeatable).
    #[arg(long = "property", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    /// Output template instead: %t topic, %p partition, %o offset, %k key, %v value,
    /// %h headers, %T timestamp (ms), %% a percent sign; \n and \t escapes.
    #[arg(long, conflicts_with = "properties")]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct GroupArg {
    /// The group.
    #[arg(long, value_name = "GROUP", required = true)]
    pub group: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    /// List groups with their state.
    List {
        #[command(flatten)]
        net: Net,
        /// Only groups in this state (Empty, Stable, PreparingRebalance, CompletingRebalance,
        /// Dead); repeatable.
        #[arg(long)]
        state: Vec<String>,
    },
    /// A group's state, members and assignments, and per partition the committed offset, the
    /// log end offset and the lag.
    Describe {
        #[command(flatten)]
        net: Net,
        #[command(flatten)]
        group: GroupArg,
    },
    /// Reset committed offsets of an inactive group. Dry run unless --execute, as in Kafka.
    ResetOffsets(ResetArgs),
    /// Delete inactive groups and their committed offsets.
    Delete {
        #[command(flatten)]
        net: Net,
        #[command(flatten)]
        group: GroupArg,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["topic", "all_topics"])))]
#[command(group(clap::ArgGroup::new("target").required(true)
    .args(["to_earliest", "to_latest", "to_offset", "to_datetime", "shift_by"])))]
pub struct ResetArgs {
    #[command(flatten)]
    pub net: Net,
    /// The group.
    #[arg(long)]
    pub group: String,
    /// TOPIC or TOPIC:P,P,... (repeatable).
    #[arg(long, value_name = "TOPIC[:PARTITIONS]")]
    pub topic: Vec<String>,
    /// Every topic the group has committed offsets for.
    #[arg(long = "all-topics")]
    pub all_topics: bool,
    #[arg(long = "to-earliest")]
    pub to_earliest: bool,
    #[arg(long = "to-latest")]
    pub to_latest: bool,
    /// An absolute offset (kept within the log's bounds).
    #[arg(long = "to-offset")]
    pub to_offset: Option<i64>,
    /// The first offset at or after this time: epoch ms or YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM].
    #[arg(long = "to-datetime", value_name = "TIME")]
    pub to_datetime: Option<String>,
    /// Move each committed offset by N (negative goes back), kept within the log's bounds.
    #[arg(long = "shift-by", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// Apply the reset (without it, print what would be done).
    #[arg(long, conflicts_with = "dry_run")]
    pub execute: bool,
    /// Only print what would be done (the default).
    #[arg(long = "dry-run")]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// Cluster id, controller, brokers (fenced ones marked), partitions per broker (warns above
    /// the threshold), and the controller quorum: leader, voters and their lag, observers.
    Describe {
        #[command(flatten)]
        net: Net,
        /// Warn when a broker hosts more partition replicas than this.
        #[arg(long = "partition-warn-threshold", default_value_t = crate::cluster::PARTITIONS_PER_BROKER_WARN)]
        partition_warn_threshold: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum LogCmd {
    /// List the batches of a partition directory or one .log segment.
    Dump {
        /// A partition directory (e.g. data/orders-0) or a .log file.
        path: std::path::PathBuf,
        /// Also print every record (offset, timestamp, key, value, headers).
        #[arg(long = "print-data-log")]
        print_data: bool,
    },
    /// Check every batch CRC and framing, offset order, and every .index and .timeindex entry.
    Verify {
        /// A partition directory, a log directory holding partition directories, or a .log file.
        path: std::path::PathBuf,
    },
}
