//! The producer engine shared by `produce` and `e2e`, shaped as Kafka's producer: sticky
//! batching over the partitions, a batch sealed at `batch_size` bytes or after `linger`, the
//! waiting batches of all partitions a broker leads drained into one request, several requests
//! in flight per connection, bounded buffer memory, fixed-rate pacing from intended send times,
//! and per-message acknowledgement latency.

use crate::client::admin::TopicLayout;
use crate::client::batch::BatchBuilder;
use crate::client::errors::ErrorCounts;
use crate::client::produce::{produce, Acks};
use crate::client::Conn;
use crate::pacing::Pacer;
use crate::payload::{self, Stamp};
use crate::report::{self, Latency, Throughput};
use crate::runtime::Progress;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::sync::{Semaphore, StaticPermit};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The shortest sleep of a paced producer; a message is generated at most this late (Kafka's
/// `ProducerPerformance` throttle sleeps only once 2 ms ahead).
const PACE_QUANTUM: Duration = Duration::from_micros(100);

/// When a producer stops generating messages.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// After this many measured (post-warm-up) messages.
    Measured(u64),
    /// Once intended send times reach this instant.
    Time(Instant),
}

#[derive(Clone)]
pub struct ProducerPlan {
    pub id: u32,
    pub layout: Rc<TopicLayout>,
    pub message_size: usize,
    pub batch_size: usize,
    pub linger: Duration,
    pub acks: Acks,
    /// Requests in flight per leader connection.
    pub max_in_flight: usize,
    /// Largest produce request, as Kafka's `max.request.size` (one batch always fits).
    pub max_request_size: usize,
    /// Sealed batches waiting or in flight may hold this many bytes, as Kafka's
    /// `buffer.memory`; message generation waits beyond it.
    pub buffer_memory: usize,
    pub timeout_ms: i32,
    pub pacer: Pacer,
    /// Messages intended before this are warm-up: sent, not measured.
    pub measure_start: Instant,
    pub until: Until,
    /// Stamps carry nanoseconds since this instant.
    pub base: Instant,
    pub progress: Arc<Progress>,
}

/// What one producer (or, merged, a whole run) did.
pub struct ProducerStats {
    /// Acknowledgement latency of measured messages, from intended send time.
    pub ack: Latency,
    pub measured_messages: u64,
    pub measured_bytes: u64,
    /// Messages handed to the broker (every sequence number used).
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    pub errors: ErrorCounts,
    pub last_ack: Option<Instant>,
    /// A transport failure that stopped the producer.
    pub fatal: Option<String>,
    /// Messages sent (sequence numbers used) by each producer id.
    pub sent_by: BTreeMap<u32, u64>,
}

impl Default for ProducerStats {
    fn default() -> Self {
        Self {
            ack: report::new_latency(),
            measured_messages: 0,
            measured_bytes: 0,
            sent: 0,
            acked: 0,
            failed: 0,
            errors: ErrorCounts::default(),
            last_ack: None,
            fatal: None,
            sent_by: BTreeMap::new(),
        }
    }
}

impl ProducerStats {
    /// Measured messages and bytes over the time from `measure_start` to the last ack.
    pub fn throughput(&self, measure_start: Instant) -> Throughput {
        Throughput {
            messages: self.measured_messages,
            bytes: self.measured_bytes,
            seconds: self.last_ack.map_or(0.0, |t| {
                t.saturating_duration_since(measure_start).as_secs_f64()
            }),
        }
    }

    pub fn merge(&mut self, o: &ProducerStats) {
        self.ack.add(&o.ack).expect("same histogram bounds");
        self.measured_messages += o.measured_messages;
        self.measured_bytes += o.measured_bytes;
        self.sent += o.sent;
        self.acked += o.acked;
        self.failed += o.failed;
        self.errors.merge(&o.errors);
        self.last_ack = self.last_ack.max(o.last_ack);
        if self.fatal.is_none() {
            self.fatal.clone_from(&o.fatal);
        }
        self.sent_by.extend(o.sent_by.iter().map(|(k, v)| (*k, *v)));
    }
}

/// Connections to every leader of the topic, opened before the clock starts.
pub async fn connect_leaders(layout: &TopicLayout) -> anyhow::Result<HashMap<String, Rc<Conn>>> {
    let mut conns = HashMap::new();
    for addr in &layout.leaders {
        if !conns.contains_key(addr) {
            conns.insert(addr.clone(), Conn::connect(addr).await?);
        }
    }
    Ok(conns)
}

fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

struct Open {
    builder: BatchBuilder,
    intended: Vec<Instant>,
    first: Option<Instant>,
}

