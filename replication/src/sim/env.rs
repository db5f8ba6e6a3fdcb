//! The run's settings ([`Params`], drawn per seed) and what every simulated component is handed
//! when it acts ([`Env`]): the time, the outbox, the oracle, the trace, randomness and ids. One
//! bundle instead of six parameters.

use super::msg::Msg;
use super::oracle::Oracle;
use super::trace::Trace;
use crate::quorum::rng::SplitMix64;
use crate::types::NodeId;

/// Settings of one run, Kafka's names in the comments; `plan` draws them from the seed.
#[derive(Debug, Clone)]
pub struct Params {
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_ms: i64,
    /// `broker.session.timeout.ms`.
    pub session_ms: i64,
    /// Heartbeats while fenced or shutting down (Weir's lifecycle: 100 ms).
    pub fast_heartbeat_ms: i64,
    /// `controller.quorum.request.timeout.ms`: one attempt of a call to a controller.
    pub request_timeout_ms: i64,
    /// `replica.lag.time.max.ms`.
    pub lag_ms: i64,
    /// `replica.fetch.backoff.ms`.
    pub fetch_backoff_ms: i64,
    /// A follower fetch with no answer after this long is retried (a lost connection).
    pub fetch_timeout_ms: i64,
    /// Batches per fetch answer (`replica.fetch.max.bytes`, in batches).
    pub fetch_batches_max: usize,
    /// After an answer without records, the follower waits this long (the leader's long poll,
    /// `replica.fetch.wait.max.ms`, seen from the follower).
    pub empty_fetch_wait_ms: i64,
    /// Logs are fsynced every this many ms (`flush.ms`); `None`: only at clean shutdown and
    /// truncation (Kafka's default: replication is the durability).
    pub flush_interval_ms: Option<i64>,
    /// `replica.high.watermark.checkpoint.interval.ms`.
    pub checkpoint_interval_ms: i64,
    /// The produce request's `timeout_ms`.
    pub produce_timeout_ms: i64,
    /// acks=all waiters per partition.
    pub acks_waiting_max: usize,
    /// A controlled shutdown the controller does not release within this long stops anyway.
    pub shutdown_timeout_ms: i64,
    /// `min.insync.replicas` (static default, under the topic's config).
    pub min_isr: i32,
}

/// A message to send once the current step's work is done.
#[derive(Debug)]
pub struct Outgoing {
    pub from: NodeId,
    pub to: NodeId,
    pub msg: Msg,
}

pub struct Env<'a> {
    pub now_ms: i64,
    pub params: &'a Params,
    pub out: &'a mut Vec<Outgoing>,
    pub oracle: &'a mut Oracle,
    pub trace: &'a mut Trace,
    pub rng: &'a mut SplitMix64,
    pub ids: &'a mut u64,
}

impl Env<'_> {
    pub fn send(&mut self, from: NodeId, to: NodeId, msg: Msg) {
        self.out.push(Outgoing { from, to, msg });
    }

    pub fn next_id(&mut self) -> u64 {
        *self.ids += 1;
        *self.ids
    }

    pub fn log(&mut self, who: &str, what: impl std::fmt::Display) {
        self.trace.log(self.now_ms, who, what);
    }
}
