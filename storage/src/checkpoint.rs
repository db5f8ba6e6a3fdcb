//! Small durable files kept beside a partition's segments, and the log directory's
//! clean-shutdown marker. All are written atomically (temp file, fsync, rename).

use crate::error::{Result, StorageError};
use crate::fs;
use crate::types::{LeaderEpoch, Offset};
use std::path::Path;

pub const PARTITION_CHECKPOINT_FILE: &str = "weir-partition.checkpoint";
pub const LEADER_EPOCH_FILE: &str = "leader-epoch-checkpoint";
/// Kafka's marker name, so operators recognise it.
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";

/// Where a log stood at its last checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartitionCheckpoint {
    pub log_start_offset: Offset,
    /// Everything below this offset was fsynced; recovery starts here.
    pub recovery_point: Offset,
    /// Base offset of the segment holding the recovery point, and the file position of the
    /// recovery point in it, so recovery scans only what was not fsynced.
    pub recovery_segment: Offset,
    pub recovery_position: u64,
    pub high_watermark: Offset,
    /// The compaction cleaner's position (0 for logs never cleaned).
    pub first_dirty: Offset,
}

impl PartitionCheckpoint {
    fn encode(&self) -> Vec<u8> {
        format!(
            "1\nlog_start_offset {}\nrecovery_point {}\nrecovery_segment {}\nrecovery_position {}\nhigh_watermark {}\nfirst_dirty {}\n",
            self.log_start_offset, self.recovery_point, self.recovery_segment, self.recovery_position, self.high_watermark, self.first_dirty
        )
        .into_bytes()
    }

    fn decode(path: &Path, bytes: &[u8]) -> Result<Self> {
        let bad = |reason: &str| StorageError::CorruptFile {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
        let mut lines = text.lines();
        if lines.next() != Some("1") {
            return Err(bad("unknown version"));
        }
        let mut c = Self::default();
        for line in lines {
            let (k, v) = line
                .split_once(' ')
                .ok_or_else(|| bad("line without value"))?;
            let v: i64 = v.parse().map_err(|_| bad("value is not a number"))?;
            match k {
                "log_start_offset" => c.log_start_offset = v,
                "recovery_point" => c.recovery_point = v,
                "recovery_segment" => c.recovery_segment = v,
                "recovery_position" => c.recovery_position = v.max(0) as u64,
                "high_watermark" => c.high_watermark = v,
                "first_dirty" => c.first_dirty = v,
                _ => {} // newer fields are skipped, so a downgrade still opens
            }
        }
        Ok(c)
    }

    pub async fn load(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(PARTITION_CHECKPOINT_FILE);
        match fs::read_small_file(&path).await? {
            None => Ok(None),
            Some(bytes) => Self::decode(&path, &bytes).map(Some),
        }
    }

    pub async fn store(&self, dir: &Path) -> Result<()> {
        fs::write_atomic(&dir.join(PARTITION_CHECKPOINT_FILE), self.encode()).await
    }
}

/// The leader epoch cache: for each leader epoch, the first offset written in it. Replication
/// uses it to answer OffsetForLeaderEpoch and to find where a follower's log diverges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<(LeaderEpoch, Offset)>,
}

impl LeaderEpochCache {
    /// Kafka's format: version line `0`, a count line, then `epoch start_offset` per line.
    fn encode(&self) -> Vec<u8> {
        let mut s = format!("0\n{}\n", self.entries.len());
        for (e, o) in &self.entries {
            s.push_str(&format!("{e} {o}\n"));
        }
        s.into_bytes()
    }

    fn decode(path: &Path, bytes: &[u8]) -> Result<Self> {
        let bad = |reason: &str| StorageError::CorruptFile {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
        let mut lines = text.lines();
        if lines.next() != Some("0") {
            return Err(bad("unknown version"));
        }
        let count: usize = lines
            .next()
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| bad("missing count"))?;
        let mut cache = Self::default();
        for line in lines.by_ref().take(count) {
            let (e, o) = line.split_once(' ').ok_or_else(|| bad("bad entry"))?;
            let e = e.parse().map_err(|_| bad("bad epoch"))?;
            let o = o.parse().map_err(|_| bad("bad offset"))?;
            cache.assign(e, o);
        }
        if cache.entries.len() != count {
            return Err(bad("count does not match entries"));
        }
        Ok(cache)
    }

