use super::*;

const T: TopicId = [9; 16];

fn part(replicas: &[i32], isr: &[i32], elr: &[i32], leader: i32) -> PartitionMeta {
    PartitionMeta {
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        elr: elr.to_vec(),
        last_known_elr: vec![],
        leader,
        leader_epoch: 5,
        partition_epoch: 10,
        last_unclean_election: None,
    }
}

fn live(ids: &'static [i32]) -> impl Fn(NodeId) -> bool {
    move |n| ids.contains(&n)
}

fn cands<'a>(p: &'a PartitionMeta) -> Candidates<'a> {
    Candidates {
        replicas: &p.replicas,
        isr: &p.isr,
        elr: &p.elr,
        last_known_elr: &p.last_known_elr,
        leader: p.leader,
    }
}

#[test]
fn elections_prefer_isr_then_elr_then_last_known_leader_then_unclean() {
    let p = part(&[1, 2, 3], &[2, 3], &[], 2);
    assert_eq!(
        elect(&cands(&p), Election::Online, &live(&[1, 2, 3]), false),
        Elected::Isr(2),
        "an acceptable leader stays"
    );
    assert_eq!(
        elect(&cands(&p), Election::Online, &live(&[1, 3]), false),
        Elected::Isr(3),
        "the first acceptable ISR member in replica order"
    );
    let p = part(&[1, 2, 3], &[1, 2, 3], &[], 3);
    assert_eq!(
        elect(&cands(&p), Election::Preferred, &live(&[1, 2, 3]), false),
        Elected::Isr(1)
    );
    assert_eq!(
        elect(&cands(&p), Election::Preferred, &live(&[2, 3]), false),
        Elected::Isr(3),
        "preferred unavailable: the current leader stays"
    );
    let p = part(&[1, 2, 3], &[3], &[2], NO_NODE);
    assert_eq!(
        elect(&cands(&p), Election::Online, &live(&[1, 2]), true),
        Elected::Elr(2),
        "ELR before unclean"
    );
    assert_eq!(
        elect(&cands(&p), Election::Online, &live(&[1]), false),
        Elected::Offline
    );
    assert_eq!(
        elect(&cands(&p), Election::Online, &live(&[1]), true),
        Elected::Unclean(1)
    );
    assert_eq!(
        elect(&cands(&p), Election::Preferred, &live(&[1]), true),
        Elected::Offline,
        "a preferred election is never unclean"
    );
    let mut p = part(&[1, 2], &[], &[], NO_NODE);
    p.last_known_elr = vec![2];
    assert_eq!(
        elect(&cands(&p), Election::Online, &live(&[1, 2]), false),
        Elected::LastKnownLeader(2)
    );
    assert_eq!(
        elect(&cands(&p), Election::Online, &live(&[1]), false),
        Elected::Offline
    );
}

#[test]
fn fencing_the_leader_elects_from_the_isr_and_bumps_the_leader_epoch() {
    let p = part(&[1, 2, 3], &[1, 2, 3], &[], 1);
    let ok = live(&[2, 3]);
    let built = PartitionChangeBuilder::new(T, 0, &p, &ok, 2, 0)
        .remove_from_isr_keeping_last(1)
        .build()
        .unwrap();
    assert_eq!(built.change.leader, Some(2));
    assert_eq!(built.change.isr, Some(vec![2, 3]));
    assert_eq!(built.change.elr, None, "ISR still at min ISR");
    assert!(built.unclean.is_none());
}

#[test]
fn shrinking_below_min_isr_builds_the_elr() {
    let p = part(&[1, 2, 3], &[1, 2], &[], 1);
    let ok = live(&[1, 3]);
    let built = PartitionChangeBuilder::new(T, 0, &p, &ok, 2, 0)
        .target_isr(vec![1])
        .build()
        .unwrap();
    assert_eq!(built.change.leader, None, "same leader, same leader epoch");
    assert_eq!(built.change.isr, Some(vec![1]));
    assert_eq!(built.change.elr, Some(vec![2]));
    // Growing back to min ISR clears it.
    let mut p = p;
    p.isr = vec![1];
    p.elr = vec![2];
    let built = PartitionChangeBuilder::new(T, 0, &p, &ok, 2, 0)
        .target_isr(vec![1, 3])
        .build()
        .unwrap();
    assert_eq!(built.change.elr, Some(vec![]));
}

