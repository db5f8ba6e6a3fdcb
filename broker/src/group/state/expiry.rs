//! The group's timers, driven with explicit time: sessions that ran out, member ids handed out
//! and never used, members that did not sync in time, and join phases whose deadline passed.

use super::{Delivery, Group, State};
use crate::group::GroupSettings;

impl Group {
    /// Expires members whose session ran out, pending member ids never used, members that
    /// did not send SyncGroup in time; completes a join phase whose deadline passed.
    pub fn tick(&mut self, now: i64, s: &GroupSettings) -> Vec<Delivery> {
        let mut out = Vec::new();
        let unused: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in unused {
            self.pending.remove(&id);
            tracing::info!(
                "Pending member {id} in group {} has been removed after session timeout \
                 expiration.",
                self.id
            );
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                !m.join_waiting
                    && !m.sync_waiting
                    && now > m.last_heartbeat + m.session_timeout_ms as i64
            })
            .map(|m| m.id.clone())
            .collect();
        let mut reasons = Vec::new();
        for id in &expired {
            tracing::info!(
                "Member {id} in group {} has failed, removing it from the group.",
                self.id
            );
            self.remove_member(id, &mut out);
            reasons.push(format!("removing member {id} on heartbeat expiration."));
        }
        if self.state == State::CompletingRebalance && now >= self.deadline {
            let unsynced: Vec<String> = self
                .members
                .values()
                .filter(|m| !m.synced)
                .map(|m| m.id.clone())
                .collect();
            if !unsynced.is_empty() {
                for id in &unsynced {
                    self.remove_member(id, &mut out);
                }
                tracing::info!(
                    "Group {} removed members who haven't sent their sync requests: \
                     {unsynced:?}",
                    self.id
                );
                reasons.push(format!(
                    "Removing {unsynced:?} on pending sync request expiration"
                ));
            }
        }
        if !reasons.is_empty() {
            self.after_removal(now, s, &reasons.join(" "), &mut out);
        }
        self.try_complete_join(now, &mut out);
        out
    }
}
