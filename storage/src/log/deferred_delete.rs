//! Kafka's `file.delete.delay.ms`: the files of a segment that retention or the cleaner removed
//! are renamed `<name>.deleted` at once (under the log's permit, see `retire_segment_files`) and
//! unlinked only after the delay. Readers here need no grace period (a descriptor a fetch holds
//! outlives the unlink, and reads never map index files); the window is kept because it is
//! Kafka's observable behaviour, which operators and tools count on.

use super::PartitionLog;
use crate::fs;
use std::path::PathBuf;
use std::time::Duration;

impl PartitionLog {
    /// Unlinks retired files after `delay_ms`: at once for 0, else from a task that sleeps
    /// first. A broker stopping before then leaves the `.deleted` files for the next open, which
    /// removes them (as Kafka's log loading does).
    pub(crate) async fn delete_retired(&self, files: Vec<PathBuf>, delay_ms: i64) {
        if files.is_empty() {
            return;
        }
        if delay_ms <= 0 {
            remove_all(&files).await;
            return;
        }
        glommio::spawn_local(async move {
            glommio::timer::sleep(Duration::from_millis(delay_ms as u64)).await;
            remove_all(&files).await;
        })
        .detach();
    }
}

async fn remove_all(files: &[PathBuf]) {
    for path in files {
        // A leftover `.deleted` file is removed by the next open: not worth failing for.
        if let Err(e) = fs::remove_if_exists(path).await {
            tracing::warn!(path = %path.display(), error = %e, "removing a retired segment file");
        }
    }
}
