//! Raft messages between voters: one outbound connection per peer voter to its CONTROLLER
//! listener, each fed by a bounded queue and drained by its own task, frames of the private
//! `WeirRaft` api with no response (raft is built for lost messages: a full queue or a lost
//! connection drops messages and tells raft the peer is unreachable, so it probes instead of
//! streaming).

use bytes::Bytes;
use glommio::channels::local_channel::{self, LocalSender};
use std::collections::HashMap;
use std::rc::Rc;
use weir_net::client::{BackoffConfig, ClientConfig, Reconnecting};
use weir_net::WeirApi;
use weir_replication::quorum::{wire, Outgoing};
use weir_replication::types::NodeId;

/// Messages waiting for one peer's connection. raft-rs sends a few per tick per peer (appends,
/// heartbeats); a peer this far behind is not receiving, and raft resends what matters.
const PEER_QUEUE: usize = 1024;

/// What the transport tells the quorum driver.
pub type Unreachable = Rc<dyn Fn(NodeId)>;

pub struct Transport {
    peers: HashMap<NodeId, LocalSender<Bytes>>,
    unreachable: Unreachable,
}

impl Transport {
    /// Starts a sender task per peer voter (`peers`: id → `host:port` of its CONTROLLER
    /// listener).
    pub fn start(
        peers: &[(NodeId, String)],
        client: ClientConfig,
        unreachable: Unreachable,
    ) -> Self {
        let mut senders = HashMap::new();
        for (id, addr) in peers {
            let (tx, rx) = local_channel::new_bounded::<Bytes>(PEER_QUEUE);
            let conn = Reconnecting::new(addr.clone(), client.clone(), BackoffConfig::default());
            let (peer, unreachable) = (*id, unreachable.clone());
            glommio::spawn_local(async move {
                while let Some(frame) = rx.recv().await {
                    let sent = match conn.connection().await {
                        Ok(c) => c
                            .send_raw(WeirApi::Raft, 0, frame)
                            .await
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    if let Err(e) = sent {
                        tracing::debug!(peer, error = %e, "raft message not delivered");
                        unreachable(peer);
                    }
                }
            })
            .detach();
            senders.insert(*id, tx);
        }
        Self {
            peers: senders,
            unreachable,
        }
    }

    pub fn send(&self, out: Outgoing) {
        let Some(queue) = self.peers.get(&out.to) else {
            tracing::error!(
                to = out.to,
                "raft message for a node that is not a peer voter"
            );
            return;
        };
        let frame = match wire::encode(&out.message) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                tracing::error!(to = out.to, error = %e, "raft message could not be encoded");
                return;
            }
        };
        if queue.try_send(frame).is_err() {
            (self.unreachable)(out.to);
        }
    }
}