/// A sealed batch waiting for a request, with the intended send time of each of its messages
/// and its share of the producer's buffer memory (released when its request completes).
struct Sealed {
    partition: usize,
    batch: Vec<u8>,
    intended: Vec<Instant>,
    _memory: StaticPermit,
}

/// One producer's accumulator and senders, shaped as a Kafka producer's: messages fill one
/// partition's batch at a time (sticky partitioning); a sealed batch waits in its partition's
/// queue; each leader connection has a sender that, whenever one of its `max_in_flight` request
/// slots is free, drains the first waiting batch of every partition that broker leads into one
/// request of at most `max_request_size` bytes. Sealed batches hold buffer memory
/// (`buffer_memory`), so message generation waits when the brokers fall behind.
struct Engine {
    plan: ProducerPlan,
    stats: Rc<RefCell<ProducerStats>>,
    queues: RefCell<Vec<VecDeque<Sealed>>>,
    /// Index into `routes` of each partition's leader.
    route_of: Vec<usize>,
    routes: Vec<Route>,
    /// Wakes each route's sender when a batch is sealed; taken (closed) when generation ends.
    wakes: RefCell<Vec<LocalSender<()>>>,
    memory: Rc<Semaphore>,
    memory_total: u64,
}

/// A leader connection and the partitions it leads.
struct Route {
    conn: Rc<Conn>,
    partitions: Vec<usize>,
}

impl Engine {
    fn drain(&self, route: usize, cursor: &mut usize) -> Vec<Sealed> {
        drain_queues(
            &mut self.queues.borrow_mut(),
            &self.routes[route].partitions,
            cursor,
            self.plan.max_request_size,
            |s| s.batch.len(),
        )
    }
}

/// Takes the first waiting item of each of `partitions`' queues, starting at `cursor` (left
/// just after the last partition taken, so none is always last), up to `max_bytes` (at least
/// one item), as Kafka's producer drains a broker's partitions into one request.
fn drain_queues<T>(
    queues: &mut [VecDeque<T>],
    partitions: &[usize],
    cursor: &mut usize,
    max_bytes: usize,
    len: impl Fn(&T) -> usize,
) -> Vec<T> {
    let mut taken = Vec::new();
    let mut bytes = 0;
    let start = *cursor;
    for k in 0..partitions.len() {
        let i = (start + k) % partitions.len();
        let q = &mut queues[partitions[i]];
        let Some(front) = q.front() else { continue };
        if !taken.is_empty() && bytes + len(front) > max_bytes {
            break;
        }
        bytes += len(front);
        taken.extend(q.pop_front());
        *cursor = (i + 1) % partitions.len();
    }
    taken
}

/// Runs one producer to completion.
pub async fn run_producer(plan: ProducerPlan) -> ProducerStats {
    let stats = Rc::new(RefCell::new(ProducerStats::default()));
    let conns = match connect_leaders(&plan.layout).await {
        Ok(c) => c,
        Err(e) => {
            stats.borrow_mut().fatal = Some(format!("{e:#}"));
            return Rc::try_unwrap(stats).ok().expect("sole owner").into_inner();
        }
    };
    let partitions = plan.layout.partitions();
    let mut routes: Vec<Route> = Vec::new();
    let mut route_of = Vec::with_capacity(partitions);
    for leader in &plan.layout.leaders {
        let conn = &conns[leader];
        let r = match routes.iter().position(|r| Rc::ptr_eq(&r.conn, conn)) {
            Some(r) => r,
            None => {
                routes.push(Route {
                    conn: conn.clone(),
                    partitions: Vec::new(),
                });
                routes.len() - 1
            }
        };
        routes[r].partitions.push(route_of.len());
        route_of.push(r);
    }
    // A batch never waits for more memory than there is.
    let memory_total = plan.buffer_memory.max(plan.batch_size + plan.message_size) as u64;
    let mut receivers = Vec::new();
    let mut wakes = Vec::new();
    for _ in &routes {
        // One pending wake-up is enough (the sender drains every queue of its route when it
        // wakes); an unbounded channel piled up one per sealed batch while the sender waited
        // for an in-flight slot, and each stale one cost a scan of every partition's queue: at
        // 2000 partitions, ~450 ms of the bench's CPU at the end of a run (and a share of it
        // all along), charged to the broker as acknowledgement latency.
        let (tx, rx) = local_channel::new_bounded(1);
        wakes.push(tx);
        receivers.push(rx);
    }
    let engine = Rc::new(Engine {
        plan,
        stats: stats.clone(),
        queues: RefCell::new((0..partitions).map(|_| VecDeque::new()).collect()),
        route_of,
        routes,
        wakes: RefCell::new(wakes),
        memory: Rc::new(Semaphore::new(memory_total)),
        memory_total,
    });
    let senders: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(r, rx)| glommio::spawn_local(run_sender(engine.clone(), r, rx)))
        .collect();
    let sent = generate(&engine).await;
    // Closing the wake channels tells the senders to finish once their queues are empty.
    engine.wakes.borrow_mut().clear();
    for s in senders {
        s.await;
    }
    let id = engine.plan.id;
    drop(engine);
    stats.borrow_mut().sent = sent;
    stats.borrow_mut().sent_by.insert(id, sent);
    match Rc::try_unwrap(stats) {
        Ok(s) => s.into_inner(),
        Err(_) => unreachable!("all send tasks finished"),
    }
}

