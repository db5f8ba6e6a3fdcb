//! The cluster's settings, with Kafka's KRaft names, defaults and checks (its `KRaftConfigs`,
//! `QuorumConfig` and the KRaft part of `KafkaConfig.validateValues`): this node's roles, the
//! controller quorum, broker heartbeats and sessions, leader balancing, the metadata log, and
//! which listener carries which traffic. `docs/CLUSTER.md` says what each is for.
//!
//! A node with both roles and no quorum configured (`config/server.properties`) is a quorum of
//! one, itself, as a single Weir broker always was: no controller listener is needed. Every
//! other layout names its quorum, as Kafka requires.
//!
//! Parts: [`voters`] (the quorum's addresses), [`rules`] (the checks across roles, quorum and
//! listeners); the settings and the helpers the runtime calls are here.

use std::fmt;
use std::path::{Path, PathBuf};

use super::parse::Reader;
use super::{csv, invalid, BrokerConfig, ConfigError, Listener, SecurityProtocol};

pub mod rules;
pub mod voters;

pub use voters::{HostPort, Voter};

/// An entry of `process.roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessRole {
    Broker,
    Controller,
}

impl fmt::Display for ProcessRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Broker => "broker",
            Self::Controller => "controller",
        })
    }
}

/// Parses `process.roles` (Kafka's `ValidList.in("broker", "controller")`, no duplicates).
pub(crate) fn parse_roles(raw: &str) -> Result<Vec<ProcessRole>, ConfigError> {
    let mut roles = Vec::new();
    for item in csv(raw) {
        let role = match item {
            "broker" => ProcessRole::Broker,
            "controller" => ProcessRole::Controller,
            _ => {
                return Err(invalid(
                    "process.roles",
                    raw,
                    format!("unknown role {item:?}"),
                ))
            }
        };
        if roles.contains(&role) {
            return Err(invalid(
                "process.roles",
                raw,
                format!("duplicate role {item:?}"),
            ));
        }
        roles.push(role);
    }
    if roles.is_empty() {
        // An empty list is ZooKeeper mode in Kafka 3.x, which Kafka 4 and Weir do not have.
        return Err(invalid(
            "process.roles",
            raw,
            "expected broker, controller, or broker,controller",
        ));
    }
    Ok(roles)
}

/// The KRaft settings of a node. Integer types are Kafka's (INT = i32, LONG = i64). Where Kafka
/// has no range check and a value below the floor given here cannot work (a timer of 0 ms),
/// Weir refuses it: each field says which floor is Kafka's and which is Weir's.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// `controller.quorum.voters`: the static quorum, as configured (empty when unset; see
    /// [`BrokerConfig::voters`] for the quorum to run). Default empty.
    pub controller_quorum_voters: Vec<Voter>,
    /// `controller.quorum.bootstrap.servers` (KIP-853): where to discover a dynamic quorum.
    /// Default empty.
    pub controller_quorum_bootstrap_servers: Vec<HostPort>,
    /// The inter-broker listener's name: `inter.broker.listener.name`, else the listener named
    /// after `security.inter.broker.protocol` (Kafka's rule; only one of the two may be set).
    /// Upper-cased. Default PLAINTEXT.
    pub inter_broker_listener_name: String,
    /// `broker.heartbeat.interval.ms` (≥ 1, Weir's floor). Default 2000.
    pub broker_heartbeat_interval_ms: i32,
    /// `broker.session.timeout.ms` (> the heartbeat interval, Weir's rule). Default 9000.
    pub broker_session_timeout_ms: i32,
    /// `controller.quorum.election.timeout.ms` (≥ 1, Weir's floor). Default 1000.
    pub controller_quorum_election_timeout_ms: i32,
    /// `controller.quorum.fetch.timeout.ms` (≥ 1, Weir's floor). Default 2000.
    pub controller_quorum_fetch_timeout_ms: i32,
    /// `controller.quorum.election.backoff.max.ms` (≥ 0, Weir's floor). Default 1000.
    pub controller_quorum_election_backoff_max_ms: i32,
    /// `controller.quorum.request.timeout.ms` (≥ 1, Weir's floor). Default 2000.
    pub controller_quorum_request_timeout_ms: i32,
    /// `controlled.shutdown.enable`. Default true.
    pub controlled_shutdown_enable: bool,
    /// `auto.leader.rebalance.enable`. Default true.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds` (≥ 1, Kafka's). Default 300.
    pub leader_imbalance_check_interval_seconds: i64,
    /// `metadata.log.dir`; unset: the first of `log.dirs` (see
    /// [`BrokerConfig::metadata_log_dir`]).
    pub metadata_log_dir: Option<PathBuf>,
    /// `metadata.log.segment.bytes` (≥ 8 MiB, the floor Kafka's metadata log enforces).
    /// Default 1073741824.
    pub metadata_log_segment_bytes: i32,
    /// `metadata.log.max.record.bytes.between.snapshots` (≥ 1, Kafka's). Default 20971520.
    pub metadata_log_max_record_bytes_between_snapshots: i64,
    /// `metadata.max.idle.interval.ms` (≥ 0, Kafka's; 0: no no-op records). Default 500.
    pub metadata_max_idle_interval_ms: i32,
    /// `metadata.log.max.snapshot.interval.ms` (≥ 0, Kafka's; 0: no time-based snapshots).
    /// Default 3600000.
    pub metadata_log_max_snapshot_interval_ms: i64,
}

