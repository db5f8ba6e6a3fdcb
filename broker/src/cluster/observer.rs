//! Metadata for brokers that are not voters (KRaft's observers): they pull committed entries
//! from the active controller with the private `WeirMetadataFetch` api, long-polling, starting
//! with its checkpoint when the entries they need were compacted away.
//!
//! The active controller remembers what each observer fetched last ([`Observers`]), for
//! DescribeQuorum's observers, as KRaft's leader does from its Fetch requests.
//!
//! Wire format, big-endian, version 0:
//! - request: `replica_id i32` (the fetching node), `from_index u64` (the first index
//!   wanted), `max_bytes u32`, `max_wait_ms u32`;
//! - response: `error i16` (0, or 41 NOT_CONTROLLER), `leader i32`, `committed u64`, a snapshot
//!   flag `u8` then (`index u64`, `term u64`, `len u32`, bytes), `count u32`, then per entry
//!   `index u64`, `term u64`, `len u32`, data.

use super::applier::{Applied, MetadataApplier};
use super::client::ControllerClient;
use super::controller::ControllerService;
use super::metadata_log::MetadataLog;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;
use weir_replication::quorum::{CommittedEntry, SnapshotData};
use weir_replication::types::{NodeId, NO_NODE};

/// How long a fetch waits at the controller for something new (Kafka's observers fetch with
/// the same 500 ms wait as replicas).
pub const FETCH_WAIT: Duration = Duration::from_millis(500);
/// Entry bytes per fetch.
const FETCH_BYTES: u32 = 8 << 20;
/// Largest wait a request may ask for.
const MAX_WAIT_LIMIT_MS: u32 = 30_000;

const NOT_CONTROLLER: i16 = 41;

/// How long the leader keeps describing an observer that stopped fetching (Kafka's
/// `LeaderState.OBSERVER_SESSION_TIMEOUT_MS`).
pub const OBSERVER_SESSION_TIMEOUT_MS: i64 = 300_000;

/// Most observers remembered at once: each live broker-only node is one, and a node id that
/// no longer fetches ages out after [`OBSERVER_SESSION_TIMEOUT_MS`]; past the bound the one
/// heard from longest ago is forgotten first.
pub const OBSERVERS_MAX: usize = 10_000;

const REQUEST_BYTES: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// The node fetching (its `node.id`).
    pub replica_id: NodeId,
    pub from_index: u64,
    pub max_bytes: u32,
    pub max_wait_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse {
    pub error: i16,
    pub leader: NodeId,
    pub committed: u64,
    pub snapshot: Option<SnapshotData>,
    pub entries: Vec<CommittedEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed metadata fetch message: {0}")]
pub struct CodecError(&'static str);

impl FetchRequest {
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(REQUEST_BYTES);
        b.put_i32(self.replica_id);
        b.put_u64(self.from_index);
        b.put_u32(self.max_bytes);
        b.put_u32(self.max_wait_ms);
        b.freeze()
    }

    pub fn decode(mut b: &[u8]) -> Result<Self, CodecError> {
        if b.len() != REQUEST_BYTES {
            return Err(CodecError("request size"));
        }
        Ok(Self {
            replica_id: b.get_i32(),
            from_index: b.get_u64(),
            max_bytes: b.get_u32(),
            max_wait_ms: b.get_u32(),
        })
    }
}

impl FetchResponse {
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(self.error);
        b.put_i32(self.leader);
        b.put_u64(self.committed);
        match &self.snapshot {
            Some(s) => {
                b.put_u8(1);
                b.put_u64(s.index);
                b.put_u64(s.term);
                b.put_u32(s.data.len() as u32);
                b.put_slice(&s.data);
            }
            None => b.put_u8(0),
        }
        b.put_u32(self.entries.len() as u32);
        for e in &self.entries {
            b.put_u64(e.index);
            b.put_u64(e.term);
            b.put_u32(e.data.len() as u32);
            b.put_slice(&e.data);
        }
        b.freeze()
    }

    /// Decodes without copying entry data (slices of `b`).
    pub fn decode(b: &Bytes) -> Result<Self, CodecError> {
        let mut r = Reader(b.clone());
        let error = r.i16()?;
        let leader = r.i32()?;
        let committed = r.u64()?;
        let snapshot = match r.u8()? {
            0 => None,
            1 => Some(SnapshotData {
                index: r.u64()?,
                term: r.u64()?,
                data: r.bytes()?,
            }),
            _ => return Err(CodecError("snapshot flag")),
        };
        let count = r.u32()? as usize;
        // Each entry takes at least 20 bytes: a count beyond that is a lie.
        if count > r.0.len() / 20 {
            return Err(CodecError("entry count"));
        }
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            entries.push(CommittedEntry {
                index: r.u64()?,
                term: r.u64()?,
                data: r.bytes()?,
            });
        }
        if !r.0.is_empty() {
            return Err(CodecError("trailing bytes"));
        }
        Ok(Self {
            error,
            leader,
            committed,
            snapshot,
            entries,
        })
    }
}

