//! Committed metadata, applied in order on core 0: decoded once, replayed into the controller's
//! state (on a controller), published to every core's image (each core opens, leads, follows or
//! deletes its partitions from it), and counted, so callers can wait until an index is applied
//! everywhere. Voters get entries from their quorum driver; broker-only nodes from the metadata
//! fetcher. Leadership changes travel in the same queue, so the controller activates only once
//! everything committed before its term is applied.

use super::controller::ControllerService;
use bytes::Bytes;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use weir_replication::metadata::{decode_batch, snapshot, MetadataImage, MetadataRecord};
use weir_replication::quorum::{CommittedEntry, LeaderInfo, Leadership, SnapshotData};
use weir_replication::types::NodeId;

/// What reaches every core.
pub enum Publish {
    /// Records to apply in order.
    Records(Vec<MetadataRecord>),
    /// A whole image replacing the current one (a snapshot was installed).
    Image(MetadataImage),
}

/// Delivers metadata to every core and resolves once all applied it.
pub type Publisher = Rc<dyn Fn(Publish) -> Pin<Box<dyn Future<Output = ()>>>>;

/// An event for the applier, in commit order.
pub enum Applied {
    Snapshot(SnapshotData),
    Entries {
        entries: Vec<CommittedEntry>,
        /// The highest index these entries (and empty ones not listed) bring the state to.
        applied_index: Option<u64>,
    },
    Leader(LeaderInfo),
    Leadership(Leadership),
}

/// Decides when the controller's image is worth a checkpoint.
pub trait Checkpointer {
    fn maybe_checkpoint(&self, applied_index: u64, image: &MetadataImage);
}

pub struct MetadataApplier {
    queue: RefCell<VecDeque<Applied>>,
    wake: LocalSender<()>,
    applied: Cell<u64>,
    waiters: RefCell<BTreeMap<u64, Vec<LocalSender<()>>>>,
    publish: Publisher,
    controller: RefCell<Option<Weak<ControllerService>>>,
    checkpointer: RefCell<Option<Rc<dyn Checkpointer>>>,
    leader: Cell<Option<NodeId>>,
    term: Cell<u64>,
    failure: RefCell<Option<String>>,
}

impl MetadataApplier {
    pub fn start(publish: Publisher) -> Rc<Self> {
        let (wake, woken) = local_channel::new_bounded(1);
        let applier = Rc::new(Self {
            queue: RefCell::default(),
            wake,
            applied: Cell::new(0),
            waiters: RefCell::default(),
            publish,
            controller: RefCell::new(None),
            checkpointer: RefCell::new(None),
            leader: Cell::new(None),
            term: Cell::new(0),
            failure: RefCell::new(None),
        });
        glommio::spawn_local(applier.clone().run(woken)).detach();
        applier
    }

    pub fn set_controller(&self, controller: &Rc<ControllerService>) {
        *self.controller.borrow_mut() = Some(Rc::downgrade(controller));
    }

    pub fn set_checkpointer(&self, c: Rc<dyn Checkpointer>) {
        *self.checkpointer.borrow_mut() = Some(c);
    }

    pub fn push(&self, event: Applied) {
        self.queue.borrow_mut().push_back(event);
        let _ = self.wake.try_send(());
    }

    /// The metadata index applied on every core.
    pub fn applied_index(&self) -> u64 {
        self.applied.get()
    }

    /// The leader the quorum (or the controller a fetch answered from) named last.
    pub fn known_leader(&self) -> Option<NodeId> {
        self.leader.get()
    }

    /// Sets the applied index a restart begins from (a checkpoint's index): the first
    /// committed entries to apply follow it.
    pub fn set_applied(&self, index: u64) {
        self.applied.set(index);
    }

    pub fn set_leader(&self, leader: Option<NodeId>) {
        self.leader.set(leader);
    }

