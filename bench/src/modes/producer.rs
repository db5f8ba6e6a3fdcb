//! The producer engine shared by `produce` and `e2e`: sticky batching over the partitions, a
//! batch sealed at `batch_size` bytes or after `linger`, several produce requests in flight,
//! fixed-rate pacing from intended send times, and per-message acknowledgement latency.

use crate::client::admin::TopicLayout;
use crate::client::batch::BatchBuilder;
use crate::client::errors::ErrorCounts;
use crate::client::produce::{produce, Acks};
use crate::client::Conn;
use crate::pacing::Pacer;
use crate::payload::{self, Stamp};
use crate::report::{self, Latency};
use crate::runtime::Progress;
use glommio::sync::Semaphore;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    pub max_in_flight: usize,
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
    let in_flight = Rc::new(Semaphore::new(plan.max_in_flight as u64));
    let partitions = plan.layout.partitions();
    let mut partition = plan.id as usize % partitions;
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
        if stats.borrow().fatal.is_some() {
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
                    send(&plan, &conns, &in_flight, &stats, &mut open, &mut partition).await;
                    continue;
                }
            }
            glommio::timer::sleep(intended - now).await;
            continue;
        }
        let ts = wall_clock_ms();
        if !open.builder.is_empty()
            && open.builder.size_with(plan.message_size, ts) > plan.batch_size
        {
            send(&plan, &conns, &in_flight, &stats, &mut open, &mut partition).await;
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
            send(&plan, &conns, &in_flight, &stats, &mut open, &mut partition).await;
        }
    }
    if !open.builder.is_empty() && stats.borrow().fatal.is_none() {
        send(&plan, &conns, &in_flight, &stats, &mut open, &mut partition).await;
    }
    // Every request answered (or failed).
    let _ = in_flight.acquire(plan.max_in_flight as u64).await;
    stats.borrow_mut().sent = seq;
    stats.borrow_mut().sent_by.insert(plan.id, seq);
    match Rc::try_unwrap(stats) {
        Ok(s) => s.into_inner(),
        Err(_) => unreachable!("all send tasks finished"),
    }
}

async fn send(
    plan: &ProducerPlan,
    conns: &HashMap<String, Rc<Conn>>,
    in_flight: &Rc<Semaphore>,
    stats: &Rc<RefCell<ProducerStats>>,
    open: &mut Open,
    partition: &mut usize,
) {
    if open.builder.is_empty() {
        return;
    }
    let batch = open.builder.finish();
    let intended = std::mem::take(&mut open.intended);
    open.first = None;
    let p = *partition;
    *partition = (*partition + 1) % plan.layout.partitions();
    let Ok(permit) = in_flight.acquire_static_permit(1).await else {
        return;
    };
    let conn = conns[&plan.layout.leaders[p]].clone();
    let stats = stats.clone();
    let topic = plan.layout.topic.clone();
    let (acks, timeout, size, measure_start) = (
        plan.acks,
        plan.timeout_ms,
        plan.message_size as u64,
        plan.measure_start,
    );
    let progress = plan.progress.clone();
    glommio::spawn_local(async move {
        let result = produce(&conn, &topic, p as i32, batch, acks, timeout).await;
        let now = Instant::now();
        let n = intended.len() as u64;
        let mut s = stats.borrow_mut();
        match result {
            Ok(0) => {
                s.acked += n;
                for t in &intended {
                    if *t >= measure_start {
                        if acks != Acks::None {
                            report::record(&mut s.ack, now - *t);
                        }
                        s.measured_messages += 1;
                        s.measured_bytes += size;
                    }
                }
                s.last_ack = Some(now);
                progress.add(n, n * size);
            }
            Ok(code) => {
                s.errors.add_code(code, 1);
                s.failed += n;
                progress.errors.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                s.errors.add("ConnectionFailure (client)", 1);
                s.failed += n;
                progress.errors.fetch_add(1, Ordering::Relaxed);
                if s.fatal.is_none() {
                    s.fatal = Some(format!("{e:#}"));
                }
            }
        }
        drop(permit);
    })
    .detach();
}
