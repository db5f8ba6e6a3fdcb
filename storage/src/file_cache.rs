//! A per-core, bounded cache of open segment `.log` files.
//!
//! The seed warns that Kafka keeps a handle open for every segment of every partition. With ~2000
//! partitions per broker that is many thousands of descriptors. Here every `.log` descriptor of a
//! core's partitions lives in this cache, which never holds more than `capacity` of them and
//! closes the least recently used first. A file handed out (to an in-flight fetch) stays open
//! until that user drops it, so the cap bounds what the cache keeps, not what a burst of
//! concurrent fetches pins for the duration of a send.
//!
//! One cache per core, shared by that core's logs through `Rc`: single-threaded by construction.

use crate::error::Result;
use crate::fs;
use crate::index::{OffsetIndex, TimeIndex};
use crate::types::Offset;
use ahash::AHashMap;
use glommio::io::BufferedFile;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

/// Which segment: the owning log's id in this cache and the segment's base offset.
pub type SegmentKey = (u64, Offset);

/// An open segment: its `.log` file, and, for inactive segments, the indexes once loaded.
/// Dropping the last `Rc` closes the descriptor.
pub struct OpenSegment {
    pub file: BufferedFile,
    pub path: PathBuf,
    pub(crate) offset_index: RefCell<Option<Rc<OffsetIndex>>>,
    pub(crate) time_index: RefCell<Option<Rc<TimeIndex>>>,
}

impl OpenSegment {
    /// Drops the indexes loaded for an inactive segment, after its bytes changed under them.
    pub(crate) fn forget_indexes(&self) {
        self.offset_index.borrow_mut().take();
        self.time_index.borrow_mut().take();
    }
}

struct Slot {
    segment: Rc<OpenSegment>,
    last_used: u64,
    /// Never evicted while set: the file behind it cannot be opened again by its path yet.
    pinned: bool,
}

#[derive(Default)]
struct Inner {
    slots: AHashMap<SegmentKey, Slot>,
    by_use: BTreeMap<u64, SegmentKey>,
    clock: u64,
}

impl Inner {
    /// Evicts least recently used, unpinned slots until at most `keep` remain (or only pinned
    /// ones are left).
    fn evict_to(&mut self, keep: usize) -> Vec<Rc<OpenSegment>> {
        let mut evicted = Vec::new();
        let mut pinned = Vec::new();
        while self.slots.len() > keep {
            let Some((used, oldest)) = self.by_use.pop_first() else {
                break;
            };
            match self.slots.get(&oldest) {
                Some(slot) if slot.pinned => pinned.push((used, oldest)),
                Some(_) => {
                    let slot = self.slots.remove(&oldest).expect("present");
                    evicted.push(slot.segment);
                }
                None => {}
            }
        }
        self.by_use.extend(pinned);
        evicted
    }

    fn insert(&mut self, key: SegmentKey, segment: Rc<OpenSegment>, pinned: bool) {
        self.clock += 1;
        let now = self.clock;
        self.by_use.insert(now, key);
        self.slots.insert(
            key,
            Slot {
                segment,
                last_used: now,
                pinned,
            },
        );
    }
}

/// Counters a test or an operator can read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub opens: u64,
    pub evictions: u64,
    pub hits: u64,
}

/// Background fsyncs of rolled segments a core runs at once. Each holds a few descriptors and
/// io_uring operations; with thousands of partitions rolling together, unbounded they would
/// pile up by the thousand (descriptors past the cache's cap, a flood of kernel workers).
pub const BACKGROUND_FSYNCS_MAX: usize = 4;

/// Block reservations (`log::preallocate`) a core runs at once: each holds an active segment's
/// descriptor open until it returns, and they queue on one blocking thread.
pub const RESERVATIONS_MAX: usize = 4;

pub struct SegmentFileCache {
    capacity: usize,
    /// Block reservations running on this core ([`RESERVATIONS_MAX`]).
    reservations: Cell<usize>,
    /// Bounds this core's concurrent background fsyncs ([`BACKGROUND_FSYNCS_MAX`]): the cache is
    /// the one object every log of a core shares.
    background_fsyncs: glommio::sync::Semaphore,
    inner: RefCell<Inner>,
    next_log_id: Cell<u64>,
    stats: Cell<CacheStats>,
}

/// Held while a block reservation runs; frees its slot when dropped.
pub(crate) struct ReservationSlot(Rc<SegmentFileCache>);

impl Drop for ReservationSlot {
    fn drop(&mut self) {
        self.0.reservations.set(self.0.reservations.get() - 1);
    }
}

impl SegmentFileCache {
    /// `capacity` is the most `.log` descriptors this core keeps open (at least 1).
    pub fn new(capacity: usize) -> Rc<Self> {
        Rc::new(Self {
            capacity: capacity.max(1),
            reservations: Cell::new(0),
            background_fsyncs: glommio::sync::Semaphore::new(BACKGROUND_FSYNCS_MAX as u64),
            inner: RefCell::default(),
            next_log_id: Cell::new(0),
            stats: Cell::default(),
        })
    }

