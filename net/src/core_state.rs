//! State shared by every connection on one core: the limits, the API table, the request byte
//! budget and the connection count. Created once per executor and handed around as `Rc`; it
//! is never shared across cores.

use crate::config::{ConfigError, NetConfig};
use crate::versions::SupportedApis;
use glommio::sync::Semaphore;
use std::cell::Cell;
use std::rc::Rc;

/// One core's wire-edge state.
pub struct NetCore {
    config: NetConfig,
    supported: SupportedApis,
    // queued.max.request.bytes: request bytes read and not yet handled on this core.
    budget: Rc<Semaphore>,
    live_connections: Cell<usize>,
    next_connection_id: Cell<u64>,
}

impl NetCore {
    /// Validates `config` and creates the core's state. Call inside the core's executor.
    pub fn new(config: NetConfig, supported: SupportedApis) -> Result<Rc<Self>, ConfigError> {
        config.validate()?;
        let budget = Rc::new(Semaphore::new(config.queued_max_request_bytes));
        Ok(Rc::new(NetCore {
            config,
            supported,
            budget,
            live_connections: Cell::new(0),
            next_connection_id: Cell::new(0),
        }))
    }

    /// The limits in force.
    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// The API versions this core answers.
    pub fn supported(&self) -> &SupportedApis {
        &self.supported
    }

    /// Connections currently served by this core.
    pub fn live_connections(&self) -> usize {
        self.live_connections.get()
    }

    /// Request-budget bytes not currently held by requests in flight.
    pub fn budget_available(&self) -> u64 {
        self.budget.available()
    }

    pub(crate) fn budget(&self) -> &Rc<Semaphore> {
        &self.budget
    }

    /// Budget units a frame of `len` bytes holds. A frame larger than the whole budget takes
    /// the whole budget: it waits until nothing else is in flight and then runs alone, rather
    /// than deadlocking or being refused (the frame limit already bounds it).
    pub(crate) fn budget_units(&self, len: usize) -> u64 {
        (len as u64).min(self.config.queued_max_request_bytes)
    }

    /// Registers a new connection if `max.connections` allows; the guard unregisters it.
    pub(crate) fn admit(self: &Rc<Self>) -> Option<ConnectionSlot> {
        let live = self.live_connections.get();
        if live >= self.config.max_connections {
            return None;
        }
        self.live_connections.set(live + 1);
        let id = self.next_connection_id.get();
        self.next_connection_id.set(id + 1);
        Some(ConnectionSlot {
            core: self.clone(),
            id,
        })
    }
}

/// A connection's place under `max.connections`; released on drop.
pub(crate) struct ConnectionSlot {
    core: Rc<NetCore>,
    pub(crate) id: u64,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let live = self.core.live_connections.get();
        self.core.live_connections.set(live.saturating_sub(1));
    }
}
