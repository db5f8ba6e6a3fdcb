//! What the runtime needs from the broker configuration, resolved once at start-up.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use weir_storage::LogConfig;

/// A topic's effective settings: its overrides over the broker's `log.*` defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicSettings {
    pub log: LogConfig,
    pub min_insync_replicas: i32,
    pub unclean_leader_election: bool,
}

/// Resolves topic overrides into effective settings, or says which override is invalid.
pub type TopicResolver = Rc<dyn Fn(&BTreeMap<String, String>) -> Result<TopicSettings, String>>;

/// Lists every topic config with its effective value and whether it is a default.
pub type TopicDescriber = Rc<dyn Fn(&BTreeMap<String, String>) -> Vec<(String, String, bool)>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanerSettings {
    /// `log.cleaner.backoff.ms`.
    pub backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size` divided among the cores.
    pub dedupe_buffer_bytes_per_core: usize,
}

pub struct Settings {
    pub node_id: i32,
    pub cluster_id: String,
    /// Where clients connect (the client listener); `None` on a controller-only node.
    pub listen: Option<SocketAddr>,
    /// That listener's name: the endpoint of every broker on it is what Metadata lists.
    pub client_listener_name: String,
    pub log_dir: PathBuf,
    pub cores: usize,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    pub retention_check_interval_ms: u64,
    pub hw_checkpoint_interval_ms: u64,
    /// The compaction cleaner of each core: how often it looks for dirty logs, and the key-map
    /// memory it may use per pass. `None`: `log.cleaner.enable=false`.
    pub cleaner: Option<CleanerSettings>,
    /// Cap on open segment descriptors, for the whole broker (split evenly across cores).
    pub open_segments_max: usize,
    pub net: weir_net::NetConfig,
    pub resolve_topic: TopicResolver,
    pub describe_topic: TopicDescriber,
    /// Broker configs for DescribeConfigs on the broker resource.
    pub broker_configs: Vec<crate::config::ConfigEntry>,
    pub groups: crate::group::GroupSettings,
    pub replication: ReplicationSettings,
    /// How this broker's followers fetch.
    pub fetch: crate::replicate::fetcher::FetchSettings,
}

/// What a partition's leader runs with.
#[derive(Debug, Clone, Copy)]
pub struct ReplicationSettings {
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: i64,
    /// `replica.fetch.backoff.ms`.
    pub replica_fetch_backoff_ms: i64,
    /// `weir.replica.acks.waiters.max`: acks=all produces one partition may hold waiting for
    /// their commit; beyond it a produce is answered REQUEST_TIMED_OUT at once.
    pub acks_waiters_max: usize,
}
