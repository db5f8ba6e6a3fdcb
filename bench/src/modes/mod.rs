//! The bench modes, and what they share.

pub mod advise;
pub mod baseline;
pub mod consume;
pub mod consumer;
pub mod e2e;
pub mod produce;
pub mod producer;
pub mod sweep;

use crate::cli::Common;
use crate::client::admin::{self, TopicLayout};
use crate::client::Conn;
use anyhow::Context;
use std::rc::Rc;
use weir_storage::heartbeat::{Heartbeat, HEARTBEAT_PERIOD};

/// Runs a future on a throw-away executor on this thread (set-up work before the run).
pub fn block_on<T>(fut: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    let ex = glommio::LocalExecutorBuilder::default()
        .make()
        .map_err(|e| anyhow::anyhow!("starting the set-up executor: {e}"))?;
    Ok(ex.run(async move {
        let _heartbeat = Heartbeat::start(HEARTBEAT_PERIOD);
        fut.await
    }))
}

/// Connects to the bootstrap server and creates the topic if it is missing.
pub fn prepare_topic(c: &Common) -> anyhow::Result<TopicLayout> {
    let (bootstrap, topic, partitions, rf) = (
        c.bootstrap_server.clone(),
        c.topic.clone(),
        c.partitions,
        c.replication_factor,
    );
    anyhow::ensure!(partitions >= 1, "--partitions must be at least 1");
    block_on(async move {
        let conn: Rc<Conn> = Conn::connect(&bootstrap).await?;
        admin::ensure_topic(&conn, &topic, partitions, rf)
            .await
            .with_context(|| format!("preparing topic {topic}"))
    })?
}

/// Prints the summary: human-readable unless `--json`, then one JSON object as the last line.
pub fn emit(c: &Common, text: &str, summary: &serde_json::Value) {
    if c.json {
        eprint!("{text}");
        println!("{summary}");
    } else {
        print!("{text}");
    }
}
