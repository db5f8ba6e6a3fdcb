//! The consumer engine shared by `consume` and `e2e`: each consumer fetches its partitions from
//! their leaders (one fetch in flight per leader), walks the records, and — for stamped
//! messages — measures end-to-end latency and tracks sequence numbers to find losses and
//! duplicates.

use crate::client::admin::TopicLayout;
use crate::client::batch::for_each_record;
use crate::client::errors::ErrorCounts;
use crate::client::fetch::fetch;
use crate::client::Conn;
use crate::payload;
use crate::report::{self, Latency};
use crate::runtime::Progress;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Consecutive failed fetches after which a consumer gives up.
const MAX_CONSECUTIVE_ERRORS: u32 = 20;

/// A growable bit set of sequence numbers.
#[derive(Debug, Default, Clone)]
pub struct SeqSet {
    words: Vec<u64>,
}

impl SeqSet {
    /// Inserts `i`; false if it was already there.
    pub fn insert(&mut self, i: u64) -> bool {
        let w = (i / 64) as usize;
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        let bit = 1u64 << (i % 64);
        let new = self.words[w] & bit == 0;
        self.words[w] |= bit;
        new
    }

    /// Members below `n`.
    pub fn count_below(&self, n: u64) -> u64 {
        let full = (n / 64) as usize;
        let mut c: u64 = self
            .words
            .iter()
            .take(full)
            .map(|w| u64::from(w.count_ones()))
            .sum();
        if !n.is_multiple_of(64) {
            if let Some(w) = self.words.get(full) {
                c += u64::from((w & ((1u64 << (n % 64)) - 1)).count_ones());
            }
        }
        c
    }

    pub fn len(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// Adds `other`; returns how many of its members were already here.
    pub fn union(&mut self, other: &SeqSet) -> u64 {
        if other.words.len() > self.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        let mut dup = 0;
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            dup += u64::from((*a & *b).count_ones());
            *a |= *b;
        }
        dup
    }
}

/// Shared by every consumer of a run, across cores.
#[derive(Default)]
pub struct ConsumeShared {
    /// Distinct messages received so far.
    pub received: AtomicU64,
    /// Stop once `received` reaches this (u64::MAX: not yet known).
    pub target: AtomicU64,
    /// Stop once this many ns since base have passed (u64::MAX: never).
    pub deadline_ns: AtomicU64,
    pub stop: AtomicBool,
}

impl ConsumeShared {
    pub fn new() -> Self {
        Self {
            target: AtomicU64::new(u64::MAX),
            deadline_ns: AtomicU64::new(u64::MAX),
            ..Default::default()
        }
    }
}

#[derive(Clone)]
pub struct ConsumerPlan {
    pub layout: Rc<TopicLayout>,
    /// (partition, start offset) of this consumer.
    pub positions: Vec<(i32, i64)>,
    pub fetch_max_wait_ms: i32,
    pub partition_max_bytes: i32,
    pub idle_timeout: Duration,
    /// Track stamps: latency, losses and duplicates.
    pub stamped: bool,
    pub base: Instant,
    pub measure_start: Instant,
    pub shared: Arc<ConsumeShared>,
    pub progress: Arc<Progress>,
}

pub struct ConsumerStats {
    pub e2e: Latency,
    /// Messages read (duplicates included) and their value bytes.
    pub messages: u64,
    pub measured_messages: u64,
    pub measured_bytes: u64,
    pub last_message: Option<Instant>,
    /// Sequence numbers seen, per producer.
    pub seen: HashMap<u32, SeqSet>,
    pub duplicates: u64,
    pub unstamped: u64,
    pub errors: ErrorCounts,
    /// High watermark minus position, summed, at the last fetch of each partition.
    pub lag: i64,
    pub idle_stop: bool,
    pub fatal: Option<String>,
}

