//! Groups rebuilt from the log: a core replays each `__consumer_offsets` partition it opens,
//! restoring committed offsets and the last stored membership of every group there.

use super::{Coordinator, GroupHost, Slot};
use crate::group::records::{self, Key};
use crate::group::state::Group;
use ahash::AHashMap;
use std::collections::BTreeSet;
use weir_storage::records::BatchRecords;
use weir_storage::{Offset, PartitionLog, StorageError};

impl Coordinator {
    /// Rebuilds the committed offsets of one `__consumer_offsets` partition from its log.
    pub async fn load(
        &self,
        host: &impl GroupHost,
        log: &PartitionLog,
    ) -> Result<usize, StorageError> {
        let mut next: Offset = log.log_start_offset();
        let end = log.log_end_offset();
        let mut applied = 0;
        // Groups whose membership this partition holds, logged once loaded (a log not yet
        // compacted holds many records of a group).
        let mut loaded = BTreeSet::new();
        while next < end {
            let read = log.read(next, 8 << 20, Offset::MAX, true).await?;
            let Some(region) = read.region else { break };
            let bytes = region.read_to_vec().await?;
            let batches = weir_storage::batch::split_and_validate(&bytes)?;
            if batches.is_empty() {
                break;
            }
            for (range, header) in batches {
                let batch = match BatchRecords::parse(&bytes[range]) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(
                            offset = header.base_offset,
                            error = %e,
                            "unreadable __consumer_offsets batch skipped"
                        );
                        next = header.last_offset() + 1;
                        continue;
                    }
                };
                let mut groups = self.groups.borrow_mut();
                for view in &batch.records {
                    let (key, value) = (batch.key(view), batch.value(view));
                    if apply(&mut groups, key, value, host, &mut loaded) {
                        applied += 1;
                    }
                }
                next = header.last_offset() + 1;
            }
        }
        let mut groups = self.groups.borrow_mut();
        groups.retain(|_, s| !s.group.is_gone());
        for id in loaded {
            if let Some(slot) = groups.get(&id) {
                let g = &slot.group;
                tracing::info!(
                    "Loaded classic group {id} with {} members (generation {}, {}).",
                    g.members.len(),
                    g.generation,
                    g.state.name()
                );
            }
        }
        Ok(applied)
    }
}

/// Applies one record of `__consumer_offsets` (a null value is a tombstone); false if it is
/// not a record the coordinator knows. Groups with a membership record go into `loaded`.
fn apply(
    groups: &mut AHashMap<String, Slot>,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    host: &impl GroupHost,
    loaded: &mut BTreeSet<String>,
) -> bool {
    let (group, topic, partition) = match key.and_then(records::decode_key) {
        Some(Key::Offset {
            group,
            topic,
            partition,
        }) => (group, topic, partition),
        Some(Key::GroupMetadata { group }) => {
            loaded.insert(group.clone());
            let slot = groups
                .entry(group.clone())
                .or_insert_with(|| Slot::new(&group));
            match value.map(records::decode_group_value) {
                // Each restored member gets a fresh session from now.
                Some(Some(meta)) => slot.group.restore(meta, host.now_ms()),
                Some(None) => {}
                None => {
                    let offsets = std::mem::take(&mut slot.group.offsets);
                    slot.group = Group::new(&group);
                    slot.group.offsets = offsets;
                }
            }
            slot.persisted = Some(slot.version());
            return true;
        }
        None => return false,
    };
    let slot = groups
        .entry(group.clone())
        .or_insert_with(|| Slot::new(&group));
    match value.map(records::decode_offset_value) {
        Some(Some(c)) => {
            slot.group.offsets.insert((topic, partition), c);
        }
        Some(None) => {}
        None => {
            slot.group.offsets.remove(&(topic, partition));
        }
    }
    true
}