/// Kafka's metadata log refuses segments below its largest batch (`KafkaRaftClient`'s 8 MiB).
pub const METADATA_LOG_SEGMENT_BYTES_MIN: i32 = 8 << 20;

impl ClusterConfig {
    /// Reads the KRaft keys; `warnings` gets Kafka's logged complaints.
    pub(super) fn parse(r: &Reader<'_>, warnings: &mut Vec<String>) -> Result<Self, ConfigError> {
        let heartbeat = r.int("broker.heartbeat.interval.ms", 1)?;
        let session = r.int("broker.session.timeout.ms", 1)?;
        if session <= heartbeat {
            // Kafka does not refuse this, but a broker that heartbeats less often than its
            // session lasts is fenced between heartbeats, forever.
            return Err(invalid(
                "broker.session.timeout.ms",
                &session.to_string(),
                format!("must be greater than broker.heartbeat.interval.ms ({heartbeat})"),
            ));
        }
        if i64::from(heartbeat) * 2 > i64::from(session) {
            // Kafka's KAFKA-19432 logs this as an error and starts anyway; so does Weir.
            warnings.push(format!(
                "broker.heartbeat.interval.ms ({heartbeat} ms) should be at most half of \
                 broker.session.timeout.ms ({session} ms): one late heartbeat fences the broker"
            ));
        }
        Ok(Self {
            controller_quorum_voters: voters::parse_voters(r.required(voters::VOTERS)?)?,
            controller_quorum_bootstrap_servers: voters::parse_bootstrap_servers(
                r.required(voters::BOOTSTRAP_SERVERS)?,
            )?,
            inter_broker_listener_name: inter_broker_listener_name(r)?,
            broker_heartbeat_interval_ms: heartbeat,
            broker_session_timeout_ms: session,
            controller_quorum_election_timeout_ms: r
                .int("controller.quorum.election.timeout.ms", 1)?,
            controller_quorum_fetch_timeout_ms: r.int("controller.quorum.fetch.timeout.ms", 1)?,
            controller_quorum_election_backoff_max_ms: r
                .int("controller.quorum.election.backoff.max.ms", 0)?,
            controller_quorum_request_timeout_ms: r
                .int("controller.quorum.request.timeout.ms", 1)?,
            controlled_shutdown_enable: r.boolean("controlled.shutdown.enable")?,
            auto_leader_rebalance_enable: r.boolean("auto.leader.rebalance.enable")?,
            leader_imbalance_check_interval_seconds: r
                .long("leader.imbalance.check.interval.seconds", 1)?,
            metadata_log_dir: r.opt_string("metadata.log.dir").map(PathBuf::from),
            metadata_log_segment_bytes: r
                .int("metadata.log.segment.bytes", METADATA_LOG_SEGMENT_BYTES_MIN)?,
            metadata_log_max_record_bytes_between_snapshots: r
                .long("metadata.log.max.record.bytes.between.snapshots", 1)?,
            metadata_max_idle_interval_ms: r.int("metadata.max.idle.interval.ms", 0)?,
            metadata_log_max_snapshot_interval_ms: r
                .long("metadata.log.max.snapshot.interval.ms", 0)?,
        })
    }
}

