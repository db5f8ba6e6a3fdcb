//! Requests and groups the state machine's tests start from.

use super::*;
use crate::group::GroupSettings;

pub(super) fn settings(delay: i64) -> GroupSettings {
    GroupSettings {
        offsets_partitions: 50,
        initial_rebalance_delay_ms: delay,
        min_session_timeout_ms: 6000,
        max_session_timeout_ms: 300_000,
        offsets_retention_ms: 60_000,
        ..GroupSettings::default()
    }
}

pub(super) fn req(member: &str, protocols: &[&str]) -> JoinRequest {
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

pub(super) fn joins(d: &[Delivery]) -> Vec<(String, JoinResponse)> {
    d.iter()
        .filter_map(|d| match d {
            Delivery::Join { member, response } => Some((member.clone(), response.clone())),
            _ => None,
        })
        .collect()
}

/// Join with MEMBER_ID_REQUIRED first, then with the given id.
pub(super) fn join_new(
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
            assert_eq!(r.error, Some(GroupError::MemberIdRequired));
            assert_eq!(r.member_id, id);
        }
        other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
    }
    g.join(req(id, protocols), "unused".into(), now, s)
}

pub(super) fn static_req(member: &str, instance: &str, protocols: &[&str]) -> JoinRequest {
    let mut r = req(member, protocols);
    r.instance_id = Some(instance.into());
    // Static members keep long sessions: their partitions wait for them across a restart.
    r.session_timeout_ms = 60_000;
    r
}

/// Two static members: "i1" (member "s1", the leader) and "i2" ("s2"), Stable in
/// generation 2 with assignments "A" and "B".
pub(super) fn stable_static_pair(s: &GroupSettings) -> Group {
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

pub(super) fn assigned(a: &'static [u8]) -> Outcome<SyncResponse> {
    Outcome::Reply(SyncResponse {
        error: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignment: Bytes::from_static(a),
    })
}