/// Generates messages on schedule into batches until the plan's end; returns how many.
async fn generate(engine: &Rc<Engine>) -> u64 {
    let plan = &engine.plan;
    let mut partition = plan.id as usize % plan.layout.partitions();
    let mut open = Open {
        builder: BatchBuilder::new(),
        intended: Vec::new(),
        first: None,
    };
    let mut value = vec![0u8; plan.message_size];
    let mut seq: u64 = 0;
    let mut measured: u64 = 0;
    let now = Instant::now();
    if plan.pacer.due(0) > now {
        glommio::timer::sleep(plan.pacer.due(0) - now).await;
    }
    loop {
        if engine.stats.borrow().fatal.is_some() {
            break;
        }
        let now = Instant::now();
        let intended = if plan.pacer.is_paced() {
            plan.pacer.due(seq)
        } else {
            now
        };
        let done = match plan.until {
            Until::Measured(n) => measured >= n,
            Until::Time(t) => intended >= t,
        };
        if done {
            break;
        }
        if intended > now {
            // Paced and ahead of schedule: wait for the next message or the linger deadline.
            if let Some(first) = open.first {
                let deadline = first + plan.linger;
                if deadline <= intended {
                    if deadline > now {
                        glommio::timer::sleep(deadline - now).await;
                    }
                    seal(engine, &mut open, &mut partition).await;
                    continue;
                }
            }
            // Never shorter than a quantum: sleeping to the exact microsecond parks the executor
            // once per message (a timer armed and cancelled in the kernel each time), which at
            // 100k messages/s used the whole core. Messages due meanwhile are generated together
            // on waking, and their latency still counts from their intended times.
            glommio::timer::sleep((intended - now).max(PACE_QUANTUM)).await;
            continue;
        }
        let ts = wall_clock_ms();
        if !open.builder.is_empty()
            && open.builder.size_with(plan.message_size, ts) > plan.batch_size
        {
            seal(engine, &mut open, &mut partition).await;
        }
        payload::write(
            &mut value,
            Stamp {
                producer: plan.id,
                seq,
                intended_ns: (intended - plan.base).as_nanos() as u64,
            },
        );
        open.builder.push(&value, ts);
        open.intended.push(intended);
        // Linger runs from when the first message was really appended, not from its
        // intended time: a producer behind schedule must still fill its batches.
        open.first.get_or_insert_with(Instant::now);
        seq += 1;
        if intended >= plan.measure_start {
            measured += 1;
        }
        let full = open.builder.size() >= plan.batch_size;
        let lingered = open
            .first
            .is_some_and(|f| Instant::now() >= f + plan.linger);
        if full || lingered {
            seal(engine, &mut open, &mut partition).await;
        }
    }
    if engine.stats.borrow().fatal.is_none() {
        seal(engine, &mut open, &mut partition).await;
    }
    seq
}

/// Seals the open batch into its partition's queue (waiting for buffer memory) and moves to
/// the next partition.
async fn seal(engine: &Rc<Engine>, open: &mut Open, partition: &mut usize) {
    if open.builder.is_empty() {
        return;
    }
    let batch = open.builder.finish();
    let intended = std::mem::take(&mut open.intended);
    open.first = None;
    let p = *partition;
    *partition = (*partition + 1) % engine.plan.layout.partitions();
    let units = (batch.len() as u64).min(engine.memory_total);
    let Ok(memory) = engine.memory.acquire_static_permit(units).await else {
        return;
    };
    engine.queues.borrow_mut()[p].push_back(Sealed {
        partition: p,
        batch,
        intended,
        _memory: memory,
    });
    if let Some(wake) = engine.wakes.borrow().get(engine.route_of[p]) {
        let _ = wake.try_send(());
    }
}

