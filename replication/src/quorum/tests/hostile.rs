//! Input from outside the quorum: non-voters are refused, and no message — random, corrupted,
//! or of a type Weir does not use — makes a voter panic.

use crate::quorum::ids::peer_of;
use crate::quorum::rng::SplitMix64;
use crate::quorum::{
    wire, Entry, Message, MessageType, QuorumConfig, QuorumNode, QuorumTimeouts, Role, StepError,
};
use bytes::Bytes;

fn node(id: i32, voters: &[i32]) -> QuorumNode {
    let config = QuorumConfig::new(id, voters, QuorumTimeouts::default(), 5).unwrap();
    QuorumNode::bootstrap(config).unwrap()
}

/// A driver that persists nothing (the node's own storage mirrors each round at `advance`):
/// enough to exercise the node, not to survive a crash.
fn drain(q: &mut QuorumNode) -> Vec<Message> {
    let mut sent = Vec::new();
    while let Some(rd) = q.ready() {
        sent.extend(rd.messages.into_iter().map(|o| o.message));
        sent.extend(rd.persisted_messages.into_iter().map(|o| o.message));
        q.advance().unwrap();
    }
    sent
}

fn msg(t: MessageType, from: i32, to: i32, term: u64) -> Message {
    Message {
        msg_type: t,
        from: peer_of(from),
        to: peer_of(to),
        term,
        ..Message::default()
    }
}

#[test]
fn messages_from_non_voters_are_refused_and_change_nothing() {
    let mut q = node(1, &[1, 2, 3]);
    drain(&mut q);
    let before = q.status();
    // A vote request from a stranger with a huge term would otherwise make the voter adopt it.
    let m = msg(MessageType::MsgRequestVote, 9, 1, 1000);
    assert_eq!(
        q.step(m),
        Err(StepError::NotAVoter {
            from_peer: peer_of(9),
            from: Some(9)
        })
    );
    let m = msg(MessageType::MsgAppend, 2, 3, 5);
    assert_eq!(
        q.step(m),
        Err(StepError::WrongRecipient {
            to_peer: peer_of(3)
        })
    );
    let m = msg(MessageType::MsgTimeoutNow, 2, 1, 5);
    assert_eq!(
        q.step(m),
        Err(StepError::UnexpectedType(MessageType::MsgTimeoutNow))
    );
    assert!(!q.has_ready());
    assert_eq!(q.status(), before, "a refused message leaves no trace");
}

#[test]
fn input_during_a_round_is_refused() {
    let mut q = node(1, &[1]);
    let _rd = q.ready().expect("the single voter's first round");
    assert_eq!(q.tick(), Err(StepError::RoundOutstanding));
    assert!(q.ready().is_none(), "one round at a time");
    q.advance().unwrap();
    assert!(q.advance().is_err(), "no round left to advance");
    q.tick().unwrap();
}

/// A message of any type with fields near the node's state, so that raft-rs's deeper paths
/// (conflicts, commits, votes, snapshots) are reached, not only the cheap refusals.
fn random_message(rng: &mut SplitMix64, q: &QuorumNode) -> Message {
    let s = q.status();
    let types = [
        MessageType::MsgAppend,
        MessageType::MsgAppendResponse,
        MessageType::MsgRequestVote,
        MessageType::MsgRequestVoteResponse,
        MessageType::MsgRequestPreVote,
        MessageType::MsgRequestPreVoteResponse,
        MessageType::MsgSnapshot,
        MessageType::MsgHeartbeat,
        MessageType::MsgHeartbeatResponse,
        MessageType::MsgHup,
        MessageType::MsgPropose,
        MessageType::MsgTransferLeader,
        MessageType::MsgTimeoutNow,
        MessageType::MsgReadIndex,
        MessageType::MsgUnreachable,
        MessageType::MsgCheckQuorum,
    ];
    let from = [2, 3, 2, 3, 1, 9][rng.range(0, 6) as usize];
    if rng.chance(1, 2) {
        // Answers that move the node on (to leadership, and along the leader's paths).
        let answer = match s.role {
            Role::PreCandidate => Some((MessageType::MsgRequestPreVoteResponse, s.term + 1)),
            Role::Candidate => Some((MessageType::MsgRequestVoteResponse, s.term)),
            Role::Leader if rng.chance(1, 2) => Some((MessageType::MsgAppendResponse, s.term)),
            Role::Leader => Some((MessageType::MsgHeartbeatResponse, s.term)),
            Role::Follower => None,
        };
        if let Some((t, term)) = answer {
            let mut m = msg(t, from, 1, term);
            m.index = rng.range(0, s.last_index + 2);
            m.reject = rng.chance(1, 5);
            m.reject_hint = rng.range(0, s.last_index + 2);
            m.commit = rng.range(0, s.commit_index + 2);
            return m;
        }
    }
    let t = types[rng.range(0, types.len() as u64) as usize];
    let to = if rng.chance(1, 20) { 3 } else { 1 };
    let term = rng.range(0, s.term + 3);
    let mut m = msg(t, from, to, term);
    m.index = rng.range(0, s.last_index + 4);
    m.log_term = rng.range(0, term + 1);
    m.commit = rng.range(0, s.last_index + 4);
    m.reject = rng.chance(1, 3);
    m.reject_hint = rng.range(0, s.last_index + 4);
    if t == MessageType::MsgAppend {
        let n = rng.range(0, 4);
        let mut entry_term = m.log_term;
        let entries: Vec<Entry> = (0..n)
            .map(|k| {
                entry_term = rng.range(entry_term, term + 1);
                Entry {
                    index: m.index + 1 + k,
                    term: entry_term,
                    data: Bytes::from(vec![k as u8; rng.range(0, 3) as usize]),
                    ..Entry::default()
                }
            })
            .collect();
        m.set_entries(entries.into());
    }
    if t == MessageType::MsgSnapshot {
        let meta = m.mut_snapshot().mut_metadata();
        meta.index = rng.range(0, s.last_index + 6);
        meta.term = rng.range(0, term + 1);
        let voters = if rng.chance(1, 4) {
            vec![2, 3]
        } else {
            vec![2, 3, 4]
        };
        meta.mut_conf_state().voters = voters;
    }
    m
}

