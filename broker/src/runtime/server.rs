//! Start-up and shutdown: one pinned executor per core, the mesh between them, the cluster side
//! (quorum, controller, registration) and the CONTROLLER listener on core 0, a client listener
//! per core on the same port once this broker is unfenced, and a clean stop on SIGTERM/SIGINT:
//! a controlled shutdown first (leadership moves away), then every log flushed and Kafka's
//! clean-shutdown marker left with this broker's epoch (KIP-966).

use super::core::Core;
use super::mesh::{Mesh, ShardMsg, MESH_QUEUE_DEPTH};
use super::settings::{CleanerSettings, Settings, TopicSettings};
use crate::cluster::{Cluster, ClusterSettings, Voter};
use crate::config::{BrokerConfig, TopicConfig};
use crate::handlers;
use crate::shard::CONTROLLER_SHARD;
use anyhow::{bail, Context};
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement, Shares};
use std::collections::BTreeMap;
use std::net::ToSocketAddrs;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use weir_storage::checkpoint::CLEAN_SHUTDOWN_FILE;
use weir_storage::heartbeat::{Heartbeat, HEARTBEAT_PERIOD};
use weir_storage::SegmentFileCache;

/// acks=all produces one partition holds waiting for their commit (each costs a channel); a
/// produce past it is answered REQUEST_TIMED_OUT at once.
const ACKS_WAITERS_MAX: usize = 100_000;

/// How often a start-up still waiting for the controller quorum says so.
const STARTUP_PROGRESS: Duration = Duration::from_secs(10);

/// How long start-up waits for a port still held by a broker that just died.
const PORT_FREE_WAIT: Duration = Duration::from_secs(3);

/// How often a core looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);

impl Settings {
    pub fn from_config(c: &BrokerConfig) -> anyhow::Result<Self> {
        let listen = match c.client_listener() {
            Some(_) => Some(listen_addr(c)?),
            None => None,
        };
        let client_listener_name = c
            .client_listener()
            .map_or_else(|| "PLAINTEXT".to_string(), |l| l.name.clone());
        let broker = Rc::new(c.clone());
        let resolve = broker.clone();
        let describe = broker.clone();
        Ok(Settings {
            node_id: c.node_id,
            cluster_id: c
                .cluster_id
                .clone()
                .unwrap_or_else(|| "weir-cluster".into()),
            listen,
            client_listener_name,
            log_dir: c.log_dir().to_path_buf(),
            cores: c.cores,
            num_partitions: c.num_partitions,
            default_replication_factor: c.default_replication_factor as i16,
            auto_create_topics_enable: c.auto_create_topics_enable,
            delete_topic_enable: c.delete_topic_enable,
            retention_check_interval_ms: c.log_retention_check_interval_ms.max(1000) as u64,
            hw_checkpoint_interval_ms: c.replica_high_watermark_checkpoint_interval_ms.max(1000)
                as u64,
            cleaner: c.log_cleaner_enable.then(|| CleanerSettings {
                backoff_ms: c.log_cleaner_backoff_ms.max(0) as u64,
                dedupe_buffer_bytes_per_core: (c.log_cleaner_dedupe_buffer_size.max(1 << 20)
                    as usize)
                    / c.cores.max(1),
            }),
            open_segments_max: c.open_segments_max,
            net: weir_net::NetConfig {
                socket_request_max_bytes: c.socket_request_max_bytes.max(1) as usize,
                queued_max_request_bytes: c.queued_request_bytes_per_core(),
                max_connections: (c.max_connections.max(1) as usize / c.cores.max(1)).max(1),
                ..weir_net::NetConfig::default()
            },
            resolve_topic: Rc::new(move |overrides: &BTreeMap<String, String>| {
                let t =
                    TopicConfig::with_overrides(&resolve, overrides).map_err(|e| e.to_string())?;
                Ok(TopicSettings {
                    log: t.to_log_config(),
                    min_insync_replicas: t.min_insync_replicas,
                    unclean_leader_election: t.unclean_leader_election_enable,
                })
            }),
            describe_topic: Rc::new(move |overrides: &BTreeMap<String, String>| {
                let t = TopicConfig::with_overrides(&describe, overrides)
                    .unwrap_or_else(|_| TopicConfig::from_broker(&describe));
                t.describe(overrides)
                    .into_iter()
                    .map(|e| {
                        (
                            e.name,
                            e.value.unwrap_or_default(),
                            e.source != crate::config::ConfigSource::DynamicTopic,
                        )
                    })
                    .collect()
            }),
            broker_configs: c.describe(),
            replication: super::settings::ReplicationSettings {
                replica_lag_time_max_ms: c.replication.replica_lag_time_max_ms.max(1),
                replica_fetch_backoff_ms: i64::from(c.replication.replica_fetch_backoff_ms.max(0)),
                acks_waiters_max: ACKS_WAITERS_MAX,
            },
            fetch: crate::replicate::fetcher::FetchSettings {
                max_bytes_per_partition: c.replication.replica_fetch_max_bytes.max(1),
                response_max_bytes: c.replication.replica_fetch_response_max_bytes.max(1),
                wait_max_ms: c.replication.replica_fetch_wait_max_ms.max(0),
                min_bytes: c.replication.replica_fetch_min_bytes.max(1),
                backoff_ms: i64::from(c.replication.replica_fetch_backoff_ms.max(0)),
                socket_timeout_ms: i64::from(c.replication.replica_socket_timeout_ms.max(1)),
                listener: c.cluster.inter_broker_listener_name.clone(),
            },
            groups: crate::group::GroupSettings {
                offsets_partitions: c.offsets_topic_num_partitions.max(1),
                initial_rebalance_delay_ms: c.group_initial_rebalance_delay_ms.max(0) as i64,
                min_session_timeout_ms: c.group_min_session_timeout_ms,
                max_session_timeout_ms: c.group_max_session_timeout_ms,
                offsets_retention_ms: c.offsets_retention_minutes.max(1) as i64 * 60_000,
                offsets_segment_bytes: c.offsets_topic_segment_bytes.max(1),
                // A node running a quorum of itself is a single-broker cluster: Kafka's own
                // single-node samples set offsets.topic.replication.factor=1 for that.
                offsets_replication_factor: if c.has_configured_quorum() {
                    c.offsets_topic_replication_factor.max(1)
                } else {
                    1
                },
            },
        })
    }
}

