//! Per-core listener. Every core binds its own socket on the same address; glommio's
//! `TcpListener::bind` sets `SO_REUSEPORT`, so the kernel spreads incoming connections across
//! the cores' sockets and a connection is served start to finish by the core that accepted it.
//!
//! With port 0, bind one core first and give the others its [`Listener::local_addr`]: each
//! bind to port 0 would otherwise pick its own port.

use crate::connection::{serve_connection, Closed, ConnectionInfo, Handler};
use crate::core_state::NetCore;
use crate::weir_api::WeirApis;
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
    // Private apis accepted here: none unless this is the controller listener.
    weir_apis: Rc<WeirApis>,
}

/// Fails if another socket already listens on `addr`'s port (on that address or a wildcard).
/// The cores bind with `SO_REUSEPORT`, which would otherwise let a second broker (same user)
/// silently share the port and take a share of the connections. Read from `/proc/net/tcp{,6}`
/// rather than probed with a bind: a probe without `SO_REUSEPORT` also trips over the previous
/// run's connections in TIME_WAIT. Port 0 is always free.
pub fn ensure_port_free(addr: SocketAddr) -> Result<(), ListenError> {
    if addr.port() == 0 {
        return Ok(());
    }
    let mut tables = String::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            tables.push_str(&text);
        }
    }
    match listening_conflict(&tables, addr) {
        Some(other) => Err(ListenError::Bind {
            addr,
            source: io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{other} is already listening"),
            ),
        }),
        None => Ok(()),
    }
}

/// The first LISTEN socket in a `/proc/net/tcp`-format table whose port is `addr`'s and whose
/// address overlaps it.
fn listening_conflict(table: &str, addr: SocketAddr) -> Option<SocketAddr> {
    const TCP_LISTEN: &str = "0A";
    table.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1)?;
        let state = fields.nth(1)?;
        if state != TCP_LISTEN {
            return None;
        }
        let other = parse_proc_addr(local)?;
        let overlaps =
            other.ip() == addr.ip() || other.ip().is_unspecified() || addr.ip().is_unspecified();
        (other.port() == addr.port() && overlaps).then_some(other)
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:port` (IPv6), as the kernel prints them: the
/// address in host (little-endian) order per 32-bit word, the port in hex.
fn parse_proc_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        Some(
            u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16)
                .ok()?
                .to_le_bytes(),
        )
    };
    let ip: std::net::IpAddr = match ip.len() {
        8 => std::net::Ipv4Addr::from(word(0)?).into(),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            let v6 = std::net::Ipv6Addr::from(b);
            // A v4-mapped listener (dual-stack) conflicts like its IPv4 address.
            v6.to_ipv4_mapped().map_or(v6.into(), Into::into)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

impl Listener {
    /// Binds `addr` with `SO_REUSEPORT` on the current core's executor.
    pub fn bind(addr: SocketAddr, core: Rc<NetCore>) -> Result<Self, ListenError> {
        let inner = glommio::net::TcpListener::bind(addr).map_err(|e| ListenError::Bind {
            addr,
            source: e.into(),
        })?;
        Ok(Listener {
            inner,
            core,
            weir_apis: Rc::new(WeirApis::none()),
        })
    }

    /// Accepts `apis` of Weir's private apis on this listener (the `CONTROLLER` listener) and
    /// advertises them in its ApiVersions answers. Every other listener refuses them by
    /// closing the connection.
    pub fn accepting_weir_apis(mut self, apis: WeirApis) -> Self {
        self.weir_apis = Rc::new(apis);
        self
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
            weir_apis: self.weir_apis.clone(),
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

#[cfg(test)]
mod port_tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2384 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:2385 0100007F:C350 06 00000000:00000000 03:00000F9A 00000000     0        0 0 3 0000000000000000
   2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   0: 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
";

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn finds_listeners_on_the_same_port_and_overlapping_address() {
        // 127.0.0.1:9092 listening; 127.0.0.1:9093 only in TIME_WAIT (06): free.
        assert_eq!(
            listening_conflict(TABLE, a("127.0.0.1:9092")),
            Some(a("127.0.0.1:9092"))
        );
        assert_eq!(listening_conflict(TABLE, a("127.0.0.1:9093")), None);
        assert_eq!(listening_conflict(TABLE, a("127.0.0.2:9092")), None);
        // Wildcard listeners conflict with any address of their port, and the reverse.
        assert_eq!(
            listening_conflict(TABLE, a("10.0.0.1:8080")),
            Some(a("0.0.0.0:8080"))
        );
        assert_eq!(
            listening_conflict(TABLE, a("127.0.0.1:8081")),
            Some(a("[::]:8081"))
        );
        assert_eq!(
            listening_conflict(TABLE, a("0.0.0.0:9092")),
            Some(a("127.0.0.1:9092"))
        );
    }

    #[test]
    fn a_real_listener_is_seen() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        assert!(ensure_port_free(addr).is_err());
        drop(l);
        assert!(ensure_port_free(addr).is_ok());
    }
}
