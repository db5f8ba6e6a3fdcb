//! The cluster side of a node, on its core 0 (see `docs/CLUSTER.md`): the controller quorum's
//! driver and the active controller's service on a controller; registration, heartbeats and
//! (without a vote) the metadata fetcher on a broker; and, on every node, the applier that
//! hands committed metadata to the cores in order.
//!
//! Modules: [`metadata_log`] (the quorum's files), [`quorum`] (the raft node's driver),
//! [`transport`] (raft messages to peer voters), [`applier`] (committed metadata to the cores),
//! [`controller`] (the active controller's service), [`client`] (reaching the active
//! controller), [`lifecycle`] (registration, heartbeats, controlled shutdown), [`observer`]
//! (metadata for brokers that are not voters), [`describe`] (the quorum as DescribeQuorum
//! shows it).

pub mod applier;
pub mod client;
pub mod controller;
pub mod describe;
pub mod lifecycle;
pub mod metadata_log;
pub mod observer;
pub mod quorum;
pub mod transport;

use applier::{Checkpointer, MetadataApplier, Publisher};
use bytes::Bytes;
use client::ControllerClient;
use controller::ControllerService;
use describe::{DescribeError, QuorumDescription};
use glommio::channels::local_channel::LocalReceiver;
use lifecycle::{BrokerLifecycle, LifecycleSettings};
use metadata_log::MetadataLog;
use observer::{MetadataFetcher, Observers};
use quorum::{QuorumDriver, RaftReceiveError};
use std::cell::Cell;
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};
use weir_net::client::ClientConfig;
use weir_net::{Part, Reply, WeirApi, WeirRequest};
use weir_replication::controller::{wire, ConfigValidator, ControllerConfig, ControllerState};
use weir_replication::metadata::records::Endpoint;
use weir_replication::metadata::{snapshot, MetadataImage};
use weir_replication::quorum::{QuorumConfig, QuorumNode, QuorumStatus, QuorumTimeouts, StepError};
use weir_replication::types::{BrokerEpoch, NodeId};
use weir_storage::SegmentFileCache;

/// The private apis and versions the CONTROLLER listener accepts ([`Cluster::handle_weir`]
/// answers them). One table, so the fuzz target of request frames decodes what is served.
pub fn private_apis() -> weir_net::WeirApis {
    weir_net::WeirApis::new(WeirApi::ALL.iter().map(|a| {
        (
            *a,
            kafka_protocol::protocol::VersionRange { min: 0, max: 0 },
        )
    }))
    .expect("every private api is at version 0")
}

/// A voter of the controller quorum and where its CONTROLLER listener is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub id: NodeId,
    /// `host:port`; empty for the single-node quorum of itself (nothing to connect to).
    pub addr: String,
}

/// How any core reaches the controller quorum's voters on their CONTROLLER listeners.
#[derive(Debug, Clone, Default)]
pub struct QuorumContacts {
    pub voters: Vec<Voter>,
    /// `controller.quorum.request.timeout.ms`: connecting to a voter and one call to it.
    pub request_timeout: Duration,
}

/// What the cluster needs from the configuration, resolved once at start-up.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub node_id: NodeId,
    pub cluster_id: String,
    pub is_broker: bool,
    pub is_controller: bool,
    pub voters: Vec<Voter>,
    /// The listener name of the voters' addresses (the first of `controller.listener.names`),
    /// as DescribeQuorum names their endpoints.
    pub controller_listener: String,
    /// Where the metadata log lives (`metadata.log.dir`, else the first `log.dirs`).
    pub metadata_dir: PathBuf,
    pub quorum: QuorumTimeouts,
    /// `broker.heartbeat.interval.ms`, `broker.session.timeout.ms`.
    pub heartbeat_interval: Duration,
    pub session_timeout: Duration,
    /// `initial.broker.registration.timeout.ms`.
    pub initial_registration_timeout: Duration,
    /// `controller.quorum.request.timeout.ms`: one call to a controller.
    pub request_timeout: Duration,
    /// `controller.socket.timeout.ms`: how long a broker waits for the active controller to
    /// answer a request it sent (the quorum's own calls keep the shorter timeout above).
    pub controller_socket_timeout: Duration,
    /// The listeners this broker registers (what other brokers and clients reach it at).
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    /// `metadata.log.max.record.bytes.between.snapshots`.
    pub snapshot_bytes: u64,
    /// `metadata.log.max.snapshot.interval.ms`.
    pub snapshot_interval: Duration,
    pub controller: ControllerConfig,
    /// `controlled.shutdown.enable`.
    pub controlled_shutdown: bool,
    /// `leader.imbalance.check.interval.seconds`, None when `auto.leader.rebalance.enable`
    /// is false.
    pub leader_rebalance_interval: Option<Duration>,
    /// The epoch this broker had at its last clean shutdown (KIP-966), -1 if none.
    pub previous_broker_epoch: BrokerEpoch,
}

