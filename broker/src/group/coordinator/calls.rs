//! The messages a core's coordinator answers: group work in the state machine's terms, already
//! taken out of the Kafka requests at the protocol edge (`handlers::groups`). Everything here
//! is `Send`: a call crosses cores to the group's owner.

use crate::group::records::Committed;
use crate::group::state::{JoinRequest, JoinResponse, SyncResponse};
use crate::group::GroupError;
use bytes::Bytes;

/// Group work sent to the core that owns the group.
pub enum GroupCall {
    Join {
        group: String,
        req: JoinRequest,
    },
    Sync(SyncCall),
    Heartbeat(MemberCall),
    Leave {
        group: String,
        members: Vec<Leaving>,
    },
    Commit(CommitCall),
    Fetch {
        group: String,
        topics: Option<Vec<(String, Vec<i32>)>>,
    },
    Describe(String),
    List,
    Delete(String),
    OffsetDelete {
        group: String,
        /// Topics and their partitions, in the request's order.
        topics: Vec<(String, Vec<i32>)>,
    },
}

/// Who a Heartbeat, SyncGroup or OffsetCommit comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberCall {
    pub group: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
}

/// A SyncGroup: the leader's assignments, or a follower asking for its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncCall {
    pub member: MemberCall,
    /// SyncGroup v5+: checked against the group's.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// (member id, assignment): only from the leader.
    pub assignments: Vec<(String, Bytes)>,
}

/// An OffsetCommit, its partitions as the receiving core checked them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitCall {
    pub member: MemberCall,
    pub topics: Vec<(String, Vec<CommitPartition>)>,
}

/// One partition of an OffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitPartition {
    pub partition: i32,
    /// `Err` if the receiving core found the partition unknown.
    pub check: Result<(), GroupError>,
    /// What to commit. `None` for an entry whose data the request's lookup by topic name and
    /// partition does not reach (a partition listed under a repeated topic name): it is
    /// answered only if the whole commit fails.
    pub offset: Option<CommitOffset>,
}

/// A partition's offset to commit, as the request gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

/// One member of a LeaveGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaving {
    pub member_id: String,
    pub instance_id: Option<String>,
    /// LeaveGroup v5+: why it leaves (logged, as Kafka does).
    pub reason: Option<String>,
}

/// A group's description for DescribeGroups.
#[derive(Debug, Clone, Default)]
pub struct Described {
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    /// (member id, instance id, client id, client host, metadata, assignment)
    pub members: Vec<(String, Option<String>, String, String, Bytes, Bytes)>,
}

pub type TopicResults<T> = Vec<(String, Vec<(i32, T)>)>;

pub enum GroupReply {
    Join(JoinResponse),
    Sync(SyncResponse),
    Heartbeat(Result<(), GroupError>),
    /// The request's failure, or one result per member.
    Leave(Result<Vec<Result<(), GroupError>>, GroupError>),
    Commit(TopicResults<Result<(), GroupError>>),
    Fetch(Result<TopicResults<Option<Committed>>, GroupError>),
    Describe(Described),
    /// (group id, protocol type, state)
    List(Vec<(String, String, String)>),
    Delete(Result<(), GroupError>),
    OffsetDelete(Result<TopicResults<Result<(), GroupError>>, GroupError>),
}