/// Kafka's `getInterBrokerListenerNameAndSecurityProtocol`: the listener named by
/// `inter.broker.listener.name`, or the one named after `security.inter.broker.protocol`.
fn inter_broker_listener_name(r: &Reader<'_>) -> Result<String, ConfigError> {
    const NAME: &str = "inter.broker.listener.name";
    const PROTOCOL: &str = "security.inter.broker.protocol";
    let protocol = r.required(PROTOCOL)?;
    // Kafka's `ValidString.in` of the protocol names: exact, case included.
    if protocol
        .parse::<SecurityProtocol>()
        .map_or(true, |p| p.to_string() != protocol)
    {
        return Err(invalid(
            PROTOCOL,
            protocol,
            "String must be one of: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
        ));
    }
    match r.opt_string(NAME) {
        Some(name) if r.props.get(PROTOCOL).is_some() => Err(invalid(
            NAME,
            &name,
            format!("Only one of {NAME} and {PROTOCOL} should be set."),
        )),
        Some(name) => Ok(name.to_ascii_uppercase()),
        None => Ok(protocol.to_owned()),
    }
}

/// What the runtime asks of the configuration about the cluster.
impl BrokerConfig {
    /// Whether this node has the broker role (serves clients and holds partitions).
    pub fn is_broker(&self) -> bool {
        self.process_roles.contains(&ProcessRole::Broker)
    }

    /// Whether this node has the controller role (is a voter of the controller quorum).
    pub fn is_controller(&self) -> bool {
        self.process_roles.contains(&ProcessRole::Controller)
    }

    /// Whether `controller.quorum.voters` or `controller.quorum.bootstrap.servers` is set. When
    /// neither is (only allowed with both roles), this node is a quorum of one.
    pub fn has_configured_quorum(&self) -> bool {
        !self.cluster.controller_quorum_voters.is_empty()
            || !self.cluster.controller_quorum_bootstrap_servers.is_empty()
    }

    /// The controller quorum to run: the configured voters; with no quorum configured, one
    /// voter, this node, at its controller listener if it has one, else at its client listener
    /// (an address no one dials: a quorum of one sends no messages). Empty when only
    /// `controller.quorum.bootstrap.servers` is set: the voters are then learnt from them.
    pub fn voters(&self) -> Vec<Voter> {
        if self.has_configured_quorum() {
            return self.cluster.controller_quorum_voters.clone();
        }
        let own = self
            .advertised_controller_listener()
            .or_else(|| self.advertised_client_listener());
        let (host, port) = own.map_or(("127.0.0.1".to_owned(), 0), |l| {
            let host = match l.host.as_str() {
                "" | "0.0.0.0" | "::" => "127.0.0.1".to_owned(),
                h => h.to_owned(),
            };
            (host, l.port)
        });
        vec![Voter {
            id: self.node_id,
            host,
            port,
        }]
    }

    /// The name of the listener controllers serve (the first of `controller.listener.names`):
    /// a controller binds it, a broker-only node connects to the voters with its protocol.
    pub fn controller_listener_name(&self) -> Option<&str> {
        self.controller_listener_names.first().map(String::as_str)
    }

    /// The controller listener this node binds: the first of `controller.listener.names` in
    /// `listeners`. `None` on a broker-only node, and on a quorum of one without one.
    pub fn controller_listener(&self) -> Option<&Listener> {
        self.controller_listener_names
            .iter()
            .find_map(|name| self.listeners.iter().find(|l| l.name == *name))
    }

