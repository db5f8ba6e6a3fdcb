//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup: the request as the group's core takes it,
//! the answer as the request's version has it.

use super::call;
use crate::errors::{group_code, group_result_code};
use crate::group::coordinator::{GroupCall, GroupReply, Leaving, MemberCall, SyncCall};
use crate::group::state::{JoinRequest, JoinResponse, SyncResponse};
use crate::group::GroupError;
use crate::kstr::sb;
use crate::runtime::core::Core;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use std::rc::Rc;

fn join_response(r: JoinResponse, version: i16) -> JoinGroupResponse {
    let members = r
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            JoinGroupResponseMember::default()
                .with_member_id(sb(id))
                .with_group_instance_id(if version >= 5 { instance.map(sb) } else { None })
                .with_metadata(metadata)
        })
        .collect();
    let (protocol_type, protocol_name) = if version >= 7 {
        (r.protocol_type.map(sb), r.protocol_name.map(sb))
    } else {
        (None, Some(sb(r.protocol_name.unwrap_or_default())))
    };
    JoinGroupResponse::default()
        .with_error_code(r.error.map_or(0, group_code))
        .with_generation_id(r.generation)
        .with_protocol_type(protocol_type)
        .with_protocol_name(protocol_name)
        .with_leader(sb(r.leader))
        // Only v9+ has the field; older versions are answered without it (see `state.rs`).
        .with_skip_assignment(version >= 9 && r.skip_assignment)
        .with_member_id(sb(r.member_id))
        .with_members(members)
}

/// JoinGroup as the state machine takes it.
fn join_request(
    req: &JoinGroupRequest,
    version: i16,
    client_id: String,
    client_host: String,
) -> JoinRequest {
    // JoinGroup v0 has no rebalance timeout: the session timeout stands for it, as in Kafka.
    let rebalance = if version == 0 || req.rebalance_timeout_ms <= 0 {
        req.session_timeout_ms
    } else {
        req.rebalance_timeout_ms
    };
    JoinRequest {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id,
        client_host,
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: rebalance,
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
        reason: req.reason.as_ref().map(|r| r.to_string()),
        supports_skip_assignment: version >= 9,
    }
}

pub async fn join_group(
    core: &Rc<Core>,
    req: JoinGroupRequest,
    version: i16,
    client_id: String,
    client_host: String,
) -> JoinGroupResponse {
    let group = req.group_id.0.to_string();
    let member = req.member_id.to_string();
    if group.is_empty() {
        return join_response(
            JoinResponse::error(GroupError::InvalidGroupId, &member),
            version,
        );
    }
    let c = GroupCall::Join {
        group: group.clone(),
        req: join_request(&req, version, client_id, client_host),
    };
    match call(core, &group, c).await {
        Ok(GroupReply::Join(r)) => join_response(r, version),
        Ok(_) => join_response(
            JoinResponse::error(GroupError::UnexpectedReply, &member),
            version,
        ),
        Err(e) => join_response(JoinResponse::error(e, &member), version),
    }
}

fn sync_response(r: SyncResponse, version: i16) -> SyncGroupResponse {
    let out = SyncGroupResponse::default()
        .with_error_code(r.error.map_or(0, group_code))
        .with_assignment(r.assignment);
    if version >= 5 {
        out.with_protocol_type(r.protocol_type.map(sb))
            .with_protocol_name(r.protocol_name.map(sb))
    } else {
        out
    }
}

pub async fn sync_group(core: &Rc<Core>, req: SyncGroupRequest, version: i16) -> SyncGroupResponse {
    let group = req.group_id.0.to_string();
    if group.is_empty() {
        return sync_response(SyncResponse::error(GroupError::InvalidGroupId), version);
    }
    let c = GroupCall::Sync(SyncCall {
        member: MemberCall {
            group: group.clone(),
            member_id: req.member_id.to_string(),
            instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
            generation: req.generation_id,
        },
        protocol_type: req.protocol_type.as_ref().map(|s| s.to_string()),
        protocol_name: req.protocol_name.as_ref().map(|s| s.to_string()),
        assignments: req
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect(),
    });
    match call(core, &group, c).await {
        Ok(GroupReply::Sync(r)) => sync_response(r, version),
        Ok(_) => sync_response(SyncResponse::error(GroupError::UnexpectedReply), version),
        Err(e) => sync_response(SyncResponse::error(e), version),
    }
}

