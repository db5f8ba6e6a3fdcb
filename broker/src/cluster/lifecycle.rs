//! A broker's registration and heartbeats with the active controller (Kafka's
//! BrokerLifecycleManager): register with a fresh incarnation id and the advertised listeners,
//! heartbeat every `broker.heartbeat.interval.ms` with how far this node applied the metadata
//! log, serve once unfenced, register again when the controller no longer knows this
//! incarnation, and on SIGTERM ask for a controlled shutdown and wait until the controller moved
//! this broker's leaderships away.
//!
//! A refused or failed call is retried after Kafka's exponential backoff (100 ms, doubling, at
//! most `broker.session.timeout.ms`), so a broker the controller keeps refusing (a duplicate
//! `node.id`) neither floods the controller nor the logs; one that cannot register at all within
//! `initial.broker.registration.timeout.ms` of starting gives up, and the node stops, as
//! Kafka's does.

use super::applier::MetadataApplier;
use super::client::ControllerClient;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};
use weir_net::client::{Backoff, BackoffConfig};
use weir_replication::controller::{
    BrokerHeartbeat, BrokerRegistration, ControllerError, ControllerReply, ControllerRequest,
};
use weir_replication::metadata::records::{Endpoint, IncarnationId};
use weir_replication::types::{BrokerEpoch, NodeId};

/// Heartbeats while waiting to be unfenced or let go: Kafka's lifecycle manager also
/// heartbeats faster than the interval while its state is changing.
const FAST_HEARTBEAT: Duration = Duration::from_millis(100);

/// The first wait after a failed registration or heartbeat (Kafka's lifecycle manager's
/// `ExponentialBackoff(100, 2, broker.session.timeout.ms)`); it doubles per failure in a row.
const RETRY_BACKOFF_INITIAL: Duration = Duration::from_millis(100);

pub struct LifecycleSettings {
    pub node_id: NodeId,
    pub cluster_id: String,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    /// The epoch this node had at its last clean shutdown (KIP-966), else -1.
    pub previous_broker_epoch: BrokerEpoch,
    pub heartbeat_interval: Duration,
    pub session_timeout: Duration,
    /// `initial.broker.registration.timeout.ms`.
    pub initial_registration_timeout: Duration,
}

pub struct BrokerLifecycle {
    settings: LifecycleSettings,
    incarnation: IncarnationId,
    client: Rc<ControllerClient>,
    applier: Rc<MetadataApplier>,
    epoch: Cell<Option<BrokerEpoch>>,
    fenced: Cell<bool>,
    want_shutdown: Cell<bool>,
    /// Told once: unfenced the first time; let go after a controlled shutdown.
    ready: RefCell<Option<LocalSender<()>>>,
    released: RefCell<Option<LocalSender<()>>>,
    stopped: Cell<bool>,
    /// Failed calls in a row, paced by Kafka's exponential backoff.
    backoff: RefCell<Backoff>,
    started: Instant,
    registered_once: Cell<bool>,
    /// Why the broker gave up registering (the node stops).
    gave_up: RefCell<Option<String>>,
}

impl BrokerLifecycle {
    /// Starts registering and heartbeating. The receiver resolves once this broker is
    /// registered and unfenced.
    pub fn start(
        settings: LifecycleSettings,
        client: Rc<ControllerClient>,
        applier: Rc<MetadataApplier>,
    ) -> (Rc<Self>, LocalReceiver<()>) {
        let (ready_tx, ready_rx) = local_channel::new_bounded(1);
        let backoff = Backoff::new(
            BackoffConfig {
                initial: RETRY_BACKOFF_INITIAL,
                max: settings.session_timeout.max(RETRY_BACKOFF_INITIAL),
            },
            crate::clock::random_seed(),
        );
        let me = Rc::new(Self {
            settings,
            incarnation: crate::clock::random_uuid(),
            client,
            applier,
            epoch: Cell::new(None),
            fenced: Cell::new(true),
            want_shutdown: Cell::new(false),
            ready: RefCell::new(Some(ready_tx)),
            released: RefCell::new(None),
            stopped: Cell::new(false),
            backoff: RefCell::new(backoff),
            started: Instant::now(),
            registered_once: Cell::new(false),
            gave_up: RefCell::new(None),
        });
        glommio::spawn_local(me.clone().run()).detach();
        (me, ready_rx)
    }

    /// The broker epoch of the current registration.
    pub fn broker_epoch(&self) -> Option<BrokerEpoch> {
        self.epoch.get()
    }

    pub fn is_fenced(&self) -> bool {
        self.fenced.get()
    }

    /// Controlled shutdown: asks the controller to move this broker's leaderships away and
    /// waits until it lets this broker go, at most `timeout` (then it stops anyway, as Kafka
    /// does after its retries).
    pub async fn controlled_shutdown(&self, timeout: Duration) -> bool {
        if self.epoch.get().is_none() {
            return true;
        }
        let (tx, rx) = local_channel::new_bounded(1);
        *self.released.borrow_mut() = Some(tx);
        self.want_shutdown.set(true);
        tracing::info!(
            broker = self.settings.node_id,
            "controlled shutdown: asking the controller to move leadership away"
        );
        let released = futures_lite::future::or(
            async {
                rx.recv().await;
                true
            },
            async {
                glommio::timer::sleep(timeout).await;
                false
            },
        )
        .await;
        if !released {
            tracing::warn!(
                broker = self.settings.node_id,
                ?timeout,
                "controlled shutdown did not finish in time; stopping anyway"
            );
        }
        released
    }