/// Sends the batches of one route's partitions, up to `max_in_flight` requests at a time,
/// until generation has ended and its queues are empty; returns once every request is
/// answered (or failed).
async fn run_sender(engine: Rc<Engine>, route: usize, wake: LocalReceiver<()>) {
    let max_in_flight = engine.plan.max_in_flight as u64;
    let in_flight = Rc::new(Semaphore::new(max_in_flight));
    let mut cursor = 0;
    loop {
        let Ok(permit) = in_flight.acquire_static_permit(1).await else {
            break;
        };
        let batches = loop {
            let taken = engine.drain(route, &mut cursor);
            if !taken.is_empty() {
                break taken;
            }
            if wake.recv().await.is_none() {
                // Generation is over: whatever is left was sealed before the channel closed.
                break engine.drain(route, &mut cursor);
            }
        };
        if batches.is_empty() {
            break;
        }
        glommio::spawn_local(send(engine.clone(), route, batches, permit)).detach();
    }
    let _ = in_flight.acquire(max_in_flight).await;
}

/// One produce request and the accounting of its answer.
async fn send(engine: Rc<Engine>, route: usize, mut batches: Vec<Sealed>, permit: StaticPermit) {
    let plan = &engine.plan;
    let parts = batches
        .iter_mut()
        .map(|s| (s.partition as i32, std::mem::take(&mut s.batch)))
        .collect();
    let result = produce(
        &engine.routes[route].conn,
        &plan.layout.topic,
        parts,
        plan.acks,
        plan.timeout_ms,
    )
    .await;
    let now = Instant::now();
    let size = plan.message_size as u64;
    let mut s = engine.stats.borrow_mut();
    match result {
        Ok(codes) => {
            for (sealed, code) in batches.iter().zip(codes) {
                let n = sealed.intended.len() as u64;
                if code != 0 {
                    s.errors.add_code(code, 1);
                    s.failed += n;
                    plan.progress.errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                s.acked += n;
                for t in &sealed.intended {
                    if *t >= plan.measure_start {
                        if plan.acks != Acks::None {
                            report::record(&mut s.ack, now - *t);
                        }
                        s.measured_messages += 1;
                        s.measured_bytes += size;
                    }
                }
                s.last_ack = Some(now);
                plan.progress.add(n, n * size);
            }
        }
        Err(e) => {
            let n: u64 = batches.iter().map(|b| b.intended.len() as u64).sum();
            s.errors
                .add("ConnectionFailure (client)", batches.len() as u64);
            s.failed += n;
            plan.progress.errors.fetch_add(1, Ordering::Relaxed);
            if s.fatal.is_none() {
                s.fatal = Some(format!("{e:#}"));
            }
        }
    }
    drop(s);
    drop(batches);
    drop(permit);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(items: &[&[usize]]) -> Vec<VecDeque<(usize, usize)>> {
        items
            .iter()
            .enumerate()
            .map(|(p, sizes)| sizes.iter().map(|&n| (p, n)).collect())
            .collect()
    }

    #[test]
    fn one_batch_per_partition_per_request_within_the_size_limit() {
        let mut q = queues(&[&[10, 11], &[20], &[], &[40]]);
        let mut cursor = 0;
        let all = [0, 1, 2, 3];
        let got = drain_queues(&mut q, &all, &mut cursor, 1000, |b| b.1);
        assert_eq!(got, vec![(0, 10), (1, 20), (3, 40)]);
        // The second batch of partition 0 waits for the next request.
        let got = drain_queues(&mut q, &all, &mut cursor, 1000, |b| b.1);
        assert_eq!(got, vec![(0, 11)]);
        assert!(drain_queues(&mut q, &all, &mut cursor, 1000, |b| b.1).is_empty());
    }

    #[test]
    fn the_size_limit_splits_requests_and_the_next_starts_where_it_stopped() {
        let mut q = queues(&[&[60], &[60], &[60]]);
        let mut cursor = 0;
        let all = [0, 1, 2];
        assert_eq!(
            drain_queues(&mut q, &all, &mut cursor, 100, |b| b.1),
            vec![(0, 60)]
        );
        assert_eq!(
            drain_queues(&mut q, &all, &mut cursor, 100, |b| b.1),
            vec![(1, 60)]
        );
        // A batch larger than the limit still goes, alone.
        let mut big = queues(&[&[500], &[10]]);
        let mut cursor = 0;
        assert_eq!(
            drain_queues(&mut big, &[0, 1], &mut cursor, 100, |b| b.1),
            vec![(0, 500)]
        );
    }

    #[test]
    fn only_the_routes_own_partitions_are_drained() {
        let mut q = queues(&[&[1], &[2], &[3], &[4]]);
        let mut cursor = 0;
        let got = drain_queues(&mut q, &[1, 3], &mut cursor, 1000, |b| b.1);
        assert_eq!(got, vec![(1, 2), (3, 4)]);
        assert_eq!(q[0].len() + q[2].len(), 2);
    }
}
