//! What goes into the state machine and what comes out of it: JoinGroup as the group sees it,
//! the answers to JoinGroup and SyncGroup, and the answers to requests that waited.

use crate::group::GroupError;
use bytes::Bytes;
use std::convert::Infallible;

/// A JoinGroup as the state machine sees it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a first join without a member id gets MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
    /// JoinGroup v8+: why the client joins; Kafka quotes it in the rebalance reasons it logs.
    pub reason: Option<String>,
    /// JoinGroup v9+ (KIP-814): a static leader that takes over its old member id without a
    /// rebalance can be told that it leads but must not run its assignor.
    pub supports_skip_assignment: bool,
}

impl JoinRequest {
    /// Kafka's `JoinGroupRequest.joinReason`.
    pub(super) fn reason(&self) -> &str {
        self.reason
            .as_deref()
            .filter(|r| !r.is_empty())
            .unwrap_or("not provided")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinResponse {
    pub error: Option<GroupError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// (member id, instance id, metadata): only for the leader.
    pub members: Vec<(String, Option<String>, Bytes)>,
    /// JoinGroup v9+: the leader must not assign, the group keeps its assignment (KIP-814).
    pub skip_assignment: bool,
}

impl JoinResponse {
    pub fn error(error: GroupError, member_id: &str) -> Self {
        Self {
            error: Some(error),
            generation: -1,
            member_id: member_id.to_string(),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncResponse {
    pub error: Option<GroupError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    pub fn error(error: GroupError) -> Self {
        Self {
            error: Some(error),
            ..Self::default()
        }
    }
}

/// An answer to a waiting request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Join {
        member: String,
        response: JoinResponse,
    },
    Sync {
        member: String,
        response: SyncResponse,
    },
}

/// What a JoinGroup or SyncGroup gets now: an answer, an answer once the group is in the log,
/// or a wait for a later [`Delivery`]. Only JoinGroup has something to store first (`U` is
/// what to undo if that write fails); SyncGroup's `U` is uninhabited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<R, U = Infallible> {
    Reply(R),
    /// A static member took over its old member id without a rebalance. As Kafka does, the
    /// answer waits until the membership with the new id is in the log, so the id a client is
    /// given survives a coordinator restart; if the write fails, [`super::Group::undo_static_swap`]
    /// takes the takeover back and the client gets the write's error.
    ReplyWhenStored(R, U),
    Wait {
        member: String,
    },
}

/// What a JoinGroup gets now.
pub type JoinOutcome = Outcome<JoinResponse, StaticSwap>;

/// What a static member's takeover of its old member id changed, to take it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticSwap {
    pub instance_id: String,
    pub old_member_id: String,
    pub new_member_id: String,
    /// The old member's protocols and timeouts, replaced by the new incarnation's.
    pub(super) protocols: Vec<(String, Bytes)>,
    pub(super) session_timeout_ms: i32,
    pub(super) rebalance_timeout_ms: i32,
}