    pub fn stop(&self) {
        self.stopped.set(true);
    }

    /// Set when the broker could not register within `initial.broker.registration.timeout.ms`:
    /// why (the node stops).
    pub fn gave_up(&self) -> Option<String> {
        self.gave_up.borrow().clone()
    }

    /// The wait before retrying after a failed call.
    fn failed(&self) -> Duration {
        self.backoff.borrow_mut().failed(Instant::now())
    }

    async fn run(self: Rc<Self>) {
        let timeout = self.settings.session_timeout;
        while !self.stopped.get() {
            let started = Instant::now();
            let interval = match self.epoch.get() {
                None => match self.register(timeout).await {
                    Ok(epoch) => {
                        tracing::info!(
                            broker = self.settings.node_id,
                            epoch,
                            "registered with the controller"
                        );
                        self.epoch.set(Some(epoch));
                        self.registered_once.set(true);
                        self.backoff.borrow_mut().succeeded();
                        Duration::ZERO
                    }
                    Err(e) => {
                        let limit = self.settings.initial_registration_timeout;
                        if !self.registered_once.get() && self.started.elapsed() >= limit {
                            let why = format!(
                                "unable to register with the controller quorum within \
                                 initial.broker.registration.timeout.ms ({} ms): {e}",
                                limit.as_millis()
                            );
                            tracing::error!(broker = self.settings.node_id, "{why}; stopping");
                            *self.gave_up.borrow_mut() = Some(why);
                            self.stopped.set(true);
                            return;
                        }
                        let wait = self.failed();
                        tracing::warn!(broker = self.settings.node_id, error = %e, retry_in_ms = wait.as_millis() as u64, "registration failed; retrying");
                        wait
                    }
                },
                Some(epoch) => self.heartbeat(epoch, timeout).await,
            };
            let left = interval.saturating_sub(started.elapsed());
            if !left.is_zero() {
                glommio::timer::sleep(left).await;
            }
        }
    }

    async fn register(&self, timeout: Duration) -> Result<BrokerEpoch, ControllerError> {
        let s = &self.settings;
        let request = ControllerRequest::RegisterBroker(BrokerRegistration {
            broker_id: s.node_id,
            cluster_id: s.cluster_id.clone(),
            incarnation_id: self.incarnation,
            listeners: s.endpoints.clone(),
            rack: s.rack.clone(),
            previous_broker_epoch: s.previous_broker_epoch,
        });
        match self.client.call(request, timeout).await.1 {
            ControllerReply::RegisterBroker(r) => r,
            other => Err(unexpected(other)),
        }
    }

    /// One heartbeat; the time until the next.
    async fn heartbeat(&self, epoch: BrokerEpoch, timeout: Duration) -> Duration {
        let s = &self.settings;
        let request = ControllerRequest::BrokerHeartbeat(BrokerHeartbeat {
            broker_id: s.node_id,
            broker_epoch: epoch,
            current_metadata_offset: self.applier.applied_index() as i64,
            want_fence: false,
            want_shutdown: self.want_shutdown.get(),
        });
        let reply = match self.client.call(request, timeout).await.1 {
            ControllerReply::BrokerHeartbeat(r) => r,
            other => Err(unexpected(other)),
        };
        match reply {
            Ok(r) => {
                self.backoff.borrow_mut().succeeded();
                if self.fenced.get() != r.is_fenced {
                    tracing::info!(
                        broker = s.node_id,
                        epoch,
                        fenced = r.is_fenced,
                        "broker fencing changed"
                    );
                }
                self.fenced.set(r.is_fenced);
                if !r.is_fenced {
                    if let Some(tx) = self.ready.borrow_mut().take() {
                        let _ = tx.try_send(());
                    }
                }
                if self.want_shutdown.get() && r.should_shutdown {
                    tracing::info!(broker = s.node_id, "controlled shutdown complete");
                    if let Some(tx) = self.released.borrow_mut().take() {
                        let _ = tx.try_send(());
                    }
                }
                if r.is_fenced || self.want_shutdown.get() {
                    FAST_HEARTBEAT
                } else {
                    s.heartbeat_interval
                }
            }
            Err(
                e @ (ControllerError::StaleBrokerEpoch(_)
                | ControllerError::BrokerIdNotRegistered(_)),
            ) => {
                tracing::warn!(broker = s.node_id, epoch, error = %e, "the controller no longer knows this registration; registering again");
                self.epoch.set(None);
                self.fenced.set(true);
                Duration::ZERO
            }
            Err(e) => {
                let wait = self.failed();
                tracing::warn!(broker = s.node_id, error = %e, retry_in_ms = wait.as_millis() as u64, "heartbeat failed");
                wait
            }
        }
    }
}

fn unexpected(reply: ControllerReply) -> ControllerError {
    ControllerError::UnknownServerError(format!("unexpected controller reply {reply:?}"))
}