#[test]
fn the_last_isr_member_stays_when_fenced_and_leads_again() {
    let p = part(&[1], &[1], &[], 1);
    let none = live(&[]);
    let built = PartitionChangeBuilder::new(T, 0, &p, &none, 1, 0)
        .remove_from_isr_keeping_last(1)
        .build()
        .unwrap();
    assert_eq!(built.change.leader, Some(NO_NODE));
    assert_eq!(built.change.isr, None, "the last member is kept");
    let mut offline = p.clone();
    offline.merge(&built.change);
    let back = live(&[1]);
    let built = PartitionChangeBuilder::new(T, 0, &offline, &back, 1, 0)
        .build()
        .unwrap();
    assert_eq!(built.change.leader, Some(1));
    assert!(built.unclean.is_none());
}

#[test]
fn an_elr_leader_becomes_the_isr_and_the_old_isr_member_moves_to_the_elr() {
    // min ISR 2: ISR [3] (fenced, kept), ELR [2]; 2 returns.
    let p = part(&[1, 2, 3], &[3], &[2], NO_NODE);
    let ok = live(&[2]);
    let built = PartitionChangeBuilder::new(T, 0, &p, &ok, 2, 0)
        .build()
        .unwrap();
    assert_eq!(built.change.leader, Some(2));
    assert_eq!(built.change.isr, Some(vec![2]));
    assert_eq!(built.change.elr, Some(vec![3]));
    assert!(built.unclean.is_none());
}

#[test]
fn unclean_elections_replace_the_isr_and_are_recorded() {
    let p = part(&[1, 2, 3], &[3], &[], NO_NODE);
    let ok = live(&[1]);
    assert!(
        PartitionChangeBuilder::new(T, 4, &p, &ok, 1, 99)
            .build()
            .is_none(),
        "nothing to do without unclean elections"
    );
    let built = PartitionChangeBuilder::new(T, 4, &p, &ok, 1, 99)
        .unclean_allowed(true)
        .build()
        .unwrap();
    assert_eq!(built.change.leader, Some(1));
    assert_eq!(built.change.isr, Some(vec![1]));
    let u = built.unclean.clone().unwrap();
    assert_eq!(
        (
            u.partition,
            u.leader,
            u.leader_epoch,
            u.replaced_isr,
            u.time_ms
        ),
        (4, 1, 6, vec![3], 99)
    );
    assert_eq!(built.into_records().count(), 2);
}

#[test]
fn a_lost_last_replica_empties_the_isr_and_is_remembered_as_last_known_leader() {
    // RF 2, min ISR 1: 2 led alone; it restarted uncleanly.
    let p = part(&[1, 2], &[2], &[], 2);
    let none = live(&[]);
    let built = PartitionChangeBuilder::new(T, 0, &p, &none, 1, 0)
        .remove_lost_replica(2)
        .build()
        .unwrap();
    assert_eq!(built.change.leader, Some(NO_NODE));
    assert_eq!(built.change.isr, Some(vec![]));
    assert_eq!(built.change.last_known_elr, Some(vec![2]));
    let mut after = p.clone();
    after.merge(&built.change);
    // It comes back first: balanced recovery elects it, and says so.
    let two = live(&[2]);
    let built = PartitionChangeBuilder::new(T, 0, &after, &two, 1, 5)
        .build()
        .unwrap();
    assert_eq!(built.change.leader, Some(2));
    assert_eq!(built.change.isr, Some(vec![2]));
    assert_eq!(built.change.last_known_elr, Some(vec![]));
    assert!(built.unclean.is_some());
}

#[test]
fn a_lost_replica_leaves_the_elr() {
    let p = part(&[1, 2, 3], &[1], &[2, 3], 1);
    let ok = live(&[1]);
    let built = PartitionChangeBuilder::new(T, 0, &p, &ok, 3, 0)
        .remove_lost_replica(3)
        .build()
        .unwrap();
    assert_eq!(built.change.elr, Some(vec![2]));
    assert_eq!(built.change.leader, None);
}

#[test]
fn nothing_to_change_builds_nothing() {
    let p = part(&[1, 2], &[1, 2], &[], 1);
    let ok = live(&[1, 2]);
    assert!(PartitionChangeBuilder::new(T, 0, &p, &ok, 1, 0)
        .build()
        .is_none());
    assert!(PartitionChangeBuilder::new(T, 0, &p, &ok, 1, 0)
        .election(Election::Preferred)
        .build()
        .is_none());
}
