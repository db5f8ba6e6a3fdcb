//! How a core reaches the active controller (core 0 holds the cluster side; other cores ask it
//! as messages) and hands out producer ids from this broker's block.

use super::*;

impl Core {
    /// Sends `request` to the active controller (through core 0) and answers once its records
    /// are applied on this node.
    pub async fn controller_call(self: &Rc<Self>, request: ControllerRequest) -> ControllerReply {
        match self
            .call(
                CONTROLLER_SHARD,
                ShardRequest::Controller(Box::new(request.clone())),
            )
            .await
        {
            Some(ShardResponse::Controller(r)) => *r,
            _ => ControllerReply::refuse(
                &request,
                ControllerError::NotController("the broker is shutting down".into()),
            ),
        }
    }

    pub(super) async fn controller_call_here(&self, request: ControllerRequest) -> ControllerReply {
        let Some(cluster) = self.cluster() else {
            return ControllerReply::refuse(
                &request,
                ControllerError::NotController("the cluster side is not running".into()),
            );
        };
        let timeout = cluster
            .settings
            .request_timeout
            .max(Duration::from_secs(30));
        cluster.client.call_and_wait(request, timeout).await
    }

    /// A new producer id for InitProducerId, from this broker's block (core 0 asks the
    /// controller for a block of ids when it runs out, Kafka's AllocateProducerIds).
    pub async fn next_producer_id(self: &Rc<Self>) -> Result<i64, i16> {
        match self.call(CONTROLLER_SHARD, ShardRequest::ProducerId).await {
            Some(ShardResponse::ProducerId(r)) => r,
            _ => Err(K::CoordinatorNotAvailable.code()),
        }
    }

    pub(super) async fn producer_id_here(&self) -> Result<i64, i16> {
        let (next, end) = self.producer_ids.get();
        if next < end {
            self.producer_ids.set((next + 1, end));
            return Ok(next);
        }
        let Some(cluster) = self.cluster() else {
            return Err(K::CoordinatorNotAvailable.code());
        };
        let Some(epoch) = cluster.broker_epoch() else {
            return Err(K::CoordinatorNotAvailable.code());
        };
        let request = ControllerRequest::AllocateProducerIds {
            broker_id: self.settings.node_id,
            broker_epoch: epoch,
        };
        let timeout = cluster
            .settings
            .request_timeout
            .max(Duration::from_secs(30));
        match cluster.client.call(request, timeout).await.1 {
            ControllerReply::AllocateProducerIds(Ok(block)) if block.len > 0 => {
                // Another InitProducerId may have refilled it while this one waited.
                let (next, end) = self.producer_ids.get();
                if next < end {
                    self.producer_ids.set((next + 1, end));
                    return Ok(next);
                }
                self.producer_ids
                    .set((block.start + 1, block.start + i64::from(block.len)));
                Ok(block.start)
            }
            ControllerReply::AllocateProducerIds(Err(e)) => Err(e.kafka_code()),
            _ => Err(K::CoordinatorNotAvailable.code()),
        }
    }
}
