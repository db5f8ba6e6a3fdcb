//! raft-rs logs through `slog`; the broker logs through `tracing`. This drain forwards raft-rs's
//! records as `tracing` events under the target `weir::quorum::raft`, so elections and term
//! changes appear in the broker's log with the broker's filter, instead of being lost (a
//! discarding drain) or printed around it (raft-rs's default terminal logger).
//!
//! Levels map one to one (critical → error). raft-rs logs each election and role change at
//! info, a handful of lines per election; per-message detail is at debug and trace, formatted
//! only when that level is enabled for the target.

use slog::{Drain, Key, Level, OwnedKVList, Record, Serializer, KV};
use std::fmt::{self, Write};

const TARGET: &str = "weir::quorum::raft";

/// The `slog` logger handed to raft-rs, tagged with the Kafka node id (raft-rs adds its own
/// `raft_id`, which is the node id plus one, see `ids.rs`).
pub(crate) fn raft_logger(node_id: i32) -> slog::Logger {
    slog::Logger::root(TracingDrain, slog::o!("node_id" => node_id))
}

struct TracingDrain;

impl Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        let enabled = match record.level() {
            Level::Critical | Level::Error => {
                tracing::enabled!(target: TARGET, tracing::Level::ERROR)
            }
            Level::Warning => tracing::enabled!(target: TARGET, tracing::Level::WARN),
            Level::Info => tracing::enabled!(target: TARGET, tracing::Level::INFO),
            Level::Debug => tracing::enabled!(target: TARGET, tracing::Level::DEBUG),
            Level::Trace => tracing::enabled!(target: TARGET, tracing::Level::TRACE),
        };
        if !enabled {
            return Ok(());
        }
        let mut kv = KvLine(String::new());
        let _ = record.kv().serialize(record, &mut kv);
        let _ = values.serialize(record, &mut kv);
        let msg = record.msg();
        let kv = kv.0;
        match record.level() {
            Level::Critical | Level::Error => tracing::error!(target: TARGET, "{msg}{kv}"),
            Level::Warning => tracing::warn!(target: TARGET, "{msg}{kv}"),
            Level::Info => tracing::info!(target: TARGET, "{msg}{kv}"),
            Level::Debug => tracing::debug!(target: TARGET, "{msg}{kv}"),
            Level::Trace => tracing::trace!(target: TARGET, "{msg}{kv}"),
        }
        Ok(())
    }
}

/// Key-value pairs as ` key=value` text after the message.
struct KvLine(String);

impl Serializer for KvLine {
    fn emit_arguments(&mut self, key: Key, val: &fmt::Arguments) -> slog::Result {
        let _ = write!(self.0, " {key}={val}");
        Ok(())
    }
}
