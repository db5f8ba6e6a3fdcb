//! What goes wrong in the group layer, one variant per distinct failure. The group layer never
//! builds a Kafka error code: each variant becomes one at the protocol edge, in `errors.rs`
//! (`group_error`), the broker's one place for that.
//!
//! Variants are named after the Kafka error they are answered with where the failure is that
//! error's own (Kafka's names also appear in the rebalance reasons the state machine logs);
//! failures Kafka answers with a shared code have names of their own.

/// A group request's failure, as the state machine, the coordinator or the routing to it saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The request names no group (an empty group id).
    #[error("the group id is empty")]
    InvalidGroupId,
    /// The member id (or instance id) is not a member of the group.
    #[error("the member is not in the group")]
    UnknownMemberId,
    /// The request is for another generation than the group's.
    #[error("the generation is not the group's")]
    IllegalGeneration,
    /// The group is rebalancing: the member must rejoin.
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    /// A newer incarnation of the static member took over its instance id (KIP-345).
    #[error("a newer member took over the instance id")]
    FencedInstanceId,
    /// The session timeout is outside `group.min.session.timeout.ms`..`group.max.session.timeout.ms`.
    #[error("the session timeout is outside the broker's bounds")]
    InvalidSessionTimeout,
    /// The protocol type or protocols do not match the group's (or are missing).
    #[error("the protocol type or protocols do not match the group's")]
    InconsistentGroupProtocol,
    /// A first JoinGroup (v4+) gets its member id and must join again with it (KIP-394).
    #[error("the member must join again with the member id it was given")]
    MemberIdRequired,
    /// A JoinGroup names an instance id with a member id that was handed out to a dynamic
    /// member: no well-behaved client sends this (Kafka answers it as an internal error).
    #[error("a static member joined with a pending dynamic member id")]
    StaticJoinWithPendingMemberId,
    /// The group was deleted (or expired) while the request was on its way.
    #[error("the group is dead")]
    GroupDead,
    /// The group does not exist (DeleteGroups, OffsetDelete).
    #[error("the group does not exist")]
    GroupIdNotFound,
    /// The group has members (DeleteGroups), or is not a consumer group (OffsetDelete).
    #[error("the group is not empty")]
    NonEmptyGroup,
    /// An offset commit for a partition the metadata does not have.
    #[error("the topic or partition does not exist")]
    UnknownTopicOrPartition,
    /// The commit's metadata exceeds `offset.metadata.max.bytes`.
    #[error("the offset metadata is too large")]
    OffsetMetadataTooLarge,
    /// OffsetDelete for a topic the group's members subscribe to.
    #[error("the group subscribes to the topic")]
    GroupSubscribedToTopic,
    /// This core does not hold the group's `__consumer_offsets` partition.
    #[error("this core does not hold the group's __consumer_offsets partition")]
    NotCoordinator,
    /// The records for `__consumer_offsets` exceed what the partition takes.
    #[error("the group's records are too large for __consumer_offsets")]
    InvalidCommitOffsetSize,
    /// Writing to the group's `__consumer_offsets` partition failed.
    #[error("writing to __consumer_offsets failed")]
    CoordinatorNotAvailable,
    /// `__consumer_offsets` does not exist and could not be created.
    #[error("__consumer_offsets could not be created")]
    OffsetsTopicNotCreated,
    /// The core that owns the group did not answer.
    #[error("the group's core did not answer")]
    CoordinatorUnreachable,
    /// The group's core answered with a reply of another kind (a bug, never a client's doing).
    #[error("the group's core answered another call")]
    UnexpectedReply,
}