struct Reader(Bytes);

impl Reader {
    fn need(&self, n: usize) -> Result<(), CodecError> {
        if self.0.len() < n {
            return Err(CodecError("truncated"));
        }
        Ok(())
    }
    fn u8(&mut self) -> Result<u8, CodecError> {
        self.need(1)?;
        Ok(self.0.get_u8())
    }
    fn i16(&mut self) -> Result<i16, CodecError> {
        self.need(2)?;
        Ok(self.0.get_i16())
    }
    fn i32(&mut self) -> Result<i32, CodecError> {
        self.need(4)?;
        Ok(self.0.get_i32())
    }
    fn u32(&mut self) -> Result<u32, CodecError> {
        self.need(4)?;
        Ok(self.0.get_u32())
    }
    fn u64(&mut self) -> Result<u64, CodecError> {
        self.need(8)?;
        Ok(self.0.get_u64())
    }
    fn bytes(&mut self) -> Result<Bytes, CodecError> {
        let n = self.u32()? as usize;
        self.need(n)?;
        Ok(self.0.split_to(n))
    }
}

/// What the leader knows of one observer (Kafka's LeaderState.ReplicaState of an observer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObserverState {
    pub node_id: NodeId,
    /// The offset after its last entry: the index it asked from, less one.
    pub log_end_offset: i64,
    pub last_fetch_ms: i64,
    /// -1 until a fetch showed it holding everything committed.
    pub last_caught_up_ms: i64,
}

/// The observers the active controller serves, for the term it leads (a new leader starts
/// afresh, as KRaft's LeaderState does).
#[derive(Debug, Default)]
pub struct Observers {
    term: Cell<u64>,
    states: RefCell<BTreeMap<NodeId, Tracked>>,
}

#[derive(Debug, Clone, Copy)]
struct Tracked {
    state: ObserverState,
    /// The leader's committed offset at the previous fetch: reaching it now means the
    /// observer was caught up at that fetch (Kafka's lastFetchLeaderLogEndOffset).
    committed_at_last_fetch: i64,
}

impl Observers {
    /// A fetch from `node` asking for entries from `from_index`, while `committed` entries are
    /// committed and this node leads `term`. Kafka's updateFollowerState: caught up now when it
    /// has everything; caught up at its previous fetch when it now has what was committed then.
    pub fn fetched(&self, term: u64, node: NodeId, from_index: u64, committed: u64, now_ms: i64) {
        let mut states = self.states.borrow_mut();
        if self.term.get() != term {
            states.clear();
            self.term.set(term);
        }
        let end = i64::try_from(from_index.saturating_sub(1)).unwrap_or(i64::MAX);
        let committed = i64::try_from(committed).unwrap_or(i64::MAX);
        if !states.contains_key(&node) && states.len() >= OBSERVERS_MAX {
            let oldest = states
                .iter()
                .min_by_key(|(_, t)| t.state.last_fetch_ms)
                .map(|(id, _)| *id);
            if let Some(id) = oldest {
                states.remove(&id);
            }
        }
        let tracked = states.entry(node).or_insert(Tracked {
            state: ObserverState {
                node_id: node,
                log_end_offset: -1,
                last_fetch_ms: -1,
                last_caught_up_ms: -1,
            },
            committed_at_last_fetch: -1,
        });
        let s = &mut tracked.state;
        if end >= committed {
            s.last_caught_up_ms = s.last_caught_up_ms.max(now_ms);
        } else if tracked.committed_at_last_fetch > 0 && end >= tracked.committed_at_last_fetch {
            s.last_caught_up_ms = s.last_caught_up_ms.max(s.last_fetch_ms);
        }
        tracked.committed_at_last_fetch = committed;
        s.log_end_offset = end;
        s.last_fetch_ms = s.last_fetch_ms.max(now_ms);
    }