/// Random and corrupted messages interleaved with ticks and proposals, over many seeds: the
/// node may refuse them or act on them, never panic.
#[test]
fn random_and_corrupted_messages_never_panic_a_voter() {
    let seeds = super::random::seed_count(200);
    let mut stepped = 0u64;
    let mut refused = 0u64;
    let mut led = 0u64;
    let (mut proposed, mut compacted) = (0u64, 0u64);
    for seed in 0..seeds {
        if std::env::var("DBG").is_ok() && seed != 2 {
            continue;
        }
        let mut rng = SplitMix64::new(seed);
        let mut q = node(1, &[1, 2, 3]);
        let mut frames: Vec<Bytes> = Vec::new();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for _ in 0..600 {
                match rng.range(0, 10) {
                    0..=2 => q.tick().unwrap(),
                    3 => match rng.range(0, 4) {
                        0 => {
                            let applied = q.status().applied_index;
                            if q.compact(applied, Bytes::from_static(b"image")).is_ok() {
                                compacted += 1;
                            }
                        }
                        1 => q.report_unreachable([2, 3, 9][rng.range(0, 3) as usize]),
                        2 => {
                            q.report_snapshot([2, 3, 1][rng.range(0, 3) as usize], rng.chance(1, 2))
                        }
                        _ => {
                            if q.propose(Bytes::from_static(b"records")).is_ok() {
                                proposed += 1;
                            }
                        }
                    },
                    4 if !frames.is_empty() => {
                        let mut b = frames[rng.range(0, frames.len() as u64) as usize].to_vec();
                        for _ in 0..rng.range(1, 4) {
                            let at = rng.range(0, b.len() as u64) as usize;
                            b[at] ^= rng.range(1, 256) as u8;
                        }
                        if rng.chance(1, 4) {
                            b.truncate(rng.range(0, b.len() as u64 + 1) as usize);
                        }
                        if let Ok(m) = wire::decode(&Bytes::from(b)) {
                            if std::env::var("DBG").is_ok() {
                                eprintln!("status {:?}\nstep corrupted {:?}", q.status(), m);
                            }
                            match q.step(m) {
                                Ok(()) => stepped += 1,
                                Err(_) => refused += 1,
                            }
                        }
                    }
                    _ => {
                        let m = random_message(&mut rng, &q);
                        if std::env::var("DBG").is_ok() {
                            eprintln!("status {:?}\nstep {:?}", q.status(), m);
                        }
                        frames.push(Bytes::from(wire::encode(&m).unwrap()));
                        match q.step(m) {
                            Ok(()) => stepped += 1,
                            Err(_) => refused += 1,
                        }
                    }
                }
                drain(&mut q);
                if q.status().role == Role::Leader {
                    led += 1;
                }
            }
        }));
        if let Err(panic) = result {
            eprintln!("random_and_corrupted_messages_never_panic_a_voter: failing seed {seed}");
            std::panic::resume_unwind(panic);
        }
    }
    println!(
        "{seeds} seeds: {stepped} messages stepped, {refused} refused, {led} steps as leader, \
         {proposed} proposals, {compacted} compactions"
    );
    assert!(
        stepped > 0 && refused > 0 && led > 0 && proposed > 0 && compacted > 0,
        "every path is exercised"
    );
}
