//! The WeirRaft wire format: one raft-rs message, protobuf-encoded (rust-protobuf, the codec
//! raft-rs is built with), per frame. The frame (length, API header) is the broker's; the
//! frame bound (`socket.request.max.bytes`) is what limits a message's size, snapshots included.
//!
//! Decoding only parses. Whether the sender may speak and whether the message makes sense is
//! `QuorumNode::step`'s check (`validate.rs`), so messages built in memory pass the same gate.

use bytes::Bytes;
use protobuf::{CodedInputStream, Message as _};
use raft::eraftpb::Message;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("raft message could not be decoded: {0}")]
    Decode(String),
    #[error("raft message could not be encoded: {0}")]
    Encode(String),
}

/// Encodes a message for the wire.
pub fn encode(msg: &Message) -> Result<Vec<u8>, WireError> {
    msg.write_to_bytes()
        .map_err(|e| WireError::Encode(e.to_string()))
}

/// Decodes a message without copying its entries' data (they share `frame`'s buffer).
///
/// The parse is limited to the frame: rust-protobuf checks a length-delimited field against
/// the innermost limit only, and a top-level parse has none, so a few bytes declaring a 16 MiB
/// unknown field made it reserve 10 MB before finding the frame short.
pub fn decode(frame: &Bytes) -> Result<Message, WireError> {
    let bad = |e: protobuf::ProtobufError| WireError::Decode(e.to_string());
    let mut is = CodedInputStream::from_carllerche_bytes(frame);
    let outer = is.push_limit(frame.len() as u64).map_err(bad)?;
    let msg = Message::parse_from(&mut is).map_err(bad)?;
    is.check_eof().map_err(bad)?;
    is.pop_limit(outer);
    Ok(msg)
}

/// The node that sent `msg`, by its Kafka node id (`None` for raft's "no peer"). The broker
/// refuses a connection whose sender is not a voter before queueing anything from it.
pub fn sender(msg: &Message) -> Option<crate::types::NodeId> {
    super::ids::node_of(msg.from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use raft::eraftpb::{Entry, MessageType};

    fn sample() -> Message {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppend);
        m.from = 2;
        m.to = 3;
        m.term = 7;
        m.index = 41;
        m.log_term = 6;
        m.commit = 40;
        m.set_entries(
            vec![Entry {
                index: 42,
                term: 7,
                data: Bytes::from_static(b"records"),
                ..Entry::default()
            }]
            .into(),
        );
        m
    }

    #[test]
    fn messages_round_trip() {
        let m = sample();
        let bytes = Bytes::from(encode(&m).unwrap());
        assert_eq!(decode(&bytes).unwrap(), m);
        let mut s = Message::default();
        s.set_msg_type(MessageType::MsgSnapshot);
        s.mut_snapshot().data = Bytes::from(vec![9u8; 4096]);
        s.mut_snapshot().mut_metadata().index = 100;
        let bytes = Bytes::from(encode(&s).unwrap());
        assert_eq!(decode(&bytes).unwrap(), s);
    }

    #[test]
    fn a_length_past_the_frame_reserves_nothing() {
        // An unknown length-delimited field (number 100) declaring 16 MiB in a 6-byte frame:
        // rust-protobuf reserves up to 10 MB for such a field unless the parse is bounded by
        // the frame (found by fuzz/fuzz_targets/raft.rs).
        let frame = Bytes::from_static(&[0xa2, 0x06, 0x80, 0x80, 0x80, 0x08]);
        let (result, allocated) = crate::test_alloc::allocated_during(|| decode(&frame));
        assert!(result.is_err());
        assert!(
            allocated < 4096,
            "{allocated} bytes allocated decoding a 6-byte frame"
        );
    }

    #[test]
    fn truncated_messages_are_refused() {
        let bytes = encode(&sample()).unwrap();
        for len in 1..bytes.len() {
            // Some prefixes are themselves valid protobuf (field boundaries); none may panic,
            // and none may decode to the whole message.
            if let Ok(m) = decode(&Bytes::copy_from_slice(&bytes[..len])) {
                assert_ne!(m, sample());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Garbage never panics the decoder (it may decode: protobuf accepts many byte strings).
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&Bytes::from(bytes));
        }

        /// A valid message with random bytes flipped never panics either.
        #[test]
        fn corrupted_messages_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let mut bytes = encode(&sample()).unwrap();
            for (at, x) in flips {
                let i = at % bytes.len();
                bytes[i] ^= x;
            }
            let _ = decode(&Bytes::from(bytes));
        }
    }
}
