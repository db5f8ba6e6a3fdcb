//! Fetch: read every requested partition on its owning core, long-poll if there is less than
//! `min_bytes`, and answer with record bytes that go from the page cache to the socket by
//! `sendfile` (local regions as they are, regions from other cores as duplicated descriptors).

use crate::runtime::core::{join_all, Core};
use crate::runtime::messages::{ReadResult, ReadSpec, RemoteRegion, ShardRequest, ShardResponse};
use crate::shard::ShardId;
use kafka_protocol::messages::FetchRequest;
use kafka_protocol::ResponseError as K;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};
use weir_net::fetch_response::{
    encode_fetch_response, FetchPartitionData, FetchResponseData, FetchTopicData,
};
use weir_net::{FileRegion as NetRegion, Part, Reply};
use weir_storage::FileRegion;

/// A partition's read, whichever core did it.
enum Region {
    Local(FileRegion),
    Remote(RemoteRegion),
}

impl Region {
    fn len(&self) -> u64 {
        match self {
            Region::Local(r) => r.len,
            Region::Remote(r) => r.len,
        }
    }

    fn into_part(self) -> Part {
        match self {
            Region::Local(r) => {
                let (pos, len) = (r.position, r.len);
                Part::File(NetRegion::new(Rc::new(r) as Rc<dyn AsRawFd>, pos, len))
            }
            Region::Remote(r) => {
                let (pos, len) = (r.position, r.len);
                Part::File(NetRegion::new(Rc::new(r) as Rc<dyn AsRawFd>, pos, len))
            }
        }
    }
}

/// Reads gathered from every core: (slot index, result).
type Gathered = Vec<(usize, ReadResult<Region>)>;

struct Slot {
    topic_index: usize,
    spec: ReadSpec,
    error: Option<i16>,
    result: Option<ReadResult<Region>>,
}

pub async fn handle(
    core: &Rc<Core>,
    req: FetchRequest,
    version: i16,
    correlation_id: i32,
) -> Reply {
    let mut response = FetchResponseData::default();
    if req.session_id != 0 {
        // Fetch sessions are not kept: a client that has one must start over with a full fetch.
        response.error_code = K::FetchSessionIdNotFound.code();
        return encode(version, correlation_id, &response);
    }
    let committed = req.isolation_level == 1;
    let mut slots = Vec::new();
    for topic in &req.topics {
        let (name, id) = {
            let image = core.image.borrow();
            let t = if version >= 13 {
                image.topic_by_id(topic.topic_id.as_bytes())
            } else {
                image.topic(&topic.topic.0)
            };
            (t.map(|t| t.name.clone()), t.map(|t| t.id))
        };
        let unknown = if version >= 13 {
            K::UnknownTopicId
        } else {
            K::UnknownTopicOrPartition
        };
        let topic_index = response.topics.len();
        response.topics.push(FetchTopicData {
            name: topic.topic.0.clone(),
            topic_id: id.unwrap_or(*topic.topic_id.as_bytes()),
            partitions: Vec::new(),
        });
        for p in &topic.partitions {
            let partition_count = name
                .as_ref()
                .and_then(|n| {
                    core.image
                        .borrow()
                        .topic(n)
                        .map(|t| t.partitions.len() as i32)
                })
                .unwrap_or(0);
            let error = match &name {
                None => Some(unknown.code()),
                Some(_) if p.partition < 0 || p.partition >= partition_count => {
                    Some(K::UnknownTopicOrPartition.code())
                }
                Some(_) => None,
            };
            slots.push(Slot {
                topic_index,
                spec: ReadSpec {
                    topic: name.clone().unwrap_or_default(),
                    partition: p.partition,
                    offset: p.fetch_offset,
                    max_bytes: p.partition_max_bytes.max(0) as u64,
                    committed,
                },
                error,
                result: None,
            });
        }
    }
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let min_bytes = req.min_bytes.max(0) as u64;
    read_all(core, &mut slots).await;
    let enough = |slots: &[Slot]| {
        let bytes: u64 = slots
            .iter()
            .filter_map(|s| s.result.as_ref()?.region.as_ref().map(Region::len))
            .sum();
        let errors = slots
            .iter()
            .any(|s| s.error.is_some() || s.result.as_ref().is_some_and(|r| r.error_code != 0));
        bytes >= min_bytes.max(1) || errors
    };
    if !enough(&slots) && Instant::now() < deadline && !slots.is_empty() {
        wait_any(core, &slots, deadline).await;
        read_all(core, &mut slots).await;
    }
    // Fill partitions in request order until the response budget is spent; the first batch
    // found is always sent, so a consumer makes progress even past max_bytes (KIP-74).
    let mut budget = req.max_bytes.max(0) as u64;
    let mut sent_any = false;
    for slot in slots {
        let mut data = FetchPartitionData::new(slot.spec.partition);
        match (slot.error, slot.result) {
            (Some(code), _) => data.error_code = code,
            (None, Some(r)) => {
                data.error_code = r.error_code;
                data.high_watermark = r.high_watermark;
                data.last_stable_offset = r.high_watermark;
                data.log_start_offset = r.log_start_offset;
                if let Some(region) = r.region {
                    let len = region.len();
                    if len <= budget || !sent_any {
                        budget = budget.saturating_sub(len);
                        sent_any = true;
                        data.records.push(region.into_part());
                    }
                }
            }
            (None, None) => data.error_code = K::UnknownServerError.code(),
        }
        if committed {
            data.aborted_transactions = Some(Vec::new());
        }
        response.topics[slot.topic_index].partitions.push(data);
    }
    encode(version, correlation_id, &response)
}