    /// What this controller tells others to dial (Kafka's effective advertised controller
    /// listener): its `advertised.listeners` entry, else the bound listener.
    pub fn advertised_controller_listener(&self) -> Option<&Listener> {
        let bound = self.controller_listener()?;
        Some(self.advertised(bound))
    }

    /// The listener clients connect to: the first PLAINTEXT listener that is not a controller
    /// listener. Always there on a node with the broker role; `None` on a controller-only node.
    pub fn client_listener(&self) -> Option<&Listener> {
        self.listeners.iter().find(|l| {
            l.security_protocol == SecurityProtocol::Plaintext
                && !self.controller_listener_names.contains(&l.name)
        })
    }

    /// What Metadata advertises for [`Self::client_listener`]: its `advertised.listeners` entry,
    /// or the listener itself if not advertised. An empty host means the machine's hostname.
    pub fn advertised_client_listener(&self) -> Option<&Listener> {
        Some(self.advertised(self.client_listener()?))
    }

    /// The listener other brokers fetch from (replication), as bound. Always there on a node
    /// with the broker role.
    pub fn inter_broker_listener(&self) -> Option<&Listener> {
        let name = &self.cluster.inter_broker_listener_name;
        self.listeners.iter().find(|l| l.name == *name)
    }

    /// The inter-broker endpoint this broker registers for the others to fetch from: its
    /// `advertised.listeners` entry (the rules require one when `advertised.listeners` is set),
    /// else the bound listener. An empty host means the machine's hostname.
    pub fn advertised_inter_broker_listener(&self) -> Option<&Listener> {
        Some(self.advertised(self.inter_broker_listener()?))
    }

    fn advertised<'a>(&'a self, bound: &'a Listener) -> &'a Listener {
        self.advertised_listeners
            .iter()
            .find(|l| l.name == bound.name)
            .unwrap_or(bound)
    }

