//! A single-threaded "notify all": tasks of one core wait for a condition on state they share
//! through `Rc`, and whoever changes that state wakes them to re-check it. No cross-thread
//! synchronisation is involved, so no lock and no atomic.

use std::cell::RefCell;
use std::task::{Poll, Waker};

#[derive(Default)]
pub(crate) struct Notify {
    wakers: RefCell<Vec<Waker>>,
}

impl Notify {
    pub fn notify_all(&self) {
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for w in wakers {
            w.wake();
        }
    }

    /// Resolves with the first `Some` that `check` returns, re-checking after each notification.
    pub async fn wait_until<T>(&self, mut check: impl FnMut() -> Option<T>) -> T {
        futures_lite::future::poll_fn(|cx| match check() {
            Some(v) => Poll::Ready(v),
            None => {
                let mut wakers = self.wakers.borrow_mut();
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }
}
