//! Cross-core calls. A request for a partition owned by another core travels as a message over
//! glommio's channel mesh (lock-free single-producer queues, one per ordered pair of cores) and
//! its answer comes back the same way, matched by a call id. Nothing is shared between cores.

use super::messages::{ShardRequest, ShardResponse};
use crate::shard::ShardId;
use ahash::AHashMap;
use glommio::channels::channel_mesh::{Receivers, Senders};
use glommio::channels::local_channel::{self, LocalSender};
use std::cell::{Cell, RefCell};

/// What travels between cores.
pub enum ShardMsg {
    Call { id: u64, request: ShardRequest },
    Reply { id: u64, response: ShardResponse },
}

/// How deep each core-to-core queue is; a full queue makes the sender wait (backpressure).
pub const MESH_QUEUE_DEPTH: usize = 1024;

#[derive(Debug, thiserror::Error)]
#[error("core {0} is gone (shutting down)")]
pub struct PeerGone(pub ShardId);

/// This core's end of the mesh.
pub struct Mesh {
    senders: Senders<ShardMsg>,
    next_id: Cell<u64>,
    waiting: RefCell<AHashMap<u64, LocalSender<ShardResponse>>>,
}

impl Mesh {
    pub fn new(senders: Senders<ShardMsg>) -> Self {
        Self {
            senders,
            next_id: Cell::new(0),
            waiting: RefCell::default(),
        }
    }

    pub fn me(&self) -> ShardId {
        self.senders.peer_id()
    }

    pub fn cores(&self) -> usize {
        self.senders.nr_consumers()
    }

    /// Sends `request` to `shard` and waits for its answer.
    pub async fn call(
        &self,
        shard: ShardId,
        request: ShardRequest,
    ) -> Result<ShardResponse, PeerGone> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (tx, rx) = local_channel::new_bounded(1);
        self.waiting.borrow_mut().insert(id, tx);
        if self
            .senders
            .send_to(shard, ShardMsg::Call { id, request })
            .await
            .is_err()
        {
            self.waiting.borrow_mut().remove(&id);
            return Err(PeerGone(shard));
        }
        rx.recv().await.ok_or(PeerGone(shard))
    }

    pub async fn reply(&self, shard: ShardId, id: u64, response: ShardResponse) {
        if self
            .senders
            .send_to(shard, ShardMsg::Reply { id, response })
            .await
            .is_err()
        {
            tracing::debug!(shard, "reply dropped: peer gone");
        }
    }

    /// Delivers an answer to the task waiting for it.
    pub fn deliver(&self, id: u64, response: ShardResponse) {
        if let Some(tx) = self.waiting.borrow_mut().remove(&id) {
            let _ = tx.try_send(response);
        }
    }

    pub fn close(&self) {
        self.senders.close();
        // Wake every waiting caller: their peers will not answer any more.
        self.waiting.borrow_mut().clear();
    }
}

/// This core's incoming queues, one per peer.
pub struct Inbox {
    pub receivers: Receivers<ShardMsg>,
}
