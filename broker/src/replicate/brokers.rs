//! The brokers as a partition's leader judges them: registered, fenced or shutting down, and
//! with which epoch (from this core's metadata image).

use weir_replication::metadata::MetadataImage;
use weir_replication::partition::leader::{BrokerStatus, BrokerView};
use weir_replication::types::NodeId;

pub struct ImageBrokers<'a>(pub &'a MetadataImage);

impl BrokerView for ImageBrokers<'_> {
    fn broker(&self, id: NodeId) -> Option<BrokerStatus> {
        self.0.broker(id).map(|b| BrokerStatus {
            epoch: b.epoch,
            fenced: b.fenced,
            shutting_down: b.in_controlled_shutdown,
        })
    }
}
