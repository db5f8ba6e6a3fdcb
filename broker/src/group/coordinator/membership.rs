//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup on the group's core: the state machine's
//! answers now, or once the request's wait ends, and the membership written to the log when
//! it settles (Stable or Empty), as Kafka stores it.

use super::{new_member_id, wait_for, Coordinator, GroupHost, Leaving, MemberCall, Slot, SyncCall};
use crate::group::state::{Delivery, JoinRequest, JoinResponse, Outcome, SyncResponse};
use crate::group::GroupError;
use glommio::channels::local_channel;
use weir_storage::batch::Record;

impl Coordinator {
    pub(super) async fn join(
        &self,
        host: &impl GroupHost,
        group_id: String,
        req: JoinRequest,
        now: i64,
    ) -> JoinResponse {
        let member_id = req.member_id.clone();
        let rebalance = req.rebalance_timeout_ms;
        let (tx, rx) = local_channel::new_bounded(1);
        let stored = {
            let mut groups = self.groups.borrow_mut();
            let slot = groups
                .entry(group_id.clone())
                .or_insert_with(|| Slot::new(&group_id));
            let new_id = new_member_id(host, &req.client_id, req.instance_id.as_deref());
            let (outcome, deliveries) = slot.group.join(req, new_id, now, &self.settings);
            match outcome {
                Outcome::Reply(r) => {
                    slot.dispatch(deliveries);
                    return r;
                }
                Outcome::ReplyWhenStored(r, swap) => {
                    slot.dispatch(deliveries);
                    Some((r, swap))
                }
                Outcome::Wait { member } => {
                    // A still-waiting earlier JoinGroup of this member is dropped here
                    // (its request answers REBALANCE_IN_PROGRESS).
                    slot.joins.insert(member, tx);
                    slot.dispatch(deliveries);
                    None
                }
            }
        };
        let Some((response, swap)) = stored else {
            let late = JoinResponse::error(GroupError::RebalanceInProgress, &member_id);
            return wait_for(rx, rebalance as i64, late).await;
        };
        // A static member took over its old member id without a rebalance: answered once
        // the membership with its new id is in the log, or, if that fails, taken back.
        match self.store_group(host, &group_id).await {
            Ok(()) => response,
            Err(e) => {
                tracing::warn!(
                    "Failed to persist metadata for group {group_id} static member {} with \
                     group instance id {} due to error {e:?}. Reverting to old member id {}.",
                    swap.new_member_id,
                    swap.instance_id,
                    swap.old_member_id
                );
                if let Some(slot) = self.groups.borrow_mut().get_mut(&group_id) {
                    slot.group.undo_static_swap(swap, host.now_ms());
                }
                JoinResponse::error(e, "")
            }
        }
    }

