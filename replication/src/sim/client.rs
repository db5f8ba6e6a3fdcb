//! The producers: a client node that writes unique values to the partitions' leaders with
//! acks=all (mostly) or acks=1, finding the leader in some broker's metadata as a client's
//! Metadata request would. It does not retry: idempotence is out of the simulator's scope, and
//! what the oracle checks is every write the leaders acknowledged.

use super::env::Env;
use super::log::Value;
use super::msg::{Acks, Msg, ProduceError, ProduceRequest, Tp};
use crate::metadata::image::MetadataImage;
use crate::types::{NodeId, NO_NODE};
use std::collections::BTreeMap;

/// The client's node id on the data network.
pub const CLIENT: NodeId = 1000;

#[derive(Debug, Default, Clone)]
pub struct ProducerStats {
    pub sent: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub unanswered: u64,
}

#[derive(Debug, Default)]
pub struct Producer {
    next_value: Value,
    /// Requests out: id → when sent.
    pending: BTreeMap<u64, i64>,
    pub stats: ProducerStats,
}

impl Producer {
    /// Sends one produce to `tp`'s leader as `image` names it.
    pub fn produce(
        &mut self,
        tp: Tp,
        acks: Acks,
        records: usize,
        image: &MetadataImage,
        env: &mut Env,
    ) {
        let leader = image
            .topic(&tp.topic_name())
            .and_then(|t| t.partitions.get(tp.partition as usize))
            .map_or(NO_NODE, |p| p.leader);
        if leader == NO_NODE {
            *self
                .stats
                .errors
                .entry("LEADER_NOT_AVAILABLE".into())
                .or_default() += 1;
            return;
        }
        let values = (0..records)
            .map(|_| {
                self.next_value += 1;
                self.next_value
            })
            .collect();
        let id = env.next_id();
        self.pending.insert(id, env.now_ms);
        self.stats.sent += 1;
        env.send(
            CLIENT,
            leader,
            Msg::Produce(ProduceRequest {
                id,
                tp,
                acks,
                values,
                timeout_ms: env.params.produce_timeout_ms,
            }),
        );
    }

    pub fn on_answer(&mut self, id: u64, result: Result<(i64, i32), ProduceError>) {
        if self.pending.remove(&id).is_none() {
            return;
        }
        match result {
            Ok(_) => self.stats.ok += 1,
            Err(e) => *self.stats.errors.entry(format!("{e:?}")).or_default() += 1,
        }
    }

    /// Forgets requests without an answer for long (lost, or their broker died).
    pub fn expire(&mut self, now_ms: i64, after_ms: i64) {
        let before = self.pending.len();
        self.pending.retain(|_, sent| now_ms - *sent < after_ms);
        self.stats.unanswered += (before - self.pending.len()) as u64;
    }
}
