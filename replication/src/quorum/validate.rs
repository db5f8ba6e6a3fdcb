//! The checks a message from the network passes before raft-rs sees it.
//!
//! raft-rs trusts its input: a voter it knows may make it panic with a malformed message (an
//! append whose entries do not follow each other, a heartbeat committing past the log, a term
//! that overflows). Raft assumes honest voters, and so does Weir (only configured voters may
//! connect), but a corrupted or hostile frame must not bring a broker down: these checks refuse
//! every message whose shape raft-rs would choke on, and every sender that is not a voter.

use super::ids::{node_of, peer_of};
use super::storage::QuorumStorage;
use super::{QuorumConfig, INDEX_MAX, TERM_MAX};
use crate::types::NodeId;
use raft::eraftpb::{EntryType, Message, MessageType};
use raft::RaftLog;

/// Why a message was not stepped. The broker logs it; for `NotAVoter` it also closes the
/// connection (the peer is misconfigured or not a controller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("message from peer {from_peer} (node {from:?}), which is not a voter of this quorum")]
    NotAVoter {
        from_peer: u64,
        from: Option<NodeId>,
    },
    #[error("message for peer {to_peer}, not for this node")]
    WrongRecipient { to_peer: u64 },
    #[error("message type {0:?} is not part of Weir's quorum protocol")]
    UnexpectedType(MessageType),
    #[error("malformed {msg_type:?} from node {from}: {reason}")]
    Malformed {
        msg_type: MessageType,
        from: NodeId,
        reason: &'static str,
    },
    #[error("a round is outstanding: carry it out and advance before further input")]
    RoundOutstanding,
    #[error("raft-rs refused the message: {0}")]
    Raft(String),
}

/// The message types voters exchange. raft-rs's other types are local (ticks, proposals
/// stepped into the node itself) or belong to features Weir does not use (leader transfer,
/// read index, forwarded proposals): refusing them keeps raft-rs on the paths the simulator
/// tests.
fn is_network_type(t: MessageType) -> bool {
    use MessageType::*;
    matches!(
        t,
        MsgAppend
            | MsgAppendResponse
            | MsgRequestVote
            | MsgRequestVoteResponse
            | MsgRequestPreVote
            | MsgRequestPreVoteResponse
            | MsgSnapshot
            | MsgHeartbeat
            | MsgHeartbeatResponse
    )
}

/// Checks `msg` against the configuration, raft's invariants and the node's log (`log`,
/// entries not yet persisted included); returns the sender.
pub(crate) fn check(
    msg: &Message,
    config: &QuorumConfig,
    log: &RaftLog<QuorumStorage>,
) -> Result<NodeId, StepError> {
    let last_index = log.last_index();
    let msg_type = msg.get_msg_type();
    if !is_network_type(msg_type) {
        return Err(StepError::UnexpectedType(msg_type));
    }
    let from = node_of(msg.from)
        .filter(|n| config.is_voter(*n) && *n != config.node_id)
        .ok_or(StepError::NotAVoter {
            from_peer: msg.from,
            from: node_of(msg.from),
        })?;
    if msg.to != peer_of(config.node_id) {
        return Err(StepError::WrongRecipient { to_peer: msg.to });
    }
    let bad = |reason| StepError::Malformed {
        msg_type,
        from,
        reason,
    };
    if msg.term == 0 {
        // raft-rs takes a term of 0 for a local message and skips its term checks.
        return Err(bad("term 0"));
    }
    if msg.term > TERM_MAX || msg.log_term > TERM_MAX {
        return Err(bad("term beyond the largest epoch"));
    }
    if [msg.index, msg.commit, msg.reject_hint]
        .iter()
        .any(|i| *i > INDEX_MAX)
    {
        return Err(bad("index beyond the largest offset"));
    }
    match msg_type {
        MessageType::MsgAppend => {
            check_entries(msg, config).map_err(bad)?;
            check_entry_terms(msg).map_err(bad)?;
        }
        MessageType::MsgHeartbeat if msg.commit > last_index => {
            // raft-rs would commit past its log end, a fatal error.
            return Err(bad("heartbeat commits beyond this node's log"));
        }
        MessageType::MsgAppendResponse if !msg.reject && msg.index > last_index => {
            return Err(bad("acknowledges entries this leader never had"));
        }
        MessageType::MsgSnapshot => check_snapshot(msg, config).map_err(bad)?,
        _ => {}
    }
    Ok(from)
}