    pub(super) async fn sync(
        &self,
        host: &impl GroupHost,
        call: SyncCall,
        now: i64,
    ) -> SyncResponse {
        let SyncCall {
            member: m,
            protocol_type,
            protocol_name,
            assignments,
        } = call;
        let group_id = m.group;
        let (tx, rx) = local_channel::new_bounded(1);
        let limit = {
            let mut groups = self.groups.borrow_mut();
            let Some(slot) = groups.get_mut(&group_id) else {
                return SyncResponse::error(GroupError::UnknownMemberId);
            };
            let (outcome, deliveries) = slot.group.sync(
                &m.member_id,
                m.instance_id.as_deref(),
                m.generation,
                protocol_type.as_deref(),
                protocol_name.as_deref(),
                assignments,
                now,
            );
            match outcome {
                Outcome::Reply(r) => {
                    slot.dispatch(deliveries);
                    return r;
                }
                Outcome::ReplyWhenStored(_, never) => match never {},
                Outcome::Wait { member } => {
                    let limit = slot
                        .group
                        .members
                        .get(&member)
                        .map_or(0, |m| m.rebalance_timeout_ms as i64);
                    slot.syncs.insert(member, tx);
                    (limit, deliveries)
                }
            }
        };
        let (limit, deliveries) = limit;
        // The leader's assignment made the group Stable: as Kafka does, the members get
        // their assignments only once the group (with them) is in the log.
        let assigned = deliveries
            .iter()
            .any(|d| matches!(d, Delivery::Sync { response, .. } if response.error.is_none()));
        let stored = if assigned {
            self.store_group(host, &group_id).await
        } else {
            Ok(())
        };
        {
            let mut groups = self.groups.borrow_mut();
            if let Some(slot) = groups.get_mut(&group_id) {
                match stored {
                    Ok(()) => slot.dispatch(deliveries),
                    Err(e) => {
                        tracing::warn!(group = %group_id, error = %e, "group assignment not stored; rebalancing");
                        let failed = deliveries.into_iter().map(|d| match d {
                            Delivery::Sync { member, .. } => Delivery::Sync {
                                member,
                                response: SyncResponse::error(e),
                            },
                            other => other,
                        });
                        slot.dispatch(failed.collect());
                        let more = slot.group.assignment_not_stored(
                            e,
                            &m.member_id,
                            host.now_ms(),
                            &self.settings,
                        );
                        slot.dispatch(more);
                    }
                }
            }
        }
        let late = SyncResponse::error(GroupError::RebalanceInProgress);
        wait_for(rx, limit, late).await
    }

    pub(super) fn heartbeat(&self, call: &MemberCall, now: i64) -> Result<(), GroupError> {
        let mut groups = self.groups.borrow_mut();
        match groups.get_mut(call.group.as_str()) {
            Some(slot) => slot.group.heartbeat(
                &call.member_id,
                call.instance_id.as_deref(),
                call.generation,
                now,
            ),
            None => Err(GroupError::UnknownMemberId),
        }
    }

    pub(super) fn leave(
        &self,
        group: &str,
        members: &[Leaving],
        now: i64,
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let mut groups = self.groups.borrow_mut();
        let Some(slot) = groups.get_mut(group) else {
            // No such group here: the request as a whole fails (no per-member answers).
            return Err(GroupError::UnknownMemberId);
        };
        let mut results = Vec::with_capacity(members.len());
        for m in members {
            let (result, deliveries) = slot.group.leave(
                &m.member_id,
                m.instance_id.as_deref(),
                m.reason.as_deref(),
                now,
                &self.settings,
            );
            slot.dispatch(deliveries);
            results.push(result);
        }
        Ok(results)
    }

    /// Writes one group's membership if it changed. A failed write leaves it marked
    /// unwritten.
    async fn store_group(&self, host: &impl GroupHost, group: &str) -> Result<(), GroupError> {
        let record = {
            let mut groups = self.groups.borrow_mut();
            let Some(slot) = groups.get_mut(group) else {
                return Ok(());
            };
            slot.dirty_record(group, host.now_ms())
        };
        let Some(record) = record else {
            return Ok(());
        };
        let result = self.write(host, group, vec![record]).await;
        if result.is_err() {
            if let Some(slot) = self.groups.borrow_mut().get_mut(group) {
                slot.persisted = None;
            }
        }
        result
    }

    /// Writes the memberships that changed (Kafka stores a group when it becomes Stable or
    /// Empty).
    pub(super) async fn persist_memberships(&self, host: &impl GroupHost) {
        for (group, record) in self.take_dirty(host.now_ms()) {
            if let Err(e) = self.write(host, &group, vec![record]).await {
                tracing::warn!(group, error = %e, "writing group metadata failed");
            }
        }
    }

    /// Memberships that changed since last written: (group, group metadata record).
    fn take_dirty(&self, now: i64) -> Vec<(String, Record)> {
        let mut out = Vec::new();
        for (id, slot) in self.groups.borrow_mut().iter_mut() {
            if let Some(record) = slot.dirty_record(id, now) {
                out.push((id.clone(), record));
            }
        }
        out
    }
}
