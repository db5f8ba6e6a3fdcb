//! Test helpers: a config validator with a few of Kafka's configs, and a harness that drives a
//! controller as the broker will (handle, commit the records as one entry, replay them).

use super::*;
use crate::metadata::image::PartitionMeta;
use crate::metadata::records::{Endpoint, RegisterBrokerRecord};

/// An image with registered brokers, each `(id, fenced)`.
pub fn image_with_brokers(brokers: &[(NodeId, bool)]) -> MetadataImage {
    let mut img = MetadataImage::default();
    for (i, (id, fenced)) in brokers.iter().enumerate() {
        img.apply(&MetadataRecord::RegisterBroker(RegisterBrokerRecord {
            broker_id: *id,
            incarnation_id: [*id as u8; 16],
            broker_epoch: i as i64,
            endpoints: vec![],
            rack: None,
            fenced: *fenced,
            in_controlled_shutdown: false,
        }));
    }
    img
}

/// Kafka's rules for the handful of configs the tests use; anything else is unknown.
pub struct TestValidator;

fn check(key: &str, value: &str) -> Result<(), String> {
    let int = |min: i64| match value.parse::<i64>() {
        Ok(v) if v >= min => Ok(()),
        _ => Err(format!(
            "Invalid value {value} for configuration {key}: Not a number of type LONG"
        )),
    };
    match key {
        "retention.ms" => int(-1),
        "segment.bytes" => int(14),
        "min.insync.replicas" => int(1),
        "unclean.leader.election.enable" => match value {
            "true" | "false" => Ok(()),
            _ => Err(format!(
                "Invalid value {value} for configuration {key}: Expected value to be either true or false"
            )),
        },
        "cleanup.policy" => {
            if value
                .split(',')
                .all(|p| matches!(p.trim(), "delete" | "compact"))
            {
                Ok(())
            } else {
                Err(format!("Invalid value {value} for configuration {key}"))
            }
        }
        _ => Err(format!("Unknown topic config name: {key}")),
    }
}

