//! Named scenarios on the simulated cluster: the behaviours `docs/CLUSTER.md` promises.

use super::cluster::Cluster;
use super::net::Faults;
use crate::quorum::{QuorumTimeouts, Role};

/// Election timeout range of the default configuration, in ticks: [20, 30).
const ELECTION_MIN: u64 = 20;
const ELECTION_MAX: u64 = 30;

fn stable(voters: &[i32], seed: u64, faults: Faults) -> Cluster {
    let mut c = Cluster::new(voters, seed, faults);
    let took = c.run_until(500, |c| c.active().is_some());
    assert!(took.is_some(), "seed {seed}: no leader elected");
    c
}

fn commit_proposals(c: &mut Cluster, n: usize) {
    let before = c.history.acked.len();
    for _ in 0..n {
        let a = c.active().expect("an active leader");
        c.propose(a);
        c.step();
    }
    let took = c.run_until(200, |c| c.history.acked.len() == before + n);
    assert!(
        took.is_some(),
        "seed {}: proposals did not all commit",
        c.seed
    );
}

#[test]
fn config_default_range_is_what_these_tests_assume() {
    let c = crate::quorum::QuorumConfig::new(1, &[1], QuorumTimeouts::default(), 0).unwrap();
    assert_eq!(
        (
            c.election_timeout_ticks as u64,
            c.election_timeout_max_ticks as u64
        ),
        (ELECTION_MIN, ELECTION_MAX)
    );
}

#[test]
fn a_single_voter_leads_at_once_and_keeps_its_log_across_restarts() {
    let mut c = Cluster::new(&[0], 1, Faults::NONE);
    // Elected at construction; active once its first entry is persisted and applied.
    let took = c.run_until(2, |c| c.active().is_some());
    assert_eq!(took, Some(1), "a quorum of one leads within its first tick");
    commit_proposals(&mut c, 10);
    c.compact(0);
    commit_proposals(&mut c, 5);
    let before = c.nodes[0].sm.clone();
    c.crash(0);
    c.start(0);
    assert_eq!(c.run_until(2, |c| c.active().is_some()), Some(1));
    assert_eq!(c.nodes[0].sm.entries, before.entries);
    commit_proposals(&mut c, 3);
    c.settle(200);
}

#[test]
fn three_and_five_voters_elect_one_leader_and_apply_in_one_order() {
    for (voters, seed) in [(&[1, 2, 3][..], 11), (&[1, 2, 3, 4, 5][..], 12)] {
        let mut c = Cluster::new(voters, seed, Faults::LAN);
        let took = c.run_until(500, |c| c.active().is_some()).expect("elected");
        println!(
            "{} voters: first leader active after {took} ticks",
            voters.len()
        );
        assert!(took <= 2 * ELECTION_MAX, "first election took {took} ticks");
        commit_proposals(&mut c, 30);
        c.settle(500);
        assert_eq!(c.history.acked.len(), 30);
    }
}

/// Failover time: from the leader's death to a new active leader. A follower notices after
/// its election timeout ([20, 30) ticks since the last heartbeat); pre-vote, vote and the new
/// leader's first commit then take a round trip each (at most 4 ticks on this network). Two
/// followers drawing the same timeout split the vote and cost another timeout: the median
/// must be within the range plus the round trips, every failover within three timeouts.
#[test]
fn a_killed_leader_is_replaced_within_the_election_timeout() {
    const ROUND_TRIPS: u64 = 3 * 4;
    let mut times = Vec::new();
    for (voters, seed) in [
        (&[1, 2, 3][..], 21),
        (&[1, 2, 3, 4, 5][..], 22),
        (&[0, 1, 2][..], 23),
    ] {
        for round in 0..8 {
            let mut c = stable(voters, seed * 100 + round, Faults::LAN);
            commit_proposals(&mut c, 3);
            let old = c.active().expect("active");
            c.crash(old);
            let took = c
                .run_until(10 * ELECTION_MAX, |c| c.active().is_some_and(|a| a != old))
                .expect("a new leader");
            assert!(
                took <= 3 * ELECTION_MAX + ROUND_TRIPS,
                "failover took {took} ticks"
            );
            times.push(took);
            commit_proposals(&mut c, 3);
            c.settle(1000);
        }
    }
    times.sort_unstable();
    let median = times[times.len() / 2];
    println!(
        "failover over {} kills: min {} median {median} max {} ticks (tick = 50 ms): {times:?}",
        times.len(),
        times[0],
        times[times.len() - 1]
    );
    assert!(
        times[0] >= ELECTION_MIN,
        "nobody campaigns before the election timeout"
    );
    assert!(
        median <= ELECTION_MAX + ROUND_TRIPS,
        "median failover {median} ticks"
    );
}