fn check_entries(msg: &Message, config: &QuorumConfig) -> Result<(), &'static str> {
    let mut expected = msg.index.checked_add(1).ok_or("index overflows")?;
    let mut previous_term = msg.log_term;
    for e in msg.get_entries() {
        if e.index != expected {
            return Err("entries do not follow the previous index");
        }
        if e.term < previous_term || e.term > msg.term {
            return Err("entry terms out of order");
        }
        if e.get_entry_type() != EntryType::EntryNormal {
            return Err("configuration entries are not used by the static quorum");
        }
        if e.data.len() > config.entry_bytes_max {
            return Err("entry larger than the entry size limit");
        }
        previous_term = e.term;
        expected = expected.checked_add(1).ok_or("index overflows")?;
    }
    if expected - 1 > INDEX_MAX {
        return Err("index beyond the largest offset");
    }
    Ok(())
}

/// raft-rs appends after `(index, log_term)` when its log has that term at that index, and it
/// reads the term of any index outside its log as 0: an append claiming term 0 for a real
/// index would be appended after a gap, a fatal error. (An append reaching back below the
/// commit index, where a conflict would also be fatal, raft-rs answers without appending.)
fn check_entry_terms(msg: &Message) -> Result<(), &'static str> {
    if msg.index > 0 && msg.log_term == 0 {
        return Err("previous entry with term 0");
    }
    if msg.get_entries().iter().any(|e| e.term == 0) {
        return Err("entry with term 0");
    }
    Ok(())
}