    /// The observers of `term` heard from within the observer session, by node id.
    pub fn list(&self, term: u64, now_ms: i64) -> Vec<ObserverState> {
        if self.term.get() != term {
            return Vec::new();
        }
        let mut states = self.states.borrow_mut();
        states.retain(|_, t| now_ms - t.state.last_fetch_ms < OBSERVER_SESSION_TIMEOUT_MS);
        states.values().map(|t| t.state).collect()
    }
}

/// The active controller's side: committed entries from `from_index`, or its checkpoint first
/// when those were compacted, waiting up to `max_wait_ms` for something new. The fetch is
/// recorded in `observers` for the term this node leads.
pub async fn serve(
    request: FetchRequest,
    controller: &ControllerService,
    log: &MetadataLog,
    applier: &MetadataApplier,
    observers: &Observers,
) -> FetchResponse {
    let not_controller = || FetchResponse {
        error: NOT_CONTROLLER,
        leader: applier.known_leader().unwrap_or(NO_NODE),
        committed: 0,
        snapshot: None,
        entries: Vec::new(),
    };
    let Some(term) = controller.active_term() else {
        return not_controller();
    };
    observers.fetched(
        term,
        request.replica_id,
        request.from_index.max(1),
        applier.applied_index(),
        crate::clock::now_ms(),
    );
    let from = request.from_index.max(1);
    if applier.applied_index() < from {
        let wait = Duration::from_millis(u64::from(request.max_wait_ms.min(MAX_WAIT_LIMIT_MS)));
        futures_lite::future::or(applier.wait_applied(from), async {
            glommio::timer::sleep(wait).await;
        })
        .await;
    }
    let committed = applier.applied_index();
    let snapshot = log.snapshot().filter(|s| from <= s.index);
    let start = snapshot.as_ref().map_or(from, |s| s.index + 1);
    let entries = if start <= committed {
        match log
            .entries_between(start, committed, u64::from(request.max_bytes.max(1)))
            .await
        {
            Ok(e) => e
                .into_iter()
                .map(|e| CommittedEntry {
                    index: e.index,
                    term: e.term,
                    data: e.data,
                })
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "reading the metadata log for a broker failed");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    FetchResponse {
        error: 0,
        leader: applier.known_leader().unwrap_or(NO_NODE),
        committed,
        snapshot,
        entries,
    }
}

/// A broker-only node's side: fetches forever, feeding the applier in order.
pub struct MetadataFetcher {
    node_id: NodeId,
    client: Rc<ControllerClient>,
    applier: Rc<MetadataApplier>,
    /// The next index to ask for.
    next: Cell<u64>,
    stopped: Cell<bool>,
}

impl MetadataFetcher {
    pub fn start(
        node_id: NodeId,
        client: Rc<ControllerClient>,
        applier: Rc<MetadataApplier>,
    ) -> Rc<Self> {
        let me = Rc::new(Self {
            node_id,
            next: Cell::new(applier.applied_index() + 1),
            client,
            applier,
            stopped: Cell::new(false),
        });
        glommio::spawn_local(me.clone().run()).detach();
        me
    }

    pub fn stop(&self) {
        self.stopped.set(true);
    }

    async fn run(self: Rc<Self>) {
        while !self.stopped.get() {
            let request = FetchRequest {
                replica_id: self.node_id,
                from_index: self.next.get(),
                max_bytes: FETCH_BYTES,
                max_wait_ms: FETCH_WAIT.as_millis() as u32,
            };
            let answer = self
                .client
                .call_raw_active(weir_net::WeirApi::MetadataFetch, request.encode())
                .await;
            let response =
                match answer.and_then(|b| FetchResponse::decode(&b).map_err(|e| e.to_string())) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::debug!(error = %e, "metadata fetch failed");
                        glommio::timer::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
            if response.error != 0 {
                self.client
                    .hint((response.leader >= 0).then_some(response.leader));
                glommio::timer::sleep(Duration::from_millis(50)).await;
                continue;
            }
            if response.leader >= 0 {
                self.applier.set_leader(Some(response.leader));
            }
            if let Some(snap) = response.snapshot {
                self.next.set(snap.index + 1);
                self.applier.push(Applied::Snapshot(snap));
            }
            if let Some(last) = response.entries.last() {
                self.next.set(last.index + 1);
            }
            if let Some(applied) = to_apply(response.entries) {
                self.applier.push(applied);
            }
        }
    }
}

/// What fetched committed entries give the applier: the entries carrying data, and the index
/// all of them bring the state to. The active controller serves its log as it is, with the
/// empty entry a raft leader appends first in its term; the voters' rounds never hand those
/// out (`Applied::Entries` lists only entries with data), and decoding one as a batch of
/// records fails, so a broker would log every new controller term as a corrupt entry.
fn to_apply(entries: Vec<CommittedEntry>) -> Option<Applied> {
    let last = entries.last()?.index;
    Some(Applied::Entries {
        entries: entries.into_iter().filter(|e| !e.data.is_empty()).collect(),
        applied_index: Some(last),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let req = FetchRequest {
            replica_id: 4,
            from_index: 7,
            max_bytes: 100,
            max_wait_ms: 500,
        };
        assert_eq!(FetchRequest::decode(&req.encode()).unwrap(), req);
        assert!(FetchRequest::decode(&req.encode()[..19]).is_err());
        let resp = FetchResponse {
            error: 0,
            leader: 2,
            committed: 9,
            snapshot: Some(SnapshotData {
                index: 5,
                term: 1,
                data: Bytes::from_static(b"image"),
            }),
            entries: vec![CommittedEntry {
                index: 6,
                term: 2,
                data: Bytes::from_static(b"abc"),
            }],
        };
        let bytes = resp.encode();
        assert_eq!(FetchResponse::decode(&bytes).unwrap(), resp);
        for cut in 0..bytes.len() {
            assert!(
                FetchResponse::decode(&bytes.slice(..cut)).is_err(),
                "cut at {cut}"
            );
        }
        let mut lying = BytesMut::new();
        lying.put_i16(0);
        lying.put_i32(1);
        lying.put_u64(1);
        lying.put_u8(0);
        lying.put_u32(u32::MAX);
        assert!(FetchResponse::decode(&lying.freeze()).is_err());
    }

    #[test]
    fn a_new_terms_empty_entry_is_not_applied_but_counted() {
        let entry = |index, data: &'static [u8]| CommittedEntry {
            index,
            term: 2,
            data: Bytes::from_static(data),
        };
        assert!(to_apply(Vec::new()).is_none());
        let Some(Applied::Entries {
            entries,
            applied_index,
        }) = to_apply(vec![entry(1, b""), entry(2, b"records"), entry(3, b"")])
        else {
            panic!("entries to apply");
        };
        let indexes: Vec<u64> = entries.iter().map(|e| e.index).collect();
        assert_eq!(indexes, vec![2]);
        assert_eq!(applied_index, Some(3), "the empty entries are applied past");
    }

    #[test]
    fn observers_are_caught_up_as_kraft_counts_it() {
        let o = Observers::default();
        // Behind: fetched, never caught up.
        o.fetched(3, 4, 5, 10, 1_000);
        assert_eq!(
            o.list(3, 1_000),
            vec![ObserverState {
                node_id: 4,
                log_end_offset: 4,
                last_fetch_ms: 1_000,
                last_caught_up_ms: -1
            }]
        );
        // It now has what was committed at its previous fetch: caught up as of then.
        o.fetched(3, 4, 11, 12, 1_500);
        assert_eq!(o.list(3, 1_500)[0].last_caught_up_ms, 1_000);
        // Everything committed: caught up now.
        o.fetched(3, 4, 13, 12, 2_000);
        assert_eq!(
            o.list(3, 2_000)[0],
            ObserverState {
                node_id: 4,
                log_end_offset: 12,
                last_fetch_ms: 2_000,
                last_caught_up_ms: 2_000
            }
        );
        // Another term is another leader's business; silence past the session forgets it.
        assert!(o.list(4, 2_000).is_empty());
        assert!(o.list(3, 2_000 + OBSERVER_SESSION_TIMEOUT_MS).is_empty());
        o.fetched(5, 5, 1, 0, 3_000);
        assert_eq!(o.list(5, 3_000).len(), 1);
        assert!(o.list(3, 3_000).is_empty(), "a new term starts afresh");
    }

    #[test]
    fn observers_are_bounded() {
        let o = Observers::default();
        for id in 0..OBSERVERS_MAX as i32 + 5 {
            o.fetched(1, id, 1, 0, i64::from(id));
        }
        let listed = o.list(1, OBSERVERS_MAX as i64 + 5);
        assert_eq!(listed.len(), OBSERVERS_MAX);
        assert_eq!(
            listed[0].node_id, 5,
            "the ones heard from longest ago go first"
        );
    }
}