    /// Where the metadata log lives: `metadata.log.dir`, else the first of `log.dirs`.
    pub fn metadata_log_dir(&self) -> &Path {
        self.cluster
            .metadata_log_dir
            .as_deref()
            .unwrap_or_else(|| self.log_dir())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{broker, broker_err};

    #[test]
    fn defaults_are_kafkas() {
        let (c, w) = broker("");
        assert!(w.is_empty(), "{w:?}");
        let k = &c.cluster;
        assert!(k.controller_quorum_voters.is_empty());
        assert!(k.controller_quorum_bootstrap_servers.is_empty());
        assert_eq!(k.inter_broker_listener_name, "PLAINTEXT");
        assert_eq!(
            (k.broker_heartbeat_interval_ms, k.broker_session_timeout_ms),
            (2000, 9000)
        );
        assert_eq!(
            (
                k.controller_quorum_election_timeout_ms,
                k.controller_quorum_fetch_timeout_ms,
                k.controller_quorum_election_backoff_max_ms,
                k.controller_quorum_request_timeout_ms
            ),
            (1000, 2000, 1000, 2000)
        );
        assert!(k.controlled_shutdown_enable && k.auto_leader_rebalance_enable);
        assert_eq!(k.leader_imbalance_check_interval_seconds, 300);
        assert_eq!(k.metadata_log_dir, None);
        assert_eq!(k.metadata_log_segment_bytes, 1 << 30);
        assert_eq!(k.metadata_log_max_record_bytes_between_snapshots, 20 << 20);
        assert_eq!(k.metadata_max_idle_interval_ms, 500);
        assert_eq!(k.metadata_log_max_snapshot_interval_ms, 3_600_000);
    }

    #[test]
    fn good_values_are_read() {
        let (c, w) = broker(
            "broker.heartbeat.interval.ms=1000\nbroker.session.timeout.ms=6000\n\
             controller.quorum.election.timeout.ms=1500\ncontroller.quorum.fetch.timeout.ms=3000\n\
             controller.quorum.election.backoff.max.ms=0\ncontroller.quorum.request.timeout.ms=4000\n\
             controlled.shutdown.enable=false\nauto.leader.rebalance.enable=FALSE\n\
             leader.imbalance.check.interval.seconds=60\n\
             metadata.log.dir=/meta\nmetadata.log.segment.bytes=8388608\n\
             metadata.log.max.record.bytes.between.snapshots=1\nmetadata.max.idle.interval.ms=0\n\
             metadata.log.max.snapshot.interval.ms=0\n",
        );
        assert!(w.is_empty(), "{w:?}");
        let k = &c.cluster;
        assert_eq!(
            (k.broker_heartbeat_interval_ms, k.broker_session_timeout_ms),
            (1000, 6000)
        );
        assert_eq!(k.controller_quorum_election_timeout_ms, 1500);
        assert_eq!(k.controller_quorum_fetch_timeout_ms, 3000);
        assert_eq!(k.controller_quorum_election_backoff_max_ms, 0);
        assert_eq!(k.controller_quorum_request_timeout_ms, 4000);
        assert!(!k.controlled_shutdown_enable && !k.auto_leader_rebalance_enable);
        assert_eq!(k.leader_imbalance_check_interval_seconds, 60);
        assert_eq!(c.metadata_log_dir(), Path::new("/meta"));
        assert_eq!(k.metadata_log_segment_bytes, 8 << 20);
        assert_eq!(k.metadata_log_max_record_bytes_between_snapshots, 1);
        assert_eq!(k.metadata_max_idle_interval_ms, 0);
        assert_eq!(k.metadata_log_max_snapshot_interval_ms, 0);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            (
                "broker.heartbeat.interval.ms=0",
                "broker.heartbeat.interval.ms",
            ),
            (
                "broker.heartbeat.interval.ms=x",
                "broker.heartbeat.interval.ms",
            ),
            ("broker.session.timeout.ms=0", "broker.session.timeout.ms"),
            (
                "controller.quorum.election.timeout.ms=0",
                "controller.quorum.election.timeout.ms",
            ),
            (
                "controller.quorum.fetch.timeout.ms=-1",
                "controller.quorum.fetch.timeout.ms",
            ),
            (
                "controller.quorum.election.backoff.max.ms=-1",
                "controller.quorum.election.backoff.max.ms",
            ),
            (
                "controller.quorum.request.timeout.ms=0",
                "controller.quorum.request.timeout.ms",
            ),
            (
                "controlled.shutdown.enable=yes",
                "controlled.shutdown.enable",
            ),
            (
                "auto.leader.rebalance.enable=1",
                "auto.leader.rebalance.enable",
            ),
            (
                "leader.imbalance.check.interval.seconds=0",
                "leader.imbalance.check.interval.seconds",
            ),
            (
                "metadata.log.segment.bytes=8388607",
                "metadata.log.segment.bytes",
            ),
            (
                "metadata.log.max.record.bytes.between.snapshots=0",
                "metadata.log.max.record.bytes.between.snapshots",
            ),
            (
                "metadata.max.idle.interval.ms=-1",
                "metadata.max.idle.interval.ms",
            ),
            (
                "metadata.log.max.snapshot.interval.ms=-1",
                "metadata.log.max.snapshot.interval.ms",
            ),
            (
                "security.inter.broker.protocol=plaintext",
                "security.inter.broker.protocol",
            ),
            (
                "security.inter.broker.protocol=TLS",
                "security.inter.broker.protocol",
            ),
            ("process.roles=", "process.roles"),
            ("process.roles=broker,broker", "process.roles"),
            ("process.roles=zookeeper", "process.roles"),
        ] {
            let e = broker_err(text);
            assert!(e.contains(&format!("for {key}:")), "{text}: {e}");
        }
    }

