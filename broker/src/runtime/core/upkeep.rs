//! Each core's periodic housekeeping: retention, compaction, segment fsyncs and checkpoints, in
//! the core's low-priority queue.

use super::*;

impl Core {
    /// Background upkeep for this core's partitions: retention, timed flushes, high watermark
    /// checkpoints. Runs in a low-priority task queue so it yields to produce and fetch.
    pub async fn upkeep(self: Rc<Self>) {
        let tick = Duration::from_millis(1000);
        let mut since_retention = 0u64;
        let mut since_checkpoint = 0u64;
        let mut since_cleaning = 0u64;
        while !self.stopping.get() {
            glommio::timer::sleep(tick).await;
            since_retention += 1000;
            since_checkpoint += 1000;
            since_cleaning += 1000;
            let replicas: Vec<Rc<Replica>> = self.partitions.borrow().all().cloned().collect();
            let now = now_ms();
            for r in &replicas {
                if let Err(e) = r.log.flush_if_due(now).await {
                    tracing::error!(partition = %r.tp, error = %e, "timed flush failed");
                }
            }
            if since_retention >= self.settings.retention_check_interval_ms {
                since_retention = 0;
                for r in &replicas {
                    if let Err(e) = r.log.enforce_retention(now).await {
                        tracing::error!(partition = %r.tp, error = %e, "retention failed");
                    }
                }
            }
            if let Some(cleaner) = self.settings.cleaner {
                if since_cleaning >= cleaner.backoff_ms {
                    since_cleaning = 0;
                    self.clean_logs(&replicas, cleaner).await;
                }
            }
            if since_checkpoint >= self.settings.hw_checkpoint_interval_ms {
                since_checkpoint = 0;
                for r in &replicas {
                    if let Err(e) = r.log.checkpoint().await {
                        tracing::warn!(partition = %r.tp, error = %e, "checkpoint failed");
                    }
                }
            }
        }
    }

    /// One compaction pass over this core's compacted logs (Kafka's log cleaner, here a task of
    /// the core's low-priority queue instead of a thread pool: each core cleans what it owns).
    async fn clean_logs(&self, replicas: &[Rc<Replica>], cleaner: CleanerSettings) {
        for r in replicas {
            if self.stopping.get() {
                return;
            }
            let opts = CleanOptions {
                now_ms: now_ms(),
                dedupe_buffer_bytes: cleaner.dedupe_buffer_bytes_per_core,
                force: false,
            };
            match r.log.clean(opts).await {
                Ok(Some(o)) => tracing::info!(
                    partition = %r.tp,
                    segments = format!("{} -> {}", o.segments_before, o.segments_after),
                    bytes = format!("{} -> {}", o.bytes_before, o.bytes_after),
                    records_removed = o.records_removed,
                    tombstones_removed = o.tombstones_removed,
                    first_dirty = o.first_dirty,
                    "log cleaned"
                ),
                Ok(None) => {}
                Err(e) => tracing::error!(partition = %r.tp, error = %e, "log cleaning failed"),
            }
        }
    }
}