fn check_snapshot(msg: &Message, config: &QuorumConfig) -> Result<(), &'static str> {
    let meta = msg.get_snapshot().get_metadata();
    if meta.index == 0 || meta.index > INDEX_MAX {
        return Err("snapshot index out of range");
    }
    if meta.term == 0 || meta.term > msg.term {
        return Err("snapshot term out of range");
    }
    let cs = meta.get_conf_state();
    let mut voters = cs.voters.clone();
    voters.sort_unstable();
    let ours: Vec<u64> = config.voters.iter().map(|v| peer_of(*v)).collect();
    if voters != ours
        || !cs.learners.is_empty()
        || !cs.voters_outgoing.is_empty()
        || !cs.learners_next.is_empty()
    {
        // raft-rs would adopt the snapshot's voter set: a membership change by the back door.
        return Err("snapshot names a different voter set");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::QuorumTimeouts;
    use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};

    fn config() -> QuorumConfig {
        QuorumConfig::new(1, &[1, 2, 3], QuorumTimeouts::default(), 0).unwrap()
    }

    fn msg(t: MessageType, from: NodeId) -> Message {
        let mut m = Message::default();
        m.set_msg_type(t);
        m.from = peer_of(from);
        m.to = peer_of(1);
        m.term = 2;
        m
    }

    /// A log of `last` entries of term 1, committed up to `committed`.
    fn log(last: u64, committed: u64) -> RaftLog<QuorumStorage> {
        let entries = (1..=last).map(|i| entry(i, 1)).collect();
        let storage = QuorumStorage::new(
            HardState::default(),
            ConfState::from((vec![2, 3, 4], vec![])),
            Snapshot::default(),
            entries,
        );
        let mut log = RaftLog::new(storage, slog::Logger::root(slog::Discard, slog::o!()));
        log.committed = committed;
        log
    }

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Entry::default()
        }
    }

    #[test]
    fn senders_and_types_are_checked() {
        let c = config();
        assert_eq!(
            check(&msg(MessageType::MsgHeartbeat, 2), &c, &log(0, 0)),
            Ok(2)
        );
        assert!(matches!(
            check(&msg(MessageType::MsgHeartbeat, 9), &c, &log(0, 0)),
            Err(StepError::NotAVoter { from: Some(9), .. })
        ));
        assert!(matches!(
            check(&msg(MessageType::MsgHeartbeat, 1), &c, &log(0, 0)),
            Err(StepError::NotAVoter { .. })
        ));
        let mut m = msg(MessageType::MsgHeartbeat, 2);
        m.from = 0;
        assert!(matches!(
            check(&m, &c, &log(0, 0)),
            Err(StepError::NotAVoter { from: None, .. })
        ));
        let mut m = msg(MessageType::MsgHeartbeat, 2);
        m.to = peer_of(3);
        assert!(matches!(
            check(&m, &c, &log(0, 0)),
            Err(StepError::WrongRecipient { .. })
        ));
        for t in [
            MessageType::MsgHup,
            MessageType::MsgPropose,
            MessageType::MsgTimeoutNow,
            MessageType::MsgReadIndex,
        ] {
            assert_eq!(
                check(&msg(t, 2), &c, &log(0, 0)),
                Err(StepError::UnexpectedType(t))
            );
        }
    }

    #[test]
    fn shapes_raft_rs_would_panic_on_are_refused() {
        let c = config();
        let mut m = msg(MessageType::MsgAppend, 2);
        m.index = 4;
        m.log_term = 1;
        m.set_entries(vec![entry(5, 1), entry(6, 2)].into());
        assert_eq!(check(&m, &c, &log(0, 0)), Ok(2));
        m.set_entries(vec![entry(5, 1), entry(7, 2)].into());
        assert!(check(&m, &c, &log(0, 0)).is_err(), "a gap");
        m.set_entries(vec![entry(5, 2), entry(6, 1)].into());
        assert!(check(&m, &c, &log(0, 0)).is_err(), "a decreasing term");
        m.set_entries(vec![entry(5, 3)].into());
        assert!(
            check(&m, &c, &log(0, 0)).is_err(),
            "a term above the message's"
        );
        let mut m = msg(MessageType::MsgHeartbeat, 2);
        m.commit = 8;
        assert!(check(&m, &c, &log(7, 0)).is_err());
        assert!(check(&m, &c, &log(8, 0)).is_ok());
        let mut m = msg(MessageType::MsgHeartbeat, 2);
        m.term = 0;
        assert!(check(&m, &c, &log(0, 0)).is_err());
        m.term = TERM_MAX + 1;
        assert!(check(&m, &c, &log(0, 0)).is_err());
    }

    #[test]
    fn appends_must_not_claim_term_0() {
        let c = config();
        let l = log(6, 5);
        let mut m = msg(MessageType::MsgAppend, 2);
        m.index = 3;
        m.log_term = 1;
        m.set_entries(vec![entry(4, 1), entry(5, 1), entry(6, 2)].into());
        assert_eq!(check(&m, &c, &l), Ok(2));
        m.log_term = 0;
        assert!(
            check(&m, &c, &l).is_err(),
            "raft-rs reads term 0 as a match anywhere"
        );
        m.index = 9;
        assert!(check(&m, &c, &l).is_err(), "and would append after a gap");
        m.index = 0;
        m.set_entries(vec![entry(1, 0)].into());
        assert!(check(&m, &c, &l).is_err());
    }

    #[test]
    fn snapshots_must_keep_the_voter_set() {
        let c = config();
        let mut m = msg(MessageType::MsgSnapshot, 2);
        let meta = m.mut_snapshot().mut_metadata();
        meta.index = 10;
        meta.term = 2;
        meta.set_conf_state(ConfState::from((vec![3, 2, 4], vec![])));
        assert!(check(&m, &c, &log(0, 0)).is_ok());
        m.mut_snapshot()
            .mut_metadata()
            .set_conf_state(ConfState::from((vec![2, 3, 4, 5], vec![])));
        assert!(check(&m, &c, &log(0, 0)).is_err());
    }
}