impl ConfigValidator for TestValidator {
    fn validate_topic(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Vec<EffectiveConfig>, String> {
        for (k, v) in overrides {
            check(k, v)?;
        }
        let defaults = [("cleanup.policy", "delete"), ("retention.ms", "604800000")];
        let mut out: Vec<EffectiveConfig> = defaults
            .iter()
            .filter(|(k, _)| !overrides.contains_key(*k))
            .map(|(k, v)| EffectiveConfig {
                name: k.to_string(),
                value: v.to_string(),
                is_default: true,
            })
            .collect();
        out.extend(overrides.iter().map(|(k, v)| EffectiveConfig {
            name: k.clone(),
            value: v.clone(),
            is_default: false,
        }));
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn validate_broker(
        &self,
        _broker: Option<NodeId>,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        for (k, v) in configs {
            match k.as_str() {
                "min.insync.replicas" | "unclean.leader.election.enable" => check(k, v)?,
                _ => return Err(format!("Cannot update {k} dynamically")),
            }
        }
        Ok(())
    }

    fn list_default(&self, kind: ConfigKind, key: &str) -> Option<String> {
        (kind == ConfigKind::Topic && key == "cleanup.policy").then(|| "delete".to_string())
    }
}

pub const SESSION_MS: i64 = 9000;

pub fn config() -> ControllerConfig {
    ControllerConfig {
        node_id: 1,
        cluster_id: "weir-test".into(),
        num_partitions: 3,
        default_replication_factor: 1,
        delete_topic_enable: true,
        broker_session_timeout_ms: SESSION_MS,
        min_insync_replicas: 1,
        unclean_leader_election_enable: false,
    }
}

/// A controller driven as the broker will: each handle or tick that produces records commits
/// them as the next entry and replays them before the next call.
pub struct Harness {
    pub state: ControllerState,
    pub now: i64,
    /// Every committed entry, in order.
    pub log: Vec<Vec<MetadataRecord>>,
    /// The epoch each broker registered with.
    pub epochs: BTreeMap<NodeId, i64>,
}

impl Harness {
    pub fn new(config: ControllerConfig) -> Self {
        let mut state = ControllerState::new(config, Box::new(TestValidator), 7);
        state.activate(0);
        Self {
            state,
            now: 0,
            log: Vec::new(),
            epochs: BTreeMap::new(),
        }
    }

    pub fn commit(&mut self, records: Vec<MetadataRecord>) {
        if records.is_empty() {
            return;
        }
        let offset = self.state.applied_offset() + 1;
        self.state.replay(offset, &records);
        self.log.push(records);
    }

    pub fn handle(&mut self, request: ControllerRequest) -> ControllerReply {
        let (reply, records) = self.state.handle(request, self.now);
        self.commit(records);
        reply
    }

    pub fn tick(&mut self) -> usize {
        let records = self.state.tick(self.now);
        let n = records.len();
        self.commit(records);
        n
    }

    /// Ticks until nothing more happens (one stale broker per tick).
    pub fn settle(&mut self) {
        for _ in 0..64 {
            if self.tick() == 0 {
                return;
            }
        }
        panic!("the controller never settled");
    }

    pub fn registration(id: NodeId, incarnation: u8, previous_epoch: i64) -> ControllerRequest {
        ControllerRequest::RegisterBroker(BrokerRegistration {
            broker_id: id,
            cluster_id: "weir-test".into(),
            incarnation_id: [incarnation; 16],
            listeners: vec![Endpoint {
                listener: "PLAINTEXT".into(),
                host: format!("b{id}"),
                port: 9092,
                security_protocol: 0,
            }],
            rack: None,
            previous_broker_epoch: previous_epoch,
        })
    }

    pub fn register_as(
        &mut self,
        id: NodeId,
        incarnation: u8,
        previous_epoch: i64,
    ) -> Result<i64, ControllerError> {
        match self.handle(Self::registration(id, incarnation, previous_epoch)) {
            ControllerReply::RegisterBroker(r) => {
                if let Ok(e) = r {
                    self.epochs.insert(id, e);
                }
                r
            }
            other => panic!("{other:?}"),
        }
    }

    /// Registers and heartbeats until unfenced.
    pub fn join(&mut self, id: NodeId) -> i64 {
        let epoch = self.register_as(id, id as u8, -1).unwrap();
        let hb = self.heartbeat(id).unwrap();
        assert!(!hb.is_fenced, "{id} unfenced once caught up");
        epoch
    }

    pub fn heartbeat_with(
        &mut self,
        id: NodeId,
        want_fence: bool,
        want_shutdown: bool,
    ) -> Result<HeartbeatReply, ControllerError> {
        let hb = BrokerHeartbeat {
            broker_id: id,
            broker_epoch: self.epochs.get(&id).copied().unwrap_or(-1),
            current_metadata_offset: self.state.applied_offset(),
            want_fence,
            want_shutdown,
        };
        match self.handle(ControllerRequest::BrokerHeartbeat(hb)) {
            ControllerReply::BrokerHeartbeat(r) => r,
            other => panic!("{other:?}"),
        }
    }

    pub fn heartbeat(&mut self, id: NodeId) -> Result<HeartbeatReply, ControllerError> {
        self.heartbeat_with(id, false, false)
    }

    pub fn create(
        &mut self,
        name: &str,
        partitions: i32,
        rf: i16,
        configs: &[(&str, &str)],
    ) -> Result<CreatedTopic, ControllerError> {
        let request = ControllerRequest::CreateTopics {
            topics: vec![NewTopic {
                name: name.into(),
                num_partitions: partitions,
                replication_factor: rf,
                assignments: vec![],
                configs: configs
                    .iter()
                    .map(|(k, v)| ConfigEntry {
                        key: k.to_string(),
                        value: Some(v.to_string()),
                    })
                    .collect(),
            }],
            validate_only: false,
        };
        match self.handle(request) {
            ControllerReply::CreateTopics(mut r) => r.pop().unwrap(),
            other => panic!("{other:?}"),
        }
    }

    pub fn partition(&self, topic: &str, p: usize) -> PartitionMeta {
        self.state.image().topic(topic).unwrap().partitions[p].clone()
    }

    /// The image the committed log builds from nothing.
    pub fn replayed(&self) -> MetadataImage {
        let mut img = MetadataImage::default();
        for entry in &self.log {
            for r in entry {
                img.apply(r);
            }
        }
        img
    }
}
