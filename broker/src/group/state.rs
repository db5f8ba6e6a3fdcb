//! One group's state machine, as Kafka's classic coordinator runs it: Empty →
//! PreparingRebalance → CompletingRebalance → Stable (→ Dead when deleted). Pure logic driven
//! with explicit time: requests that must wait (JoinGroup until the rebalance completes,
//! SyncGroup until the leader's assignment) are marked waiting, and their answers come back as
//! [`Delivery`]s from whichever call completes them.

use super::records::{Committed, GroupMeta, MemberMeta};
use super::GroupSettings;
use bytes::Bytes;
use kafka_protocol::ResponseError as K;
use std::collections::BTreeMap;

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

/// What a JoinGroup or SyncGroup gets now: an answer, or a wait for a later [`Delivery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<R> {
    Reply(R),
    Wait { member: String },
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
    /// Member ids handed out with MEMBER_ID_REQUIRED, and until when they may join.
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

    fn prepare_rebalance(&mut self, now: i64, settings: &GroupSettings, out: &mut Vec<Delivery>) {
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

    /// A member left or expired: the others rebalance.
    fn after_removal(&mut self, now: i64, settings: &GroupSettings, out: &mut Vec<Delivery>) {
        match self.state {
            State::Stable | State::CompletingRebalance => {
                if self.members.is_empty() {
                    self.prepare_rebalance(now, settings, out);
                    self.try_complete_join(now, out);
                } else {
                    self.prepare_rebalance(now, settings, out);
                }
            }
            State::PreparingRebalance => self.try_complete_join(now, out),
            State::Empty | State::Dead => {}
        }
    }

    fn rebalance_after_join(&mut self, now: i64, s: &GroupSettings, out: &mut Vec<Delivery>) {
        match self.state {
            State::Empty | State::Stable | State::CompletingRebalance => {
                self.prepare_rebalance(now, s, out)
            }
            State::PreparingRebalance | State::Dead => {}
        }
        self.try_complete_join(now, out);
    }

    /// Completes the join phase when every member has rejoined (and no initial delay runs),
    /// or when the rebalance timeout is over (members that did not rejoin are removed).
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
            .filter(|m| !m.join_waiting)
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id, out);
        }
        self.pending.clear();
        self.initial_delay = false;
        self.generation += 1;
        if self.members.is_empty() {
            self.state = State::Empty;
            self.empty_since = Some(now);
            // Kafka keeps the protocol type of an Empty group (ListGroups shows "consumer").
            self.protocol = None;
            self.leader = None;
            return;
        }
        self.protocol = self.select_protocol();
        self.state = State::CompletingRebalance;
        self.deadline = now + self.max_rebalance_timeout();
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
            m.join_waiting = false;
            m.synced = false;
            m.last_heartbeat = now;
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

    /// KIP-345: a static member that restarts into a Stable group with the same protocols takes
    /// over its old member, assignment included, and nobody rebalances. The leader is the
    /// exception (Kafka before KIP-814 rebalances too: a rejoining leader has no member list to
    /// assign from). Returns the new member id when it applied.
    fn rejoin_without_rebalance(
        &mut self,
        old: &str,
        req: &JoinRequest,
        new_id: String,
        now: i64,
    ) -> Option<String> {
        let m = self.members.get(old)?;
        if self.state != State::Stable
            || self.leader.as_deref() == Some(old)
            || m.protocols != req.protocols
            || m.protocol_type != req.protocol_type
        {
            return None;
        }
        let mut m = self.members.remove(old)?;
        m.id = new_id.clone();
        m.last_heartbeat = now;
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        self.members.insert(new_id.clone(), m);
        self.membership_changes += 1;
        Some(new_id)
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
        }
    }

    /// JoinGroup. `new_member_id` is the id to hand out if the member has none.
    pub fn join(
        &mut self,
        req: JoinRequest,
        new_member_id: String,
        now: i64,
        s: &GroupSettings,
    ) -> (Outcome<JoinResponse>, Vec<Delivery>) {
        let mut out = Vec::new();
        let fail = |c: K| {
            (
                Outcome::Reply(JoinResponse::error(c.code(), &req.member_id)),
                vec![],
            )
        };
        if req.session_timeout_ms < s.min_session_timeout_ms
            || req.session_timeout_ms > s.max_session_timeout_ms
        {
            return fail(K::InvalidSessionTimeout);
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return fail(K::InconsistentGroupProtocol);
        }
        if self.state == State::Dead {
            return fail(K::CoordinatorNotAvailable);
        }
        let joined = !self.members.is_empty();
        if joined
            && (self.protocol_type.as_deref() != Some(req.protocol_type.as_str())
                || self.candidates(Some(&req.protocols)).is_empty())
        {
            // A member re-joining with new protocols is judged against the others only.
            let alone = self.members.len() == 1 && self.members.contains_key(&req.member_id);
            if !alone {
                return fail(K::InconsistentGroupProtocol);
            }
        }
        if req.member_id.is_empty() {
            // Static membership: a known instance id takes over its old member.
            if let Some(instance) = &req.instance_id {
                let old = self
                    .members
                    .values()
                    .find(|m| m.instance_id.as_ref() == Some(instance))
                    .map(|m| m.id.clone());
                if let Some(old) = old {
                    self.fence(&old, &mut out);
                    if let Some(new_id) =
                        self.rejoin_without_rebalance(&old, &req, new_member_id.clone(), now)
                    {
                        let response = self.current_join_response(&new_id);
                        return (Outcome::Reply(response), out);
                    }
                    let was_leader = self.leader.as_deref() == Some(old.as_str());
                    self.members.remove(&old);
                    if was_leader {
                        self.leader = Some(new_member_id.clone());
                    }
                }
                self.add_member(&req, new_member_id.clone(), now);
                self.rebalance_after_join(now, s, &mut out);
                return (
                    Outcome::Wait {
                        member: new_member_id,
                    },
                    out,
                );
            }
            if req.require_known_member_id {
                let timeout = req.session_timeout_ms as i64;
                self.pending.insert(new_member_id.clone(), now + timeout);
                return (
                    Outcome::Reply(JoinResponse::error(
                        code(K::MemberIdRequired),
                        &new_member_id,
                    )),
                    vec![],
                );
            }
            self.add_member(&req, new_member_id.clone(), now);
            self.rebalance_after_join(now, s, &mut out);
            return (
                Outcome::Wait {
                    member: new_member_id,
                },
                out,
            );
        }
        let id = req.member_id.clone();
        if self.pending.remove(&id).is_some() {
            self.add_member(&req, id.clone(), now);
            self.rebalance_after_join(now, s, &mut out);
            return (Outcome::Wait { member: id }, out);
        }
        let Some(m) = self.members.get_mut(&id) else {
            return fail(K::UnknownMemberId);
        };
        if let (Some(a), Some(b)) = (&req.instance_id, &m.instance_id) {
            if a != b {
                return fail(K::FencedInstanceId);
            }
        }
        let same_protocols = m.protocols == req.protocols;
        m.last_heartbeat = now;
        m.protocols = req.protocols.clone();
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        match self.state {
            State::PreparingRebalance => {
                // A JoinGroup of this member still waiting is superseded by this one (the
                // coordinator answers the older request when it registers the new one).
                m.join_waiting = true;
                self.try_complete_join(now, &mut out);
                (Outcome::Wait { member: id }, out)
            }
            State::CompletingRebalance if same_protocols => {
                (Outcome::Reply(self.current_join_response(&id)), vec![])
            }
            State::Stable if same_protocols && !is_leader => {
                (Outcome::Reply(self.current_join_response(&id)), vec![])
            }
            State::CompletingRebalance | State::Stable => {
                m.join_waiting = true;
                self.rebalance_after_join(now, s, &mut out);
                (Outcome::Wait { member: id }, out)
            }
            State::Empty | State::Dead => fail(K::UnknownMemberId),
        }
    }

    /// SyncGroup. The leader's assignments complete the rebalance.
    pub fn sync(
        &mut self,
        member: &str,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: i64,
    ) -> (Outcome<SyncResponse>, Vec<Delivery>) {
        let fail = |c: K| (Outcome::Reply(SyncResponse::error(c.code())), vec![]);
        if self.state == State::Dead {
            return fail(K::CoordinatorNotAvailable);
        }
        let Some(m) = self.members.get_mut(member) else {
            return fail(K::UnknownMemberId);
        };
        if generation != self.generation {
            return fail(K::IllegalGeneration);
        }
        if protocol_type.is_some_and(|p| Some(p) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|p| Some(p) != self.protocol.as_deref())
        {
            return fail(K::InconsistentGroupProtocol);
        }
        m.last_heartbeat = now;
        m.synced = true;
        match self.state {
            State::PreparingRebalance => fail(K::RebalanceInProgress),
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
                    let mut given: BTreeMap<String, Bytes> = assignments.into_iter().collect();
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
            State::Empty | State::Dead => fail(K::UnknownMemberId),
        }
    }

    /// The assignment could not be written to the log: Kafka drops it and rebalances.
    pub fn assignment_not_stored(&mut self, now: i64, s: &GroupSettings) -> Vec<Delivery> {
        let mut out = Vec::new();
        if self.state != State::Stable {
            return out;
        }
        for m in self.members.values_mut() {
            m.assignment = Bytes::new();
        }
        self.prepare_rebalance(now, s, &mut out);
        out
    }

    pub fn heartbeat(&mut self, member: &str, generation: i32, now: i64) -> i16 {
        if self.state == State::Dead {
            return code(K::CoordinatorNotAvailable);
        }
        let Some(m) = self.members.get_mut(member) else {
            return code(K::UnknownMemberId);
        };
        if generation != self.generation {
            return code(K::IllegalGeneration);
        }
        m.last_heartbeat = now;
        match self.state {
            State::PreparingRebalance => code(K::RebalanceInProgress),
            State::Empty => code(K::UnknownMemberId),
            _ => 0,
        }
    }

    /// LeaveGroup for one member (by member id, or by instance id for a static member).
    pub fn leave(
        &mut self,
        member: &str,
        instance_id: Option<&str>,
        now: i64,
        s: &GroupSettings,
    ) -> (i16, Vec<Delivery>) {
        let mut out = Vec::new();
        let id = match instance_id {
            Some(inst) => {
                match self
                    .members
                    .values()
                    .find(|m| m.instance_id.as_deref() == Some(inst))
                {
                    Some(m) if member.is_empty() || m.id == member => m.id.clone(),
                    Some(_) => return (code(K::FencedInstanceId), out),
                    None => return (code(K::UnknownMemberId), out),
                }
            }
            None => member.to_string(),
        };
        if !self.remove_member(&id, &mut out) {
            return (code(K::UnknownMemberId), out);
        }
        self.after_removal(now, s, &mut out);
        (0, out)
    }

    /// Expires members whose session ran out, pending member ids never used, members that
    /// did not send SyncGroup in time; completes a join phase whose deadline passed.
    pub fn tick(&mut self, now: i64, s: &GroupSettings) -> Vec<Delivery> {
        let mut out = Vec::new();
        self.pending.retain(|_, deadline| *deadline > now);
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
        let mut removed = false;
        for id in expired {
            removed |= self.remove_member(&id, &mut out);
        }
        if self.state == State::CompletingRebalance && now >= self.deadline {
            let unsynced: Vec<String> = self
                .members
                .values()
                .filter(|m| !m.synced)
                .map(|m| m.id.clone())
                .collect();
            for id in unsynced {
                removed |= self.remove_member(&id, &mut out);
            }
        }
        if removed {
            self.after_removal(now, s, &mut out);
        }
        self.try_complete_join(now, &mut out);
        out
    }

    /// OffsetCommit's checks against the group (Kafka's order).
    pub fn validate_commit(&mut self, member: &str, generation: i32, now: i64) -> Result<()> {
        if self.state == State::Dead {
            return Err(code(K::CoordinatorNotAvailable));
        }
        if generation < 0 && member.is_empty() && self.state == State::Empty {
            return Ok(());
        }
        if self.state == State::CompletingRebalance {
            return Err(code(K::RebalanceInProgress));
        }
        let Some(m) = self.members.get_mut(member) else {
            return Err(code(K::UnknownMemberId));
        };
        if generation != self.generation {
            return Err(code(K::IllegalGeneration));
        }
        m.last_heartbeat = now;
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
    ) -> (Outcome<JoinResponse>, Vec<Delivery>) {
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
        assert_eq!(g.heartbeat("m1", 1, 10), 0);
        assert_eq!(g.heartbeat("m1", 0, 10), K::IllegalGeneration.code());
        assert_eq!(g.heartbeat("zz", 1, 10), K::UnknownMemberId.code());
        let (o, d) = g.sync(
            "m1",
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
        let (o, _) = g.sync("m1", 0, None, None, vec![], 20);
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
        assert_eq!(g.heartbeat("m1", 1, 200), K::RebalanceInProgress.code());
        // Offsets from the old generation are still accepted while preparing.
        assert_eq!(g.validate_commit("m1", 1, 200), Ok(()));
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
            g.validate_commit("m1", 2, 300),
            Err(K::RebalanceInProgress.code())
        );
        // The follower syncs first and waits; the leader's sync answers both.
        let (o, d) = g.sync("m2", 2, None, None, vec![], 310);
        assert_eq!(
            o,
            Outcome::Wait {
                member: "m2".into()
            }
        );
        assert!(d.is_empty());
        let (_, d) = g.sync(
            "m1",
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
        assert_eq!(g.validate_commit("m2", 2, 400), Ok(()));
        assert_eq!(
            g.validate_commit("m2", 1, 400),
            Err(K::IllegalGeneration.code())
        );
        assert_eq!(
            g.validate_commit("", -1, 400),
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
        g.sync("m2", 2, None, None, vec![], 0);
        g.sync("m1", 2, None, None, vec![], 0);
        assert_eq!(g.state, State::Stable);
        // m1 heartbeats, m2 does not.
        for t in (1000..=10_000).step_by(1000) {
            assert_eq!(g.heartbeat("m1", 2, t), 0);
            assert!(g.tick(t, &s).is_empty());
        }
        assert!(g.tick(10_001, &s).is_empty());
        assert!(!g.members.contains_key("m2"));
        assert_eq!(g.state, State::PreparingRebalance);
        assert_eq!(g.heartbeat("m1", 2, 10_002), K::RebalanceInProgress.code());
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
        g.sync("m1", 2, None, None, vec![], 0);
        join_new(&mut g, "m3", &["range"], 1000, &s);
        for t in [2000, 4000, 6000] {
            g.heartbeat("m2", 2, t);
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
        g.sync("m1", 1, None, None, vec![], 0);
        let (code, d) = g.leave("m1", None, 10, &s);
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
        assert_eq!(g.leave("m1", None, 10, &s).0, K::UnknownMemberId.code());
        assert_eq!(g.validate_commit("", -1, 20), Ok(()));
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
        let (o, _) = g.sync("m2", 2, None, None, vec![], 0);
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
            r.heartbeat("m1", 1, 2000),
            0,
            "the member carries on after a restart"
        );
        let (o, _) = r.sync("m1", 1, None, None, vec![], 2000);
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
        g.sync("m1", 1, None, None, vec![], 0);
        g.offsets.insert(("t".into(), 0), c(0));
        g.offsets.insert(("t".into(), 1), c(500));
        assert!(
            g.expire_offsets(10_000, 100).is_empty(),
            "a group with members keeps them"
        );
        g.leave("m1", None, 1000, &s);
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
    fn static_member_rejoining_replaces_its_old_member() {
        let s = settings(0);
        let mut g = Group::new("g");
        let mut r = req("", &["range"]);
        r.instance_id = Some("i1".into());
        let (o, _) = g.join(r.clone(), "old".into(), 0, &s);
        assert_eq!(
            o,
            Outcome::Wait {
                member: "old".into()
            },
            "no MEMBER_ID_REQUIRED for static members"
        );
        g.sync("old", 1, None, None, vec![], 0);
        let (o, _) = g.join(r, "new".into(), 10, &s);
        assert_eq!(
            o,
            Outcome::Wait {
                member: "new".into()
            }
        );
        assert!(!g.members.contains_key("old"));
        assert_eq!(g.leader.as_deref(), Some("new"));
        assert_eq!(g.generation, 2);
        assert_eq!(g.leave("", Some("i1"), 20, &s).0, 0);
        assert_eq!(g.state, State::Empty);
    }

    #[test]
    fn static_follower_restarting_keeps_its_assignment_without_a_rebalance() {
        let s = settings(0);
        let mut g = Group::new("g");
        let static_req = |id: &str, instance: &str| {
            let mut r = req(id, &["range"]);
            r.instance_id = Some(instance.into());
            r
        };
        g.join(static_req("", "i1"), "leader".into(), 0, &s);
        g.sync("leader", 1, None, None, vec![], 0);
        let (o, _) = g.join(static_req("", "i2"), "f-old".into(), 0, &s);
        assert!(matches!(o, Outcome::Wait { .. }));
        let (_, d) = g.join(static_req("leader", "i1"), "unused".into(), 0, &s);
        assert_eq!(joins(&d).len(), 2, "both joined: generation 2");
        g.sync("f-old", 2, None, None, vec![], 0);
        g.sync(
            "leader",
            2,
            None,
            None,
            vec![
                ("leader".into(), Bytes::from_static(b"A")),
                ("f-old".into(), Bytes::from_static(b"B")),
            ],
            0,
        );
        assert_eq!(g.state, State::Stable);

        // The follower restarts: same instance id, no member id.
        let (o, d) = g.join(static_req("", "i2"), "f-new".into(), 100, &s);
        assert!(d.is_empty());
        let Outcome::Reply(r) = o else {
            panic!("answered at once, got {o:?}")
        };
        assert_eq!(
            (r.error, r.generation, r.member_id.as_str()),
            (0, 2, "f-new")
        );
        assert_eq!(g.state, State::Stable, "no rebalance");
        assert_eq!(g.membership_changes, 1);
        let (o, _) = g.sync("f-new", 2, None, None, vec![], 100);
        let Outcome::Reply(sr) = o else {
            panic!("assignment at once")
        };
        assert_eq!(sr.assignment, Bytes::from_static(b"B"));
        // The old id is fenced off.
        assert_eq!(g.heartbeat("f-old", 2, 100), K::UnknownMemberId.code());
        assert_eq!(g.heartbeat("f-new", 2, 100), 0);
    }
}
