//! The bench's broker connections: weir-net's pipelined client (`weir_net::client`) with the
//! bench's settings. `Conn` derefs to the client's `Connection`, so `version`, `call_at` and
//! `send_only` are the client's own.

use std::ops::Deref;
use std::rc::Rc;
use std::time::Duration;
use weir_net::client::{ClientConfig, Connection};

const CLIENT_ID: &str = "weir-bench";
/// Longest a request waits for its response (the broker's own timeouts the bench sets, such
/// as a produce timeout, are shorter).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// The bench bounds its requests in flight itself (`--max-in-flight` per producer route, one
/// fetch per consumer connection); the client's limit only backs that up.
const MAX_IN_FLIGHT_REQUESTS: usize = 4096;

/// A connection to one broker. Cheap to share between tasks of the same executor via `Rc`.
pub struct Conn(Rc<Connection>);

impl Conn {
    /// Connects and negotiates API versions.
    pub async fn connect(addr: &str) -> anyhow::Result<Rc<Conn>> {
        let mut config = ClientConfig::new(CLIENT_ID);
        config.request_timeout = RESPONSE_TIMEOUT;
        config.max_in_flight_requests = MAX_IN_FLIGHT_REQUESTS;
        Ok(Rc::new(Conn(Connection::connect(addr, &config).await?)))
    }
}

impl Deref for Conn {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.0
    }
}