impl Default for ConsumerStats {
    fn default() -> Self {
        Self {
            e2e: report::new_latency(),
            messages: 0,
            measured_messages: 0,
            measured_bytes: 0,
            last_message: None,
            seen: HashMap::new(),
            duplicates: 0,
            unstamped: 0,
            errors: ErrorCounts::default(),
            lag: 0,
            idle_stop: false,
            fatal: None,
        }
    }
}

impl ConsumerStats {
    pub fn merge(&mut self, o: ConsumerStats) {
        self.e2e.add(&o.e2e).expect("same histogram bounds");
        self.messages += o.messages;
        self.measured_messages += o.measured_messages;
        self.measured_bytes += o.measured_bytes;
        self.last_message = self.last_message.max(o.last_message);
        for (p, set) in o.seen {
            self.duplicates += self.seen.entry(p).or_default().union(&set);
        }
        self.duplicates += o.duplicates;
        self.unstamped += o.unstamped;
        self.errors.merge(&o.errors);
        self.lag += o.lag;
        self.idle_stop |= o.idle_stop;
        if self.fatal.is_none() {
            self.fatal = o.fatal;
        }
    }
}

/// Runs one consumer until the shared stop condition, the deadline or the idle timeout.
pub async fn run_consumer(plan: ConsumerPlan) -> ConsumerStats {
    let stats = Rc::new(RefCell::new(ConsumerStats::default()));
    let mut by_leader: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    for &(p, off) in &plan.positions {
        by_leader
            .entry(plan.layout.leaders[p as usize].as_str())
            .or_default()
            .push((p, off));
    }
    let mut tasks = Vec::new();
    for (leader, positions) in by_leader {
        let conn = match Conn::connect(leader).await {
            Ok(c) => c,
            Err(e) => {
                stats.borrow_mut().fatal = Some(format!("{e:#}"));
                plan.shared.stop.store(true, Ordering::Relaxed);
                continue;
            }
        };
        tasks.push(glommio::spawn_local(fetch_loop(
            plan.clone(),
            conn,
            positions,
            stats.clone(),
        )));
    }
    for t in tasks {
        t.await;
    }
    match Rc::try_unwrap(stats) {
        Ok(s) => s.into_inner(),
        Err(_) => unreachable!("fetch loops finished"),
    }
}

fn should_stop(plan: &ConsumerPlan, last_progress: Instant) -> Option<bool> {
    let s = &plan.shared;
    if s.stop.load(Ordering::Relaxed) {
        return Some(false);
    }
    if s.received.load(Ordering::Relaxed) >= s.target.load(Ordering::Relaxed) {
        return Some(false);
    }
    let deadline = s.deadline_ns.load(Ordering::Relaxed);
    if deadline != u64::MAX && Instant::now() >= plan.base + Duration::from_nanos(deadline) {
        return Some(false);
    }
    if last_progress.elapsed() >= plan.idle_timeout {
        return Some(true);
    }
    None
}

