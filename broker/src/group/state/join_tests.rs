//! Dynamic members joining, syncing and heartbeating; protocol selection; the initial delay.

use super::test_support::*;
use super::*;

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
    assert_eq!((r.error, r.generation, r.leader.as_str()), (None, 1, "m1"));
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(r.members.len(), 1, "the leader gets the members' metadata");
    assert_eq!(r.members[0].2, Bytes::from("m1:range"));
    assert_eq!(g.state, State::CompletingRebalance);
    assert_eq!(g.heartbeat("m1", None, 1, 10), Ok(()));
    assert_eq!(
        g.heartbeat("m1", None, 0, 10),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        g.heartbeat("zz", None, 1, 10),
        Err(GroupError::UnknownMemberId)
    );
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
                error: None,
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
        Outcome::Reply(SyncResponse::error(GroupError::IllegalGeneration))
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
        Err(GroupError::RebalanceInProgress)
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
        Err(GroupError::RebalanceInProgress)
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
                assert_eq!(response.error, None);
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
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        g.validate_commit("", None, -1, 400),
        Err(GroupError::UnknownMemberId)
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
        Outcome::Reply(JoinResponse::error(
            GroupError::InconsistentGroupProtocol,
            ""
        ))
    );
    let mut other = req("", &["range"]);
    other.protocol_type = "connect".into();
    let (o, _) = g.join(other, "z".into(), 0, &s);
    assert!(
        matches!(o, Outcome::Reply(r) if r.error == Some(GroupError::InconsistentGroupProtocol))
    );
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
        assert!(
            matches!(o, Outcome::Reply(r) if r.error == Some(GroupError::InvalidSessionTimeout))
        );
    }
    let (o, _) = g.join(req("nobody", &["range"]), "m".into(), 0, &s);
    assert!(matches!(o, Outcome::Reply(r) if r.error == Some(GroupError::UnknownMemberId)));
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
    assert_eq!(g.delete(), Err(GroupError::NonEmptyGroup));
    let (_, d) = join_new(&mut g, "m3", &["range"], 5, &s);
    assert_eq!(
        d,
        vec![Delivery::Sync {
            member: "m2".into(),
            response: SyncResponse::error(GroupError::RebalanceInProgress)
        }]
    );
}

#[test]
fn pending_member_ids_outlive_a_generation_completed_without_them() {
    // Two consumers start together: both get their member ids before either joins with
    // it, and the first join completes a generation (no initial delay) without the second.
    let s = settings(0);
    let mut g = Group::new("g");
    for id in ["m1", "m2"] {
        let (o, _) = g.join(req("", &["range"]), id.into(), 0, &s);
        assert!(matches!(o, Outcome::Reply(r) if r.error == Some(GroupError::MemberIdRequired)));
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
    assert!(j
        .iter()
        .all(|(_, r)| r.generation == 2 && r.error.is_none()));
    assert!(g.pending.is_empty());
}
