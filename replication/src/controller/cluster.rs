//! Broker registration, heartbeats and sessions, fencing and controlled shutdown, and producer
//! id blocks (Kafka's ClusterControlManager, BrokerHeartbeatManager, ProducerIdControlManager).
//!
//! A broker's state (Kafka's BrokerControlState): FENCED until its heartbeat shows it applied
//! its own registration, then UNFENCED; a heartbeat asking to shut down moves an UNFENCED broker
//! that leads partitions to CONTROLLED_SHUTDOWN (its leaderships move away, it leaves ISRs),
//! and lets it go (SHUTDOWN_NOW, fenced) once every active broker applied that; a broker that
//! stops heartbeating for `broker.session.timeout.ms` is fenced by `tick`.

use super::error::ControllerError;
use super::partitions::BrokerUpdate;
use super::request::*;
use super::{ControllerState, Session, PRODUCER_ID_BLOCK_SIZE};
use crate::metadata::records::{
    BrokerChangeRecord, MetadataRecord, ProducerIdsRecord, RegisterBrokerRecord,
    UnregisterBrokerRecord,
};
use crate::types::{BrokerEpoch, NodeId};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BrokerState {
    Fenced,
    Unfenced,
    ControlledShutdown,
    ShutdownNow,
}

impl ControllerState {
    /// Kafka's checkBrokerEpoch: requests from a broker carry the epoch of its registration.
    pub(super) fn check_broker_epoch(
        &self,
        broker_id: NodeId,
        epoch: BrokerEpoch,
    ) -> Result<(), ControllerError> {
        match self.image.broker(broker_id) {
            None => Err(ControllerError::StaleBrokerEpoch(format!(
                "No broker registration found for broker id {broker_id}"
            ))),
            Some(b) if b.epoch != epoch => Err(ControllerError::StaleBrokerEpoch(format!(
                "Expected broker epoch {}, but got broker epoch {epoch}",
                b.epoch
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Unfenced and heard from within the session timeout (Kafka's hasValidSession).
    fn has_valid_session(&self, broker_id: NodeId, now_ms: i64) -> bool {
        let unfenced = self.image.broker(broker_id).is_some_and(|b| !b.fenced);
        let fresh = self.sessions.get(&broker_id).is_some_and(|s| {
            s.last_contact_ms
                .saturating_add(self.config.broker_session_timeout_ms)
                >= now_ms
        });
        unfenced && fresh
    }

    fn touch(&mut self, broker_id: NodeId, now_ms: i64, metadata_offset: i64) {
        self.sessions.insert(
            broker_id,
            Session {
                last_contact_ms: now_ms,
                metadata_offset,
            },
        );
    }

    pub(super) fn register_broker(
        &mut self,
        req: BrokerRegistration,
        now_ms: i64,
    ) -> (ControllerReply, Vec<MetadataRecord>) {
        match self.registration_records(&req, now_ms) {
            Ok((epoch, records)) => (ControllerReply::RegisterBroker(Ok(epoch)), records),
            Err(e) => (ControllerReply::RegisterBroker(Err(e)), Vec::new()),
        }
    }

    fn registration_records(
        &mut self,
        req: &BrokerRegistration,
        now_ms: i64,
    ) -> Result<(BrokerEpoch, Vec<MetadataRecord>), ControllerError> {
        if req.cluster_id != self.config.cluster_id {
            return Err(ControllerError::InconsistentClusterId(format!(
                "Expected cluster ID {}, but got cluster ID {}",
                self.config.cluster_id, req.cluster_id
            )));
        }
        if req.broker_id < 0 {
            return Err(ControllerError::InvalidRegistration(format!(
                "Invalid broker id {}",
                req.broker_id
            )));
        }
        let mut names = BTreeSet::new();
        if let Some(dup) = req
            .listeners
            .iter()
            .find(|l| !names.insert(l.listener.as_str()))
        {
            return Err(ControllerError::InvalidRegistration(format!(
                "Duplicate listener name {}",
                dup.listener
            )));
        }
        let existing = self.image.broker(req.broker_id).cloned();
        let new_incarnation = existing
            .as_ref()
            .is_none_or(|b| b.incarnation_id != req.incarnation_id);
        if new_incarnation && existing.is_some() && self.has_valid_session(req.broker_id, now_ms) {
            return Err(ControllerError::DuplicateBrokerRegistration(
                "Another broker is registered with that broker id.".into(),
            ));
        }
        let mut records = Vec::new();
        let (epoch, fenced, in_controlled_shutdown) = match &existing {
            Some(b) if !new_incarnation => (b.epoch, b.fenced, b.in_controlled_shutdown),
            _ => {
                if let Some(old) = &existing {
                    // KIP-966: a broker whose last shutdown was not clean may have lost its
                    // unflushed tail, so it leaves every ISR and ELR. One that shut down
                    // cleanly stays where it was (normally fenced, possibly the last ISR
                    // member); if its old incarnation still looks alive, it is fenced first.
                    let clean = req.previous_broker_epoch == old.epoch;
                    if !clean {
                        records.extend(self.partition_updates(BrokerUpdate::Lost(old.id), now_ms));
                    } else if !old.fenced {
                        records.extend(self.partition_updates(BrokerUpdate::Fence(old.id), now_ms));
                    }
                }
                (self.image.next_broker_epoch(), true, false)
            }
        };
        records.push(MetadataRecord::RegisterBroker(RegisterBrokerRecord {
            broker_id: req.broker_id,
            incarnation_id: req.incarnation_id,
            broker_epoch: epoch,
            endpoints: req.listeners.clone(),
            rack: req.rack.clone(),
            fenced,
            in_controlled_shutdown,
        }));
        self.touch(req.broker_id, now_ms, -1);
        Ok((epoch, records))
    }

    pub(super) fn heartbeat(
        &mut self,
        hb: BrokerHeartbeat,
        now_ms: i64,
    ) -> (ControllerReply, Vec<MetadataRecord>) {
        if let Err(e) = self.check_broker_epoch(hb.broker_id, hb.broker_epoch) {
            return (ControllerReply::BrokerHeartbeat(Err(e)), Vec::new());
        }
        let b = self
            .image
            .broker(hb.broker_id)
            .cloned()
            .expect("the epoch check found the registration");
        let registered_at = self
            .registration_offsets
            .get(&b.id)
            .copied()
            .unwrap_or(self.applied_offset);
        let caught_up = hb.current_metadata_offset >= registered_at;
        let current = if b.in_controlled_shutdown {
            BrokerState::ControlledShutdown
        } else if b.fenced {
            BrokerState::Fenced
        } else {
            BrokerState::Unfenced
        };
        let next = match current {
            BrokerState::Fenced if hb.want_shutdown => BrokerState::ShutdownNow,
            BrokerState::Fenced if !hb.want_fence && caught_up => BrokerState::Unfenced,
            BrokerState::Fenced => BrokerState::Fenced,
            BrokerState::Unfenced if hb.want_fence && hb.want_shutdown => BrokerState::ShutdownNow,
            BrokerState::Unfenced if hb.want_fence => BrokerState::Fenced,
            BrokerState::Unfenced if hb.want_shutdown => {
                if self.has_leaderships(b.id) {
                    BrokerState::ControlledShutdown
                } else {
                    BrokerState::ShutdownNow
                }
            }
            BrokerState::Unfenced => BrokerState::Unfenced,
            BrokerState::ControlledShutdown => {
                // Every active broker must have applied the moves before this one stops,
                // or a client could be sent to a leader that is gone.
                let moved_at = self.shutdown_offsets.get(&b.id).copied().unwrap_or(-1);
                if !self.has_leaderships(b.id) && moved_at <= self.lowest_active_offset(b.id) {
                    BrokerState::ShutdownNow
                } else {
                    BrokerState::ControlledShutdown
                }
            }
            BrokerState::ShutdownNow => BrokerState::ShutdownNow,
        };
        let mut records = Vec::new();
        if next != current {
            match next {
                BrokerState::Fenced | BrokerState::ShutdownNow => {
                    records.extend(self.fence_records(b.id, b.epoch, b.fenced, now_ms));
                }
                BrokerState::Unfenced => {
                    records.push(broker_change(b.id, b.epoch, Some(false), None));
                    records.extend(self.partition_updates(BrokerUpdate::Unfence(b.id), now_ms));
                }
                BrokerState::ControlledShutdown => {
                    records.push(broker_change(b.id, b.epoch, None, Some(true)));
                    records.extend(self.partition_updates(BrokerUpdate::Shutdown(b.id), now_ms));
                }
            }
        }
        self.touch(b.id, now_ms, hb.current_metadata_offset);
        let reply = HeartbeatReply {
            is_caught_up: caught_up,
            is_fenced: matches!(next, BrokerState::Fenced | BrokerState::ShutdownNow),
            in_controlled_shutdown: next == BrokerState::ControlledShutdown,
            should_shutdown: next == BrokerState::ShutdownNow,
        };
        (ControllerReply::BrokerHeartbeat(Ok(reply)), records)
    }

    /// Moves a broker's leaderships and ISR memberships away, then fences it: in that order, so
    /// no image applied record by record ever shows a fenced leader.
    fn fence_records(
        &self,
        broker_id: NodeId,
        epoch: BrokerEpoch,
        already_fenced: bool,
        now_ms: i64,
    ) -> Vec<MetadataRecord> {
        let mut records = self.partition_updates(BrokerUpdate::Fence(broker_id), now_ms);
        if !already_fenced {
            records.push(broker_change(broker_id, epoch, Some(true), None));
        }
        records
    }

    fn has_leaderships(&self, broker_id: NodeId) -> bool {
        self.image
            .topics()
            .flat_map(|t| t.partitions.iter())
            .any(|p| p.leader == broker_id)
    }

    /// The lowest metadata offset any other active broker reported (Kafka's
    /// lowestActiveOffset); `i64::MAX` when there is none.
    fn lowest_active_offset(&self, except: NodeId) -> i64 {
        self.image
            .brokers()
            .filter(|b| b.id != except && b.is_active())
            .map(|b| self.sessions.get(&b.id).map_or(-1, |s| s.metadata_offset))
            .min()
            .unwrap_or(i64::MAX)
    }

    pub(super) fn unregister_broker(
        &mut self,
        broker_id: NodeId,
        now_ms: i64,
    ) -> (ControllerReply, Vec<MetadataRecord>) {
        let Some(epoch) = self.image.broker(broker_id).map(|b| b.epoch) else {
            return (
                ControllerReply::UnregisterBroker(Err(ControllerError::BrokerIdNotRegistered(
                    format!("Broker ID {broker_id} is not currently registered"),
                ))),
                Vec::new(),
            );
        };
        let mut records = self.partition_updates(BrokerUpdate::Lost(broker_id), now_ms);
        records.push(MetadataRecord::UnregisterBroker(UnregisterBrokerRecord {
            broker_id,
            broker_epoch: epoch,
        }));
        self.sessions.remove(&broker_id);
        (ControllerReply::UnregisterBroker(Ok(())), records)
    }

    pub(super) fn allocate_producer_ids(
        &mut self,
        broker_id: NodeId,
        broker_epoch: BrokerEpoch,
    ) -> (ControllerReply, Vec<MetadataRecord>) {
        if let Err(e) = self.check_broker_epoch(broker_id, broker_epoch) {
            return (ControllerReply::AllocateProducerIds(Err(e)), Vec::new());
        }
        let start = self.image.next_producer_id_block();
        let Some(next) = start.checked_add(i64::from(PRODUCER_ID_BLOCK_SIZE)) else {
            return (
                ControllerReply::AllocateProducerIds(Err(ControllerError::UnknownServerError(
                    "Exhausted all producerIds as the next block's end producerId has exceeded the int64 type limit".into(),
                ))),
                Vec::new(),
            );
        };
        let record = MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id,
            broker_epoch,
            next_block_start: next,
        });
        let block = ProducerIdBlock {
            start,
            len: PRODUCER_ID_BLOCK_SIZE,
        };
        (
            ControllerReply::AllocateProducerIds(Ok(block)),
            vec![record],
        )
    }

    /// Fences the unfenced broker whose session expired longest ago, if any.
    pub(super) fn fence_stale_broker(&mut self, now_ms: i64) -> Option<Vec<MetadataRecord>> {
        // A broker registered before this controller became active but missed by `activate`
        // (it cannot be, but sessions are volatile) gets its session now rather than never.
        let missing: Vec<NodeId> = self
            .image
            .brokers()
            .filter(|b| !self.sessions.contains_key(&b.id))
            .map(|b| b.id)
            .collect();
        for id in missing {
            self.touch(id, now_ms, -1);
        }
        let timeout = self.config.broker_session_timeout_ms;
        let stale = self
            .image
            .brokers()
            .filter(|b| !b.fenced)
            .filter_map(|b| {
                let s = self.sessions.get(&b.id)?;
                (s.last_contact_ms.saturating_add(timeout) < now_ms).then_some((
                    s.last_contact_ms,
                    b.id,
                    b.epoch,
                ))
            })
            .min()?;
        let (_, id, epoch) = stale;
        tracing::info!(broker = id, "fencing broker: its session timed out");
        Some(self.fence_records(id, epoch, false, now_ms))
    }
}

fn broker_change(
    broker_id: NodeId,
    broker_epoch: BrokerEpoch,
    fenced: Option<bool>,
    in_controlled_shutdown: Option<bool>,
) -> MetadataRecord {
    MetadataRecord::BrokerChange(BrokerChangeRecord {
        broker_id,
        broker_epoch,
        fenced,
        in_controlled_shutdown,
    })
}
