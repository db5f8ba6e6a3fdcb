//! Members that expire, do not rejoin or leave; the stored membership; offset expiry.

use super::test_support::*;
use super::*;

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
        assert_eq!(g.heartbeat("m1", None, 2, t), Ok(()));
        assert!(g.tick(t, &s).is_empty());
    }
    assert!(g.tick(10_001, &s).is_empty());
    assert!(!g.members.contains_key("m2"));
    assert_eq!(g.state, State::PreparingRebalance);
    assert_eq!(
        g.heartbeat("m1", None, 2, 10_002),
        Err(GroupError::RebalanceInProgress)
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
        // Told to rejoin, but its session is kept alive.
        assert_eq!(
            g.heartbeat("m2", None, 2, t),
            Err(GroupError::RebalanceInProgress)
        );
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
fn an_unused_pending_member_id_holds_the_join_phase_until_its_session_expires() {
    let s = settings(0);
    let mut g = Group::new("g");
    join_new(&mut g, "m1", &["range"], 0, &s);
    g.sync("m1", None, 1, None, None, vec![], 0);
    // m2 gets an id at 1000 and is never heard from again.
    let (o, _) = g.join(req("", &["range"]), "m2".into(), 1000, &s);
    assert!(matches!(o, Outcome::Reply(r) if r.error == Some(GroupError::MemberIdRequired)));
    // A pending id that leaves was never in a generation: nobody rebalances.
    let (o, _) = g.join(req("", &["range"]), "m9".into(), 1000, &s);
    assert!(matches!(o, Outcome::Reply(r) if r.error == Some(GroupError::MemberIdRequired)));
    assert_eq!(g.leave("m9", None, Some("bye"), 1500, &s).0, Ok(()));
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
    assert!(matches!(o, Outcome::Reply(r) if r.error == Some(GroupError::UnknownMemberId)));
}

#[test]
fn leave_rebalances_and_the_last_leave_empties_the_group() {
    let s = settings(0);
    let mut g = Group::new("g");
    join_new(&mut g, "m1", &["range"], 0, &s);
    g.sync("m1", None, 1, None, None, vec![], 0);
    let (code, d) = g.leave("m1", None, None, 10, &s);
    assert_eq!(code, Ok(()));
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
        Err(GroupError::UnknownMemberId)
    );
    assert_eq!(g.validate_commit("", None, -1, 20), Ok(()));
    assert_eq!(g.delete(), Ok(()));
    assert_eq!(g.state, State::Dead);
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
        Ok(()),
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
    assert_eq!(g.leave("m1", None, None, 1000, &s).0, Ok(()));
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
