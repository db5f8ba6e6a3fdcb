//! Start-up and shutdown: one pinned executor per core, the mesh between them, the controller
//! on core 0, a listener per core on the same port, and a clean stop on SIGTERM/SIGINT that
//! flushes every log and leaves Kafka's clean-shutdown marker.

use super::core::Core;
use super::mesh::{Mesh, ShardMsg, MESH_QUEUE_DEPTH};
use super::settings::{CleanerSettings, Settings, TopicSettings};
use crate::config::{BrokerConfig, TopicConfig};
use crate::handlers;
use crate::metadata::controller::{Controller, ControllerDefaults};
use crate::shard::CONTROLLER_SHARD;
use anyhow::{bail, Context};
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement, Shares};
use std::collections::BTreeMap;
use std::net::ToSocketAddrs;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use weir_storage::checkpoint::CLEAN_SHUTDOWN_FILE;
use weir_storage::heartbeat::{Heartbeat, HEARTBEAT_PERIOD};
use weir_storage::SegmentFileCache;

/// How long a core waits for the controller's initial metadata before giving up.
const STARTUP_METADATA_WAIT_MS: u64 = 120_000;

/// How long start-up waits for a port still held by a broker that just died.
const PORT_FREE_WAIT: Duration = Duration::from_secs(3);

/// How often a core looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);

impl Settings {
    pub fn from_config(c: &BrokerConfig) -> anyhow::Result<Self> {
        let listen = listen_addr(c)?;
        let advertised = c
            .advertised_client_listener()
            .context("listeners: no client listener")?;
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
            advertised_host: if advertised.host.is_empty() || advertised.host == "0.0.0.0" {
                "127.0.0.1".into()
            } else {
                advertised.host.clone()
            },
            advertised_port: if advertised.port == 0 {
                listen.port() as i32
            } else {
                advertised.port as i32
            },
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
            groups: crate::group::GroupSettings {
                offsets_partitions: c.offsets_topic_num_partitions.max(1),
                initial_rebalance_delay_ms: c.group_initial_rebalance_delay_ms.max(0) as i64,
                min_session_timeout_ms: c.group_min_session_timeout_ms,
                max_session_timeout_ms: c.group_max_session_timeout_ms,
                offsets_retention_ms: c.offsets_retention_minutes.max(1) as i64 * 60_000,
                offsets_segment_bytes: c.offsets_topic_segment_bytes.max(1),
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

/// This runtime runs one node on its own: its controller is in-process and a quorum of one. A
/// configuration that describes a larger cluster (docs/CLUSTER.md) is refused rather than run as
/// a cluster of one, which would split it.
fn refuse_cluster_layouts(c: &BrokerConfig) -> anyhow::Result<()> {
    if !c.is_broker() {
        bail!("process.roles=controller: this build of Weir cannot run a controller-only node yet");
    }
    if let Some(other) = c.voters().into_iter().find(|v| v.id != c.node_id) {
        bail!("controller.quorum.voters names voter {other}: this build of Weir runs a quorum of one (this node) only");
    }
    if c.voters().is_empty() {
        bail!("controller.quorum.bootstrap.servers: this build of Weir cannot join a dynamic quorum yet");
    }
    Ok(())
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
    refuse_cluster_layouts(&config)?;
    let log_dir = config.log_dir().to_path_buf();
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("log.dirs: cannot create {}", log_dir.display()))?;
    // Before anything in the directory is touched (the clean-shutdown marker is consumed next).
    let _dir_lock = lock_log_dir(&log_dir)?;
    wait_for_free_port(listen_addr(&config)?)?;
    let clean = take_clean_marker(&log_dir)?;
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
    let mut handles = Vec::new();
    for i in 0..config.cores {
        let stop_rx = stop.clone();
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
                let exit = match core_main(i, config, mesh, stop_rx, clean, ready).await {
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
                    tracing::info!(listen = %listen_addr(&config)?, "Weir started: every core serves clients");
                }
            }
            Ok((i, CoreEvent::Exit(exit))) => {
                if let CoreExit::Failed(msg) = &exit {
                    // Said at once: the other cores may take a while to stop.
                    tracing::error!(core = i, error = %msg, "core failed; stopping");
                    failure = Some(msg.clone());
                }
                exits.push((i, exit));
                break;
            }
            Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => break,
        }
    }
    stop.store(true, Ordering::SeqCst);
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
        write_clean_marker(&log_dir)?;
        tracing::info!("stopped cleanly");
    }
    match failure {
        Some(msg) => bail!("{msg}"),
        None => Ok(()),
    }
}

