//! Reserving the active segment's disk blocks ahead of its writes, off the reactor.
//!
//! Why reserve: with ext4's delayed allocation the flusher allocates
//! blocks for dirty pages holding the inode's `i_data_sem`, and an append reserving its own
//! delayed blocks waits for it (pwrites stalled up to 19 ms). Why off the reactor: the
//! reservation itself may read block bitmaps from disk; traced inline on a core under 500 MB/s
//! of writeback, one `fallocate` blocked the core for 528 ms. So the reservation runs on
//! glommio's blocking thread, starting once less than half of the last one is left, and appends
//! never wait for it: a write that outruns it goes through delayed allocation as before.

use super::PartitionLog;
use crate::config::{LogConfig, PREALLOCATE_MIN_BYTES};
use crate::file_cache::OpenSegment;
use crate::types::Offset;
use std::os::fd::AsRawFd;
use std::rc::Rc;

/// Where a log's block reservations stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Reservation {
    #[default]
    Idle,
    /// One reservation is running on the blocking thread.
    Running,
    /// The file system refused `fallocate`; no segment of this log asks again.
    Unsupported,
}

impl PartitionLog {
    /// Starts reserving blocks of the active segment (`base`, open as `file`) past `end` if
    /// less than half of the current reservation is left ahead of it.
    pub(crate) fn reserve_ahead(
        self: &Rc<Self>,
        base: Offset,
        file: &Rc<OpenSegment>,
        end: u64,
        config: &LogConfig,
    ) {
        if self.reservation.get() != Reservation::Idle {
            return;
        }
        let ahead = if config.preallocate {
            config.segment_bytes
        } else if config.preallocate_step_bytes == 0 {
            return;
        } else {
            end.clamp(
                PREALLOCATE_MIN_BYTES,
                config.preallocate_step_bytes.max(PREALLOCATE_MIN_BYTES),
            )
        };
        let reserved = self.state.borrow().active().preallocated;
        if end.saturating_add(ahead / 2) < reserved {
            return;
        }
        let from = reserved.max(end);
        let to = (end + ahead).min(config.segment_bytes);
        if to <= from {
            return;
        }
        let Some(slot) = self.cache.try_reservation_slot() else {
            return;
        };
        self.reservation.set(Reservation::Running);
        let log = self.clone();
        let file = file.clone();
        let generation = self.generation();
        glommio::spawn_local(async move {
            let _slot = slot;
            let fd = file.file.as_raw_fd();
            let path = file.path.clone();
            // SAFETY (inside): `file` is held by this task until the closure has returned, so
            // the descriptor stays open.
            let outcome =
                crate::fs::off_reactor(move || crate::fs::preallocate_fd(fd, path, from, to - from))
                    .await;
            log.reservation.set(Reservation::Idle);
            match outcome {
                Ok(true) => log.reserved(base, &file, to, generation).await,
                Ok(false) => log.reservation.set(Reservation::Unsupported),
                Err(e) => {
                    tracing::debug!(partition = %log.tp, error = %e, "reserving segment blocks failed")
                }
            }
        })
        .detach();
    }

    /// Truncations and cleaner swaps so far: a segment file may have changed under a
    /// reservation only if this moved.
    fn generation(&self) -> (u64, u64) {
        let s = self.state.borrow();
        (s.truncations, s.swaps)
    }

    /// Records a finished reservation; if the segment rolled meanwhile, gives the blocks past
    /// its end back (the roll could not: they were not reserved yet).
    async fn reserved(
        &self,
        base: Offset,
        file: &Rc<OpenSegment>,
        to: u64,
        generation: (u64, u64),
    ) {
        {
            let mut s = self.state.borrow_mut();
            if s.active().base_offset == base {
                let active = s.active_mut();
                active.preallocated = active.preallocated.max(to);
                return;
            }
        }
        // Cut the closed segment back to its size under the structure permit, so no truncation
        // or swap runs meanwhile; after one (or with the segment gone) the size known here may
        // not be the file's any more, and cutting to it could drop or invent bytes: the
        // reserved blocks then stay until the segment is deleted.
        let Ok(_permit) = self.permit().await else {
            return;
        };
        let size = {
            let s = self.state.borrow();
            let closed = s.active().base_offset != base;
            match s.segments.get(&base) {
                Some(seg) if closed && self.generation() == generation => seg.size,
                _ => return,
            }
        };
        if let Err(e) = crate::fs::truncate_off_reactor(&file.file, &file.path, size).await {
            tracing::debug!(partition = %self.tp, error = %e, "releasing reserved blocks failed");
        }
    }

    /// Whether a reservation is running (tests wait for it).
    #[cfg(test)]
    pub(crate) fn reservation_running(&self) -> bool {
        self.reservation.get() == Reservation::Running
    }

    #[cfg(test)]
    pub(crate) fn reservation_unsupported(&self) -> bool {
        self.reservation.get() == Reservation::Unsupported
    }
}