    pub async fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(LEADER_EPOCH_FILE);
        match fs::read_small_file(&path).await? {
            None => Ok(Self::default()),
            Some(bytes) => Self::decode(&path, &bytes),
        }
    }

    pub async fn store(&self, dir: &Path) -> Result<()> {
        fs::write_atomic(&dir.join(LEADER_EPOCH_FILE), self.encode()).await
    }

    /// Records that `epoch` starts at `start_offset`. Only a newer epoch starting at or after the
    /// latest one changes anything; returns whether it did.
    pub fn assign(&mut self, epoch: LeaderEpoch, start_offset: Offset) -> bool {
        if epoch < 0 {
            return false;
        }
        match self.entries.last() {
            Some(&(e, o)) if epoch <= e || start_offset < o => false,
            _ => {
                self.entries.push((epoch, start_offset));
                true
            }
        }
    }

    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.entries.last().map(|e| e.0)
    }

    pub fn entries(&self) -> &[(LeaderEpoch, Offset)] {
        &self.entries
    }

    /// Removes epochs that start at or after `offset` (the log was truncated there).
    pub fn truncate_from_end(&mut self, offset: Offset) -> bool {
        let n = self.entries.partition_point(|e| e.1 < offset);
        let changed = n != self.entries.len();
        self.entries.truncate(n);
        changed
    }

    /// Drops epochs wholly below a new log start offset, keeping the one that covers it.
    pub fn truncate_from_start(&mut self, offset: Offset) -> bool {
        let covering = self.entries.partition_point(|e| e.1 <= offset);
        if covering <= 1 {
            return false;
        }
        let epoch = self.entries[covering - 1].0;
        self.entries.drain(..covering);
        self.entries.insert(0, (epoch, offset));
        true
    }

    /// Kafka's OffsetForLeaderEpoch answer: the largest epoch at or below `epoch` and the offset
    /// where it ended (the next epoch's start, or the log end for the latest). `None` when no such
    /// epoch is known.
    pub fn end_offset_for(
        &self,
        epoch: LeaderEpoch,
        log_end: Offset,
    ) -> Option<(LeaderEpoch, Offset)> {
        let n = self.entries.partition_point(|e| e.0 <= epoch);
        let (found, _) = *self.entries.get(n.checked_sub(1)?)?;
        let end = self.entries.get(n).map_or(log_end, |next| next.1);
        Some((found, end))
    }
}

/// Whether the log directory was shut down cleanly. The marker is removed (durably) so that a
/// crash from now on is noticed on the next start.
pub async fn take_clean_shutdown_marker(log_dir: &Path) -> Result<bool> {
    let path = log_dir.join(CLEAN_SHUTDOWN_FILE);
    if fs::read_small_file(&path).await?.is_none() {
        return Ok(false);
    }
    fs::remove_if_exists(&path).await?;
    fs::sync_dir(log_dir).await?;
    Ok(true)
}

/// Written after every log of the directory was flushed and closed.
pub async fn write_clean_shutdown_marker(log_dir: &Path) -> Result<()> {
    fs::write_atomic(&log_dir.join(CLEAN_SHUTDOWN_FILE), Vec::new()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_cache_answers_like_kafka() {
        let mut c = LeaderEpochCache::default();
        assert!(c.assign(0, 0));
        assert!(!c.assign(0, 10), "same epoch again changes nothing");
        assert!(c.assign(2, 100));
        assert!(!c.assign(1, 150), "older epoch refused");
        assert!(c.assign(5, 300));
        assert_eq!(c.end_offset_for(0, 500), Some((0, 100)));
        assert_eq!(c.end_offset_for(1, 500), Some((0, 100)));
        assert_eq!(c.end_offset_for(3, 500), Some((2, 300)));
        assert_eq!(c.end_offset_for(9, 500), Some((5, 500)));
        assert_eq!(c.end_offset_for(-1, 500), None);
        let path = Path::new("x");
        assert_eq!(LeaderEpochCache::decode(path, &c.encode()).unwrap(), c);
        c.truncate_from_end(300);
        assert_eq!(c.latest_epoch(), Some(2));
        c.truncate_from_start(150);
        assert_eq!(c.entries(), &[(2, 150)]);
    }

    #[test]
    fn partition_checkpoint_round_trips() {
        let c = PartitionCheckpoint {
            log_start_offset: 5,
            recovery_point: 77,
            recovery_segment: 50,
            recovery_position: 1234,
            high_watermark: 70,
            first_dirty: 60,
        };
        let p = Path::new("x");
        assert_eq!(PartitionCheckpoint::decode(p, &c.encode()).unwrap(), c);
        assert!(PartitionCheckpoint::decode(p, b"9\n").is_err());
        assert!(PartitionCheckpoint::decode(p, b"1\nhigh_watermark x\n").is_err());
    }
}