fn encode(version: i16, correlation_id: i32, response: &FetchResponseData) -> Reply {
    match encode_fetch_response(version, correlation_id, response) {
        Ok(frame) => Reply::Frame(frame),
        Err(e) => {
            tracing::error!(error = %e, "encoding a fetch response failed; closing the connection");
            Reply::Close
        }
    }
}

/// Reads every slot without an error, grouped by owning core, all cores at once.
async fn read_all(core: &Rc<Core>, slots: &mut [Slot]) {
    let mut by_shard: BTreeMap<ShardId, Vec<usize>> = BTreeMap::new();
    for (i, s) in slots.iter().enumerate().filter(|(_, s)| s.error.is_none()) {
        by_shard
            .entry(core.owner_of(&s.spec.topic, s.spec.partition))
            .or_default()
            .push(i);
    }
    let results: Rc<RefCell<Gathered>> = Rc::default();
    let calls = by_shard.into_iter().map(|(shard, idx)| {
        let specs: Vec<ReadSpec> = idx.iter().map(|i| slots[*i].spec.clone()).collect();
        let core = core.clone();
        let results = results.clone();
        Box::pin(async move {
            let got: Vec<ReadResult<Region>> = if shard == core.id() {
                core.read_local(&specs)
                    .await
                    .into_iter()
                    .map(|r| map_region(r, Region::Local))
                    .collect()
            } else {
                match core.call(shard, ShardRequest::Read(specs)).await {
                    Some(ShardResponse::Read(rs)) => rs
                        .into_iter()
                        .map(|r| map_region(r, Region::Remote))
                        .collect(),
                    _ => idx
                        .iter()
                        .map(|_| ReadResult {
                            error_code: K::NotLeaderOrFollower.code(),
                            high_watermark: -1,
                            log_start_offset: -1,
                            region: None,
                        })
                        .collect(),
                }
            };
            results.borrow_mut().extend(idx.into_iter().zip(got));
        })
    });
    join_all(calls.collect()).await;
    let results = std::mem::take(&mut *results.borrow_mut());
    for (i, r) in results {
        slots[i].result = Some(r);
    }
}

fn map_region<R>(r: ReadResult<R>, f: impl FnOnce(R) -> Region) -> ReadResult<Region> {
    ReadResult {
        error_code: r.error_code,
        high_watermark: r.high_watermark,
        log_start_offset: r.log_start_offset,
        region: r.region.map(f),
    }
}

/// Waits until any involved core reports new data, or the deadline.
async fn wait_any(core: &Rc<Core>, slots: &[Slot], deadline: Instant) {
    let mut by_shard: BTreeMap<ShardId, Vec<ReadSpec>> = BTreeMap::new();
    for s in slots.iter().filter(|s| s.error.is_none()) {
        by_shard
            .entry(core.owner_of(&s.spec.topic, s.spec.partition))
            .or_default()
            .push(s.spec.clone());
    }
    let wait_ms = deadline
        .saturating_duration_since(Instant::now())
        .as_millis() as u64;
    let (tx, rx) = glommio::channels::local_channel::new_bounded(by_shard.len().max(1));
    let tx = Rc::new(tx);
    let waiters: Vec<_> = by_shard
        .into_iter()
        .map(|(shard, parts)| {
            let core = core.clone();
            let tx = tx.clone();
            glommio::spawn_local(async move {
                if shard == core.id() {
                    core.wait_for_data(&parts, wait_ms).await;
                } else {
                    core.call(
                        shard,
                        ShardRequest::WaitForData {
                            parts,
                            max_wait_ms: wait_ms,
                        },
                    )
                    .await;
                }
                let _ = tx.try_send(());
            })
        })
        .collect();
    // Whichever core answers first ends the wait; the others time out on their own.
    let first = async {
        let _ = rx.recv().await;
    };
    futures_lite::future::or(
        first,
        glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())),
    )
    .await;
    for w in waiters {
        w.detach();
    }
}
