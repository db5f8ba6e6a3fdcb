//! Small durable files kept beside a partition's segments, and the log directory's
//! clean-shutdown marker. The partition checkpoint alternates between two slot files rewritten
//! in place (see [`PartitionCheckpoint::store`]); the others are written atomically (temp file,
//! fsync, rename).

use crate::error::{Result, StorageError};
use crate::fs;
use crate::types::{LeaderEpoch, Offset};
use std::path::Path;

/// Where checkpoints were kept before the two slots; read if neither slot holds one.
pub const PARTITION_CHECKPOINT_FILE: &str = "weir-partition.checkpoint";
/// The two slot files of the partition checkpoint.
pub const PARTITION_CHECKPOINT_SLOTS: [&str; 2] =
    ["weir-partition.checkpoint.0", "weir-partition.checkpoint.1"];
/// A slot's size: the record, then newlines. One small block, written whole each time.
const SLOT_BYTES: usize = 512;
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
        let fields = text
            .strip_prefix("1\n")
            .ok_or_else(|| bad("unknown version"))?;
        Self::decode_fields(path, fields)
    }

    /// The `name value` lines both versions share.
    fn decode_fields(path: &Path, fields: &str) -> Result<Self> {
        let bad = |reason: &str| StorageError::CorruptFile {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let mut c = Self::default();
        for line in fields.lines() {
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

    /// The latest checkpoint in `dir`, if any.
    pub async fn load(dir: &Path) -> Result<Option<Self>> {
        Ok(Self::load_latest(dir).await?.map(|(c, _)| c))
    }

    /// The latest checkpoint in `dir` and its sequence number: the valid slot with the highest
    /// sequence, else the pre-slot file (sequence 0). A slot that is torn or corrupt is skipped
    /// (its CRC says so); the other still holds the checkpoint before it.
    pub async fn load_latest(dir: &Path) -> Result<Option<(Self, u64)>> {
        let mut best: Option<(Self, u64)> = None;
        for name in PARTITION_CHECKPOINT_SLOTS {
            let path = dir.join(name);
            let Some(bytes) = fs::read_small_file(&path).await? else {
                continue;
            };
            match Self::decode_slot(&path, &bytes) {
                Ok((c, seq)) if best.as_ref().is_none_or(|(_, b)| seq > *b) => {
                    best = Some((c, seq))
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "skipping a partition checkpoint slot"),
            }
        }
        if best.is_some() {
            return Ok(best);
        }
        let path = dir.join(PARTITION_CHECKPOINT_FILE);
        match fs::read_small_file(&path).await? {
            None => Ok(None),
            Some(bytes) => Self::decode(&path, &bytes).map(|c| Some((c, 0))),
        }
    }

    /// Writes this checkpoint as number `seq` into slot `seq % 2`, overwriting that slot's
    /// older record in place, and fdatasyncs it. Why not temp file and rename: that created a
    /// new inode per checkpoint, and with 2000 partitions checkpointed every 5 s, ext4's inode
    /// allocation (`find_inode_bit` → `recently_deleted`) took ~20% of a CPU. A torn slot fails
    /// its CRC on load, and the other slot, never written at the same time, still holds the
    /// previous checkpoint.
    pub async fn store(&self, dir: &Path, seq: u64) -> Result<()> {
        let path = dir.join(PARTITION_CHECKPOINT_SLOTS[(seq % 2) as usize]);
        fs::overwrite_in_place(&path, self.encode_slot(seq)).await
    }

    /// Removes every checkpoint file in `dir` (tests: a lost checkpoint).
    pub fn remove_files(dir: &Path) -> std::io::Result<()> {
        for name in PARTITION_CHECKPOINT_SLOTS
            .into_iter()
            .chain([PARTITION_CHECKPOINT_FILE])
        {
            match std::fs::remove_file(dir.join(name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Version `2`, the sequence number, the fields as in version 1, then `crc <CRC-32C of
    /// everything before that line>`, padded with newlines to [`SLOT_BYTES`].
    fn encode_slot(&self, seq: u64) -> Vec<u8> {
        let body = self.encode();
        let mut out = format!("2\nseq {seq}\n").into_bytes();
        out.extend_from_slice(&body[2..]); // the fields, after version 1's "1\n"
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(format!("crc {crc}\n").as_bytes());
        debug_assert!(out.len() <= SLOT_BYTES);
        out.resize(SLOT_BYTES.max(out.len()), b'\n');
        out
    }

    fn decode_slot(path: &Path, bytes: &[u8]) -> Result<(Self, u64)> {
        let bad = |reason: &str| StorageError::CorruptFile {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let at = bytes
            .windows(5)
            .position(|w| w == b"\ncrc ")
            .ok_or_else(|| bad("no CRC line"))?
            + 1;
        let (record, rest) = bytes.split_at(at);
        let crc: u32 = std::str::from_utf8(&rest[4..])
            .ok()
            .and_then(|t| t.lines().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("unreadable CRC"))?;
        if crc32c::crc32c(record) != crc {
            return Err(bad("CRC mismatch (torn or corrupt)"));
        }
        let text = std::str::from_utf8(record).map_err(|_| bad("not UTF-8"))?;
        let fields = text
            .strip_prefix("2\nseq ")
            .ok_or_else(|| bad("unknown version"))?;
        let (seq, fields) = fields.split_once('\n').ok_or_else(|| bad("no fields"))?;
        let seq: u64 = seq.parse().map_err(|_| bad("sequence is not a number"))?;
        let c = Self::decode_fields(path, fields)?;
        Ok((c, seq))
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

    /// Kafka's OffsetForLeaderEpoch answer, see [`end_offset_for_epoch`].
    pub fn end_offset_for(
        &self,
        epoch: LeaderEpoch,
        log_end: Offset,
    ) -> Option<(LeaderEpoch, Offset)> {
        end_offset_for_epoch(&self.entries, epoch, log_end)
    }
}

/// Where leader epoch `epoch` ends in a log whose epoch cache is `entries` (`(epoch, start
/// offset)`, increasing) and whose end is `log_end`: Kafka's `LeaderEpochFileCache.endOffsetFor`,
/// answer for answer, because followers and consumers (KIP-320 validation) act on it.
/// - the latest epoch ends at the log end;
/// - an older epoch ends where the next known epoch starts, and is answered as the largest
///   known epoch at or below it — or as itself when the cache starts later (retention removed
///   its start): "whatever you had of it ends where my first epoch starts";
/// - an epoch newer than the latest, or -1, is unknown (`None`: Kafka's -1/-1).
pub fn end_offset_for_epoch(
    entries: &[(LeaderEpoch, Offset)],
    epoch: LeaderEpoch,
    log_end: Offset,
) -> Option<(LeaderEpoch, Offset)> {
    if epoch < 0 {
        return None;
    }
    if entries.last()?.0 == epoch {
        return Some((epoch, log_end));
    }
    let higher = entries.partition_point(|e| e.0 <= epoch);
    let (_, end) = *entries.get(higher)?;
    let found = higher
        .checked_sub(1)
        .map_or(epoch, |floor| entries[floor].0);
    Some((found, end))
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
        assert_eq!(c.end_offset_for(5, 500), Some((5, 500)));
        assert_eq!(
            c.end_offset_for(9, 500),
            None,
            "newer than the latest: unknown"
        );
        assert_eq!(c.end_offset_for(-1, 500), None);
        let path = Path::new("x");
        assert_eq!(LeaderEpochCache::decode(path, &c.encode()).unwrap(), c);
        c.truncate_from_end(300);
        assert_eq!(c.latest_epoch(), Some(2));
        c.truncate_from_start(150);
        assert_eq!(c.entries(), &[(2, 150)]);
        // Retention removed epoch 0's start: what anyone had of it ends at 150 here.
        assert_eq!(c.end_offset_for(0, 200), Some((0, 150)));
        assert_eq!(c.end_offset_for(1, 200), Some((1, 150)));
        assert_eq!(c.end_offset_for(2, 200), Some((2, 200)));
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

    #[test]
    fn checkpoint_slots_round_trip_and_refuse_torn_records() {
        let c = PartitionCheckpoint {
            log_start_offset: 5,
            recovery_point: i64::MAX,
            recovery_segment: 50,
            recovery_position: u64::MAX >> 1,
            high_watermark: 70,
            first_dirty: 60,
        };
        let p = Path::new("x");
        let slot = c.encode_slot(u64::MAX);
        assert_eq!(slot.len(), SLOT_BYTES);
        assert_eq!(
            PartitionCheckpoint::decode_slot(p, &slot).unwrap(),
            (c, u64::MAX)
        );
        // Any changed byte of the record, or a record cut short, fails.
        let crc_at = slot.windows(5).position(|w| w == b"\ncrc ").unwrap();
        for i in 0..crc_at {
            let mut torn = slot.clone();
            torn[i] ^= 0x01;
            assert!(
                PartitionCheckpoint::decode_slot(p, &torn).is_err(),
                "byte {i}"
            );
        }
        assert!(PartitionCheckpoint::decode_slot(p, &slot[..crc_at]).is_err());
        assert!(PartitionCheckpoint::decode_slot(p, &[0u8; SLOT_BYTES]).is_err());
    }

    #[test]
    fn the_newest_valid_slot_wins_and_a_torn_one_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let at = |hw| PartitionCheckpoint {
                    high_watermark: hw,
                    ..Default::default()
                };
                assert_eq!(PartitionCheckpoint::load_latest(&path).await.unwrap(), None);
                // Before the slots: the old single file is read.
                std::fs::write(path.join(PARTITION_CHECKPOINT_FILE), at(1).encode()).unwrap();
                assert_eq!(
                    PartitionCheckpoint::load_latest(&path).await.unwrap(),
                    Some((at(1), 0))
                );
                for seq in 1..=5u64 {
                    at(seq as i64 * 10).store(&path, seq).await.unwrap();
                    assert_eq!(
                        PartitionCheckpoint::load_latest(&path).await.unwrap(),
                        Some((at(seq as i64 * 10), seq))
                    );
                }
                // Tear the newest (seq 5, slot 1): the previous one (seq 4) is found.
                let newest = path.join(PARTITION_CHECKPOINT_SLOTS[1]);
                let mut bytes = std::fs::read(&newest).unwrap();
                bytes[10] ^= 0xff;
                std::fs::write(&newest, bytes).unwrap();
                assert_eq!(
                    PartitionCheckpoint::load_latest(&path).await.unwrap(),
                    Some((at(40), 4))
                );
                PartitionCheckpoint::remove_files(&path).unwrap();
                assert_eq!(PartitionCheckpoint::load_latest(&path).await.unwrap(), None);
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