async fn core_main(
    i: usize,
    config: BrokerConfig,
    mesh: MeshBuilder<ShardMsg, glommio::channels::channel_mesh::Full>,
    stop: Arc<AtomicBool>,
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
    let (controller, replayed) = if i == CONTROLLER_SHARD {
        let defaults = ControllerDefaults {
            node_id: settings.node_id,
            num_partitions: settings.num_partitions,
            replication_factor: settings.default_replication_factor,
            delete_topic_enable: settings.delete_topic_enable,
            live_brokers: vec![settings.node_id],
        };
        let resolve = settings.resolve_topic.clone();
        let describe = settings.describe_topic.clone();
        let validator = Rc::new(move |o: &BTreeMap<String, String>| {
            resolve(o)?;
            Ok(describe(o))
        });
        let (c, records) =
            Controller::open(&settings.log_dir, cache.clone(), clean, defaults, validator)
                .await
                .context("opening the metadata log")?;
        tracing::info!(records = records.len(), "metadata log opened");
        (Some(c), Some(records))
    } else {
        (None, None)
    };
    let core = Core::new(settings, Mesh::new(senders), cache, controller, clean);
    core.serve_mesh(receivers);
    match replayed {
        Some(records) => {
            tracing::info!(records = records.len(), "metadata log replayed");
            core.publish(records).await;
        }
        None => {
            if !wait_for_metadata(&core, &stop).await? {
                // Stopped during start-up, before anything was served.
                core.mesh.close();
                return Ok(false);
            }
        }
    }
    tracing::info!(core = i, partitions = core.owned_partitions(), "core ready");
    let supported = handlers::supported_apis();
    let net =
        weir_net::NetCore::new(core.settings.net.clone(), supported).context("network settings")?;
    let listener = weir_net::Listener::bind(core.settings.listen, net)
        .with_context(|| format!("binding {}", core.settings.listen))?;
    let background = glommio::executor().create_task_queue(
        Shares::Static(50),
        glommio::Latency::NotImportant,
        "upkeep",
    );
    glommio::spawn_local_into(core.clone().upkeep(), background)
        .map_err(|e| anyhow::anyhow!("spawning upkeep: {e}"))?
        .detach();
    glommio::spawn_local(core.clone().run_group_timers()).detach();
    ready();
    let handler_core = core.clone();
    let handler = Rc::new(move |conn, request| {
        let core = handler_core.clone();
        async move { handlers::handle(&core, conn, request).await }
    });
    listener
        .serve(handler, async move {
            while !stop.load(Ordering::SeqCst) {
                glommio::timer::sleep(STOP_POLL).await;
            }
        })
        .await;
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

/// Non-controller cores wait for the controller's replay before serving, so their first
/// answers already know every topic. `Ok(false)`: the broker is stopping.
async fn wait_for_metadata(core: &Rc<Core>, stop: &AtomicBool) -> anyhow::Result<bool> {
    let step = Duration::from_millis(10);
    for _ in 0..STARTUP_METADATA_WAIT_MS / 10 {
        if core.initial_metadata_applied() {
            return Ok(true);
        }
        if stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        glommio::timer::sleep(step).await;
    }
    bail!("no metadata from the controller core after {STARTUP_METADATA_WAIT_MS} ms")
}

fn take_clean_marker(dir: &std::path::Path) -> anyhow::Result<bool> {
    let marker = dir.join(CLEAN_SHUTDOWN_FILE);
    if !marker.exists() {
        return Ok(false);
    }
    std::fs::remove_file(&marker).with_context(|| format!("removing {}", marker.display()))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))?;
    Ok(true)
}

fn write_clean_marker(dir: &std::path::Path) -> anyhow::Result<()> {
    let marker = dir.join(CLEAN_SHUTDOWN_FILE);
    std::fs::File::create(&marker)
        .and_then(|f| f.sync_all())
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