    /// Resolves once `index` is applied on every core.
    pub async fn wait_applied(&self, index: u64) {
        if self.applied.get() >= index {
            return;
        }
        let (tx, rx) = local_channel::new_bounded(1);
        self.waiters.borrow_mut().entry(index).or_default().push(tx);
        rx.recv().await;
    }

    /// The quorum driver stopped on a storage failure.
    pub fn failed(&self, why: String) {
        *self.failure.borrow_mut() = Some(why);
    }

    pub fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }

    async fn run(self: Rc<Self>, woken: LocalReceiver<()>) {
        loop {
            let next = self.queue.borrow_mut().pop_front();
            match next {
                Some(event) => self.apply(event).await,
                None => {
                    if woken.recv().await.is_none() {
                        return;
                    }
                }
            }
        }
    }

    async fn apply(&self, event: Applied) {
        match event {
            Applied::Snapshot(snap) => {
                let image = match snapshot::decode(&snap.data) {
                    Ok(i) => i,
                    Err(e) => {
                        // The leader's checkpoint passed its own checks; a bad one here means
                        // the bytes broke on the way, and applying past it would fork the image.
                        tracing::error!(index = snap.index, error = %e, "metadata snapshot refused");
                        self.failed(format!(
                            "metadata snapshot at {} is corrupt: {e}",
                            snap.index
                        ));
                        return;
                    }
                };
                if let Some(c) = self.controller() {
                    c.restore(image.clone(), snap.index);
                }
                tracing::info!(
                    index = snap.index,
                    term = snap.term,
                    topics = image.topics().count(),
                    "metadata snapshot installed"
                );
                (self.publish)(Publish::Image(image)).await;
                self.advance(snap.index);
            }
            Applied::Entries {
                entries,
                applied_index,
            } => {
                let mut batch = Vec::new();
                let mut last = self.applied.get();
                for e in &entries {
                    if e.index <= last {
                        continue;
                    }
                    let records = decode_entry(e.index, &e.data);
                    if let Some(c) = self.controller() {
                        c.replay(e.index, &records);
                    }
                    batch.extend(records);
                    last = e.index;
                }
                if !batch.is_empty() {
                    (self.publish)(Publish::Records(batch)).await;
                }
                let index = applied_index.unwrap_or(last).max(last);
                self.advance(index);
                if let (Some(c), Some(cp)) = (self.controller(), self.checkpointer.borrow().clone())
                {
                    c.with_image(|image| cp.maybe_checkpoint(index, image));
                }
            }
            Applied::Leader(info) => {
                self.leader.set(info.leader);
                self.term.set(info.term);
                if let Some(leader) = info.leader {
                    tracing::info!(leader, term = info.term, "controller quorum leader");
                }
            }
            Applied::Leadership(l) => {
                if let Some(c) = self.controller() {
                    match l {
                        Leadership::Active { term } => c.activate(term),
                        Leadership::Resigned { term } => c.resign(term),
                    }
                }
            }
        }
    }

    fn controller(&self) -> Option<Rc<ControllerService>> {
        self.controller.borrow().as_ref().and_then(Weak::upgrade)
    }

    fn advance(&self, index: u64) {
        if index <= self.applied.get() {
            return;
        }
        self.applied.set(index);
        let ready: Vec<u64> = self
            .waiters
            .borrow()
            .range(..=index)
            .map(|(k, _)| *k)
            .collect();
        for k in ready {
            for tx in self.waiters.borrow_mut().remove(&k).unwrap_or_default() {
                let _ = tx.try_send(());
            }
        }
    }
}

/// An entry's records. An entry that does not decode was committed by a quorum of controllers
/// running the same code, so it cannot happen short of a bug or a corrupt disk; it is logged and
/// skipped (the image must stay total), as the single-node controller skipped bad records.
fn decode_entry(index: u64, data: &Bytes) -> Vec<MetadataRecord> {
    match decode_batch(data) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(index, error = %e, "committed metadata entry does not decode; skipped");
            Vec::new()
        }
    }
}
