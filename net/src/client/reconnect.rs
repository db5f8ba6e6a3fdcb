//! A connection that is made again when it dies, with Kafka's exponential backoff between
//! attempts, so a caller (a replica fetcher, a heartbeat loop) only asks for "the connection"
//! and handles one error per failed attempt.

use super::config::ClientConfig;
use super::connection::Connection;
use super::error::ClientError;
use glommio::sync::Semaphore;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Kafka's `reconnect.backoff.ms` default.
pub const DEFAULT_RECONNECT_BACKOFF: Duration = Duration::from_millis(50);
/// Kafka's `reconnect.backoff.max.ms` default.
pub const DEFAULT_RECONNECT_BACKOFF_MAX: Duration = Duration::from_millis(1000);
/// Kafka's backoff grows by this factor per failed attempt (`ExponentialBackoff`).
const BACKOFF_MULTIPLIER: u32 = 2;
/// Kafka's jitter: each wait is the nominal backoff ± 20%, so nodes that lost the same peer
/// do not all knock at once.
const BACKOFF_JITTER_PERCENT: u64 = 20;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Kafka's `reconnect.backoff.ms`: the wait after the first failure.
    pub initial: Duration,
    /// Kafka's `reconnect.backoff.max.ms`: the longest wait.
    pub max: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: DEFAULT_RECONNECT_BACKOFF,
            max: DEFAULT_RECONNECT_BACKOFF_MAX,
        }
    }
}

/// Exponential backoff with jitter, driven with explicit time so it can be tested without
/// waiting.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    failures: u32,
    not_before: Option<Instant>,
    // xorshift state for the jitter: no need for a random crate's quality here.
    seed: u64,
}

impl Backoff {
    /// A backoff that allows an attempt at once. `seed` varies the jitter between callers.
    pub fn new(config: BackoffConfig, seed: u64) -> Self {
        Backoff {
            config,
            failures: 0,
            not_before: None,
            seed: splitmix64(seed).max(1),
        }
    }

    /// When the next attempt may start (`None`: now).
    pub fn not_before(&self) -> Option<Instant> {
        self.not_before
    }

    /// Records a failed attempt at `now` and returns the wait before the next one.
    pub fn failed(&mut self, now: Instant) -> Duration {
        let nominal = self
            .config
            .initial
            .saturating_mul(BACKOFF_MULTIPLIER.saturating_pow(self.failures))
            .min(self.config.max);
        self.failures = self.failures.saturating_add(1);
        let wait = self.jittered(nominal);
        self.not_before = Some(now + wait);
        wait
    }

    /// Records a success: the next failure waits the initial backoff again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.not_before = None;
    }

    fn jittered(&mut self, nominal: Duration) -> Duration {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let span = nominal.as_micros() as u64 * BACKOFF_JITTER_PERCENT / 100;
        if span == 0 {
            return nominal;
        }
        // Uniform in nominal - span ..= nominal + span.
        let offset = self.seed % (2 * span + 1);
        (nominal + Duration::from_micros(offset)).saturating_sub(Duration::from_micros(span))
    }
}

/// One step of splitmix64: spreads nearby seeds (peer hashes, small test seeds) over the whole
/// state space, which xorshift needs (and a zero state would stay zero).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A connection to one peer that is reconnected on demand after it dies.
pub struct Reconnecting {
    peer: String,
    config: ClientConfig,
    backoff: RefCell<Backoff>,
    current: RefCell<Option<Rc<Connection>>>,
    // One attempt at a time: callers that arrive while one is under way wait for it and use
    // its result instead of dialling too.
    attempt: Semaphore,
}

impl Reconnecting {
    /// Nothing is dialled until the first [`Reconnecting::connection`].
    pub fn new(peer: impl Into<String>, config: ClientConfig, backoff: BackoffConfig) -> Self {
        let peer = peer.into();
        let seed = peer.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        }) ^ std::process::id() as u64;
        Reconnecting {
            peer,
            config,
            backoff: RefCell::new(Backoff::new(backoff, seed)),
            current: RefCell::new(None),
            attempt: Semaphore::new(1),
        }
    }

    /// The peer dialled.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The live connection, if there is one, without dialling.
    pub fn current(&self) -> Option<Rc<Connection>> {
        self.current
            .borrow()
            .as_ref()
            .filter(|c| !c.is_closed())
            .cloned()
    }

    /// The live connection, or a new one: after a failed attempt the next waits out the
    /// backoff first. A failed attempt returns its error (the caller decides whether to ask
    /// again); it never retries on its own.
    pub async fn connection(&self) -> Result<Rc<Connection>, ClientError> {
        if let Some(live) = self.current() {
            return Ok(live);
        }
        let _turn =
            self.attempt
                .acquire_permit(1)
                .await
                .map_err(|_| ClientError::ConnectionClosed {
                    peer: self.peer.clone(),
                    cause: super::error::CloseCause::ByClient,
                })?;
        // Another caller may have connected while this one waited its turn.
        if let Some(live) = self.current() {
            return Ok(live);
        }
        let not_before = self.backoff.borrow().not_before();
        if let Some(at) = not_before {
            let now = Instant::now();
            if at > now {
                glommio::timer::sleep(at - now).await;
            }
        }
        match Connection::connect(&self.peer, &self.config).await {
            Ok(connection) => {
                self.backoff.borrow_mut().succeeded();
                *self.current.borrow_mut() = Some(connection.clone());
                Ok(connection)
            }
            Err(e) => {
                let wait = self.backoff.borrow_mut().failed(Instant::now());
                tracing::debug!(peer = %self.peer, ?wait, "connecting failed: {e}");
                *self.current.borrow_mut() = None;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_max_with_bounded_jitter_and_resets() {
        let config = BackoffConfig::default();
        let mut b = Backoff::new(config, 7);
        let t0 = Instant::now();
        assert_eq!(b.not_before(), None);
        let nominal = [50u64, 100, 200, 400, 800, 1000, 1000, 1000];
        for n in nominal {
            let wait = b.failed(t0).as_micros() as u64;
            let (lo, hi) = (n * 800, n * 1200);
            assert!((lo..=hi).contains(&wait), "{wait} us outside {lo}..={hi}");
        }
        assert!(b.not_before().is_some_and(|at| at > t0));
        b.succeeded();
        assert_eq!(b.not_before(), None);
        let wait = b.failed(t0).as_micros() as u64;
        assert!((40_000..=60_000).contains(&wait));
    }

    #[test]
    fn jitter_spreads_waits() {
        let mut waits = std::collections::BTreeSet::new();
        for seed in 0..20 {
            let mut b = Backoff::new(BackoffConfig::default(), seed);
            waits.insert(b.failed(Instant::now()));
        }
        assert!(
            waits.len() > 10,
            "jitter gave {} distinct waits",
            waits.len()
        );
    }
}