#[test]
fn a_minority_leader_steps_down_and_cannot_disrupt_the_majority_when_it_returns() {
    let voters = [1, 2, 3, 4, 5];
    let mut c = stable(&voters, 31, Faults::LAN);
    commit_proposals(&mut c, 5);
    let old = c.active().expect("active");
    let old_id = c.nodes[old].id;
    let buddy = voters.iter().copied().find(|v| *v != old_id).unwrap();
    let term_before = c.nodes[old].quorum().term();
    c.net.partition(&[old_id, buddy], &voters);
    // The old leader accepts a proposal but cannot commit it.
    c.propose(old);
    let acked = c.history.acked.len();
    let stepped_down = c
        .run_until(ELECTION_MAX * 3, |c| {
            c.nodes[old].quorum().status().role != Role::Leader
        })
        .expect("check-quorum makes the isolated leader step down");
    println!("isolated leader stepped down after {stepped_down} ticks");
    // raft-rs checks the quorum every election timeout (20 ticks), counting the followers
    // heard from since the previous check: the first check after the cut may still count
    // messages from before it.
    assert!(
        stepped_down <= 2 * ELECTION_MIN + 2,
        "check-quorum took {stepped_down} ticks"
    );
    assert_eq!(
        c.history.acked.len(),
        acked,
        "nothing commits in the minority"
    );
    let new = c
        .run_until(ELECTION_MAX * 3, |c| c.active().is_some_and(|a| a != old))
        .map(|_| c.active().unwrap())
        .expect("the majority elects a leader");
    commit_proposals(&mut c, 5);
    assert_eq!(
        c.history.indefinite, 1,
        "the minority's proposal has an unknown fate"
    );
    assert!(
        c.history.resignations.iter().any(|(_, n, _)| *n == old_id),
        "the old leader reported its resignation"
    );
    let (leader, term) = (c.nodes[new].id, c.nodes[new].quorum().term());
    // The minority keeps timing out, but pre-vote fails there without a majority: its terms
    // never move, so it has nothing to disrupt the majority with when it returns.
    c.run(ELECTION_MAX * 5);
    for id in [old_id, buddy] {
        let q = c.nodes[c.index_of(id)].quorum();
        assert_eq!(
            q.term(),
            term_before,
            "node {id} in the minority kept its term"
        );
        assert_ne!(q.status().role, Role::Leader);
    }
    c.net.heal();
    c.run(ELECTION_MAX * 10);
    assert_eq!(
        c.active().map(|a| c.nodes[a].id),
        Some(leader),
        "the leader stays"
    );
    assert_eq!(
        c.nodes[new].quorum().term(),
        term,
        "no election after the rejoin"
    );
    c.settle(1000);
}

#[test]
fn voters_restarted_from_disk_keep_everything_committed() {
    let mut c = stable(&[1, 2, 3], 41, Faults::LAN);
    c.fsync_delay_max = 2;
    commit_proposals(&mut c, 20);
    for i in 0..3 {
        c.crash(i);
    }
    for i in 0..3 {
        c.start(i);
    }
    c.run_until(500, |c| c.active().is_some())
        .expect("re-elected");
    commit_proposals(&mut c, 5);
    c.settle(1000);
    assert!(c.history.acked.len() >= 25, "settling adds one more");
}

