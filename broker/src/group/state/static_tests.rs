//! Static members (KIP-345, KIP-814): restarts, takeovers, fencing.

use super::test_support::*;
use super::*;

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
        (None, 2, "s1-new")
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
    assert_eq!(g.heartbeat("s2", Some("i2"), 2, 120), Ok(()));
    let (o, _) = g.sync("s2", Some("i2"), 2, None, None, vec![], 120);
    assert_eq!(o, assigned(b"B"));

    // The old incarnation is fenced wherever it shows up with its instance id.
    let fenced = GroupError::FencedInstanceId;
    assert_eq!(g.heartbeat("s1", Some("i1"), 2, 130), Err(fenced));
    assert_eq!(
        g.heartbeat("s1", None, 2, 130),
        Err(GroupError::UnknownMemberId),
        "without its instance id it is just unknown"
    );
    let (o, _) = g.sync("s1", Some("i1"), 2, None, None, vec![], 130);
    assert_eq!(o, Outcome::Reply(SyncResponse::error(fenced)));
    assert_eq!(g.validate_commit("s1", Some("i1"), 2, 130), Err(fenced));
    let (o, _) = g.join(static_req("s1", "i1", &["range"]), "x".into(), 130, &s);
    assert_eq!(o, Outcome::Reply(JoinResponse::error(fenced, "s1")));
    assert_eq!(g.leave("s1", Some("i1"), None, 130, &s).0, Err(fenced));
    assert_eq!(
        (g.state, g.generation, g.members.len()),
        (State::Stable, 2, 2),
        "fenced requests change nothing"
    );
    assert_eq!(g.validate_commit("s1-new", Some("i1"), 2, 140), Ok(()));
    // An instance id nobody has is unknown.
    assert_eq!(
        g.heartbeat("s2", Some("i7"), 2, 140),
        Err(GroupError::UnknownMemberId)
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
    assert_eq!(g.heartbeat("s1-new", Some("i1"), 2, 210), Ok(()));
    assert_eq!(
        g.heartbeat("s1-newer", Some("i1"), 2, 210),
        Err(GroupError::FencedInstanceId)
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
        Err(GroupError::RebalanceInProgress)
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
            response: JoinResponse::error(GroupError::FencedInstanceId, "s2")
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
            response: SyncResponse::error(GroupError::FencedInstanceId)
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
    assert_eq!(g.leave("s2", Some("i2"), None, 200, &s).0, Ok(()));
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
    assert!(matches!(o, Outcome::Reply(r) if r.error == Some(GroupError::MemberIdRequired)));
    let (o, _) = g.join(static_req("m1", "i1", &["range"]), "x".into(), 0, &s);
    assert!(
        matches!(o, Outcome::Reply(r) if r.error == Some(GroupError::StaticJoinWithPendingMemberId))
    );
    assert!(g.members.is_empty());
}
