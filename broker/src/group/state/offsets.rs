//! Committed offsets as the group sees them: whether a member may commit now, and their expiry
//! (`offsets.retention.minutes`).

use super::{Group, Result, State};
use crate::group::GroupError;

impl Group {
    /// OffsetCommit's checks against the group (Kafka's `validateOffsetCommit`, then the
    /// state's).
    pub fn validate_commit(
        &mut self,
        member: &str,
        instance: Option<&str>,
        generation: i32,
        now: i64,
    ) -> Result<()> {
        if self.state == State::Dead {
            return Err(GroupError::GroupDead);
        }
        if generation < 0 && self.state == State::Empty {
            // The admin client, or a consumer that manages its partitions itself.
            return Ok(());
        }
        if generation >= 0 || !member.is_empty() || instance.is_some() {
            self.validate_member(member, instance, "offset-commit")?;
            if generation != self.generation {
                return Err(GroupError::IllegalGeneration);
            }
        } else if self.state != State::Empty {
            // Without member id and generation, only an Empty group takes commits.
            return Err(GroupError::UnknownMemberId);
        }
        if self.state == State::CompletingRebalance {
            // The member has this generation's JoinGroup answer but not its assignment yet.
            return Err(GroupError::RebalanceInProgress);
        }
        if let Some(m) = self.members.get_mut(member) {
            m.last_heartbeat = now;
        }
        Ok(())
    }

    /// `offsets.retention.minutes`, as Kafka applies it since 2.1 (KIP-211): the offsets of
    /// an Empty group expire once neither they nor the group's emptiness are younger than the
    /// retention; a group with members keeps them. Returns the expired (removed) offsets; a
    /// group left with nothing becomes Dead.
    pub fn expire_offsets(&mut self, now: i64, retention_ms: i64) -> Vec<(String, i32)> {
        if self.state != State::Empty {
            return vec![];
        }
        let since = self.empty_since.unwrap_or(i64::MIN);
        let expired: Vec<(String, i32)> = self
            .offsets
            .iter()
            .filter(|(_, c)| c.commit_timestamp.max(since).saturating_add(retention_ms) <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &expired {
            self.offsets.remove(k);
        }
        if !expired.is_empty() && self.offsets.is_empty() && self.pending.is_empty() {
            self.state = State::Dead;
        }
        expired
    }
}
