//! A partition log's leader-epoch cache as the replication state machines read it.

use weir_replication::partition::epochs::EpochLookup;
use weir_replication::types::{LeaderEpoch, Offset};
use weir_storage::PartitionLog;

pub struct LogEpochs<'a>(pub &'a PartitionLog);

impl EpochLookup for LogEpochs<'_> {
    fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        self.0.end_offset_for_epoch(epoch)
    }
}
