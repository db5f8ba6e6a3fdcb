//! One group's state machine, as Kafka's classic coordinator runs it: Empty →
//! PreparingRebalance → CompletingRebalance → Stable (→ Dead when deleted). Pure logic driven
//! with explicit time: requests that must wait (JoinGroup until the rebalance completes,
//! SyncGroup until the leader's assignment) are marked waiting, and their answers come back as
//! [`Delivery`]s from whichever call completes them.
//!
//! Its one effect outside itself is the log: a group's transitions are logged at INFO where
//! Kafka's classic coordinator (`GroupMetadataManager`, `ClassicGroup`) logs them, in its
//! words, so a group can be followed in Weir's log as an operator would follow it in Kafka's.

use super::records::{Committed, GroupMeta, MemberMeta};
use super::GroupSettings;
use bytes::Bytes;
use kafka_protocol::ResponseError as K;
use std::collections::BTreeMap;
use std::convert::Infallible;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
            State::Dead => "Dead",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata), in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub last_heartbeat: i64,
    /// A JoinGroup of this member waits for the rebalance to complete.
    pub join_waiting: bool,
    /// A SyncGroup of this member waits for the leader's assignment.
    pub sync_waiting: bool,
    /// Whether the member sent SyncGroup in this generation (pending-sync expiry).
    pub synced: bool,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

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
    fn reason(&self) -> &str {
        self.reason
            .as_deref()
            .filter(|r| !r.is_empty())
            .unwrap_or("not provided")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinResponse {
    pub error: i16,
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
    pub fn error(code: i16, member_id: &str) -> Self {
        Self {
            error: code,
            generation: -1,
            member_id: member_id.to_string(),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncResponse {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    pub fn error(code: i16) -> Self {
        Self {
            error: code,
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
    /// given survives a coordinator restart; if the write fails, [`Group::undo_static_swap`]
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
    protocols: Vec<(String, Bytes)>,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub state: State,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, and until when they may join. Kept
    /// across generations, as Kafka keeps them, until they join, leave or their session
    /// times out: a member that got its id while another generation completed still joins
    /// with it.
    pub pending: BTreeMap<String, i64>,
    /// When the current rebalance (join phase) or pending-sync phase ends at the latest.
    pub deadline: i64,
    /// The first rebalance of an empty group waits `group.initial.rebalance.delay.ms`, and
    /// waits again (up to the rebalance timeout) while new members keep arriving: Kafka's
    /// `InitialDelayedJoin`.
    initial_delay: bool,
    initial_delay_ms: i64,
    initial_delay_remaining_ms: i64,
    member_added_during_delay: bool,
    /// Counts changes of member ids outside a rebalance (a static member taking over its old
    /// id), so the coordinator knows the persisted membership is stale.
    pub membership_changes: u64,
    /// Committed offsets: (topic, partition) → offset.
    pub offsets: BTreeMap<(String, i32), Committed>,
    /// When the group last became Empty (offsets expire from then on).
    pub empty_since: Option<i64>,
}

pub type Result<T> = std::result::Result<T, i16>;

fn code(k: K) -> i16 {
    k.code()
}

/// An error code as Kafka names it in its log lines.
fn error_name(c: i16) -> String {
    match K::try_from_code(c) {
        Some(k) => format!("{k:?}"),
        None => format!("error {c}"),
    }
}

impl Group {
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: BTreeMap::new(),
            deadline: 0,
            initial_delay: false,
            initial_delay_ms: 0,
            initial_delay_remaining_ms: 0,
            member_added_during_delay: false,
            membership_changes: 0,
            offsets: BTreeMap::new(),
            empty_since: None,
        }
    }

    /// Protocols every member supports (all of `extra`'s too, if given).
    fn candidates(&self, extra: Option<&[(String, Bytes)]>) -> Vec<String> {
        let mut out: Vec<String> = match (self.members.values().next(), extra) {
            (Some(m), _) => m.protocols.iter().map(|(n, _)| n.clone()).collect(),
            (None, Some(e)) => e.iter().map(|(n, _)| n.clone()).collect(),
            (None, None) => return vec![],
        };
        out.retain(|p| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(n, _)| n == p))
                && extra.is_none_or(|e| e.iter().any(|(n, _)| n == p))
        });
        out
    }

    /// Kafka's vote: each member votes for its most preferred candidate; most votes wins.
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidates(None);
        let mut votes: Vec<(String, usize)> = candidates.iter().map(|c| (c.clone(), 0)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                if let Some(v) = votes.iter_mut().find(|(c, _)| c == name) {
                    v.1 += 1;
                }
            }
        }
        let max = votes.iter().map(|(_, v)| *v).max()?;
        votes.into_iter().find(|(_, v)| *v == max).map(|(c, _)| c)
    }

    fn max_rebalance_timeout(&self) -> i64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms as i64)
            .max()
            .unwrap_or(0)
    }

    /// The member id a static instance id maps to now (Kafka's `staticMembers`).
    pub fn static_member(&self, instance: &str) -> Option<&str> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance))
            .map(|m| m.id.as_str())
    }

    /// Kafka's `validateMember`: a request naming an instance id must come from the member
    /// that instance maps to now (an older incarnation of a static member is fenced, so it
    /// stops instead of competing with its replacement), and the member must exist.
    fn validate_member(&self, member: &str, instance: Option<&str>, operation: &str) -> Result<()> {
        if let Some(instance) = instance {
            match self.static_member(instance) {
                None => return Err(code(K::UnknownMemberId)),
                Some(current) if current != member => {
                    tracing::info!(
                        "Request memberId={member} for static member with \
                         groupInstanceId={instance} is fenced by existing memberId={current} \
                         during operation {operation}"
                    );
                    return Err(code(K::FencedInstanceId));
                }
                Some(_) => {}
            }
        }
        if self.members.contains_key(member) {
            Ok(())
        } else {
            Err(code(K::UnknownMemberId))
        }
    }

    fn prepare_rebalance(
        &mut self,
        now: i64,
        settings: &GroupSettings,
        reason: &str,
        out: &mut Vec<Delivery>,
    ) {
        if self.state == State::CompletingRebalance {
            // The assignment in progress is void: members waiting for it rejoin.
            for m in self.members.values_mut().filter(|m| m.sync_waiting) {
                m.sync_waiting = false;
                out.push(Delivery::Sync {
                    member: m.id.clone(),
                    response: SyncResponse::error(code(K::RebalanceInProgress)),
                });
            }
        }
        if self.state == State::Empty {
            let delay = settings.initial_rebalance_delay_ms;
            let rebalance = self.max_rebalance_timeout();
            self.initial_delay = delay > 0;
            self.initial_delay_ms = delay;
            self.initial_delay_remaining_ms = (rebalance - delay).max(0);
            self.member_added_during_delay = false;
            self.deadline = now + delay.min(rebalance);
        } else {
            self.initial_delay = false;
            self.deadline = now + self.max_rebalance_timeout();
        }
        self.state = State::PreparingRebalance;
        // Kafka logs the state after the transition, so "in state PreparingRebalance" always.
        tracing::info!(
            "Preparing to rebalance group {} in state {} with old generation {} (reason: {reason}).",
            self.id,
            self.state.name(),
            self.generation
        );
    }

    /// Kafka's `maybePrepareRebalance` (a group already preparing keeps its rebalance), then
    /// an attempt to complete the join phase.
    fn rebalance(&mut self, now: i64, s: &GroupSettings, reason: &str, out: &mut Vec<Delivery>) {
        if matches!(
            self.state,
            State::Empty | State::Stable | State::CompletingRebalance
        ) {
            self.prepare_rebalance(now, s, reason, out);
        }
        self.try_complete_join(now, out);
    }

    fn add_member(&mut self, req: &JoinRequest, id: String, now: i64) {
        let member = Member {
            id: id.clone(),
            instance_id: req.instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocol_type: req.protocol_type.clone(),
            protocols: req.protocols.clone(),
            assignment: Bytes::new(),
            last_heartbeat: now,
            join_waiting: true,
            sync_waiting: false,
            synced: false,
        };
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.state == State::PreparingRebalance && self.initial_delay {
            self.member_added_during_delay = true;
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        self.members.insert(id, member);
    }

    /// Removes a member, answering its waiting requests.
    fn remove_member(&mut self, id: &str, out: &mut Vec<Delivery>) -> bool {
        let Some(m) = self.members.remove(id) else {
            return self.pending.remove(id).is_some();
        };
        if m.join_waiting {
            out.push(Delivery::Join {
                member: m.id.clone(),
                response: JoinResponse::error(code(K::UnknownMemberId), &m.id),
            });
        }
        if m.sync_waiting {
            out.push(Delivery::Sync {
                member: m.id.clone(),
                response: SyncResponse::error(code(K::UnknownMemberId)),
            });
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.keys().next().cloned();
        }
        true
    }

    /// Members left or expired: the others rebalance (an Empty group has nobody to tell).
    fn after_removal(
        &mut self,
        now: i64,
        settings: &GroupSettings,
        reason: &str,
        out: &mut Vec<Delivery>,
    ) {
        if !matches!(self.state, State::Empty | State::Dead) {
            self.rebalance(now, settings, reason, out);
        }
    }

    /// Kafka's `maybeElectNewJoinedLeader`: the leader must be a member that rejoined; if it
    /// did not, any member that did leads. False when nobody rejoined.
    fn elect_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader.as_deref().and_then(|l| self.members.get(l)) else {
            return false;
        };
        if leader.join_waiting {
            return true;
        }
        let (old, instance) = (leader.id.clone(), leader.instance_id.clone());
        let instance = instance.as_deref().unwrap_or("None");
        let Some(new) = self.members.values().find(|m| m.join_waiting) else {
            tracing::info!(
                "Group leader [memberId: {old}, groupInstanceId: {instance}] failed to join \
                 before the rebalance timeout and the group couldn't proceed to the next \
                 generation because no member joined."
            );
            return false;
        };
        tracing::info!(
            "Group leader [memberId: {old}, groupInstanceId: {instance}] failed to join before \
             the rebalance timeout. Member {} was elected as the new leader.",
            new.id
        );
        self.leader = Some(new.id.clone());
        true
    }

    /// Completes the join phase when every member has rejoined and every member id handed out
    /// was used (and no initial delay runs), or when the rebalance timeout is over. Dynamic
    /// members that did not rejoin are removed then; static members stay (Kafka's rule: their
    /// instance may come back within its session and take its place again).
    pub fn try_complete_join(&mut self, now: i64, out: &mut Vec<Delivery>) {
        if self.state != State::PreparingRebalance {
            return;
        }
        if self.initial_delay
            && now >= self.deadline
            && self.member_added_during_delay
            && self.initial_delay_remaining_ms > 0
        {
            // Members are still arriving: wait another delay, within the rebalance timeout.
            let more = self.initial_delay_ms.min(self.initial_delay_remaining_ms);
            self.initial_delay_remaining_ms -= more;
            self.member_added_during_delay = false;
            self.deadline = now + more;
            return;
        }
        let all_joined = self.members.values().all(|m| m.join_waiting) && self.pending.is_empty();
        if !(now >= self.deadline || (all_joined && !self.initial_delay)) {
            return;
        }
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.join_waiting && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        if !gone.is_empty() {
            for id in &gone {
                self.remove_member(id, out);
            }
            tracing::info!(
                "Group {} removed dynamic members who haven't joined: {gone:?}",
                self.id
            );
        }
        if !self.elect_joined_leader() && !self.members.is_empty() {
            // Only static members that did not rejoin are left: wait for them another
            // rebalance timeout, or until their sessions expire.
            tracing::error!(
                "Group {} could not complete rebalance because no members rejoined.",
                self.id
            );
            self.initial_delay = false;
            self.deadline = now + self.max_rebalance_timeout();
            return;
        }
        self.initial_delay = false;
        self.generation += 1;
        if self.members.is_empty() {
            self.state = State::Empty;
            self.empty_since = Some(now);
            // Kafka keeps the protocol type of an Empty group (ListGroups shows "consumer").
            self.protocol = None;
            self.leader = None;
            tracing::info!(
                "Group {} with generation {} is now empty.",
                self.id,
                self.generation
            );
            return;
        }
        self.protocol = self.select_protocol();
        self.state = State::CompletingRebalance;
        self.deadline = now + self.max_rebalance_timeout();
        tracing::info!(
            "Stabilized group {} generation {} with {} members.",
            self.id,
            self.generation,
            self.members.len()
        );
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol.clone().unwrap_or_default();
        let all: Vec<(String, Option<String>, Bytes)> = self
            .members
            .values()
            .map(|m| {
                (
                    m.id.clone(),
                    m.instance_id.clone(),
                    m.metadata_for(&protocol),
                )
            })
            .collect();
        for m in self.members.values_mut() {
            m.synced = false;
            m.last_heartbeat = now;
            // A static member that did not rejoin has no JoinGroup to answer.
            if !std::mem::take(&mut m.join_waiting) {
                continue;
            }
            out.push(Delivery::Join {
                member: m.id.clone(),
                response: JoinResponse {
                    error: 0,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol.clone(),
                    leader: leader.clone(),
                    member_id: m.id.clone(),
                    members: if m.id == leader { all.clone() } else { vec![] },
                    skip_assignment: false,
                },
            });
        }
    }

    /// Answers the waiting requests of a static member's old id: a new instance took over.
    fn fence(&mut self, old: &str, out: &mut Vec<Delivery>) {
        if let Some(m) = self.members.get_mut(old) {
            if std::mem::take(&mut m.join_waiting) {
                out.push(Delivery::Join {
                    member: old.to_string(),
                    response: JoinResponse::error(code(K::FencedInstanceId), old),
                });
            }
            if std::mem::take(&mut m.sync_waiting) {
                out.push(Delivery::Sync {
                    member: old.to_string(),
                    response: SyncResponse::error(code(K::FencedInstanceId)),
                });
            }
        }
    }

    fn current_join_response(&self, member: &str) -> JoinResponse {
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol.clone().unwrap_or_default();
        JoinResponse {
            error: 0,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: leader.clone(),
            member_id: member.to_string(),
            members: if member == leader {
                self.members
                    .values()
                    .map(|m| {
                        (
                            m.id.clone(),
                            m.instance_id.clone(),
                            m.metadata_for(&protocol),
                        )
                    })
                    .collect()
            } else {
                vec![]
            },
            skip_assignment: false,
        }
    }

    /// JoinGroup. `new_member_id` is the id to hand out if the member has none.
    pub fn join(
        &mut self,
        req: JoinRequest,
        new_member_id: String,
        now: i64,
        s: &GroupSettings,
    ) -> (JoinOutcome, Vec<Delivery>) {
        let fail = |c: i16| {
            (
                Outcome::Reply(JoinResponse::error(c, &req.member_id)),
                vec![],
            )
        };
        if req.session_timeout_ms < s.min_session_timeout_ms
            || req.session_timeout_ms > s.max_session_timeout_ms
        {
            return fail(code(K::InvalidSessionTimeout));
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return fail(code(K::InconsistentGroupProtocol));
        }
        if self.state == State::Dead {
            return fail(code(K::CoordinatorNotAvailable));
        }
        let joined = !self.members.is_empty();
        if joined
            && (self.protocol_type.as_deref() != Some(req.protocol_type.as_str())
                || self.candidates(Some(&req.protocols)).is_empty())
        {
            // A member re-joining with new protocols is judged against the others only.
            let alone = self.members.len() == 1 && self.members.contains_key(&req.member_id);
            if !alone {
                return fail(code(K::InconsistentGroupProtocol));
            }
        }
        if req.member_id.is_empty() {
            return match req.instance_id.clone() {
                Some(instance) => self.join_static(req, &instance, new_member_id, now, s),
                None => self.join_dynamic(req, new_member_id, now, s),
            };
        }
        let id = req.member_id.clone();
        if self.pending.contains_key(&id) {
            if let Some(instance) = &req.instance_id {
                // Ids are handed out pending only to dynamic members (Kafka answers this with
                // an internal error too: it cannot come from a well-behaved client).
                tracing::warn!(
                    "Received unexpected JoinGroup with groupInstanceId={instance} for pending \
                     member with memberId={id} of group {}",
                    self.id
                );
                return fail(code(K::UnknownServerError));
            }
            self.pending.remove(&id);
            tracing::info!(
                "Pending dynamic member with id {id} joins group {} in {} state. Adding to the \
                 group now.",
                self.id,
                self.state.name()
            );
            let reason = format!(
                "Adding new member {id} with group instance id null; client reason: {}",
                req.reason()
            );
            let mut out = Vec::new();
            self.add_member(&req, id.clone(), now);
            self.rebalance(now, s, &reason, &mut out);
            return (Outcome::Wait { member: id }, out);
        }
        if let Err(c) = self.validate_member(&id, req.instance_id.as_deref(), "join-group") {
            return fail(c);
        }
        self.join_known(req, now, s)
    }

    /// A dynamic member without a member id: it gets one (and, from JoinGroup v4 on, must
    /// come back with it: Kafka's KIP-394, so a client that times out does not leave a member
    /// behind that nobody will ever heartbeat for).
    fn join_dynamic(
        &mut self,
        req: JoinRequest,
        id: String,
        now: i64,
        s: &GroupSettings,
    ) -> (JoinOutcome, Vec<Delivery>) {
        if req.require_known_member_id {
            tracing::info!(
                "Dynamic member with unknown member id joins group {} in {} state. Created a \
                 new member id {id} and requesting the member to rejoin with this id.",
                self.id,
                self.state.name()
            );
            self.pending
                .insert(id.clone(), now + req.session_timeout_ms as i64);
            return (
                Outcome::Reply(JoinResponse::error(code(K::MemberIdRequired), &id)),
                vec![],
            );
        }
        tracing::info!(
            "Dynamic member with unknown member id joins group {} in state {}. Created a new \
             member id {id} and added the member to the group.",
            self.id,
            self.state.name()
        );
        let reason = format!(
            "Adding new member {id} with group instance id null; client reason: {}",
            req.reason()
        );
        let mut out = Vec::new();
        self.add_member(&req, id.clone(), now);
        self.rebalance(now, s, &reason, &mut out);
        (Outcome::Wait { member: id }, out)
    }

    /// A static member without a member id (KIP-345): a new instance id joins as a new
    /// member; a known one takes over its old member, whose waiting requests are fenced. In a
    /// Stable group whose selected protocol stays, the takeover keeps the group's generation
    /// and assignment, the leader's too (KIP-814): nobody rebalances.
    fn join_static(
        &mut self,
        req: JoinRequest,
        instance: &str,
        new_id: String,
        now: i64,
        s: &GroupSettings,
    ) -> (JoinOutcome, Vec<Delivery>) {
        let mut out = Vec::new();
        let Some(old) = self.static_member(instance).map(str::to_string) else {
            tracing::info!(
                "Static member with groupInstanceId={instance} and unknown member id joins \
                 group {} in {} state. Created a new member id {new_id} for this member and \
                 added to the group.",
                self.id,
                self.state.name()
            );
            let reason = format!(
                "Adding new member {new_id} with group instance id {instance}; client reason: {}",
                req.reason()
            );
            self.add_member(&req, new_id.clone(), now);
            self.rebalance(now, s, &reason, &mut out);
            return (Outcome::Wait { member: new_id }, out);
        };
        tracing::info!(
            "Static member with groupInstanceId={instance} and unknown member id joins group {} \
             in {} state. Replacing previously mapped member {old} with this groupInstanceId.",
            self.id,
            self.state.name()
        );
        let previous_leader = self.leader.clone().unwrap_or_default();
        let swap = self.swap_static(instance, &old, &new_id, &req, now, &mut out);
        match self.state {
            State::Stable if self.select_protocol() == self.protocol => {
                tracing::info!(
                    "Static member which joins during Stable stage and doesn't affect the \
                     selected protocol will not trigger a rebalance."
                );
                let current = self.current_join_response(&new_id);
                let response = if req.supports_skip_assignment {
                    // The leader learns it leads (so it goes on watching metadata for
                    // changes) but keeps the group's assignment instead of making a new one.
                    JoinResponse {
                        skip_assignment: current.leader == new_id,
                        ..current
                    }
                } else {
                    // Before JoinGroup v9 a leader cannot be told not to assign, and a Stable
                    // group would ignore its new assignment: it is answered with the previous
                    // leader id, so every member, the leader too, takes the follower's path
                    // and syncs for the assignment it has.
                    JoinResponse {
                        leader: previous_leader,
                        members: vec![],
                        ..current
                    }
                };
                (Outcome::ReplyWhenStored(response, swap), out)
            }
            State::Stable => {
                let reason = format!(
                    "Group's selectedProtocol will change because static member {new_id} with \
                     instance id {instance} joined with change of protocol; client reason: {}",
                    req.reason()
                );
                self.mark_joining(&new_id);
                self.rebalance(now, s, &reason, &mut out);
                (Outcome::Wait { member: new_id }, out)
            }
            State::CompletingRebalance => {
                // The leader may already be assigning to the old member id, which the new one
                // would never get: rebalance.
                let reason = format!(
                    "Updating metadata for static member {new_id} with instance id {instance}; \
                     client reason: {}",
                    req.reason()
                );
                self.mark_joining(&new_id);
                self.rebalance(now, s, &reason, &mut out);
                (Outcome::Wait { member: new_id }, out)
            }
            State::PreparingRebalance | State::Empty | State::Dead => {
                self.mark_joining(&new_id);
                self.try_complete_join(now, &mut out);
                (Outcome::Wait { member: new_id }, out)
            }
        }
    }

    fn mark_joining(&mut self, id: &str) {
        if let Some(m) = self.members.get_mut(id) {
            m.join_waiting = true;
        }
    }

    /// Kafka's `replaceStaticMember` and `updateMember`: the old member's waiting requests
    /// are fenced, and the member (assignment, leadership included) carries on under the new
    /// id with the new incarnation's protocols and timeouts, its session starting now.
    fn swap_static(
        &mut self,
        instance: &str,
        old: &str,
        new: &str,
        req: &JoinRequest,
        now: i64,
        out: &mut Vec<Delivery>,
    ) -> StaticSwap {
        self.fence(old, out);
        let mut swap = StaticSwap {
            instance_id: instance.to_string(),
            old_member_id: old.to_string(),
            new_member_id: new.to_string(),
            protocols: req.protocols.clone(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
        };
        if let Some(mut m) = self.members.remove(old) {
            std::mem::swap(&mut m.protocols, &mut swap.protocols);
            std::mem::swap(&mut m.session_timeout_ms, &mut swap.session_timeout_ms);
            std::mem::swap(&mut m.rebalance_timeout_ms, &mut swap.rebalance_timeout_ms);
            m.id = new.to_string();
            m.last_heartbeat = now;
            self.members.insert(new.to_string(), m);
        }
        if self.leader.as_deref() == Some(old) {
            self.leader = Some(new.to_string());
        }
        self.membership_changes += 1;
        swap
    }

    /// Takes back a static member's takeover whose membership could not be written (Kafka
    /// reverts it the same way): the old member id returns with its protocols and timeouts,
    /// its session starting now. Nothing happens if the group moved on meanwhile.
    pub fn undo_static_swap(&mut self, swap: StaticSwap, now: i64) {
        if self.static_member(&swap.instance_id) != Some(swap.new_member_id.as_str()) {
            return;
        }
        let Some(mut m) = self.members.remove(&swap.new_member_id) else {
            return;
        };
        m.id = swap.old_member_id.clone();
        m.protocols = swap.protocols;
        m.session_timeout_ms = swap.session_timeout_ms;
        m.rebalance_timeout_ms = swap.rebalance_timeout_ms;
        m.last_heartbeat = now;
        self.members.insert(swap.old_member_id.clone(), m);
        if self.leader.as_deref() == Some(swap.new_member_id.as_str()) {
            self.leader = Some(swap.old_member_id);
        }
        self.membership_changes += 1;
    }

    /// A JoinGroup from a current member (its id and instance id checked).
    fn join_known(
        &mut self,
        req: JoinRequest,
        now: i64,
        s: &GroupSettings,
    ) -> (JoinOutcome, Vec<Delivery>) {
        let id = req.member_id.clone();
        let state = self.state;
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        let Some(m) = self.members.get_mut(&id) else {
            return (
                Outcome::Reply(JoinResponse::error(code(K::UnknownMemberId), &id)),
                vec![],
            );
        };
        let same_protocols = m.protocols == req.protocols;
        let reason = match state {
            State::PreparingRebalance => format!(
                "Member {id} joining group during PreparingRebalance; client reason: {}",
                req.reason()
            ),
            // The same member again (it may have missed the answer): this generation's data.
            State::CompletingRebalance if same_protocols => {
                m.last_heartbeat = now;
                return (Outcome::Reply(self.current_join_response(&id)), vec![]);
            }
            State::Stable if same_protocols && !is_leader => {
                m.last_heartbeat = now;
                return (Outcome::Reply(self.current_join_response(&id)), vec![]);
            }
            State::CompletingRebalance => format!(
                "Updating metadata for member {id} during CompletingRebalance; client reason: {}",
                req.reason()
            ),
            // A leader rejoining asks for a rebalance: it saw a change the members' metadata
            // does not show (e.g. new partitions of a subscribed topic).
            State::Stable if is_leader => format!(
                "Leader {id} re-joining group during Stable; client reason: {}",
                req.reason()
            ),
            State::Stable => format!(
                "Updating metadata for member {id} during Stable; client reason: {}",
                req.reason()
            ),
            State::Empty | State::Dead => {
                tracing::warn!(
                    "Attempt to add rejoining member {id} of group {} in unexpected group \
                     state {}",
                    self.id,
                    state.name()
                );
                return (
                    Outcome::Reply(JoinResponse::error(code(K::UnknownMemberId), &id)),
                    vec![],
                );
            }
        };
        m.last_heartbeat = now;
        m.protocols = req.protocols.clone();
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        // A JoinGroup of this member still waiting is superseded by this one (the
        // coordinator answers the older request when it registers the new one).
        m.join_waiting = true;
        let mut out = Vec::new();
        self.rebalance(now, s, &reason, &mut out);
        (Outcome::Wait { member: id }, out)
    }

    /// SyncGroup. The leader's assignments complete the rebalance.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member: &str,
        instance: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: i64,
    ) -> (Outcome<SyncResponse>, Vec<Delivery>) {
        let fail = |c: i16| (Outcome::Reply(SyncResponse::error(c)), vec![]);
        if self.state == State::Dead {
            return fail(code(K::CoordinatorNotAvailable));
        }
        if let Err(c) = self.validate_member(member, instance, "sync-group") {
            return fail(c);
        }
        if generation != self.generation {
            return fail(code(K::IllegalGeneration));
        }
        if protocol_type.is_some_and(|p| Some(p) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|p| Some(p) != self.protocol.as_deref())
        {
            return fail(code(K::InconsistentGroupProtocol));
        }
        let statics = self
            .members
            .values()
            .filter(|m| m.instance_id.is_some())
            .count();
        let size = self.members.len();
        let Some(m) = self.members.get_mut(member) else {
            return fail(code(K::UnknownMemberId));
        };
        m.last_heartbeat = now;
        m.synced = true;
        match self.state {
            State::PreparingRebalance => fail(code(K::RebalanceInProgress)),
            State::Stable => (
                Outcome::Reply(SyncResponse {
                    error: 0,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol.clone(),
                    assignment: m.assignment.clone(),
                }),
                vec![],
            ),
            State::CompletingRebalance => {
                let mut out = Vec::new();
                m.sync_waiting = true;
                if self.leader.as_deref() == Some(member) {
                    tracing::info!(
                        "Assignment received from leader {member} for group {} for generation \
                         {}. The group has {size} members, {statics} of which are static.",
                        self.id,
                        self.generation
                    );
                    let mut given: BTreeMap<String, Bytes> = assignments.into_iter().collect();
                    let missing: Vec<&str> = self
                        .members
                        .keys()
                        .filter(|id| !given.contains_key(*id))
                        .map(String::as_str)
                        .collect();
                    if !missing.is_empty() {
                        tracing::warn!(
                            "Setting empty assignments for members {missing:?} of {} for \
                             generation {}.",
                            self.id,
                            self.generation
                        );
                    }
                    for m in self.members.values_mut() {
                        m.assignment = given.remove(&m.id).unwrap_or_default();
                    }
                    self.state = State::Stable;
                    for m in self.members.values_mut().filter(|m| m.sync_waiting) {
                        m.sync_waiting = false;
                        out.push(Delivery::Sync {
                            member: m.id.clone(),
                            response: SyncResponse {
                                error: 0,
                                protocol_type: self.protocol_type.clone(),
                                protocol_name: self.protocol.clone(),
                                assignment: m.assignment.clone(),
                            },
                        });
                    }
                }
                (
                    Outcome::Wait {
                        member: member.to_string(),
                    },
                    out,
                )
            }
            State::Empty | State::Dead => fail(code(K::UnknownMemberId)),
        }
    }

    /// The leader's assignment could not be written to the log (error `c`): Kafka drops it
    /// and rebalances.
    pub fn assignment_not_stored(
        &mut self,
        c: i16,
        leader: &str,
        now: i64,
        s: &GroupSettings,
    ) -> Vec<Delivery> {
        let mut out = Vec::new();
        if self.state != State::Stable {
            return out;
        }
        for m in self.members.values_mut() {
            m.assignment = Bytes::new();
        }
        let reason = format!(
            "Error {} when storing group assignment during SyncGroup (member: {leader})",
            error_name(c)
        );
        self.prepare_rebalance(now, s, &reason, &mut out);
        out
    }

    pub fn heartbeat(
        &mut self,
        member: &str,
        instance: Option<&str>,
        generation: i32,
        now: i64,
    ) -> i16 {
        if self.state == State::Dead {
            return code(K::CoordinatorNotAvailable);
        }
        if let Err(c) = self.validate_member(member, instance, "heartbeat") {
            return c;
        }
        if generation != self.generation {
            return code(K::IllegalGeneration);
        }
        if let Some(m) = self.members.get_mut(member) {
            m.last_heartbeat = now;
        }
        match self.state {
            State::PreparingRebalance => code(K::RebalanceInProgress),
            State::Empty => code(K::UnknownMemberId),
            _ => 0,
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
    ) -> (i16, Vec<Delivery>) {
        let mut out = Vec::new();
        let reason = reason.filter(|r| !r.is_empty()).unwrap_or("not provided");
        let id = if member.is_empty() {
            match instance_id.and_then(|i| self.static_member(i)) {
                Some(id) => id.to_string(),
                None => return (code(K::UnknownMemberId), out),
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
            return (0, out);
        } else {
            if let Err(c) = self.validate_member(member, instance_id, "leave-group") {
                return (c, out);
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
        (0, out)
    }

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
            return Err(code(K::CoordinatorNotAvailable));
        }
        if generation < 0 && self.state == State::Empty {
            // The admin client, or a consumer that manages its partitions itself.
            return Ok(());
        }
        if generation >= 0 || !member.is_empty() || instance.is_some() {
            self.validate_member(member, instance, "offset-commit")?;
            if generation != self.generation {
                return Err(code(K::IllegalGeneration));
            }
        } else if self.state != State::Empty {
            // Without member id and generation, only an Empty group takes commits.
            return Err(code(K::UnknownMemberId));
        }
        if self.state == State::CompletingRebalance {
            // The member has this generation's JoinGroup answer but not its assignment yet.
            return Err(code(K::RebalanceInProgress));
        }
        if let Some(m) = self.members.get_mut(member) {
            m.last_heartbeat = now;
        }
        Ok(())
    }

    /// DeleteGroups: only an empty group can go.
    pub fn delete(&mut self) -> Result<()> {
        match self.state {
            State::Empty => {
                self.state = State::Dead;
                Ok(())
            }
            State::Dead => Err(code(K::GroupIdNotFound)),
            _ => Err(code(K::NonEmptyGroup)),
        }
    }

    /// The membership to persist, in the states Kafka persists (Stable after the leader's
    /// assignment, Empty after the last member left); `None` in between.
    pub fn snapshot(&self, now: i64) -> Option<GroupMeta> {
        if !matches!(self.state, State::Stable | State::Empty) {
            return None;
        }
        let protocol = self.protocol.clone().unwrap_or_default();
        Some(GroupMeta {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            state_timestamp: now,
            members: self
                .members
                .values()
                .map(|m| MemberMeta {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(&protocol).to_vec(),
                    assignment: m.assignment.to_vec(),
                })
                .collect(),
        })
    }

    /// Restores a persisted membership (at start-up): Stable with its members, each given a
    /// fresh session to come back in, or Empty.
    pub fn restore(&mut self, meta: GroupMeta, now: i64) {
        let protocol = meta.protocol.clone().unwrap_or_default();
        self.generation = meta.generation;
        self.members = meta
            .members
            .into_iter()
            .map(|m| {
                let member = Member {
                    id: m.member_id.clone(),
                    instance_id: m.instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocol_type: meta.protocol_type.clone(),
                    protocols: vec![(protocol.clone(), Bytes::from(m.subscription))],
                    assignment: Bytes::from(m.assignment),
                    last_heartbeat: now,
                    join_waiting: false,
                    sync_waiting: false,
                    synced: true,
                };
                (m.member_id, member)
            })
            .collect();
        self.pending.clear();
        if self.members.is_empty() {
            self.state = State::Empty;
            self.empty_since = Some(meta.state_timestamp);
            self.protocol_type = Some(meta.protocol_type).filter(|t| !t.is_empty());
            self.protocol = None;
            self.leader = None;
        } else {
            self.state = State::Stable;
            self.protocol_type = Some(meta.protocol_type);
            self.protocol = meta.protocol;
            self.leader = meta
                .leader
                .filter(|l| self.members.contains_key(l))
                .or_else(|| self.members.keys().next().cloned());
        }
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

    /// Whether nothing is left worth keeping in memory.
    pub fn is_gone(&self) -> bool {
        self.state == State::Dead
            || (self.state == State::Empty
                && self.members.is_empty()
                && self.pending.is_empty()
                && self.offsets.is_empty()
                && self.generation == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(delay: i64) -> GroupSettings {
        GroupSettings {
            offsets_partitions: 50,
            initial_rebalance_delay_ms: delay,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 300_000,
            offsets_retention_ms: 60_000,
            ..GroupSettings::default()
        }
    }

    fn req(member: &str, protocols: &[&str]) -> JoinRequest {
        JoinRequest {
            member_id: member.into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::from(format!("{member}:{p}"))))
                .collect(),
            require_known_member_id: true,
            reason: None,
            supports_skip_assignment: false,
        }
    }

    fn joins(d: &[Delivery]) -> Vec<(String, JoinResponse)> {
        d.iter()
            .filter_map(|d| match d {
                Delivery::Join { member, response } => Some((member.clone(), response.clone())),
                _ => None,
            })
            .collect()
    }

    /// Join with MEMBER_ID_REQUIRED first, then with the given id.
    fn join_new(
        g: &mut Group,
        id: &str,
        protocols: &[&str],
        now: i64,
        s: &GroupSettings,
    ) -> (JoinOutcome, Vec<Delivery>) {
        let (o, d) = g.join(req("", protocols), id.into(), now, s);
        assert!(d.is_empty());
        match o {
            Outcome::Reply(r) => {
                assert_eq!(r.error, K::MemberIdRequired.code());
                assert_eq!(r.member_id, id);
            }
            other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
        }
        g.join(req(id, protocols), "unused".into(), now, s)
    }

    #[test]
    fn single_member_joins_syncs_and_heartbeats() {
        let s = settings(0);
        let mut g = Group::new("g");
        let (o, d) = join_new(&mut g, "m1", &["range"], 0, &s);
        assert_eq!(
            o,
            Outcome::Wait {
                member: "m1".into()
            }
        );
        let j = joins(&d);
        assert_eq!(j.len(), 1);
        let r = &j[0].1;
        assert_eq!((r.error, r.generation, r.leader.as_str()), (0, 1, "m1"));
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
        assert_eq!(r.members.len(), 1, "the leader gets the members' metadata");
        assert_eq!(r.members[0].2, Bytes::from("m1:range"));
        assert_eq!(g.state, State::CompletingRebalance);
        assert_eq!(g.heartbeat("m1", None, 1, 10), 0);
        assert_eq!(g.heartbeat("m1", None, 0, 10), K::IllegalGeneration.code());
        assert_eq!(g.heartbeat("zz", None, 1, 10), K::UnknownMemberId.code());
        let (o, d) = g.sync(
            "m1",
            None,
            1,
            None,
            None,
            vec![("m1".into(), Bytes::from("A1"))],
            20,
        );
        assert_eq!(
            o,
            Outcome::Wait {
                member: "m1".into()
            }
        );
        assert_eq!(
            d,
            vec![Delivery::Sync {
                member: "m1".into(),
                response: SyncResponse {
                    error: 0,
                    protocol_type: Some("consumer".into()),
                    protocol_name: Some("range".into()),
                    assignment: Bytes::from("A1"),
                }
            }]
        );
        assert_eq!(g.state, State::Stable);
        let (o, _) = g.sync("m1", None, 0, None, None, vec![], 20);
        assert_eq!(
            o,
            Outcome::Reply(SyncResponse::error(K::IllegalGeneration.code()))
        );
    }

    #[test]
    fn second_member_triggers_a_rebalance_and_gets_the_leaders_assignment() {
        let s = settings(0);
        let mut g = Group::new("g");
        join_new(&mut g, "m1", &["range", "roundrobin"], 0, &s);
        g.sync(
            "m1",
            None,
            1,
            None,
            None,
            vec![("m1".into(), Bytes::from("all"))],
            0,
        );
        assert_eq!(g.state, State::Stable);
        // m2 joins: the group prepares a rebalance, m1 learns it from its heartbeat.
        let (o, d) = join_new(&mut g, "m2", &["roundrobin", "range"], 100, &s);
        assert_eq!(
            o,
            Outcome::Wait {
                member: "m2".into()
            }
        );
        assert!(d.is_empty());
        assert_eq!(g.state, State::PreparingRebalance);
        assert_eq!(
            g.heartbeat("m1", None, 1, 200),
            K::RebalanceInProgress.code()
        );
        // Offsets from the old generation are still accepted while preparing.
        assert_eq!(g.validate_commit("m1", None, 1, 200), Ok(()));
        let (o, d) = g.join(req("m1", &["range", "roundrobin"]), "x".into(), 300, &s);
        assert_eq!(
            o,
            Outcome::Wait {
                member: "m1".into()
            }
        );
        let j = joins(&d);
        assert_eq!(j.len(), 2);
        assert!(j.iter().all(|(_, r)| r.generation == 2 && r.leader == "m1"));
        let leader = j.iter().find(|(m, _)| m == "m1").unwrap();
        let follower = j.iter().find(|(m, _)| m == "m2").unwrap();
        assert_eq!(leader.1.members.len(), 2);
        assert!(follower.1.members.is_empty());
        // One vote each: the tie goes to the first candidate in order.
        assert_eq!(leader.1.protocol_name.as_deref(), Some("range"));
        assert_eq!(
            g.validate_commit("m1", None, 2, 300),
            Err(K::RebalanceInProgress.code())
        );
        // The follower syncs first and waits; the leader's sync answers both.
        let (o, d) = g.sync("m2", None, 2, None, None, vec![], 310);
        assert_eq!(
            o,
            Outcome::Wait {
                member: "m2".into()
            }
        );
        assert!(d.is_empty());
        let (_, d) = g.sync(
            "m1",
            None,
            2,
            Some("consumer"),
            Some("range"),
            vec![
                ("m1".into(), Bytes::from("a")),
                ("m2".into(), Bytes::from("b")),
            ],
            320,
        );
        assert_eq!(d.len(), 2);
        for del in d {
            match del {
                Delivery::Sync { member, response } => {
                    assert_eq!(response.error, 0);
                    let want = if member == "m1" { "a" } else { "b" };
                    assert_eq!(response.assignment, Bytes::from(want));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(g.state, State::Stable);
        assert_eq!(g.validate_commit("m2", None, 2, 400), Ok(()));
        assert_eq!(
            g.validate_commit("m2", None, 1, 400),
            Err(K::IllegalGeneration.code())
        );
        assert_eq!(
            g.validate_commit("", None, -1, 400),
            Err(K::UnknownMemberId.code())
        );
    }

    #[test]
    fn protocol_is_chosen_by_votes_and_must_be_common() {
        let s = settings(0);
        let mut g = Group::new("g");
        join_new(&mut g, "a", &["sticky", "range"], 0, &s);
        let (o, _) = g.join(req("", &["roundrobin"]), "z".into(), 0, &s);
        assert_eq!(
            o,
            Outcome::Reply(JoinResponse::error(K::InconsistentGroupProtocol.code(), ""))
        );
        let mut other = req("", &["range"]);
        other.protocol_type = "connect".into();
        let (o, _) = g.join(other, "z".into(), 0, &s);
        assert!(matches!(o, Outcome::Reply(r) if r.error == K::InconsistentGroupProtocol.code()));
        join_new(&mut g, "b", &["range", "sticky"], 0, &s);
        join_new(&mut g, "c", &["range", "sticky"], 0, &s);
        g.join(req("a", &["sticky", "range"]), "x".into(), 0, &s);
        assert_eq!(g.state, State::CompletingRebalance);
        assert_eq!(g.protocol.as_deref(), Some("range"), "two votes to one");
    }

    #[test]
    fn session_timeout_is_bounded() {
        let s = settings(0);
        let mut g = Group::new("g");
        for t in [5999, 300_001] {
            let mut r = req("", &["range"]);
            r.session_timeout_ms = t;
            let (o, _) = g.join(r, "m".into(), 0, &s);
            assert!(matches!(o, Outcome::Reply(r) if r.error == K::InvalidSessionTimeout.code()));
        }
        let (o, _) = g.join(req("nobody", &["range"]), "m".into(), 0, &s);
        assert!(matches!(o, Outcome::Reply(r) if r.error == K::UnknownMemberId.code()));
    }

    #[test]
    fn initial_delay_holds_the_first_rebalance() {
        let s = settings(3000);
        let mut g = Group::new("g");
        let (_, d) = join_new(&mut g, "m1", &["range"], 1000, &s);
        assert!(d.is_empty(), "waits for the initial delay");
        assert!(g.tick(3999, &s).is_empty());
        let d = g.tick(4000, &s);
        assert_eq!(joins(&d).len(), 1);
        assert_eq!(g.generation, 1);
    }

    #[test]
    fn initial_delay_is_extended_while_members_arrive_up_to_the_rebalance_timeout() {
        let s = settings(3000);
        let mut g = Group::new("g");
        join_new(&mut g, "m1", &["range"], 0, &s);
        join_new(&mut g, "m2", &["range"], 2000, &s);
        assert!(g.tick(3000, &s).is_empty(), "m2 arrived: another delay");
        join_new(&mut g, "m3", &["range"], 5000, &s);
        assert!(g.tick(6000, &s).is_empty(), "m3 arrived: another delay");
        let d = g.tick(9000, &s);
        assert_eq!(joins(&d).len(), 3, "nobody new: the rebalance completes");
        assert_eq!(g.generation, 1);

        // Members arriving forever still complete within the rebalance timeout (30 s).
        let mut g = Group::new("g2");
        join_new(&mut g, "a0", &["range"], 0, &s);
        let mut t = 0;
        let mut done_at = None;
        for i in 1..40 {
            t += 1000;
            let (_, mut d) = join_new(&mut g, &format!("a{i}"), &["range"], t, &s);
            d.extend(g.tick(t, &s));
            if !joins(&d).is_empty() {
                done_at = Some(t);
                break;
            }
        }
        assert_eq!(done_at, Some(30_000));
    }

    #[test]
    fn expired_member_is_removed_and_the_others_rebalance() {
        let s = settings(0);
        let mut g = Group::new("g");
        join_new(&mut g, "m1", &["range"], 0, &s);
        join_new(&mut g, "m2", &["range"], 0, &s);
        g.join(req("m1", &["range"]), "x".into(), 0, &s);
        assert_eq!(g.generation, 2);
        g.sync("m2", None, 2, None, None, vec![], 0);
        g.sync("m1", None, 2, None, None, vec![], 0);
        assert_eq!(g.state, State::Stable);
        // m1 heartbeats, m2 does not.
        for t in (1000..=10_000).step_by(1000) {
            assert_eq!(g.heartbeat("m1", None, 2, t), 0);
            assert!(g.tick(t, &s).is_empty());
        }
        assert!(g.tick(10_001, &s).is_empty());
        assert!(!g.members.contains_key("m2"));
        assert_eq!(g.state, State::PreparingRebalance);
        assert_eq!(
            g.heartbeat("m1", None, 2, 10_002),
            K::RebalanceInProgress.code()
        );
        let (_, d) = g.join(req("m1", &["range"]), "x".into(), 10_003, &s);
        let j = joins(&d);
        assert_eq!(j.len(), 1);
        assert_eq!((j[0].1.generation, j[0].1.members.len()), (3, 1));
    }

    #[test]
    fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_timeout() {
        let s = settings(0);
        let mut g = Group::new("g");
        join_new(&mut g, "m1", &["range"], 0, &s);
        join_new(&mut g, "m2", &["range"], 0, &s);
        g.join(req("m1", &["range"]), "x".into(), 0, &s);
        g.sync("m1", None, 2, None, None, vec![], 0);
        join_new(&mut g, "m3", &["range"], 1000, &s);
        for t in [2000, 4000, 6000] {
            g.heartbeat("m2", None, 2, t);
        }
        g.join(req("m1", &["range"]), "x".into(), 7000, &s);
        assert_eq!(
            g.state,
            State::PreparingRebalance,
            "m2 has not rejoined yet"
        );
        let d = g.tick(31_000, &s);
        let j = joins(&d);
        assert_eq!(j.len(), 2);
        assert!(!g.members.contains_key("m2"));
        assert_eq!(g.state, State::CompletingRebalance);
    }

    #[test]
    fn leave_rebalances_and_the_last_leave_empties_the_group() {
        let s = settings(0);
        let mut g = Group::new("g");
        join_new(&mut g, "m1", &["range"], 0, &s);
        g.sync("m1", None, 1, None, None, vec![], 0);
        let (code, d) = g.leave("m1", None, None, 10, &s);
        assert_eq!(code, 0);
        assert!(d.is_empty());
        assert_eq!(g.state, State::Empty);
        assert_eq!(g.generation, 2);
        assert_eq!(
            g.protocol_type.as_deref(),
            Some("consumer"),
            "kept, as Kafka does"
        );
        assert_eq!(g.protocol, None);
        assert_eq!(
            g.leave("m1", None, None, 10, &s).0,
            K::UnknownMemberId.code()
        );
        assert_eq!(g.validate_commit("", None, -1, 20), Ok(()));
        assert_eq!(g.delete(), Ok(()));
        assert_eq!(g.state, State::Dead);
    }

    #[test]
    fn a_rebalance_during_sync_tells_waiting_followers() {
        let s = settings(0);
        let mut g = Group::new("g");
        join_new(&mut g, "m1", &["range"], 0, &s);
        join_new(&mut g, "m2", &["range"], 0, &s);
        g.join(req("m1", &["range"]), "x".into(), 0, &s);
        let (o, _) = g.sync("m2", None, 2, None, None, vec![], 0);
        assert_eq!(
            o,
            Outcome::Wait {
                member: "m2".into()
            }
        );
        assert_eq!(g.delete(), Err(K::NonEmptyGroup.code()));
        let (_, d) = join_new(&mut g, "m3", &["range"], 5, &s);
        assert_eq!(
            d,
            vec![Delivery::Sync {
                member: "m2".into(),
                response: SyncResponse::error(K::RebalanceInProgress.code())
            }]
        );
    }

    #[test]
    fn membership_snapshot_restores_a_stable_group() {
        let s = settings(0);
        let mut g = Group::new("g");
        join_new(&mut g, "m1", &["range", "rr"], 0, &s);
        assert!(g.snapshot(0).is_none(), "not persisted mid-rebalance");
        g.sync(
            "m1",
            None,
            1,
            None,
            None,
            vec![("m1".into(), Bytes::from("A"))],
            0,
        );
        let snap = g.snapshot(5).unwrap();
        assert_eq!((snap.generation, snap.members.len()), (1, 1));
        assert_eq!(snap.members[0].subscription, b"m1:range".to_vec());
        let mut r = Group::new("g");
        r.restore(snap, 1000);
        assert_eq!((r.state, r.generation), (State::Stable, 1));
        assert_eq!(r.leader.as_deref(), Some("m1"));
        assert_eq!(
            r.heartbeat("m1", None, 1, 2000),
            0,
            "the member carries on after a restart"
        );
        let (o, _) = r.sync("m1", None, 1, None, None, vec![], 2000);
        assert!(matches!(o, Outcome::Reply(ref x) if x.assignment == "A"));
        // Not heard from: it expires as any member does.
        r.tick(13_000, &s);
        assert_eq!(r.state, State::Empty);
    }

    #[test]
    fn offsets_expire_only_in_an_empty_group_after_the_retention() {
        let s = settings(0);
        let c = |ts| Committed {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: ts,
        };
        let mut g = Group::new("g");
        join_new(&mut g, "m1", &["range"], 0, &s);
        g.sync("m1", None, 1, None, None, vec![], 0);
        g.offsets.insert(("t".into(), 0), c(0));
        g.offsets.insert(("t".into(), 1), c(500));
        assert!(
            g.expire_offsets(10_000, 100).is_empty(),
            "a group with members keeps them"
        );
        g.leave("m1", None, None, 1000, &s);
        assert_eq!(g.empty_since, Some(1000));
        assert!(g.expire_offsets(1099, 100).is_empty());
        g.offsets.insert(("t".into(), 2), c(1050));
        assert_eq!(
            g.expire_offsets(1100, 100),
            vec![("t".to_string(), 0), ("t".to_string(), 1)]
        );
        assert_eq!(g.state, State::Empty);
        assert_eq!(g.expire_offsets(1150, 100), vec![("t".to_string(), 2)]);
        assert_eq!(g.state, State::Dead, "nothing left: the group goes");
        // A group that only stores offsets expires them by commit time.
        let mut o = Group::new("o");
        o.offsets.insert(("t".into(), 0), c(50));
        assert!(o.expire_offsets(149, 100).is_empty());
        assert_eq!(o.expire_offsets(150, 100).len(), 1);
    }

    #[test]
    fn pending_member_ids_outlive_a_generation_completed_without_them() {
        // Two consumers start together: both get their member ids before either joins with
        // it, and the first join completes a generation (no initial delay) without the second.
        let s = settings(0);
        let mut g = Group::new("g");
        for id in ["m1", "m2"] {
            let (o, _) = g.join(req("", &["range"]), id.into(), 0, &s);
            assert!(matches!(o, Outcome::Reply(r) if r.error == K::MemberIdRequired.code()));
        }
        let (_, d) = g.join(req("m1", &["range"]), "unused".into(), 10, &s);
        assert_eq!(joins(&d).len(), 1);
        assert_eq!((g.state, g.generation), (State::CompletingRebalance, 1));
        // The second joins with its id: accepted (no UNKNOWN_MEMBER_ID round), and the group
        // rebalances to take it in.
        let (o, d) = g.join(req("m2", &["range"]), "unused".into(), 20, &s);
        assert_eq!(
            o,
            Outcome::Wait {
                member: "m2".into()
            }
        );
        assert!(d.is_empty());
        assert_eq!(g.state, State::PreparingRebalance);
        let (_, d) = g.join(req("m1", &["range"]), "unused".into(), 30, &s);
        let j = joins(&d);
        assert_eq!(j.len(), 2);
        assert!(j.iter().all(|(_, r)| r.generation == 2 && r.error == 0));
        assert!(g.pending.is_empty());
    }

    #[test]
    fn an_unused_pending_member_id_holds_the_join_phase_until_its_session_expires() {
        let s = settings(0);
        let mut g = Group::new("g");
        join_new(&mut g, "m1", &["range"], 0, &s);
        g.sync("m1", None, 1, None, None, vec![], 0);
        // m2 gets an id at 1000 and is never heard from again.
        let (o, _) = g.join(req("", &["range"]), "m2".into(), 1000, &s);
        assert!(matches!(o, Outcome::Reply(r) if r.error == K::MemberIdRequired.code()));
        // A pending id that leaves was never in a generation: nobody rebalances.
        let (o, _) = g.join(req("", &["range"]), "m9".into(), 1000, &s);
        assert!(matches!(o, Outcome::Reply(r) if r.error == K::MemberIdRequired.code()));
        assert_eq!(g.leave("m9", None, Some("bye"), 1500, &s).0, 0);
        assert_eq!(g.state, State::Stable);
        // m3 joins: the join phase waits for m2's id as well (Kafka's hasAllMembersJoined).
        join_new(&mut g, "m3", &["range"], 2000, &s);
        let (_, d) = g.join(req("m1", &["range"]), "unused".into(), 2000, &s);
        assert!(d.is_empty(), "m2's id is still pending");
        assert!(g.tick(10_999, &s).is_empty());
        assert!(g.pending.contains_key("m2"));
        // m2's session (10 s from 1000) runs out: its id goes, and the generation completes.
        let d = g.tick(11_000, &s);
        assert!(g.pending.is_empty());
        assert_eq!(joins(&d).len(), 2);
        assert_eq!(g.generation, 2);
        let (o, _) = g.join(req("m2", &["range"]), "unused".into(), 11_100, &s);
        assert!(matches!(o, Outcome::Reply(r) if r.error == K::UnknownMemberId.code()));
    }

    fn static_req(member: &str, instance: &str, protocols: &[&str]) -> JoinRequest {
        let mut r = req(member, protocols);
        r.instance_id = Some(instance.into());
        // Static members keep long sessions: their partitions wait for them across a restart.
        r.session_timeout_ms = 60_000;
        r
    }

    /// Two static members: "i1" (member "s1", the leader) and "i2" ("s2"), Stable in
    /// generation 2 with assignments "A" and "B".
    fn stable_static_pair(s: &GroupSettings) -> Group {
        let mut g = Group::new("g");
        let (o, _) = g.join(static_req("", "i1", &["range"]), "s1".into(), 0, s);
        assert_eq!(
            o,
            Outcome::Wait {
                member: "s1".into()
            },
            "no MEMBER_ID_REQUIRED for static members"
        );
        g.join(static_req("", "i2", &["range"]), "s2".into(), 0, s);
        let (_, d) = g.join(static_req("s1", "i1", &["range"]), "unused".into(), 0, s);
        assert_eq!(joins(&d).len(), 2, "both joined: generation 2");
        g.sync("s2", Some("i2"), 2, None, None, vec![], 0);
        let assignments = vec![
            ("s1".into(), Bytes::from_static(b"A")),
            ("s2".into(), Bytes::from_static(b"B")),
        ];
        g.sync("s1", Some("i1"), 2, None, None, assignments, 0);
        assert_eq!(
            (g.state, g.generation, g.leader.as_deref()),
            (State::Stable, 2, Some("s1"))
        );
        g
    }

    fn assigned(a: &'static [u8]) -> Outcome<SyncResponse> {
        Outcome::Reply(SyncResponse {
            error: 0,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignment: Bytes::from_static(a),
        })
    }

    #[test]
    fn static_leader_restarting_keeps_the_generation_and_every_assignment() {
        let s = settings(0);
        let mut g = stable_static_pair(&s);
        // The leader restarts: same instance id, no member id, same protocols (JoinGroup v5).
        let (o, d) = g.join(static_req("", "i1", &["range"]), "s1-new".into(), 100, &s);
        assert!(d.is_empty());
        let Outcome::ReplyWhenStored(r, swap) = o else {
            panic!("answered once stored, got {o:?}")
        };
        assert_eq!(
            (r.error, r.generation, r.member_id.as_str()),
            (0, 2, "s1-new")
        );
        // Before v9 it cannot be told to keep the assignment: it is given the old leader id,
        // so it takes the follower's path and syncs for what it has.
        assert_eq!(
            (r.leader.as_str(), r.members.len(), r.skip_assignment),
            ("s1", 0, false)
        );
        assert_eq!(
            (swap.old_member_id.as_str(), swap.new_member_id.as_str()),
            ("s1", "s1-new")
        );
        assert_eq!((g.state, g.generation), (State::Stable, 2), "no rebalance");
        assert_eq!(g.leader.as_deref(), Some("s1-new"), "it still leads");
        assert_eq!(g.membership_changes, 1, "the new id is to be written");
        let (o, _) = g.sync("s1-new", Some("i1"), 2, None, None, vec![], 110);
        assert_eq!(o, assigned(b"A"));
        // The follower carries on, and sees no rebalance.
        assert_eq!(g.heartbeat("s2", Some("i2"), 2, 120), 0);
        let (o, _) = g.sync("s2", Some("i2"), 2, None, None, vec![], 120);
        assert_eq!(o, assigned(b"B"));

        // The old incarnation is fenced wherever it shows up with its instance id.
        let fenced = K::FencedInstanceId.code();
        assert_eq!(g.heartbeat("s1", Some("i1"), 2, 130), fenced);
        assert_eq!(
            g.heartbeat("s1", None, 2, 130),
            K::UnknownMemberId.code(),
            "without its instance id it is just unknown"
        );
        let (o, _) = g.sync("s1", Some("i1"), 2, None, None, vec![], 130);
        assert_eq!(o, Outcome::Reply(SyncResponse::error(fenced)));
        assert_eq!(g.validate_commit("s1", Some("i1"), 2, 130), Err(fenced));
        let (o, _) = g.join(static_req("s1", "i1", &["range"]), "x".into(), 130, &s);
        assert_eq!(o, Outcome::Reply(JoinResponse::error(fenced, "s1")));
        assert_eq!(g.leave("s1", Some("i1"), None, 130, &s).0, fenced);
        assert_eq!(
            (g.state, g.generation, g.members.len()),
            (State::Stable, 2, 2),
            "fenced requests change nothing"
        );
        assert_eq!(g.validate_commit("s1-new", Some("i1"), 2, 140), Ok(()));
        // An instance id nobody has is unknown.
        assert_eq!(
            g.heartbeat("s2", Some("i7"), 2, 140),
            K::UnknownMemberId.code()
        );
    }

    #[test]
    fn static_leader_restarting_with_join_group_v9_leads_but_skips_the_assignment() {
        let s = settings(0);
        let mut g = stable_static_pair(&s);
        let mut r = static_req("", "i1", &["range"]);
        r.supports_skip_assignment = true;
        let (o, _) = g.join(r, "s1-new".into(), 100, &s);
        let Outcome::ReplyWhenStored(r, _) = o else {
            panic!("answered once stored, got {o:?}")
        };
        assert_eq!(
            (r.generation, r.leader.as_str(), r.skip_assignment),
            (2, "s1-new", true)
        );
        let members: Vec<_> = r
            .members
            .iter()
            .map(|(id, instance, _)| (id.as_str(), instance.as_deref()))
            .collect();
        assert_eq!(members, vec![("s1-new", Some("i1")), ("s2", Some("i2"))]);
        // A follower has nothing to skip.
        let mut f = static_req("", "i2", &["range"]);
        f.supports_skip_assignment = true;
        let (o, _) = g.join(f, "s2-new".into(), 100, &s);
        let Outcome::ReplyWhenStored(r, _) = o else {
            panic!("answered once stored, got {o:?}")
        };
        assert_eq!(
            (r.leader.as_str(), r.members.len(), r.skip_assignment),
            ("s1-new", 0, false)
        );
        assert_eq!((g.state, g.generation), (State::Stable, 2));
        let (o, _) = g.sync("s1-new", Some("i1"), 2, None, None, vec![], 110);
        assert_eq!(o, assigned(b"A"));
    }

    #[test]
    fn a_static_takeover_that_could_not_be_stored_is_taken_back() {
        let s = settings(0);
        let mut g = stable_static_pair(&s);
        // Another protocol order and session: the selected protocol stays "range".
        let mut r = static_req("", "i1", &["range", "roundrobin"]);
        r.session_timeout_ms = 20_000;
        let (o, _) = g.join(r, "s1-new".into(), 100, &s);
        let Outcome::ReplyWhenStored(_, first) = o else {
            panic!("answered once stored, got {o:?}")
        };
        assert_eq!(g.members["s1-new"].session_timeout_ms, 20_000);
        let (o, _) = g.join(static_req("", "i1", &["range"]), "s1-newer".into(), 150, &s);
        let Outcome::ReplyWhenStored(_, second) = o else {
            panic!("answered once stored, got {o:?}")
        };
        // The first takeover was overtaken by the second: nothing to take back.
        g.undo_static_swap(first, 160);
        assert_eq!(g.static_member("i1"), Some("s1-newer"));
        g.undo_static_swap(second, 200);
        assert_eq!(g.static_member("i1"), Some("s1-new"));
        assert_eq!(g.leader.as_deref(), Some("s1-new"));
        let m = &g.members["s1-new"];
        assert_eq!(
            (m.session_timeout_ms, m.protocols.len(), &m.assignment[..]),
            (20_000, 2, &b"A"[..])
        );
        assert_eq!(g.heartbeat("s1-new", Some("i1"), 2, 210), 0);
        assert_eq!(
            g.heartbeat("s1-newer", Some("i1"), 2, 210),
            K::FencedInstanceId.code()
        );
        assert_eq!(
            g.membership_changes, 3,
            "the reverted membership is written too"
        );
        assert_eq!((g.state, g.generation), (State::Stable, 2));
    }

    #[test]
    fn static_member_rejoining_with_another_selected_protocol_rebalances() {
        let s = settings(0);
        let both = ["range", "roundrobin"];
        let mut g = Group::new("g");
        g.join(static_req("", "i1", &both), "s1".into(), 0, &s);
        g.join(static_req("", "i2", &both), "s2".into(), 0, &s);
        g.join(static_req("s1", "i1", &both), "x".into(), 0, &s);
        g.sync("s1", Some("i1"), 2, None, None, vec![], 0);
        assert_eq!(
            (g.state, g.protocol.as_deref()),
            (State::Stable, Some("range"))
        );
        // New subscription metadata, the same protocol chosen: as in Kafka, the group stays as
        // it is and keeps the new metadata.
        let mut r = static_req("", "i2", &both);
        r.protocols[0].1 = Bytes::from_static(b"other topics");
        let (o, _) = g.join(r, "s2-new".into(), 10, &s);
        assert!(matches!(o, Outcome::ReplyWhenStored(..)), "{o:?}");
        assert_eq!((g.state, g.generation), (State::Stable, 2));
        assert_eq!(g.members["s2-new"].metadata_for("range"), "other topics");
        // Only roundrobin now: the group's protocol must change, so everyone rebalances.
        let (o, d) = g.join(
            static_req("", "i2", &["roundrobin"]),
            "s2-newer".into(),
            20,
            &s,
        );
        assert_eq!(
            o,
            Outcome::Wait {
                member: "s2-newer".into()
            }
        );
        assert!(d.is_empty());
        assert_eq!(g.state, State::PreparingRebalance);
        assert_eq!(
            g.heartbeat("s1", Some("i1"), 2, 30),
            K::RebalanceInProgress.code()
        );
        let (_, d) = g.join(static_req("s1", "i1", &both), "x".into(), 40, &s);
        let j = joins(&d);
        assert_eq!(j.len(), 2);
        assert!(j
            .iter()
            .all(|(_, r)| r.generation == 3 && r.protocol_name.as_deref() == Some("roundrobin")));
    }

    #[test]
    fn static_member_replaced_during_a_rebalance_fences_the_old_requests() {
        let s = settings(0);
        let mut g = stable_static_pair(&s);
        // s2 rejoins with new metadata: a rebalance, its JoinGroup waits.
        let (o, _) = g.join(static_req("s2", "i2", &["range"]), "x".into(), 100, &s);
        assert_eq!(
            o,
            Outcome::Wait {
                member: "s2".into()
            }
        );
        // i2 restarts meanwhile: the old JoinGroup is fenced, the new one takes its place.
        let (o, d) = g.join(static_req("", "i2", &["range"]), "s2-new".into(), 200, &s);
        assert_eq!(
            o,
            Outcome::Wait {
                member: "s2-new".into()
            }
        );
        assert_eq!(
            d,
            vec![Delivery::Join {
                member: "s2".into(),
                response: JoinResponse::error(K::FencedInstanceId.code(), "s2")
            }]
        );
        let (_, d) = g.join(static_req("s1", "i1", &["range"]), "x".into(), 300, &s);
        let mut answered: Vec<_> = joins(&d).into_iter().map(|(m, _)| m).collect();
        answered.sort();
        assert_eq!(answered, vec!["s1", "s2-new"]);
        assert_eq!((g.state, g.generation), (State::CompletingRebalance, 3));
        // The follower waits for the assignment when i2 restarts again: its SyncGroup is
        // fenced, and since the leader may be assigning to the old id, the group rebalances.
        let (o, _) = g.sync("s2-new", Some("i2"), 3, None, None, vec![], 400);
        assert!(matches!(o, Outcome::Wait { .. }));
        let (o, d) = g.join(static_req("", "i2", &["range"]), "s2-x".into(), 500, &s);
        assert_eq!(
            o,
            Outcome::Wait {
                member: "s2-x".into()
            }
        );
        assert_eq!(
            d,
            vec![Delivery::Sync {
                member: "s2-new".into(),
                response: SyncResponse::error(K::FencedInstanceId.code())
            }]
        );
        assert_eq!(g.state, State::PreparingRebalance);
    }

    #[test]
    fn static_members_that_do_not_rejoin_stay_and_the_leader_moves_to_one_that_did() {
        let s = settings(0);
        let mut g = stable_static_pair(&s);
        // A dynamic member joins while both static members are down.
        join_new(&mut g, "d3", &["range"], 1000, &s);
        assert_eq!(g.state, State::PreparingRebalance);
        assert!(g.tick(30_999, &s).is_empty());
        let d = g.tick(31_000, &s);
        let j = joins(&d);
        assert_eq!(j.len(), 1, "only d3 has a JoinGroup to answer");
        assert_eq!(g.generation, 3);
        assert_eq!(
            g.leader.as_deref(),
            Some("d3"),
            "the leader must be a member that rejoined"
        );
        assert_eq!(
            j[0].1.members.len(),
            3,
            "the static members stay, to be assigned"
        );
        let assignments = vec![
            ("s1".into(), Bytes::from_static(b"A3")),
            ("s2".into(), Bytes::from_static(b"B3")),
            ("d3".into(), Bytes::from_static(b"D3")),
        ];
        g.sync("d3", None, 3, None, None, assignments, 31_000);
        assert_eq!(g.state, State::Stable);
        // s1 comes back within its session: it takes its place and what was assigned to it.
        let (o, _) = g.join(
            static_req("", "i1", &["range"]),
            "s1-new".into(),
            40_000,
            &s,
        );
        let Outcome::ReplyWhenStored(r, _) = o else {
            panic!("answered once stored, got {o:?}")
        };
        assert_eq!((r.generation, r.leader.as_str()), (3, "d3"));
        let (o, _) = g.sync("s1-new", Some("i1"), 3, None, None, vec![], 40_000);
        assert!(matches!(o, Outcome::Reply(r) if r.assignment == "A3"));
        assert_eq!((g.state, g.generation), (State::Stable, 3));
    }

    #[test]
    fn a_join_phase_only_absent_static_members_could_lead_waits_for_them() {
        let s = settings(0);
        let mut g = stable_static_pair(&s);
        // s2 rejoins (a rebalance), then leaves: only s1 is left, and it has not rejoined.
        g.join(static_req("s2", "i2", &["range"]), "x".into(), 100, &s);
        g.leave("s2", Some("i2"), None, 200, &s);
        assert_eq!(g.state, State::PreparingRebalance);
        assert!(g.tick(30_100, &s).is_empty());
        assert_eq!(
            (g.state, g.generation),
            (State::PreparingRebalance, 2),
            "nobody to lead the next generation"
        );
        // Not heard from within its session, s1 goes and the group is left Empty...
        let mut gone = g.clone();
        gone.tick(60_001, &s);
        assert_eq!((gone.state, gone.generation), (State::Empty, 3));
        // ...but if it comes back in time, the generation completes with it.
        let (o, d) = g.join(
            static_req("", "i1", &["range"]),
            "s1-new".into(),
            40_000,
            &s,
        );
        assert_eq!(
            o,
            Outcome::Wait {
                member: "s1-new".into()
            }
        );
        let j = joins(&d);
        assert_eq!(j.len(), 1);
        assert_eq!((j[0].1.generation, j[0].1.leader.as_str()), (3, "s1-new"));
    }

    #[test]
    fn a_pending_member_id_cannot_be_claimed_by_a_static_member() {
        let s = settings(0);
        let mut g = Group::new("g");
        let (o, _) = g.join(req("", &["range"]), "m1".into(), 0, &s);
        assert!(matches!(o, Outcome::Reply(r) if r.error == K::MemberIdRequired.code()));
        let (o, _) = g.join(static_req("m1", "i1", &["range"]), "x".into(), 0, &s);
        assert!(matches!(o, Outcome::Reply(r) if r.error == K::UnknownServerError.code()));
        assert!(g.members.is_empty());
    }
}