    /// Waits for a background fsync slot; the slot is held until the returned permit drops.
    pub(crate) async fn background_fsync_slot(&self) -> Option<glommio::sync::Permit<'_>> {
        self.background_fsyncs.acquire_permit(1).await.ok()
    }

    /// A slot for one block reservation if fewer than [`RESERVATIONS_MAX`] run; never waits
    /// (a reservation is an optimisation: without a slot, the write goes ahead without it).
    pub(crate) fn try_reservation_slot(self: &Rc<Self>) -> Option<ReservationSlot> {
        if self.reservations.get() >= RESERVATIONS_MAX {
            return None;
        }
        self.reservations.set(self.reservations.get() + 1);
        Some(ReservationSlot(self.clone()))
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn open_count(&self) -> usize {
        self.inner.borrow().slots.len()
    }

    pub fn stats(&self) -> CacheStats {
        self.stats.get()
    }

    pub(crate) fn register_log(&self) -> u64 {
        let id = self.next_log_id.get();
        self.next_log_id.set(id + 1);
        id
    }

    fn touch(&self, key: SegmentKey) -> Option<Rc<OpenSegment>> {
        let mut inner = self.inner.borrow_mut();
        inner.clock += 1;
        let now = inner.clock;
        let slot = inner.slots.get_mut(&key)?;
        let old = std::mem::replace(&mut slot.last_used, now);
        let segment = slot.segment.clone();
        inner.by_use.remove(&old);
        inner.by_use.insert(now, key);
        Some(segment)
    }

    /// The open file for a segment, opening it (and evicting the least recently used) if needed.
    /// `path` is only built on a miss: formatting a segment's file name per append was ~1% of a
    /// core at 2000 partitions.
    pub async fn get(
        &self,
        key: SegmentKey,
        path: impl FnOnce() -> PathBuf,
        create: bool,
    ) -> Result<Rc<OpenSegment>> {
        if let Some(s) = self.touch(key) {
            self.bump(|s| s.hits += 1);
            return Ok(s);
        }
        let path = path();
        let path = path.as_path();
        let file = fs::open_rw(path, create).await?;
        self.bump(|s| s.opens += 1);
        // Another task of this core may have opened it while we awaited; keep one.
        if let Some(s) = self.touch(key) {
            drop(file);
            return Ok(s);
        }
        let segment = Rc::new(OpenSegment {
            file,
            path: path.to_path_buf(),
            offset_index: RefCell::new(None),
            time_index: RefCell::new(None),
        });
        let evicted = {
            let mut inner = self.inner.borrow_mut();
            let evicted = inner.evict_to(self.capacity.saturating_sub(1));
            inner.insert(key, segment.clone(), false);
            evicted
        };
        self.bump(|s| s.evictions += evicted.len() as u64);
        close_all(evicted).await;
        Ok(segment)
    }

    /// Caches an already open segment under `key`, replacing what was cached there, and pins it
    /// until [`Self::unpin`]. The cleaner installs a cleaned segment this way while its file
    /// still has a temporary name, so no reader can open the old file by the final name in
    /// between. Synchronous, so it happens together with the log's state change; the replaced
    /// segments are returned for [`Self::close_unused`].
    pub(crate) fn install_pinned(
        &self,
        key: SegmentKey,
        segment: Rc<OpenSegment>,
    ) -> Vec<Rc<OpenSegment>> {
        let mut inner = self.inner.borrow_mut();
        let mut replaced = Vec::new();
        if let Some(old) = inner.slots.remove(&key) {
            inner.by_use.remove(&old.last_used);
            replaced.push(old.segment);
        }
        replaced.extend(inner.evict_to(self.capacity.saturating_sub(1)));
        inner.insert(key, segment, true);
        replaced
    }

    /// Lets a pinned segment be evicted again (its file is reachable by its path now).
    pub(crate) fn unpin(&self, key: SegmentKey) {
        if let Some(slot) = self.inner.borrow_mut().slots.get_mut(&key) {
            slot.pinned = false;
        }
    }

    pub(crate) async fn close_unused(&self, segments: Vec<Rc<OpenSegment>>) {
        self.bump(|s| s.evictions += segments.len() as u64);
        close_all(segments).await;
    }

    /// Forgets a segment (deleted, truncated away, or its log closed) and closes its file.
    pub async fn remove(&self, key: SegmentKey) {
        let removed = {
            let mut inner = self.inner.borrow_mut();
            inner.slots.remove(&key).map(|slot| {
                inner.by_use.remove(&slot.last_used);
                slot.segment
            })
        };
        close_all(removed.into_iter().collect()).await;
    }

    /// Forgets every segment of one log.
    pub async fn remove_log(&self, log_id: u64) {
        let removed: Vec<_> = {
            let mut inner = self.inner.borrow_mut();
            let keys: Vec<_> = inner
                .slots
                .keys()
                .filter(|k| k.0 == log_id)
                .copied()
                .collect();
            keys.into_iter()
                .filter_map(|k| {
                    let slot = inner.slots.remove(&k)?;
                    inner.by_use.remove(&slot.last_used);
                    Some(slot.segment)
                })
                .collect()
        };
        close_all(removed).await;
    }

    fn bump(&self, f: impl FnOnce(&mut CacheStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }
}

/// Closes files nobody else holds now, so the descriptor count drops at once; files still held
/// by an in-flight read close when that read drops them.
async fn close_all(segments: Vec<Rc<OpenSegment>>) {
    for s in segments {
        if let Ok(seg) = Rc::try_unwrap(s) {
            if let Err(e) = seg.file.close().await {
                tracing::warn!(path = %seg.path.display(), error = %e, "closing segment file");
            }
        }
    }
}
