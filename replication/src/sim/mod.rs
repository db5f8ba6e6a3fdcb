//! Deterministic simulation of a Weir cluster's replication: the crate's pure state machines
//! — partition replication (`partition`: ISR, high watermark, epochs, truncation), the
//! controller (`controller`: registrations, heartbeats and fencing, elections clean, ELR and
//! unclean, AlterPartition) and the controller quorum's raft-rs nodes (`quorum`) — driven
//! as the broker drives them, over a simulated network (delay, loss, duplication, reordering,
//! partitions that heal) and simulated disks (a crash loses what was not fsynced), with
//! crashes, clean shutdowns, pauses and restarts, in virtual time, all from one seed.
//!
//! It lives inside the crate, behind `cfg(test)`, because it builds on the quorum's simulator
//! (`quorum::tests`: its cluster of raft nodes, network and disks) and on the controller's
//! test config validator, which are test code of this crate; an integration test under
//! `tests/` could not reach them without a feature that exports test code.
//!
//! Modules: [`world`] (the nodes, the networks, the step), [`plan`] (one seeded run: settings,
//! topics, the fault schedule, healing and the final checks), [`broker`] (a broker's
//! lifecycle, controller client, metadata and partitions), [`replica`] (one partition on one
//! broker: the glue around `LeaderState` and `FollowerState`), [`controller`] (a voter's
//! `ControllerState` driven over its quorum node), [`client`] (the producers), [`log`] (a
//! partition log with durability), [`msg`] (what nodes send each other), [`oracle`] (the
//! invariants), [`trace`] (the event log), [`env`] (settings and the bundle every component
//! acts with).
//!
//! `cargo test -p weir-replication sim::` runs a few seeds; `WEIR_SIM_SEEDS=N` runs seeds
//! `0..N` (`WEIR_SIM_FIRST_SEED` moves the start); `WEIR_SIM_SEED=S` replays seed `S` alone and
//! prints its whole trace (`WEIR_SIM_VERBOSE=1` adds every high watermark move). A failing
//! seed prints the tail of its trace and the line to replay it.

mod broker;
mod client;
mod controller;
mod env;
mod log;
mod msg;
mod oracle;
mod plan;
mod replica;
mod trace;
mod world;

use plan::Tally;

/// Seeds that once broke an invariant, replayed by every run (see each fix's commit): 273, a
/// leader dropping its pending ISR expansion on metadata repeating its partition epoch
/// (`leader::tests::the_same_partition_epoch_again_keeps_a_pending_expansion`); 173, the ELR
/// kept across a `min.insync.replicas` change (`scenarios::a_min_isr_change_clears_the_elr`).
const REGRESSIONS: &[u64] = &[173, 273];

/// `WEIR_SIM_VERBOSE=1`: the trace also gets every high watermark move with the leader's view
/// of its followers (long; for reading one replayed seed).
fn verbose() -> bool {
    static VERBOSE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VERBOSE.get_or_init(|| std::env::var("WEIR_SIM_VERBOSE").is_ok_and(|v| v == "1"))
}

/// How many seeds a default run takes: a few seconds in a debug build.
const DEFAULT_SEEDS: u64 = 4;

fn seeds() -> (Vec<u64>, bool) {
    if let Some(seed) = std::env::var("WEIR_SIM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return (vec![seed], true);
    }
    let n = crate::quorum::tests::random::seed_count(DEFAULT_SEEDS);
    let first = std::env::var("WEIR_SIM_FIRST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    ((first..first + n).collect(), false)
}

/// Runs `seed`; on a violation prints the seed, how to replay it and the trace, then fails.
fn run_seed(seed: u64, tally: &mut Tally, full_trace: bool) -> world::World {
    let (mut world, mut scenario) = plan::prepare(seed);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        plan::execute(&mut world, &mut scenario, tally);
    }));
    let trace = &world.trace;
    if full_trace {
        eprintln!("{}", trace.tail(usize::MAX));
    }
    if let Err(panic) = result {
        if !full_trace {
            eprintln!("{}", trace.tail(400));
        }
        eprintln!("simulation: seed {seed} failed (replay: WEIR_SIM_SEED={seed})");
        std::panic::resume_unwind(panic);
    }
    world
}

#[test]
fn random_runs_keep_replication_safe() {
    let (seeds, replay) = seeds();
    let mut tally = Tally::default();
    for &seed in &seeds {
        run_seed(seed, &mut tally, replay);
    }
    println!("{} seeds: {tally:?}", seeds.len());
    if !replay {
        assert!(
            tally.acked_all > 0 && tally.takeovers > 0 && tally.crashes > 0,
            "the runs did nothing: {tally:?}"
        );
    }
}

#[test]
fn regression_seeds_stay_fixed() {
    let mut tally = Tally::default();
    for &seed in REGRESSIONS {
        run_seed(seed, &mut tally, false);
    }
}

/// The same seed gives the same run, event for event: what makes a printed seed useful.
#[test]
fn a_run_replays_exactly_from_its_seed() {
    let fingerprint = |seed| {
        run_seed(seed, &mut Tally::default(), false)
            .trace
            .tail(usize::MAX)
    };
    assert_eq!(fingerprint(11), fingerprint(11));
}
