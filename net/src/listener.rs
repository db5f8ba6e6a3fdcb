//! Per-core listener. Every core binds its own socket on the same address; glommio's
//! `TcpListener::bind` sets `SO_REUSEPORT`, so the kernel spreads incoming connections across
//! the cores' sockets and a connection is served start to finish by the core that accepted it.
//!
//! With port 0, bind one core first and give the others its [`Listener::local_addr`]: each
//! bind to port 0 would otherwise pick its own port.

use crate::connection::{serve_connection, Closed, ConnectionInfo, Handler};
use crate::core_state::NetCore;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;
use thiserror::Error;

/// Pause after a failed accept (e.g. EMFILE) so a persistent failure does not spin the core.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// A listener that cannot be set up.
#[derive(Debug, Error)]
pub enum ListenError {
    /// Binding failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The bound socket has no local address.
    #[error("cannot read listener address: {0}")]
    LocalAddr(io::Error),
}

/// One core's listening socket.
pub struct Listener {
    inner: glommio::net::TcpListener,
    core: Rc<NetCore>,
}

impl Listener {
    /// Binds `addr` with `SO_REUSEPORT` on the current core's executor.
    pub fn bind(addr: SocketAddr, core: Rc<NetCore>) -> Result<Self, ListenError> {
        let inner = glommio::net::TcpListener::bind(addr).map_err(|e| ListenError::Bind {
            addr,
            source: e.into(),
        })?;
        Ok(Listener { inner, core })
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, ListenError> {
        self.inner
            .local_addr()
            .map_err(|e| ListenError::LocalAddr(e.into()))
    }

    /// Accepts connections until `shutdown` completes, serving each in its own local task.
    /// Connections already accepted keep running after shutdown until their clients leave.
    pub async fn serve<H: Handler>(&self, handler: Rc<H>, shutdown: impl Future<Output = ()>) {
        let accept_loop = async {
            loop {
                match self.inner.accept().await {
                    Ok(stream) => self.admit(stream, &handler),
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        glommio::timer::sleep(ACCEPT_ERROR_BACKOFF).await;
                    }
                }
            }
        };
        futures_lite::future::or(shutdown, accept_loop).await
    }

    fn admit<H: Handler>(&self, stream: glommio::net::TcpStream, handler: &Rc<H>) {
        let peer = stream.peer_addr();
        let local = stream.local_addr();
        let (Ok(peer), Ok(local)) = (peer, local) else {
            tracing::info!("dropping a connection that closed before it could be served");
            return;
        };
        let Some(slot) = self.core.admit() else {
            tracing::info!(
                %peer,
                "refusing connection: max.connections ({}) reached on this core",
                self.core.config().max_connections
            );
            return;
        };
        let connection = Rc::new(ConnectionInfo {
            id: slot.id,
            peer,
            local,
        });
        let core = self.core.clone();
        let handler = handler.clone();
        glommio::spawn_local(async move {
            let result = serve_connection(core, connection.clone(), stream, handler).await;
            let (id, peer) = (connection.id, connection.peer);
            match result {
                Ok(Closed::ByPeer) => tracing::debug!(id, %peer, "connection closed by client"),
                Ok(Closed::ByHandler) => tracing::debug!(id, %peer, "connection closed by handler"),
                Err(e) if e.is_peer_gone() => tracing::debug!(id, %peer, "client went away: {e}"),
                Err(e) => tracing::warn!(id, %peer, "closing connection: {e}"),
            }
            drop(slot);
        })
        .detach();
    }
}
