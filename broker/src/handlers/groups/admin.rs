//! ListGroups, DescribeGroups and DeleteGroups.

use super::call;
use crate::errors::{group_code, group_result_code};
use crate::group::coordinator::{GroupCall, GroupReply};
use crate::group::{GroupError, OFFSETS_TOPIC};
use crate::kstr::sb;
use crate::runtime::core::Core;
use crate::runtime::messages::{ShardRequest, ShardResponse};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, ListGroupsRequest, ListGroupsResponse,
};
use std::rc::Rc;

pub async fn list_groups(
    core: &Rc<Core>,
    req: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let mut groups = Vec::new();
    if core.image().topic(OFFSETS_TOPIC).is_some() {
        for shard in 0..core.cores() {
            if let Some(ShardResponse::Group(GroupReply::List(found))) = core
                .call(shard, ShardRequest::Group(Box::new(GroupCall::List)))
                .await
            {
                groups.extend(found);
            }
        }
    }
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let listed = groups
        .into_iter()
        .filter(|(_, _, state)| states.is_empty() || states.contains(&state.to_lowercase()))
        .filter(|_| types.is_empty() || types.iter().any(|t| t == "classic"))
        .map(|(id, protocol_type, state)| {
            let g = ListedGroup::default()
                .with_group_id(GroupId(sb(id)))
                .with_protocol_type(sb(protocol_type));
            let g = if version >= 4 {
                g.with_group_state(sb(state))
            } else {
                g
            };
            if version >= 5 {
                g.with_group_type(sb("classic"))
            } else {
                g
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(listed)
}

pub async fn describe_groups(
    core: &Rc<Core>,
    req: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let mut out = Vec::with_capacity(req.groups.len());
    for g in req.groups {
        let id = g.0.to_string();
        let d = DescribedGroup::default().with_group_id(g);
        let d = if version >= 3 {
            d.with_authorized_operations(if req.include_authorized_operations {
                // READ, DELETE, DESCRIBE: everything on a group is allowed (no ACLs).
                (1 << 3) | (1 << 6) | (1 << 8)
            } else {
                i32::MIN
            })
        } else {
            d
        };
        let r = if id.is_empty() {
            Err(GroupError::InvalidGroupId)
        } else {
            call(core, &id, GroupCall::Describe(id.clone())).await
        };
        out.push(match r {
            Ok(GroupReply::Describe(desc)) => d
                .with_group_state(sb(desc.state))
                .with_protocol_type(sb(desc.protocol_type))
                .with_protocol_data(sb(desc.protocol))
                .with_members(
                    desc.members
                        .into_iter()
                        .map(|(m, inst, client, host, metadata, assignment)| {
                            DescribedGroupMember::default()
                                .with_member_id(sb(m))
                                .with_group_instance_id(if version >= 4 {
                                    inst.map(sb)
                                } else {
                                    None
                                })
                                .with_client_id(sb(client))
                                .with_client_host(sb(host))
                                .with_member_metadata(metadata)
                                .with_member_assignment(assignment)
                        })
                        .collect(),
                ),
            Ok(_) => d.with_error_code(group_code(GroupError::UnexpectedReply)),
            Err(e) => d.with_error_code(group_code(e)),
        });
    }
    DescribeGroupsResponse::default().with_groups(out)
}

pub async fn delete_groups(core: &Rc<Core>, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for g in req.groups_names {
        let id = g.0.to_string();
        let result = if id.is_empty() {
            Err(GroupError::InvalidGroupId)
        } else {
            match call(core, &id, GroupCall::Delete(id.clone())).await {
                Ok(GroupReply::Delete(result)) => result,
                Ok(_) => Err(GroupError::UnexpectedReply),
                Err(e) => Err(e),
            }
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(g)
                .with_error_code(group_result_code(result)),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