/// Why a core stopped.
enum CoreExit {
    Clean,
    Unclean,
    Failed(String),
}

/// What a core tells the main thread: that it serves clients, or that it stopped.
enum CoreEvent {
    Ready,
    Exit(CoreExit),
}

/// How long a stop during start-up (a failed core, SIGTERM, SIGINT) waits for the cores to wind
/// down before the process exits without them. Nothing acknowledged can be lost by not waiting:
/// no client was served yet, and a log left mid-recovery is recovered again on the next start.
const STARTUP_ABORT_GRACE: Duration = Duration::from_secs(1);

/// The address the client listener binds.
fn listen_addr(c: &BrokerConfig) -> anyhow::Result<std::net::SocketAddr> {
    let listener = c
        .client_listener()
        .context("listeners: no client listener")?;
    listener
        .bind_addr()
        .to_socket_addrs()
        .with_context(|| format!("listeners: cannot resolve {}", listener.bind_addr()))?
        .next()
        .context("listeners: no address")
}

/// The cluster side's settings, from the configuration.
fn cluster_settings(c: &BrokerConfig, previous_broker_epoch: i64) -> ClusterSettings {
    use weir_replication::metadata::records::Endpoint;
    let cl = &c.cluster;
    let voters = c
        .voters()
        .into_iter()
        .map(|v| Voter {
            id: v.id,
            addr: format!("{}:{}", v.host, v.port),
        })
        .collect();
    let endpoint = |l: &crate::config::Listener| Endpoint {
        listener: l.name.clone(),
        host: match l.host.as_str() {
            "" | "0.0.0.0" | "::" => "127.0.0.1".to_string(),
            h => h.to_string(),
        },
        port: l.port,
        security_protocol: 0,
    };
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for l in [
        c.advertised_client_listener(),
        c.advertised_inter_broker_listener(),
    ]
    .into_iter()
    .flatten()
    {
        if !endpoints.iter().any(|e| e.listener == l.name) {
            endpoints.push(endpoint(l));
        }
    }
    ClusterSettings {
        node_id: c.node_id,
        cluster_id: c
            .cluster_id
            .clone()
            .unwrap_or_else(|| "weir-cluster".into()),
        is_broker: c.is_broker(),
        is_controller: c.is_controller(),
        voters,
        metadata_dir: c.metadata_log_dir().to_path_buf(),
        quorum: weir_replication::quorum::QuorumTimeouts {
            election_timeout_ms: cl.controller_quorum_election_timeout_ms.max(1) as u64,
            request_timeout_ms: cl.controller_quorum_request_timeout_ms.max(1) as u64,
            ..Default::default()
        },
        heartbeat_interval: Duration::from_millis(cl.broker_heartbeat_interval_ms.max(1) as u64),
        session_timeout: Duration::from_millis(cl.broker_session_timeout_ms.max(1) as u64),
        request_timeout: Duration::from_millis(
            cl.controller_quorum_request_timeout_ms.max(1) as u64
        ),
        endpoints,
        rack: None,
        snapshot_bytes: cl.metadata_log_max_record_bytes_between_snapshots.max(1) as u64,
        snapshot_interval: Duration::from_millis(
            cl.metadata_log_max_snapshot_interval_ms.max(0) as u64
        ),
        controller: weir_replication::controller::ControllerConfig {
            node_id: c.node_id,
            cluster_id: c
                .cluster_id
                .clone()
                .unwrap_or_else(|| "weir-cluster".into()),
            num_partitions: c.num_partitions,
            default_replication_factor: c.default_replication_factor as i16,
            delete_topic_enable: c.delete_topic_enable,
            broker_session_timeout_ms: i64::from(cl.broker_session_timeout_ms),
            min_insync_replicas: c.min_insync_replicas,
            unclean_leader_election_enable: c.unclean_leader_election_enable,
        },
        controlled_shutdown: cl.controlled_shutdown_enable,
        previous_broker_epoch,
    }
}

