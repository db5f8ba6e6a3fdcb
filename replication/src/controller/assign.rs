//! Replica placement for new partitions (CreateTopics, CreatePartitions), rack-unaware, and
//! the checks on manual assignments.
//!
//! Kafka's rules (StripedReplicaPlacer): no broker twice in a partition, the replication factor
//! at most the usable brokers (registered, not shutting down), the first replica (the
//! preferred leader) on an unfenced broker, other replicas on unfenced brokers before fenced
//! ones. Kafka spreads load with a random start and stripes from there; Weir has no randomness
//! in a state machine, so it spreads by load instead: each preferred leader goes to the
//! unfenced broker leading the fewest partitions (cluster-wide, so also across topics), each
//! other replica to the broker holding the fewest replicas, and ties go round the ring of
//! broker ids from the previous choice, which gives Kafka's striped pattern on an even cluster
//! ([1,2,3], [2,3,1], [3,1,2]).

use super::error::ControllerError;
use crate::metadata::image::MetadataImage;
use crate::types::NodeId;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct Placer {
    /// Usable brokers in id order: the ring ties are broken on.
    ring: Vec<NodeId>,
    fenced: Vec<bool>,
    /// Preferred leaderships (first replicas) per ring position.
    leaders: Vec<usize>,
    /// Replicas per ring position.
    replicas: Vec<usize>,
    /// Ring position of the last preferred leader chosen.
    last_leader: Option<usize>,
}

impl Placer {
    /// A placer over the image's usable brokers, loaded with the image's partitions.
    pub fn new(image: &MetadataImage) -> Self {
        let usable: Vec<_> = image
            .brokers()
            .filter(|b| !b.in_controlled_shutdown)
            .map(|b| (b.id, b.fenced))
            .collect();
        let position: BTreeMap<NodeId, usize> =
            usable.iter().enumerate().map(|(i, b)| (b.0, i)).collect();
        let mut leaders = vec![0; usable.len()];
        let mut replicas = vec![0; usable.len()];
        for p in image.topics().flat_map(|t| t.partitions.iter()) {
            if let Some(i) = p.replicas.first().and_then(|b| position.get(b)) {
                leaders[*i] += 1;
            }
            for i in p.replicas.iter().filter_map(|b| position.get(b)) {
                replicas[*i] += 1;
            }
        }
        Self {
            ring: usable.iter().map(|b| b.0).collect(),
            fenced: usable.iter().map(|b| b.1).collect(),
            leaders,
            replicas,
            last_leader: None,
        }
    }

    /// How far `i` is round the ring after `from` (ties go to the nearest).
    fn after(&self, from: Option<usize>, i: usize) -> usize {
        let n = self.ring.len();
        let start = from.map_or(0, |f| f + 1);
        (i + n - start % n) % n
    }

    /// The replicas of one new partition, the preferred leader first. The error is Kafka's
    /// reason (the caller says which partition and factor).
    pub fn place(&mut self, replication_factor: i32) -> Result<Vec<NodeId>, String> {
        let unfenced = self.fenced.iter().filter(|f| !**f).count();
        if replication_factor <= 0 {
            return Err(format!(
                "Invalid replication factor {replication_factor}: the replication factor must be positive."
            ));
        }
        if unfenced == 0 {
            return Err("All brokers are currently fenced.".into());
        }
        let rf = replication_factor as usize;
        if rf > self.ring.len() {
            return Err(format!(
                "The target replication factor of {rf} cannot be reached because only {} broker(s) are registered.",
                self.ring.len()
            ));
        }
        let leader = (0..self.ring.len())
            .filter(|i| !self.fenced[*i])
            .min_by_key(|i| {
                (
                    self.leaders[*i],
                    self.replicas[*i],
                    self.after(self.last_leader, *i),
                )
            })
            .expect("an unfenced broker exists");
        let mut chosen = vec![leader];
        while chosen.len() < rf {
            let next = (0..self.ring.len())
                .filter(|i| !chosen.contains(i))
                .min_by_key(|i| {
                    (
                        self.fenced[*i],
                        self.replicas[*i],
                        self.after(Some(leader), *i),
                    )
                })
                .expect("rf is at most the usable brokers");
            chosen.push(next);
        }
        self.leaders[leader] += 1;
        for i in &chosen {
            self.replicas[*i] += 1;
        }
        self.last_leader = Some(leader);
        Ok(chosen.into_iter().map(|i| self.ring[i]).collect())
    }
}

/// Kafka's checks on a manually assigned partition (`validateManualPartitionAssignment`):
/// not empty, registered brokers only, no broker twice, and as many replicas as the others.
pub fn validate_manual(
    image: &MetadataImage,
    replicas: &[NodeId],
    replication_factor: Option<usize>,
) -> Result<(), ControllerError> {
    let bad = ControllerError::InvalidReplicaAssignment;
    if replicas.is_empty() {
        return Err(bad(
            "The manual partition assignment includes an empty replica list.".into(),
        ));
    }
    let mut sorted = replicas.to_vec();
    sorted.sort_unstable();
    for (i, b) in sorted.iter().enumerate() {
        if image.broker(*b).is_none() {
            return Err(bad(format!("The manual partition assignment includes broker {b}, but no such broker is registered.")));
        }
        if i > 0 && sorted[i - 1] == *b {
            return Err(bad(format!(
                "The manual partition assignment includes the broker {b} more than once."
            )));
        }
    }
    if let Some(rf) = replication_factor {
        if sorted.len() != rf {
            return Err(bad(format!("The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {rf} replica(s).", sorted.len())));
        }
    }
    Ok(())
}

/// A new partition's ISR: its replicas that can serve now (unfenced, not shutting down).
pub fn initial_isr(image: &MetadataImage, replicas: &[NodeId]) -> Vec<NodeId> {
    replicas
        .iter()
        .copied()
        .filter(|b| image.is_active(*b))
        .collect()
}

#[cfg(test)]
#[path = "assign_tests.rs"]
mod tests;
