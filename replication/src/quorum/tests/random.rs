//! Seeded random schedules: proposals, crashes (losing unsynced writes), restarts, network
//! partitions, loss, duplication, reordering, slow fsyncs and compactions, with the safety
//! checks of `history.rs` after every step and a convergence check at the end.
//!
//! `WEIR_SIM_SEEDS=N` runs N seeds (default: a handful that take seconds). A failure prints
//! its seed; `WEIR_SIM_SEED=S` replays that one seed.

use super::cluster::Cluster;
use super::net::Faults;
use crate::quorum::rng::SplitMix64;

/// How many seeds to run: `WEIR_SIM_SEEDS`, else `default`.
pub fn seed_count(default: u64) -> u64 {
    std::env::var("WEIR_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seeds(default: u64) -> Vec<u64> {
    if let Some(seed) = std::env::var("WEIR_SIM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return vec![seed];
    }
    (0..seed_count(default)).collect()
}

/// Steps of chaos per seed, then up to this many more to converge.
const CHAOS_STEPS: u64 = 1500;
const SETTLE_STEPS: u64 = 3000;

/// Everything a schedule did, to show the runs are not idle.
#[derive(Debug, Default)]
struct Tally {
    crashes: u64,
    partitions: u64,
    compactions: u64,
    acked: usize,
    terms: u64,
    snapshots_installed: u64,
}

fn run(seed: u64, tally: &mut Tally) -> Cluster {
    let mut plan = SplitMix64::new(seed ^ 0x05EE_D0FC_4A05);
    let voters: &[i32] = if plan.chance(1, 2) {
        &[1, 2, 3]
    } else {
        &[0, 1, 2, 3, 4]
    };
    let faults = Faults {
        delay_max: plan.range(0, 4),
        drop_per_mille: plan.range(0, 60),
        duplicate_per_mille: plan.range(0, 30),
    };
    let mut c = Cluster::new(voters, seed, faults);
    c.fsync_delay_max = plan.range(0, 3);
    let n = voters.len();
    for _ in 0..CHAOS_STEPS {
        let r = plan.range(0, 1000);
        match r {
            0..=299 => {
                if let Some(a) = c.active() {
                    c.propose(a);
                } else {
                    // Proposals reach non-leaders too: they must refuse them.
                    let i = plan.range(0, n as u64) as usize;
                    c.propose(i);
                }
            }
            300..=304 => {
                let i = plan.range(0, n as u64) as usize;
                if c.nodes[i].is_up() {
                    c.crash(i);
                    tally.crashes += 1;
                }
            }
            305..=334 => {
                let i = plan.range(0, n as u64) as usize;
                if !c.nodes[i].is_up() {
                    c.start(i);
                }
            }
            335..=339 => {
                let size = plan.range(1, n as u64 / 2 + 1) as usize;
                let mut side: Vec<i32> = voters.to_vec();
                for k in (1..side.len()).rev() {
                    let j = plan.range(0, k as u64 + 1) as usize;
                    side.swap(k, j);
                }
                side.truncate(size);
                c.net.heal();
                c.net.partition(&side, voters);
                tally.partitions += 1;
            }
            340..=354 => c.net.heal(),
            355..=364 => {
                let i = plan.range(0, n as u64) as usize;
                if c.compact(i) {
                    tally.compactions += 1;
                }
            }
            _ => {}
        }
        c.step();
    }
    c.settle(SETTLE_STEPS);
    tally.acked += c.history.acked.len();
    tally.terms += c.history.leaders.len() as u64;
    tally.snapshots_installed += c.snapshots_installed;
    let unexpected: Vec<_> = c
        .refused
        .iter()
        .filter(|(reason, _)| !reason.contains("acknowledges entries this leader never had"))
        .collect();
    assert!(
        unexpected.is_empty(),
        "seed {seed}: honest voters' messages refused: {unexpected:?}"
    );
    c
}

#[test]
fn random_schedules_keep_raft_safe_and_converge() {
    let mut tally = Tally::default();
    let seeds = seeds(6);
    for &seed in &seeds {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run(seed, &mut tally);
        }));
        if let Err(panic) = result {
            eprintln!(
                "random_schedules_keep_raft_safe_and_converge: failing seed {seed} \
                 (replay: WEIR_SIM_SEED={seed})"
            );
            std::panic::resume_unwind(panic);
        }
    }
    println!("{} seeds: {tally:?}", seeds.len());
    assert!(tally.acked > 0 && tally.crashes > 0 && tally.partitions > 0);
}

/// The same seed gives the same run, message for message: what makes a printed seed useful.
#[test]
fn a_schedule_replays_exactly_from_its_seed() {
    let fingerprint = |c: &Cluster| {
        (
            c.now,
            c.net.sent,
            c.history.acked.clone(),
            c.history.leaders.clone(),
            c.history.activations.clone(),
            c.nodes[0].sm.clone(),
        )
    };
    let a = run(7, &mut Tally::default());
    let b = run(7, &mut Tally::default());
    assert_eq!(fingerprint(&a), fingerprint(&b));
}