/// Refuses to start on a port another socket listens on. A broker killed a moment ago may
/// still hold its listener for a short while (its io_uring instance is torn down after the
/// process is gone), so the check is repeated for a bounded time.
fn wait_for_free_port(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + PORT_FREE_WAIT;
    loop {
        match weir_net::ensure_port_free(addr) {
            Ok(()) => return Ok(()),
            Err(e) if std::time::Instant::now() >= deadline => {
                return Err(e).context(
                    "listeners: the port is in use (another broker running?); Weir's per-core listeners would share it",
                )
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Takes Kafka's `.lock` on the log directory (an exclusive `flock`, released when the process
/// exits, however it exits): two brokers writing one directory would corrupt it.
fn lock_log_dir(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        bail!(
            "failed to acquire lock on file .lock in {}: a broker in another process is using this directory ({})",
            dir.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(file)
}

/// Runs the broker until SIGTERM or SIGINT. Returns an error if start-up fails.
pub fn run(config: BrokerConfig) -> anyhow::Result<()> {
    let log_dir = config.log_dir().to_path_buf();
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("log.dirs: cannot create {}", log_dir.display()))?;
    // Before anything in the directory is touched (the clean-shutdown marker is consumed next).
    let _dir_lock = lock_log_dir(&log_dir)?;
    if config.client_listener().is_some() {
        wait_for_free_port(listen_addr(&config)?)?;
    }
    if let Some(addr) = controller_listen_addr(&config)? {
        wait_for_free_port(addr)?;
    }
    let metadata_dir = config.metadata_log_dir().to_path_buf();
    let _metadata_dir_lock = if metadata_dir != log_dir {
        std::fs::create_dir_all(&metadata_dir).with_context(|| {
            format!("metadata.log.dir: cannot create {}", metadata_dir.display())
        })?;
        Some(lock_log_dir(&metadata_dir)?)
    } else {
        None
    };
    let (clean, previous_broker_epoch) = take_clean_marker(&log_dir)?;
    // The broker epoch this process registers with, for the next start's marker (KIP-966).
    let broker_epoch = Arc::new(AtomicI64::new(-1));
    tracing::info!(dir = %log_dir.display(), clean_shutdown = clean, cores = config.cores, "starting Weir");
    let cpus = config
        .cpus
        .clone()
        .unwrap_or_else(weir_storage::cpus::allowed);
    if config.cores == 0 {
        bail!("weir.cores must be at least 1");
    }
    let signals = block_stop_signals();
    let mesh = MeshBuilder::<ShardMsg, _>::full(config.cores, MESH_QUEUE_DEPTH);
    let (event_tx, event_rx) = mpsc::channel::<(usize, CoreEvent)>();
    // Control plane only: each core checks it a few times a second to begin its shutdown.
    let stop = Arc::new(AtomicBool::new(false));
    // Set by core 0 once the controlled shutdown is done (or by this thread when a core
    // failed): every core then stops serving.
    let close = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for i in 0..config.cores {
        let stop_rx = stop.clone();
        let close_rx = close.clone();
        let epoch_out = broker_epoch.clone();
        let mesh = mesh.clone();
        let config = config.clone();
        let event_tx = event_tx.clone();
        let cpu = cpus[i % cpus.len()];
        let handle = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("weir-core-{i}"))
            .spawn(move || async move {
                let _heartbeat = Heartbeat::start(HEARTBEAT_PERIOD);
                let ready = {
                    let tx = event_tx.clone();
                    move || {
                        let _ = tx.send((i, CoreEvent::Ready));
                    }
                };
                let flags = Flags {
                    stop: stop_rx,
                    close: close_rx,
                    broker_epoch: epoch_out,
                    previous_broker_epoch,
                };
                let exit = match core_main(i, config, mesh, flags, clean, ready).await {
                    Ok(true) => CoreExit::Clean,
                    Ok(false) => CoreExit::Unclean,
                    Err(e) => CoreExit::Failed(format!("{e:#}")),
                };
                let _ = event_tx.send((i, CoreEvent::Exit(exit)));
            })
            .map_err(|e| anyhow::anyhow!("starting executor for core {i}: {e}"))?;
        handles.push(handle);
    }
    drop(event_tx);
    // Wait for a stop signal, or for a core to stop on its own (a failure).
    let mut exits = Vec::new();
    let mut ready = 0;
    let mut failure: Option<String> = None;
    loop {
        if let Some(sig) = wait_signal(&signals, Duration::from_millis(100)) {
            tracing::info!(signal = sig, "stopping");
            break;
        }
        match event_rx.try_recv() {
            Ok((_, CoreEvent::Ready)) => {
                ready += 1;
                if ready == config.cores {
                    match config.client_listener() {
                        Some(_) => {
                            tracing::info!(listen = %listen_addr(&config)?, "Weir started: every core serves clients")
                        }
                        None => tracing::info!("Weir started: this controller serves the quorum"),
                    }
                }
            }
            Ok((i, CoreEvent::Exit(exit))) => {
                if let CoreExit::Failed(msg) = &exit {
                    // Said at once: the other cores may take a while to stop.
                    tracing::error!(core = i, error = %msg, "core failed; stopping");
                    failure = Some(msg.clone());
                }
                exits.push((i, exit));
                // A core stopped on its own: no controlled shutdown to wait for.
                close.store(true, Ordering::SeqCst);
                break;
            }
            Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => break,
        }
    }
    stop.store(true, Ordering::SeqCst);
    if ready < config.cores {
        close.store(true, Ordering::SeqCst);
    }
    if ready < config.cores {
        // Stopped during start-up: give the cores a moment, then leave without them (a core may
        // be deep in recovering thousands of partitions and look at the stop flag only later).
        let deadline = std::time::Instant::now() + STARTUP_ABORT_GRACE;
        while exits.len() < config.cores {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match event_rx.recv_timeout(left) {
                Ok((i, CoreEvent::Exit(exit))) => exits.push((i, exit)),
                Ok((_, CoreEvent::Ready)) => {}
                Err(_) => break,
            }
        }
        if exits.len() < config.cores {
            let cause = failure
                .or_else(|| {
                    exits.iter().find_map(|(_, e)| match e {
                        CoreExit::Failed(m) => Some(m.clone()),
                        _ => None,
                    })
                })
                .unwrap_or_else(|| "stopped during start-up".to_string());
            bail!("{cause}");
        }
    }
    for h in handles {
        let _ = h.join();
    }
    exits.extend(event_rx.try_iter().filter_map(|(i, e)| match e {
        CoreEvent::Exit(exit) => Some((i, exit)),
        CoreEvent::Ready => None,
    }));
    let mut all_clean = exits.len() == config.cores;
    for (i, e) in exits {
        match e {
            CoreExit::Clean => {}
            CoreExit::Unclean => all_clean = false,
            CoreExit::Failed(msg) => {
                all_clean = false;
                if failure.is_none() {
                    tracing::error!(core = i, error = %msg, "core failed");
                    failure = Some(msg);
                }
            }
        }
    }
    if all_clean {
        write_clean_marker(&log_dir, broker_epoch.load(Ordering::SeqCst))?;
        tracing::info!("stopped cleanly");
    }
    match failure {
        Some(msg) => bail!("{msg}"),
        None => Ok(()),
    }
}

/// What the main thread and the cores share: the stop request, the order to stop serving
/// (after the controlled shutdown), and this broker's epoch for the next start.
struct Flags {
    stop: Arc<AtomicBool>,
    close: Arc<AtomicBool>,
    broker_epoch: Arc<AtomicI64>,
    previous_broker_epoch: i64,
}

async fn core_main(
    i: usize,
    config: BrokerConfig,
    mesh: MeshBuilder<ShardMsg, glommio::channels::channel_mesh::Full>,
    flags: Flags,
    clean: bool,
    ready: impl FnOnce(),
) -> anyhow::Result<bool> {
    let settings = Settings::from_config(&config)?;
    let (senders, receivers) = mesh
        .join()
        .await
        .map_err(|_| anyhow::anyhow!("joining the core mesh failed"))?;
    // Start-up milestones, so a slow start shows where it waits.
    tracing::info!(core = i, "mesh joined");
    let cache = SegmentFileCache::new(config.open_segments_per_core());
    let core = Core::new(settings, Mesh::new(senders), cache.clone(), clean);
    core.serve_mesh(receivers);
    let cluster = if i == CONTROLLER_SHARD {
        let cluster =
            start_cluster(&core, &config, cache, clean, flags.previous_broker_epoch).await?;
        Some(cluster)
    } else {
        None
    };
    if config.is_broker() && !wait_until_serving(&core, cluster.as_ref(), &flags).await? {
        // Stopped during start-up, before anything was served.
        if let Some((c, _)) = &cluster {
            c.shutdown().await;
        }
        core.mesh.close();
        return Ok(false);
    }
    let cluster = cluster.map(|(c, _)| c);
    if let Some(epoch) = cluster.as_ref().and_then(|c| c.broker_epoch()) {
        flags.broker_epoch.store(epoch, Ordering::SeqCst);
    }
    tracing::info!(core = i, partitions = core.owned_partitions(), "core ready");
    let background = glommio::executor().create_task_queue(
        Shares::Static(50),
        glommio::Latency::NotImportant,
        "upkeep",
    );
    glommio::spawn_local_into(core.clone().upkeep(), background)
        .map_err(|e| anyhow::anyhow!("spawning upkeep: {e}"))?
        .detach();
    glommio::spawn_local(core.clone().run_group_timers()).detach();
    glommio::spawn_local(core.clone().run_isr_checks()).detach();
    // Core 0 turns a stop request into a controlled shutdown, then tells every core to close.
    let closing = {
        let (stop, close, cluster) = (flags.stop.clone(), flags.close.clone(), cluster.clone());
        async move {
            while !stop.load(Ordering::SeqCst) && !close.load(Ordering::SeqCst) {
                glommio::timer::sleep(STOP_POLL).await;
            }
            if let Some(c) = &cluster {
                c.shutdown().await;
            }
            close.store(true, Ordering::SeqCst);
        }
    };
    let until_closed = {
        let close = flags.close.clone();
        async move {
            while !close.load(Ordering::SeqCst) {
                glommio::timer::sleep(STOP_POLL).await;
            }
        }
    };
    ready();
    match core.settings.listen {
        Some(listen) => {
            let supported = handlers::supported_apis();
            let net = weir_net::NetCore::new(core.settings.net.clone(), supported)
                .context("network settings")?;
            let listener = weir_net::Listener::bind(listen, net)
                .with_context(|| format!("binding {listen}"))?;
            let handler_core = core.clone();
            let handler = Rc::new(move |conn, request| {
                let core = handler_core.clone();
                async move { handlers::handle(&core, conn, request).await }
            });
            if i == CONTROLLER_SHARD {
                glommio::spawn_local(closing).detach();
            }
            listener.serve(handler, until_closed).await;
        }
        None => {
            if i == CONTROLLER_SHARD {
                closing.await;
            } else {
                until_closed.await;
            }
        }
    }
    let clean = core.shutdown().await;
    // What went out of this core's sockets, and how: the proof that fetched records were not
    // copied through user space.
    let sent = weir_net::send_stats();
    tracing::info!(
        core = i,
        file_bytes_sendfile = sent.file_bytes_zero_copy,
        file_bytes_copied = sent.file_bytes_copied,
        memory_bytes = sent.memory_bytes,
        "core stopped"
    );
    core.mesh.close();
    Ok(clean)
}

/// Core 0: starts the cluster side (metadata log, quorum, controller, registration) and the
/// CONTROLLER listener. The receiver resolves once this broker is unfenced.
async fn start_cluster(
    core: &Rc<Core>,
    config: &BrokerConfig,
    cache: Rc<SegmentFileCache>,
    clean: bool,
    previous_broker_epoch: i64,
) -> anyhow::Result<(
    Rc<Cluster>,
    Option<glommio::channels::local_channel::LocalReceiver<()>>,
)> {
    let publisher_core = core.clone();
    let publish: crate::cluster::applier::Publisher = Rc::new(move |p| {
        let core = publisher_core.clone();
        Box::pin(async move {
            match p {
                crate::cluster::applier::Publish::Records(records) => core.publish(records).await,
                crate::cluster::applier::Publish::Image(image) => core.publish_image(image).await,
            }
        })
    });
    let validator = Box::new(super::validator::Validator::new(
        core.settings.resolve_topic.clone(),
        core.settings.describe_topic.clone(),
    ));
    let settings = cluster_settings(config, previous_broker_epoch);
    let (cluster, ready) = Cluster::start(settings, cache, clean, publish, validator)
        .await
        .context("starting the cluster side (opening the metadata log)")?;
    core.set_cluster(cluster.clone());
    if let Some(listen) = controller_listen_addr(config)? {
        let net = weir_net::NetCore::new(core.settings.net.clone(), handlers::supported_apis())
            .context("network settings")?;
        let apis = weir_net::WeirApis::new(weir_net::WeirApi::ALL.iter().map(|a| {
            (
                *a,
                kafka_protocol::protocol::VersionRange { min: 0, max: 0 },
            )
        }))
        .context("private apis")?;
        let listener = weir_net::Listener::bind(listen, net)
            .with_context(|| format!("binding the controller listener {listen}"))?
            .accepting_weir_apis(apis);
        let (handler_core, handler_cluster) = (core.clone(), cluster.clone());
        let handler = Rc::new(move |conn, request| {
            let (core, cluster) = (handler_core.clone(), handler_cluster.clone());
            async move {
                match request {
                    weir_net::Request::Weir(r) => cluster.handle_weir(r).await,
                    kafka => handlers::handle(&core, conn, kafka).await,
                }
            }
        });
        tracing::info!(listen = %listen, "controller listener bound");
        glommio::spawn_local(async move {
            listener
                .serve(handler, futures_lite::future::pending())
                .await;
        })
        .detach();
    }
    Ok((cluster, ready))
}

/// Brokers serve once registered and unfenced: core 0 waits for that (saying so every few
/// seconds, since a quorum may be waiting for its other voters), then tells every core.
/// `Ok(false)`: the broker is stopping.
async fn wait_until_serving(
    core: &Rc<Core>,
    cluster: Option<&(
        Rc<Cluster>,
        Option<glommio::channels::local_channel::LocalReceiver<()>>,
    )>,
    flags: &Flags,
) -> anyhow::Result<bool> {
    let step = Duration::from_millis(10);
    let started = std::time::Instant::now();
    let mut said = Duration::ZERO;
    if let Some((c, Some(ready))) = cluster {
        loop {
            let unfenced = futures_lite::future::or(
                async {
                    ready.recv().await;
                    true
                },
                async {
                    glommio::timer::sleep(Duration::from_millis(50)).await;
                    false
                },
            )
            .await;
            if unfenced {
                break;
            }
            if let Some(why) = c.applier.failure() {
                bail!("{why}");
            }
            if flags.stop.load(Ordering::SeqCst) {
                return Ok(false);
            }
            if started.elapsed() >= said + STARTUP_PROGRESS {
                said = started.elapsed();
                tracing::info!(
                    waited_s = said.as_secs(),
                    controller = ?c.active_controller(),
                    "waiting to be registered and unfenced by the controller quorum"
                );
            }
        }
        core.announce_ready().await;
        return Ok(true);
    }
    while !core.initial_metadata_applied() {
        if flags.stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        glommio::timer::sleep(step).await;
    }
    Ok(true)
}

/// The CONTROLLER listener's bind address, on a controller that has one.
fn controller_listen_addr(c: &BrokerConfig) -> anyhow::Result<Option<std::net::SocketAddr>> {
    if !c.is_controller() {
        return Ok(None);
    }
    let Some(l) = c.controller_listener() else {
        return Ok(None);
    };
    let addr = l
        .bind_addr()
        .to_socket_addrs()
        .with_context(|| format!("listeners: cannot resolve {}", l.bind_addr()))?
        .next()
        .context("listeners: no address")?;
    Ok(Some(addr))
}

/// Takes Kafka's clean-shutdown marker: whether the last stop was clean, and the broker epoch
/// it recorded (KIP-966: `{"version":0,"brokerEpoch":N}`; -1 when absent or unreadable, as an
/// empty marker from an older Weir is).
fn take_clean_marker(dir: &std::path::Path) -> anyhow::Result<(bool, i64)> {
    let marker = dir.join(CLEAN_SHUTDOWN_FILE);
    if !marker.exists() {
        return Ok((false, -1));
    }
    let content = std::fs::read_to_string(&marker).unwrap_or_default();
    let epoch = content
        .split("\"brokerEpoch\":")
        .nth(1)
        .and_then(|rest| {
            let digits: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '-')
                .collect();
            digits.parse().ok()
        })
        .unwrap_or(-1);
    std::fs::remove_file(&marker).with_context(|| format!("removing {}", marker.display()))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))?;
    Ok((true, epoch))
}

fn write_clean_marker(dir: &std::path::Path, broker_epoch: i64) -> anyhow::Result<()> {
    use std::io::Write;
    let marker = dir.join(CLEAN_SHUTDOWN_FILE);
    std::fs::File::create(&marker)
        .and_then(|mut f| {
            write!(f, "{{\"version\":0,\"brokerEpoch\":{broker_epoch}}}")?;
            f.sync_all()
        })
        .with_context(|| format!("writing {}", marker.display()))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))?;
    Ok(())
}

/// Blocks SIGTERM and SIGINT in this thread (and every thread it starts), so they can be taken
/// synchronously with `sigtimedwait` instead of interrupting an executor.
fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: plain libc signal-set manipulation on a set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_signal(set: &libc::sigset_t, timeout: Duration) -> Option<i32> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `set` is a valid signal set; a null siginfo pointer is allowed.
    let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    (sig > 0).then_some(sig)
}
