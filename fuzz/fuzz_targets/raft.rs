//! Raft messages from the network, as a controller voter handles them: each decoded with
//! `replication::quorum::wire::decode` (protobuf), then stepped into a real voter
//! (`QuorumNode::step`, whose `validate::check` must refuse everything raft-rs would choke on),
//! the voter's rounds drained after each message as the driver would, with ticks in between.
//!
//! Input: frames, each a 2-byte length then a message; a length's top bit asks for a tick
//! before that message. The voter is node 1 of voters {1, 2, 3}, fresh (term 0) or, when the
//! first byte is odd, after winning an election.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir_replication::quorum::{
    wire, Message, MessageType, QuorumConfig, QuorumNode, QuorumTimeouts,
};

const BASE: usize = 4 << 20;
const PER_BYTE: usize = 1024;

fn drain(q: &mut QuorumNode) {
    // Rounds are bounded: a node has finite work per input.
    for _ in 0..64 {
        if q.ready().is_none() {
            return;
        }
        let _ = q.advance();
    }
    panic!("a voter kept producing rounds after one input");
}

fn voter(leader: bool) -> QuorumNode {
    let config = QuorumConfig::new(1, &[1, 2, 3], QuorumTimeouts::default(), 5).expect("config");
    let mut q = QuorumNode::bootstrap(config).expect("bootstrap");
    drain(&mut q);
    if leader {
        // Tick until it campaigns, then grant it votes from 2 and 3.
        for _ in 0..200 {
            let _ = q.tick();
            drain(&mut q);
            if q.term() > 0 {
                break;
            }
        }
        for from in [3u64, 4] {
            let mut m = Message::default();
            m.set_msg_type(MessageType::MsgRequestVoteResponse);
            m.from = from;
            m.to = 2;
            m.term = q.term();
            let _ = q.step(m);
            drain(&mut q);
        }
    }
    q
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let mut q = voter(first % 2 == 1);
    let _guard = weir_fuzz::bound(data.len(), BASE, PER_BYTE);
    while rest.len() >= 2 {
        let word = u16::from_be_bytes([rest[0], rest[1]]);
        let len = ((word & 0x7fff) as usize).min(rest.len() - 2);
        let frame = Bytes::copy_from_slice(&rest[2..2 + len]);
        rest = &rest[2 + len..];
        if word & 0x8000 != 0 {
            let _ = q.tick();
            drain(&mut q);
        }
        if let Ok(msg) = wire::decode(&frame) {
            let _ = q.step(msg);
            drain(&mut q);
        }
    }
    let _ = q.status();
});
