//! Fetch: read every requested partition on its owning core, long-poll if there is less than
//! `min_bytes`, and answer with record bytes that go from the page cache to the socket by
//! `sendfile` (local regions as they are, regions from other cores as duplicated descriptors).

use crate::runtime::core::{join_all, select_all, Core};
use crate::runtime::messages::{
    FollowerFetch, ReadResult, ReadSpec, RemoteRegion, ShardRequest, ShardResponse, WaitSpec,
};
use crate::shard::ShardId;
use kafka_protocol::messages::fetch_response::{EpochEndOffset, LeaderIdAndEpoch};
use kafka_protocol::messages::BrokerId;
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

impl Slot {
    fn region_len(&self) -> u64 {
        self.result
            .as_ref()
            .and_then(|r| r.region.as_ref())
            .map_or(0, Region::len)
    }
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
    // A follower fetches as a replica (Kafka's replica fetch): v15+ in ReplicaState, before in
    // the top-level replica id; consumers send -1.
    let (replica_id, replica_epoch) = if version >= 15 {
        (
            req.replica_state.replica_id.0,
            req.replica_state.replica_epoch,
        )
    } else {
        (req.replica_id.0, -1)
    };
    let is_follower = replica_id >= 0;
    // The response's budget (KIP-74): no partition reads more than the whole response may hold.
    let max_bytes = req.max_bytes.max(0) as u64;
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
                    max_bytes: (p.partition_max_bytes.max(0) as u64).min(max_bytes),
                    // Any partition may turn out to be the first with data; the budget pass
                    // below keeps an oversized first batch only for the first one.
                    min_one_batch: true,
                    committed,
                    current_leader_epoch: if version >= 9 {
                        p.current_leader_epoch
                    } else {
                        -1
                    },
                    follower: is_follower.then_some(FollowerFetch {
                        replica_id,
                        broker_epoch: replica_epoch,
                        last_fetched_epoch: if version >= 12 {
                            p.last_fetched_epoch
                        } else {
                            -1
                        },
                        log_start_offset: p.log_start_offset,
                    }),
                },
                error,
                result: None,
            });
        }
    }
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let min_bytes = req.min_bytes.max(0) as u64;
    // Kafka's delayed fetch: answer once `min_bytes` are there (or any partition has an error
    // to report), else wait for more until `max_wait_ms`.
    loop {
        read_all(core, &mut slots).await;
        if slots.is_empty() || enough(&slots, min_bytes) || Instant::now() >= deadline {
            break;
        }
        wait_for_more(core, &slots, deadline).await;
    }
    fit_to_budget(core, &mut slots, max_bytes).await;
    for slot in slots {
        let mut data = FetchPartitionData::new(slot.spec.partition);
        match (slot.error, slot.result) {
            (Some(code), _) => data.error_code = code,
            (None, Some(r)) => {
                data.error_code = r.error_code;
                data.high_watermark = r.high_watermark;
                data.last_stable_offset = r.high_watermark;
                data.log_start_offset = r.log_start_offset;
                if let Some(d) = r.diverging_epoch {
                    data.diverging_epoch = Some(
                        EpochEndOffset::default()
                            .with_epoch(d.epoch)
                            .with_end_offset(d.end_offset),
                    );
                }
                // Where the client should go instead (KIP-951), with the errors that send it.
                if matches!(r.error_code, 6 | 74 | 75) {
                    if let Some((leader, epoch)) = r.current_leader {
                        data.current_leader = Some(
                            LeaderIdAndEpoch::default()
                                .with_leader_id(BrokerId(leader))
                                .with_leader_epoch(epoch),
                        );
                    }
                }
                if let Some(region) = r.region {
                    data.records.push(region.into_part());
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

/// Whether the reads so far can answer the fetch: `min_bytes` of records, or an error to
/// report (Kafka answers a delayed fetch at once when a partition fails).
fn enough(slots: &[Slot], min_bytes: u64) -> bool {
    let mut bytes = 0u64;
    for s in slots {
        let answer_now = s
            .result
            .as_ref()
            .is_some_and(|r| r.error_code != 0 || r.diverging_epoch.is_some());
        if s.error.is_some() || answer_now {
            return true;
        }
        bytes += s.region_len();
    }
    bytes >= min_bytes.max(1)
}

/// Keeps the response within `max_bytes` (KIP-74), in request order: the first partition with
/// data keeps its read whole (at most its first batch goes past the budget, so a consumer
/// always progresses); a later partition that does not fit is read again with what is left of
/// the budget, whole batches only, and gets nothing once the budget is spent.
async fn fit_to_budget(core: &Rc<Core>, slots: &mut [Slot], max_bytes: u64) {
    let mut budget = max_bytes;
    let mut sent_any = false;
    for slot in slots.iter_mut() {
        let len = slot.region_len();
        if len == 0 {
            continue;
        }
        if !sent_any || len <= budget {
            sent_any = true;
            budget = budget.saturating_sub(len);
            continue;
        }
        let refit = if budget == 0 {
            None
        } else {
            let mut spec = slot.spec.clone();
            spec.max_bytes = budget;
            spec.min_one_batch = false;
            read_one(core, spec).await
        };
        let result = slot.result.as_mut().expect("a slot with a region was read");
        match refit {
            // Only a read that fits replaces the first: a concurrent append cannot make a
            // bounded read larger than its bound, but an error here must not drop the answer's
            // offsets either.
            Some(r) if r.error_code == 0 => {
                let got = r.region.as_ref().map_or(0, Region::len);
                debug_assert!(
                    got <= budget,
                    "a read without min_one_batch stays within max_bytes"
                );
                budget -= got.min(budget);
                *result = r;
            }
            _ => result.region = None,
        }
    }
}

/// Reads one partition on its owning core.
async fn read_one(core: &Rc<Core>, spec: ReadSpec) -> Option<ReadResult<Region>> {
    let shard = core.owner_of(&spec.topic, spec.partition);
    if shard == core.id() {
        let mut got = core.read_local(std::slice::from_ref(&spec)).await;
        return got.pop().map(|r| map_region(r, Region::Local));
    }
    match core.call(shard, ShardRequest::Read(vec![spec])).await {
        Some(ShardResponse::Read(mut rs)) => rs.pop().map(|r| map_region(r, Region::Remote)),
        _ => None,
    }
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
                        .map(|_| ReadResult::error(K::NotLeaderOrFollower.code()))
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
        diverging_epoch: r.diverging_epoch,
        current_leader: r.current_leader,
    }
}

/// Waits until any involved partition's high watermark moves past what the last read saw, or
/// the deadline. Waits on other cores are cancelled as soon as one answers, so an answered fetch
/// leaves nothing behind (they used to run on until `max_wait_ms`).
async fn wait_for_more(core: &Rc<Core>, slots: &[Slot], deadline: Instant) {
    let mut by_shard: BTreeMap<ShardId, Vec<WaitSpec>> = BTreeMap::new();
    for s in slots.iter().filter(|s| s.error.is_none()) {
        let Some(r) = &s.result else { continue };
        by_shard
            .entry(core.owner_of(&s.spec.topic, s.spec.partition))
            .or_default()
            .push(WaitSpec {
                topic: s.spec.topic.clone(),
                partition: s.spec.partition,
                fetch_offset: s.spec.offset,
                seen_high_watermark: r.high_watermark,
                follower: s.spec.follower.is_some(),
            });
    }
    let wait_ms = deadline
        .saturating_duration_since(Instant::now())
        .as_millis() as u64;
    if by_shard.is_empty() || wait_ms == 0 {
        return;
    }
    let waiter = core.new_waiter();
    let mut remote = Vec::new();
    let waits = by_shard.into_iter().map(|(shard, parts)| {
        let core = core.clone();
        if shard != core.id() {
            remote.push(shard);
        }
        Box::pin(async move {
            if shard == core.id() {
                core.wait_for_data(&parts, wait_ms).await;
            } else {
                let request = ShardRequest::WaitForData {
                    waiter,
                    parts,
                    max_wait_ms: wait_ms,
                };
                core.call(shard, request).await;
            }
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>
    });
    let waits: Vec<_> = waits.collect();
    futures_lite::future::or(
        select_all(waits),
        glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())),
    )
    .await;
    // The local wait was dropped with `select_all`; the remote ones are told. A cancel that
    // finds its wait already over is a no-op there.
    for shard in remote {
        let core = core.clone();
        glommio::spawn_local(async move {
            core.call(shard, ShardRequest::CancelWait(waiter)).await;
        })
        .detach();
    }
}