async fn fetch_loop(
    plan: ConsumerPlan,
    conn: Rc<Conn>,
    mut positions: Vec<(i32, i64)>,
    stats: Rc<RefCell<ConsumerStats>>,
) {
    let topic = plan.layout.topic.clone();
    let mut lag: HashMap<i32, i64> = HashMap::new();
    let mut last_progress = Instant::now();
    let mut consecutive_errors = 0u32;
    let mut index: HashMap<i32, usize> = HashMap::new();
    for (i, (p, _)) in positions.iter().enumerate() {
        index.insert(*p, i);
    }
    loop {
        if let Some(idle) = should_stop(&plan, last_progress) {
            stats.borrow_mut().idle_stop |= idle;
            break;
        }
        let resp = fetch(
            &conn,
            &topic,
            &positions,
            plan.fetch_max_wait_ms,
            plan.partition_max_bytes,
        )
        .await;
        let parts = match resp {
            Ok(parts) => parts,
            Err(e) => {
                let mut s = stats.borrow_mut();
                s.errors.add("ConnectionFailure (client)", 1);
                s.fatal = Some(format!("{e:#}"));
                plan.progress.errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
        };
        let now = Instant::now();
        let mut got_error = false;
        let mut give_up = false;
        {
            let mut guard = stats.borrow_mut();
            let s = &mut *guard;
            for part in parts {
                let Some(&i) = index.get(&part.partition) else {
                    continue;
                };
                if s.errors.add_code(part.error_code, 1) {
                    got_error = true;
                    plan.progress.errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let position = positions[i].1;
                let mut new_distinct = 0u64;
                let mut read = 0u64;
                let mut bytes = 0u64;
                if let Some(records) = &part.records {
                    let walked = for_each_record(records, |r| {
                        if r.offset < position {
                            return; // the batch began before our position
                        }
                        read += 1;
                        let value = r.value.unwrap_or(&[]);
                        bytes += value.len() as u64;
                        let mut measured = now >= plan.measure_start;
                        let mut distinct = true;
                        if plan.stamped {
                            match payload::read(value) {
                                Some(st) => {
                                    distinct =
                                        s.seen.entry(st.producer).or_default().insert(st.seq);
                                    if !distinct {
                                        s.duplicates += 1;
                                    }
                                    let intended = plan.base + Duration::from_nanos(st.intended_ns);
                                    measured = intended >= plan.measure_start;
                                    if measured && distinct {
                                        report::record(
                                            &mut s.e2e,
                                            now.saturating_duration_since(intended),
                                        );
                                    }
                                }
                                None => {
                                    s.unstamped += 1;
                                    distinct = false;
                                }
                            }
                        }
                        if distinct {
                            new_distinct += 1;
                        }
                        if measured {
                            s.measured_messages += 1;
                            s.measured_bytes += value.len() as u64;
                        }
                    });
                    match walked {
                        Ok(Some(next)) => positions[i].1 = positions[i].1.max(next),
                        Ok(None) => {}
                        Err(e) => {
                            s.errors.add("CorruptRecords (client)", 1);
                            s.fatal = Some(format!("{topic}-{}: {e:#}", part.partition));
                            plan.shared.stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
                if read > 0 {
                    s.messages += read;
                    s.last_message = Some(now);
                    last_progress = now;
                    plan.progress.add(read, bytes);
                    plan.shared
                        .received
                        .fetch_add(new_distinct, Ordering::Relaxed);
                }
                lag.insert(
                    part.partition,
                    (part.high_watermark - positions[i].1).max(0),
                );
            }
            if got_error {
                consecutive_errors += 1;
                if consecutive_errors >= MAX_CONSECUTIVE_ERRORS {
                    s.fatal = Some(format!(
                        "{MAX_CONSECUTIVE_ERRORS} consecutive fetches with errors; giving up"
                    ));
                    give_up = true;
                }
            } else {
                consecutive_errors = 0;
            }
        }
        if give_up {
            break;
        }
        if got_error {
            glommio::timer::sleep(Duration::from_millis(100)).await;
        }
    }
    stats.borrow_mut().lag += lag.values().sum::<i64>();
}

#[cfg(test)]
impl SeqSet {
    /// Removes `i` (tests only).
    pub fn words_clear_for_test(&mut self, i: u64) {
        if let Some(w) = self.words.get_mut((i / 64) as usize) {
            *w &= !(1u64 << (i % 64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_set_tracks_members_and_duplicates() {
        let mut a = SeqSet::default();
        assert!(a.insert(0));
        assert!(a.insert(63));
        assert!(a.insert(64));
        assert!(!a.insert(63));
        assert!(a.insert(1000));
        assert_eq!(a.len(), 4);
        assert_eq!(a.count_below(64), 2);
        assert_eq!(a.count_below(65), 3);
        assert_eq!(a.count_below(10_000), 4);
        let mut b = SeqSet::default();
        b.insert(64);
        b.insert(5000);
        assert_eq!(a.union(&b), 1);
        assert_eq!(a.len(), 5);
    }
}
