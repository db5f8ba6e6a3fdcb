//! One pinned glommio executor per core, and the live progress line on stderr.

use anyhow::{anyhow, Context};
use glommio::{LocalExecutorBuilder, Placement};
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir_storage::heartbeat::{Heartbeat, HEARTBEAT_PERIOD};

/// Runs `f(core_index)` on `cores` executors, each pinned to its own CPU of the process's
/// affinity mask (counting down from `first_cpu`, by default the last allowed CPU), and returns
/// their results in core order.
pub fn run_on_cores<T, F, Fut>(
    cores: usize,
    first_cpu: Option<usize>,
    f: F,
) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = T> + 'static,
{
    let allowed = weir_storage::cpus::allowed();
    let first = match first_cpu {
        Some(cpu) => allowed.iter().position(|&c| c == cpu).ok_or_else(|| {
            anyhow!("--cpu {cpu} is not among the CPUs this process may use: {allowed:?}")
        })?,
        None => allowed.len() - 1,
    };
    let mut handles = Vec::with_capacity(cores);
    for i in 0..cores {
        let cpu = allowed[(first + allowed.len() * cores - i) % allowed.len()];
        let f = f.clone();
        let h = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("bench-{i}"))
            .spawn(move || async move {
                let _heartbeat = Heartbeat::start(HEARTBEAT_PERIOD);
                f(i).await
            })
            .map_err(|e| anyhow!("starting executor {i} on CPU {cpu}: {e}"))?;
        handles.push(h);
    }
    handles
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            h.join()
                .map_err(|e| anyhow!("executor {i}: {e}"))
                .context("joining an executor")
        })
        .collect()
}

/// Counters every executor bumps, read by the progress printer.
#[derive(Default)]
pub struct Progress {
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
    pub errors: AtomicU64,
    done: AtomicBool,
}

impl Progress {
    pub fn add(&self, messages: u64, bytes: u64) {
        self.messages.fetch_add(messages, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Prints live throughput to stderr once a second until `stop`.
    pub fn spawn_printer(self: &Arc<Self>, what: &'static str) -> std::thread::JoinHandle<()> {
        let p = self.clone();
        std::thread::spawn(move || {
            let tty = std::io::stderr().is_terminal();
            let start = Instant::now();
            let (mut last_m, mut last_b, mut last_t) = (0u64, 0u64, start);
            while !p.done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let now = Instant::now();
                if now - last_t < Duration::from_secs(1) {
                    continue;
                }
                let m = p.messages.load(Ordering::Relaxed);
                let b = p.bytes.load(Ordering::Relaxed);
                let dt = (now - last_t).as_secs_f64();
                let line = format!(
                    "[{:>6.1}s] {what}: {:>10.0} msgs/s {:>8.2} MB/s  total {m} msgs, {} errors",
                    (now - start).as_secs_f64(),
                    (m - last_m) as f64 / dt,
                    (b - last_b) as f64 / dt / 1e6,
                    p.errors.load(Ordering::Relaxed)
                );
                let mut e = std::io::stderr().lock();
                if tty {
                    let _ = write!(e, "\r{line}\x1b[K");
                } else {
                    let _ = writeln!(e, "{line}");
                }
                let _ = e.flush();
                (last_m, last_b, last_t) = (m, b, now);
            }
            if tty {
                let _ = writeln!(std::io::stderr());
            }
        })
    }

    pub fn stop(&self) {
        self.done.store(true, Ordering::Relaxed);
    }
}
