//! A periodic wake-up for a glommio executor, as a safety net against lost reactor wake-ups.
//!
//! Why: a storage test with 2000 partitions hung about once in 40 runs with the executor asleep
//! in `io_uring_enter` (no timer armed, no I/O in flight, glommio's blocking-syscall thread idle
//! after finishing a request): a completion was never noticed. With this heartbeat running
//! (a timer every few milliseconds, so the reactor never sleeps without a deadline and re-polls
//! its rings and its syscall thread each time) 110 runs passed; so did 40 runs with the
//! blocking-thread operations (rename, unlink, ftruncate) replaced by direct syscalls, which
//! points at glommio 0.9's blocking-thread notification. Until that is fixed upstream, every
//! executor Weir starts runs a heartbeat: a lost wake-up then costs at most one period instead
//! of a hang.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// The broker's period: the longest a lost wake-up can stall a core.
pub const HEARTBEAT_PERIOD: Duration = Duration::from_millis(10);

/// Runs while alive: dropping it stops the heartbeat at its next beat.
pub struct Heartbeat {
    stop: Rc<Cell<bool>>,
}

impl Heartbeat {
    /// Starts a heartbeat on the current executor.
    pub fn start(period: Duration) -> Self {
        let stop = Rc::new(Cell::new(false));
        let stopped = stop.clone();
        glommio::spawn_local(async move {
            while !stopped.get() {
                glommio::timer::sleep(period).await;
            }
        })
        .detach();
        Self { stop }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.set(true);
    }
}

/// Runs `f` on a new glommio executor with a heartbeat, and returns its result: for tests,
/// benches and tools that need one executor.
pub fn run_on_executor<T, F>(f: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let _heartbeat = Heartbeat::start(HEARTBEAT_PERIOD);
            f().await
        })
        .expect("glommio executor")
        .join()
        .expect("executor body")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_when_dropped_so_the_executor_can_finish() {
        let beats = run_on_executor(|| async {
            let hb = Heartbeat::start(Duration::from_millis(1));
            glommio::timer::sleep(Duration::from_millis(20)).await;
            drop(hb);
            7
        });
        assert_eq!(beats, 7);
    }
}
