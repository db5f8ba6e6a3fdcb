//! DescribeGroups, ListGroups and DeleteGroups on the group's core.

use super::{Coordinator, Described, GroupHost};
use crate::group::records;
use crate::group::state::State;
use crate::group::GroupError;
use weir_storage::batch::Record;

impl Coordinator {
    pub(super) fn describe(&self, group: &str) -> Described {
        let groups = self.groups.borrow();
        let Some(slot) = groups.get(group) else {
            return Described {
                state: State::Dead.name().into(),
                ..Described::default()
            };
        };
        let g = &slot.group;
        let protocol = g.protocol.clone().unwrap_or_default();
        Described {
            state: g.state.name().into(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: g
                .members
                .values()
                .map(|m| {
                    let metadata = m
                        .protocols
                        .iter()
                        .find(|(n, _)| *n == protocol)
                        .map(|(_, b)| b.clone())
                        .unwrap_or_default();
                    (
                        m.id.clone(),
                        m.instance_id.clone(),
                        m.client_id.clone(),
                        m.client_host.clone(),
                        metadata,
                        m.assignment.clone(),
                    )
                })
                .collect(),
        }
    }

    /// (group id, protocol type, state) of every group here but the dead.
    pub(super) fn list(&self) -> Vec<(String, String, String)> {
        let groups = self.groups.borrow();
        groups
            .values()
            .filter(|s| s.group.state != State::Dead)
            .map(|s| {
                (
                    s.group.id.clone(),
                    s.group.protocol_type.clone().unwrap_or_default(),
                    s.group.state.name().to_string(),
                )
            })
            .collect()
    }

    /// DeleteGroups: an empty group goes, with its committed offsets (tombstones for each and
    /// for its membership).
    pub(super) async fn delete(
        &self,
        host: &impl GroupHost,
        group: &str,
    ) -> Result<(), GroupError> {
        let offsets: Vec<(String, i32)> = {
            let mut groups = self.groups.borrow_mut();
            let Some(slot) = groups.get_mut(group) else {
                return Err(GroupError::GroupIdNotFound);
            };
            if slot.group.is_gone() {
                return Err(GroupError::GroupIdNotFound);
            }
            slot.group.delete()?;
            let keys: Vec<(String, i32)> = slot.group.offsets.keys().cloned().collect();
            groups.remove(group);
            tracing::info!(
                "The following groups were deleted: {group}. A total of {} offsets were removed.",
                keys.len()
            );
            keys
        };
        let mut tombstones: Vec<Record> = offsets
            .iter()
            .map(|(t, p)| Record {
                key: Some(records::offset_key(group, t, *p)),
                value: None,
                ..Record::default()
            })
            .collect();
        tombstones.push(Record {
            key: Some(records::group_key(group)),
            value: None,
            ..Record::default()
        });
        self.write(host, group, tombstones).await
    }
}