#[test]
fn a_lagging_voter_catches_up_from_a_snapshot() {
    let mut c = stable(&[1, 2, 3], 51, Faults::LAN);
    let lagging = (c.active().unwrap() + 1) % 3;
    c.crash(lagging);
    commit_proposals(&mut c, 40);
    for i in (0..3).filter(|i| *i != lagging) {
        assert!(c.compact(i), "node {i} compacts");
    }
    commit_proposals(&mut c, 3);
    c.start(lagging);
    let target = c.nodes[c.active().unwrap()].sm.applied_index;
    c.run_until(500, |c| c.nodes[lagging].sm.applied_index >= target)
        .expect("the lagging voter catches up");
    assert!(
        c.snapshots_installed > 0,
        "the lagging voter needed the snapshot: its entries were compacted away"
    );
    c.settle(500);
}

#[test]
fn a_lost_snapshot_is_sent_again() {
    let mut c = stable(&[1, 2, 3], 61, Faults::LAN);
    let lagging = (c.active().unwrap() + 1) % 3;
    c.crash(lagging);
    commit_proposals(&mut c, 10);
    for i in (0..3).filter(|i| *i != lagging) {
        c.compact(i);
    }
    c.drop_snapshots = 1;
    c.start(lagging);
    let target = c.nodes[c.active().unwrap()].sm.applied_index;
    let took = c
        .run_until(1000, |c| c.nodes[lagging].sm.applied_index >= target)
        .expect("caught up after the resend");
    println!("caught up {took} ticks after restart, one snapshot lost");
    assert_eq!(c.drop_snapshots, 0, "a snapshot was dropped");
    c.settle(500);
}

#[test]
fn describe_quorum_shows_each_voters_lag_and_last_contact() {
    let mut c = stable(&[1, 2, 3], 71, Faults::LAN);
    commit_proposals(&mut c, 5);
    let leader = c.active().unwrap();
    let (down, up) = ((leader + 1) % 3, (leader + 2) % 3);
    let (down_id, up_id) = (c.nodes[down].id, c.nodes[up].id);
    c.crash(down);
    commit_proposals(&mut c, 10);
    c.run(40);
    let s = c.nodes[leader].quorum().status();
    assert_eq!(
        (s.role, s.active, s.leader),
        (Role::Leader, true, Some(c.nodes[leader].id))
    );
    let voter = |id| s.voters.iter().find(|v| v.node_id == id).unwrap().clone();
    let me = voter(c.nodes[leader].id);
    assert_eq!(me.match_index, Some(s.last_index));
    assert_eq!(
        (me.last_contact_ticks_ago, me.last_caught_up_ticks_ago),
        (Some(0), Some(0))
    );
    let live = voter(up_id);
    assert_eq!(
        live.match_index,
        Some(s.last_index),
        "the live follower is caught up"
    );
    assert!(live.last_contact_ticks_ago.unwrap() <= 4);
    assert!(live.last_caught_up_ticks_ago.unwrap() <= 4);
    let dead = voter(down_id);
    assert!(
        dead.match_index.unwrap() + 10 <= s.commit_index,
        "the dead one lags"
    );
    assert!(dead.last_contact_ticks_ago.unwrap() >= 40);
    assert_eq!(
        s.max_follower_lag(),
        Some(s.last_index - dead.match_index.unwrap())
    );
    assert_eq!(
        s.commit_index, s.last_index,
        "the high watermark is the committed end"
    );
    // Followers do not track the others' logs.
    let f = c.nodes[up].quorum().status();
    assert!(f.voters.iter().all(|v| v.match_index.is_none()));
    assert_eq!(f.leader, Some(c.nodes[leader].id));
    assert_eq!(f.max_follower_lag(), None);
}
