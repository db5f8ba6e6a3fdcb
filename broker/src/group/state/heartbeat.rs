//! Heartbeat and LeaveGroup: a member says it is alive, or that it goes.

use super::{Delivery, Group, Result, State};
use crate::group::{GroupError, GroupSettings};

impl Group {
    pub fn heartbeat(
        &mut self,
        member: &str,
        instance: Option<&str>,
        generation: i32,
        now: i64,
    ) -> Result<()> {
        if self.state == State::Dead {
            return Err(GroupError::GroupDead);
        }
        self.validate_member(member, instance, "heartbeat")?;
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        if let Some(m) = self.members.get_mut(member) {
            m.last_heartbeat = now;
        }
        match self.state {
            State::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            State::Empty => Err(GroupError::UnknownMemberId),
            _ => Ok(()),
        }
    }

    /// LeaveGroup for one member: by member id, or by instance id alone (an administrator
    /// removing a static member), or both (checked against each other).
    pub fn leave(
        &mut self,
        member: &str,
        instance_id: Option<&str>,
        reason: Option<&str>,
        now: i64,
        s: &GroupSettings,
    ) -> (Result<()>, Vec<Delivery>) {
        let mut out = Vec::new();
        let reason = reason.filter(|r| !r.is_empty()).unwrap_or("not provided");
        let id = if member.is_empty() {
            match instance_id.and_then(|i| self.static_member(i)) {
                Some(id) => id.to_string(),
                None => return (Err(GroupError::UnknownMemberId), out),
            }
        } else if self.pending.remove(member).is_some() {
            // Never part of a generation: nobody needs to rebalance, but a join phase waiting
            // for this id may now complete (Kafka's `removePendingMemberAndUpdateGroup`).
            tracing::info!(
                "[Group {}] Pending member {member} has left group through explicit \
                 `LeaveGroup` request; client reason: {reason}",
                self.id
            );
            self.try_complete_join(now, &mut out);
            return (Ok(()), out);
        } else {
            if let Err(e) = self.validate_member(member, instance_id, "leave-group") {
                return (Err(e), out);
            }
            member.to_string()
        };
        tracing::info!(
            "[Group {}] Member {id} has left group through explicit `LeaveGroup` request; \
             client reason: {reason}",
            self.id
        );
        self.remove_member(&id, &mut out);
        let why = format!("Removing member {id} on LeaveGroup; client reason: {reason}");
        self.after_removal(now, s, &why, &mut out);
        (Ok(()), out)
    }
}
