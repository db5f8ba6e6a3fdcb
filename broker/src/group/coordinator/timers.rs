//! The group timers of one core: sessions, rebalance and sync deadlines every tick, expired
//! offsets every minute.

use super::{Coordinator, GroupHost};
use crate::group::records;
use crate::group::state::State;
use std::time::Duration;
use weir_storage::batch::Record;

/// How often the group timers (sessions, rebalance and sync deadlines) are checked.
pub const TICK: Duration = Duration::from_millis(100);

/// How often expired offsets are looked for (in ticks: one minute).
const EXPIRY_EVERY_TICKS: u64 = 600;

impl Coordinator {
    /// Runs the group timers of this core until it stops.
    pub async fn run_timers(&self, host: &impl GroupHost) {
        let mut until_expiry = EXPIRY_EVERY_TICKS;
        while !host.is_stopping() {
            glommio::timer::sleep(TICK).await;
            self.tick(host.now_ms());
            self.persist_memberships(host).await;
            until_expiry -= 1;
            if until_expiry == 0 {
                until_expiry = EXPIRY_EVERY_TICKS;
                for (group, tombstones) in self.expire(host.now_ms()) {
                    if let Err(e) = self.write(host, &group, tombstones).await {
                        tracing::warn!(group, error = %e, "writing expired offsets failed");
                    }
                }
            }
        }
    }

    /// Expires sessions and completes rebalances whose deadline passed.
    pub fn tick(&self, now: i64) {
        let mut groups = self.groups.borrow_mut();
        for slot in groups.values_mut() {
            let d = slot.group.tick(now, &self.settings);
            slot.dispatch(d);
        }
        groups.retain(|_, s| !s.group.is_gone() || !s.joins.is_empty() || !s.syncs.is_empty());
    }

    /// Removes expired offsets (and groups left with nothing); returns the tombstones to write.
    fn expire(&self, now: i64) -> Vec<(String, Vec<Record>)> {
        let retention = self.settings.offsets_retention_ms;
        let mut out = Vec::new();
        let mut groups = self.groups.borrow_mut();
        for (id, slot) in groups.iter_mut() {
            let expired = slot.group.expire_offsets(now, retention);
            if expired.is_empty() {
                continue;
            }
            let mut tombstones: Vec<Record> = expired
                .iter()
                .map(|(t, p)| Record {
                    key: Some(records::offset_key(id, t, *p)),
                    value: None,
                    ..Record::default()
                })
                .collect();
            if slot.group.state == State::Dead {
                tombstones.push(Record {
                    key: Some(records::group_key(id)),
                    value: None,
                    ..Record::default()
                });
            }
            tracing::info!(group = %id, offsets = expired.len(), "expired committed offsets");
            out.push((id.clone(), tombstones));
        }
        groups.retain(|_, s| {
            s.group.state != State::Dead || !s.joins.is_empty() || !s.syncs.is_empty()
        });
        out
    }
}