    #[test]
    fn session_outlasts_heartbeats() {
        let e = broker_err("broker.heartbeat.interval.ms=3000\nbroker.session.timeout.ms=3000");
        assert!(e.contains("for broker.session.timeout.ms"), "{e}");
        assert!(
            e.contains("greater than broker.heartbeat.interval.ms (3000)"),
            "{e}"
        );
        // More than half: Kafka's logged complaint, as a warning; the node starts.
        let (c, w) = broker("broker.heartbeat.interval.ms=3000\nbroker.session.timeout.ms=5000");
        assert_eq!(c.cluster.broker_session_timeout_ms, 5000);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("at most half"), "{w:?}");
        assert!(
            broker("broker.heartbeat.interval.ms=3000\nbroker.session.timeout.ms=6000")
                .1
                .is_empty()
        );
    }

    #[test]
    fn inter_broker_listener_name_or_protocol() {
        let (c, _) = broker(
            "listeners=PLAINTEXT://:9092,INTERNAL://127.0.0.1:9192\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT\n\
             inter.broker.listener.name=internal",
        );
        assert_eq!(c.cluster.inter_broker_listener_name, "INTERNAL");
        assert_eq!(
            c.inter_broker_listener().unwrap().to_string(),
            "INTERNAL://127.0.0.1:9192"
        );
        let (c, _) = broker("security.inter.broker.protocol=PLAINTEXT");
        assert_eq!(c.cluster.inter_broker_listener_name, "PLAINTEXT");
        let e = broker_err(
            "inter.broker.listener.name=PLAINTEXT\nsecurity.inter.broker.protocol=PLAINTEXT",
        );
        assert!(e.contains("for inter.broker.listener.name"), "{e}");
        assert!(e.contains("Only one of"), "{e}");
    }

    #[test]
    fn helpers_for_the_single_node_default() {
        let (c, _) = broker("node.id=7");
        assert!(c.is_broker() && c.is_controller());
        assert!(!c.has_configured_quorum());
        assert_eq!(c.voters().len(), 1);
        assert_eq!(c.voters()[0].to_string(), "7@127.0.0.1:9092");
        assert_eq!(c.controller_listener_name(), None);
        assert_eq!(c.controller_listener(), None);
        assert_eq!(
            c.client_listener().unwrap().to_string(),
            "PLAINTEXT://127.0.0.1:9092"
        );
        assert_eq!(c.inter_broker_listener(), c.client_listener());
        assert_eq!(
            c.advertised_inter_broker_listener().unwrap().to_string(),
            "PLAINTEXT://127.0.0.1:9092"
        );
        assert_eq!(c.metadata_log_dir(), c.log_dir());
    }

    #[test]
    fn helpers_for_a_combined_voter() {
        let (c, _) = broker(
            "node.id=2\ncontroller.quorum.voters=1@h1:9093,2@h2:9093,3@h3:9093\n\
             listeners=PLAINTEXT://:9092,CONTROLLER://:9093,INTERNAL://:9192\n\
             advertised.listeners=PLAINTEXT://h2:9092,INTERNAL://h2-internal:9192,CONTROLLER://h2:9093\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT\n\
             controller.listener.names=CONTROLLER\ninter.broker.listener.name=INTERNAL",
        );
        assert!(c.has_configured_quorum());
        let ids: Vec<i32> = c.voters().iter().map(|v| v.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(c.voters()[2].addr(), "h3:9093");
        assert_eq!(c.controller_listener_name(), Some("CONTROLLER"));
        assert_eq!(c.controller_listener().unwrap().bind_addr(), "0.0.0.0:9093");
        assert_eq!(
            c.advertised_controller_listener().unwrap().to_string(),
            "CONTROLLER://h2:9093"
        );
        assert_eq!(
            c.advertised_client_listener().unwrap().to_string(),
            "PLAINTEXT://h2:9092"
        );
        assert_eq!(
            c.inter_broker_listener().unwrap().bind_addr(),
            "0.0.0.0:9192"
        );
        assert_eq!(
            c.advertised_inter_broker_listener().unwrap().to_string(),
            "INTERNAL://h2-internal:9192"
        );
    }
}