pub async fn heartbeat(core: &Rc<Core>, req: HeartbeatRequest) -> HeartbeatResponse {
    let group = req.group_id.0.to_string();
    let result = if group.is_empty() {
        Err(GroupError::InvalidGroupId)
    } else {
        let c = GroupCall::Heartbeat(MemberCall {
            group: group.clone(),
            member_id: req.member_id.to_string(),
            instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
            generation: req.generation_id,
        });
        match call(core, &group, c).await {
            Ok(GroupReply::Heartbeat(result)) => result,
            Ok(_) => Err(GroupError::UnexpectedReply),
            Err(e) => Err(e),
        }
    };
    HeartbeatResponse::default().with_error_code(group_result_code(result))
}

pub async fn leave_group(
    core: &Rc<Core>,
    req: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group = req.group_id.0.to_string();
    let members: Vec<Leaving> = if version >= 3 {
        req.members
            .iter()
            .map(|m| Leaving {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
                reason: m.reason.as_ref().map(|s| s.to_string()),
            })
            .collect()
    } else {
        vec![Leaving {
            member_id: req.member_id.to_string(),
            instance_id: None,
            reason: None,
        }]
    };
    let results = if group.is_empty() {
        Err(GroupError::InvalidGroupId)
    } else {
        let c = GroupCall::Leave {
            group: group.clone(),
            members: members.clone(),
        };
        match call(core, &group, c).await {
            Ok(GroupReply::Leave(results)) => results,
            Ok(_) => Err(GroupError::UnexpectedReply),
            Err(e) => Err(e),
        }
    };
    if version < 3 {
        // One member: its error is the request's.
        let result = results.and_then(|r| r.first().copied().unwrap_or(Ok(())));
        return LeaveGroupResponse::default().with_error_code(group_result_code(result));
    }
    let (code, responses) = match results {
        Err(e) => (group_code(e), vec![]),
        Ok(results) => (
            0,
            members
                .into_iter()
                .zip(results)
                .map(|(m, r)| {
                    MemberResponse::default()
                        .with_member_id(sb(m.member_id))
                        .with_group_instance_id(m.instance_id.map(sb))
                        .with_error_code(group_result_code(r))
                })
                .collect(),
        ),
    };
    LeaveGroupResponse::default()
        .with_error_code(code)
        .with_members(responses)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::{Decodable, Encodable};

    fn round_trip(r: &JoinResponse, version: i16) -> JoinGroupResponse {
        let mut buf = bytes::BytesMut::new();
        join_response(r.clone(), version)
            .encode(&mut buf, version)
            .expect("every version encodes");
        JoinGroupResponse::decode(&mut buf.freeze(), version).expect("decodes")
    }

    #[test]
    fn skip_assignment_goes_only_to_join_group_v9() {
        let r = JoinResponse {
            generation: 4,
            leader: "m".into(),
            member_id: "m".into(),
            members: vec![(
                "m".into(),
                Some("i".into()),
                bytes::Bytes::from_static(b"x"),
            )],
            skip_assignment: true,
            ..JoinResponse::default()
        };
        let v9 = round_trip(&r, 9);
        assert!(v9.skip_assignment);
        assert_eq!(v9.members.len(), 1);
        for version in [5, 8] {
            let old = round_trip(&r, version);
            assert!(!old.skip_assignment);
            assert_eq!((old.generation_id, old.leader.as_str()), (4, "m"));
        }
    }
}