/// Everything of the cluster on core 0.
pub struct Cluster {
    pub settings: ClusterSettings,
    pub applier: Rc<MetadataApplier>,
    pub client: Rc<ControllerClient>,
    pub controller: Option<Rc<ControllerService>>,
    pub quorum: Option<Rc<QuorumDriver>>,
    pub metadata_log: Option<Rc<MetadataLog>>,
    pub lifecycle: Option<Rc<BrokerLifecycle>>,
    fetcher: Option<Rc<MetadataFetcher>>,
    /// The broker-only nodes fetching metadata from this node while it is the active
    /// controller.
    observers: Observers,
}

/// Why the cluster side could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("opening the metadata log: {0}")]
    MetadataLog(#[from] metadata_log::MetadataLogError),
    #[error("controller quorum configuration: {0}")]
    QuorumConfig(#[from] weir_replication::quorum::config::ConfigError),
    #[error("recovering the controller quorum: {0}")]
    Quorum(#[from] weir_replication::quorum::QuorumError),
}

impl Cluster {
    /// Starts this node's cluster side. On a broker, the receiver resolves once the broker is
    /// registered and unfenced (serve clients then).
    pub async fn start(
        settings: ClusterSettings,
        cache: Rc<SegmentFileCache>,
        clean: bool,
        publish: Publisher,
        validator: Box<dyn ConfigValidator>,
    ) -> Result<(Rc<Self>, Option<LocalReceiver<()>>), ClusterError> {
        let applier = MetadataApplier::start(publish);
        let client_config = ClientConfig {
            request_timeout: settings.request_timeout,
            ..ClientConfig::new(format!("weir-node-{}", settings.node_id))
        };
        let voter_ids: Vec<NodeId> = settings.voters.iter().map(|v| v.id).collect();
        let peers: Vec<(NodeId, String)> = settings
            .voters
            .iter()
            .filter(|v| v.id != settings.node_id)
            .map(|v| (v.id, v.addr.clone()))
            .collect();
        let (controller, quorum, metadata_log) = if settings.is_controller {
            let (log, recovered) =
                MetadataLog::open(&settings.metadata_dir, cache, clean, &voter_ids).await?;
            let log = Rc::new(log);
            let state = ControllerState::new(
                settings.controller.clone(),
                validator,
                crate::clock::random_seed(),
            );
            let controller =
                ControllerService::new(state, applier.clone(), settings.leader_rebalance_interval);
            if let Some(snap) = &recovered.snapshot {
                // The state machine starts from the checkpoint; the quorum hands out the
                // committed entries after it.
                applier.push(applier::Applied::Snapshot(snap.clone()));
            }
            let config = QuorumConfig::new(
                settings.node_id,
                &voter_ids,
                settings.quorum,
                crate::clock::random_seed(),
            )?;
            let node = QuorumNode::recover(config, recovered)?;
            let tick = Duration::from_millis(settings.quorum.tick_ms);
            let quorum = QuorumDriver::start(
                node,
                log.clone(),
                &peers,
                client_config.clone(),
                applier.clone(),
                tick,
            );
            controller.set_quorum(&quorum);
            applier.set_checkpointer(Rc::new(SnapshotPolicy {
                quorum: Rc::downgrade(&quorum),
                log: log.clone(),
                max_bytes: settings.snapshot_bytes,
                interval: settings.snapshot_interval,
                last_index: Cell::new(0),
                last_at: Cell::new(Instant::now()),
            }));
            (Some(controller), Some(quorum), Some(log))
        } else {
            (None, None, None)
        };
        let voters: Vec<(NodeId, String)> = settings
            .voters
            .iter()
            .map(|v| (v.id, v.addr.clone()))
            .collect();
        // A request sent to the controller is waited for, not sent again after the quorum's
        // short timeout: CreateTopics of 2000 partitions took longer than 2 s, and its second
        // copy answered TOPIC_ALREADY_EXISTS for topics the first had just created.
        let controller_client_config = ClientConfig {
            request_timeout: settings.controller_socket_timeout,
            ..client_config
        };
        let client = ControllerClient::new(
            settings.node_id,
            voters,
            applier.clone(),
            controller_client_config,
        );
        if let Some(c) = &controller {
            client.set_local(c);
        }
        let (lifecycle, ready, fetcher) = if settings.is_broker {
            let fetcher = (!settings.is_controller)
                .then(|| MetadataFetcher::start(settings.node_id, client.clone(), applier.clone()));
            let (lifecycle, ready) = BrokerLifecycle::start(
                LifecycleSettings {
                    node_id: settings.node_id,
                    cluster_id: settings.cluster_id.clone(),
                    endpoints: settings.endpoints.clone(),
                    rack: settings.rack.clone(),
                    previous_broker_epoch: settings.previous_broker_epoch,
                    heartbeat_interval: settings.heartbeat_interval,
                    session_timeout: settings.session_timeout,
                    initial_registration_timeout: settings.initial_registration_timeout,
                },
                client.clone(),
                applier.clone(),
            );
            (Some(lifecycle), Some(ready), fetcher)
        } else {
            (None, None, None)
        };
        Ok((
            Rc::new(Self {
                settings,
                applier,
                client,
                controller,
                quorum,
                metadata_log,
                lifecycle,
                fetcher,
                observers: Observers::default(),
            }),
            ready,
        ))
    }

    /// The active controller as this node knows it.
    pub fn active_controller(&self) -> Option<NodeId> {
        self.client.active_controller()
    }

    /// DescribeQuorum's view, from a voter (`None` on a broker-only node).
    pub fn quorum_status(&self) -> Option<QuorumStatus> {
        self.quorum.as_ref().map(|q| q.status())
    }

    /// The quorum as DescribeQuorum shows it, from the leader; any other node says it is not
    /// the leader and names the leader it knows of.
    pub fn describe_quorum(&self, now_ms: i64) -> Result<QuorumDescription, DescribeError> {
        let Some(q) = &self.quorum else {
            return Err(DescribeError::NotLeader {
                leader: self.active_controller(),
            });
        };
        let status = q.status();
        let observers = self.observers.list(status.term, now_ms);
        describe::describe(
            &status,
            self.settings.quorum.tick_ms,
            now_ms,
            &self.settings.voters,
            &self.settings.controller_listener,
            &observers,
        )
    }

    /// Why this node cannot go on (the metadata log failed, or the broker could not register
    /// in time); it stops.
    pub fn failure(&self) -> Option<String> {
        self.applier
            .failure()
            .or_else(|| self.lifecycle.as_ref().and_then(|l| l.gave_up()))
    }

    /// The broker epoch of this node's registration.
    pub fn broker_epoch(&self) -> Option<BrokerEpoch> {
        self.lifecycle.as_ref().and_then(|l| l.broker_epoch())
    }

    /// A private api request on the CONTROLLER listener.
    pub async fn handle_weir(&self, request: WeirRequest) -> Reply {
        match request.api {
            WeirApi::Raft => {
                let Some(q) = &self.quorum else {
                    tracing::warn!("raft message on a node that is not a controller; closing");
                    return Reply::Close;
                };
                match q.receive(&request.body) {
                    Ok(()) => Reply::NoResponse,
                    Err(RaftReceiveError::Step(e @ StepError::NotAVoter { .. })) => {
                        tracing::warn!(error = %e, "raft message from a non-voter refused; closing the connection");
                        Reply::Close
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "raft message refused; closing the connection");
                        Reply::Close
                    }
                }
            }
            WeirApi::Controller => {
                let request = match wire::decode_request(&request.body) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, "malformed controller request; closing the connection");
                        return Reply::Close;
                    }
                };
                let response = match &self.controller {
                    Some(c) => c.handle(request).await,
                    None => wire::ControllerResponse::NotController {
                        leader: self.applier.known_leader().unwrap_or(-1),
                    },
                };
                Reply::Raw(vec![Part::Bytes(Bytes::from(wire::encode_response(
                    &response,
                )))])
            }
            WeirApi::MetadataFetch => {
                let fetch = match observer::FetchRequest::decode(&request.body) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, "malformed metadata fetch; closing the connection");
                        return Reply::Close;
                    }
                };
                let (Some(c), Some(log)) = (&self.controller, &self.metadata_log) else {
                    return Reply::Close;
                };
                let response = observer::serve(fetch, c, log, &self.applier, &self.observers).await;
                Reply::Raw(vec![Part::Bytes(response.encode())])
            }
        }
    }

    /// Before the cores stop: a controlled shutdown (leaderships move away first), then the
    /// cluster's tasks stop and the metadata log closes.
    pub async fn shutdown(&self) {
        if let Some(l) = &self.lifecycle {
            if self.settings.controlled_shutdown {
                l.controlled_shutdown(self.settings.session_timeout).await;
            }
            l.stop();
        }
        if let Some(f) = &self.fetcher {
            f.stop();
        }
        if let Some(q) = &self.quorum {
            q.stop();
        }
        if let Some(log) = &self.metadata_log {
            if let Err(e) = log.close().await {
                tracing::error!(error = %e, "closing the metadata log failed");
            }
        }
    }
}

/// When a controller checkpoints its image: once the log holds
/// `metadata.log.max.record.bytes.between.snapshots` since the last checkpoint, or
/// `metadata.log.max.snapshot.interval.ms` passed with something new (Kafka's two triggers).
struct SnapshotPolicy {
    quorum: Weak<QuorumDriver>,
    log: Rc<MetadataLog>,
    max_bytes: u64,
    interval: Duration,
    last_index: Cell<u64>,
    last_at: Cell<Instant>,
}

impl Checkpointer for SnapshotPolicy {
    fn maybe_checkpoint(&self, applied_index: u64, image: &MetadataImage) {
        if applied_index <= self.last_index.get() {
            return;
        }
        let due = self.log.size_bytes() >= self.max_bytes
            || (!self.interval.is_zero() && self.last_at.get().elapsed() >= self.interval);
        if !due {
            return;
        }
        let Some(quorum) = self.quorum.upgrade() else {
            return;
        };
        quorum.compact(applied_index, Bytes::from(snapshot::encode(image)));
        self.last_index.set(applied_index);
        self.last_at.set(Instant::now());
    }
}
