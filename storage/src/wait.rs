//! A single-threaded "notify all": tasks of one core wait for a condition on state they share
//! through `Rc`, and whoever changes that state wakes them to re-check it. No cross-thread
//! synchronisation is involved, so no lock and no atomic.
//!
//! Waiters sit in a slab of slots: a wait takes a free slot when it first has to wait and gives
//! it back when it is dropped, both O(1). Why: a long poll that times out drops its wait, and on
//! an idle log no notification ever comes to clear its waker, which holds its task's memory;
//! each 10,000 timed-out long polls left 5-6 MB more of them in the broker (issue 12).
//! `notify_all` wakes and empties the whole slab; a woken wait that must go on waiting takes a
//! new slot.

use std::cell::{Cell, RefCell};
use std::task::{Poll, Waker};

#[derive(Default)]
pub(crate) struct Notify {
    waiters: RefCell<Slab>,
    /// The slab's previous storage, reused by the next `notify_all` so that notifying does not
    /// allocate.
    spare: Cell<Vec<Option<Waker>>>,
}

#[derive(Default)]
struct Slab {
    /// The registered wakers; `None` is a free slot.
    slots: Vec<Option<Waker>>,
    /// The free slots, taken before `slots` grows.
    free: Vec<usize>,
    /// Bumped by every `notify_all`, which empties `slots`: a slot taken in an earlier round
    /// belongs to its wait no longer.
    round: u64,
}

/// Storage kept after a burst of waiters is cut back to twice the burst's size once it is four
/// times too large, so one burst does not pin memory forever nor a steady load reallocate.
const KEEP_SLOTS_MIN: usize = 64;

fn trim<T>(v: &mut Vec<T>, used: usize) {
    let used = used.max(KEEP_SLOTS_MIN);
    if v.capacity() > 4 * used {
        v.shrink_to(2 * used);
    }
}

/// One wait's slot: `(round, index)` once it has registered.
struct Registration<'a> {
    notify: &'a Notify,
    slot: Option<(u64, usize)>,
}

impl Registration<'_> {
    fn register(&mut self, waker: &Waker) {
        let mut slab = self.notify.waiters.borrow_mut();
        let replaced = match self.slot {
            Some((round, i)) if round == slab.round => {
                let slot = &mut slab.slots[i];
                if slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    return;
                }
                slot.replace(waker.clone())
            }
            _ => {
                let i = match slab.free.pop() {
                    Some(i) => {
                        slab.slots[i] = Some(waker.clone());
                        i
                    }
                    None => {
                        slab.slots.push(Some(waker.clone()));
                        slab.slots.len() - 1
                    }
                };
                self.slot = Some((slab.round, i));
                None
            }
        };
        // A waker is dropped only after the borrow ends: dropping the last one of a task may
        // run code that reaches this `Notify` again.
        drop(slab);
        drop(replaced);
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let Some((round, i)) = self.slot else { return };
        let mut slab = self.notify.waiters.borrow_mut();
        if round != slab.round {
            return; // notified since: the slot is no longer this wait's
        }
        let waker = slab.slots[i].take();
        slab.free.push(i);
        drop(slab);
        drop(waker);
    }
}

impl Notify {
    /// Wakes every registered wait to re-check its condition.
    pub fn notify_all(&self) {
        let mut woken = self.spare.take();
        {
            let mut slab = self.waiters.borrow_mut();
            if slab.slots.is_empty() {
                drop(slab);
                self.spare.set(woken);
                return;
            }
            std::mem::swap(&mut slab.slots, &mut woken);
            let used = woken.len();
            slab.free.clear();
            trim(&mut slab.free, used);
            slab.round += 1;
        }
        let used = woken.len();
        for waker in woken.drain(..).flatten() {
            waker.wake();
        }
        trim(&mut woken, used);
        self.spare.set(woken);
    }

    /// Resolves with the first `Some` that `check` returns, re-checking after each notification.
    /// Dropping the future before that gives its slot back.
    pub async fn wait_until<T>(&self, mut check: impl FnMut() -> Option<T>) -> T {
        let mut registration = Registration {
            notify: self,
            slot: None,
        };
        futures_lite::future::poll_fn(|cx| match check() {
            Some(v) => Poll::Ready(v),
            None => {
                registration.register(cx.waker());
                Poll::Pending
            }
        })
        .await
    }

    /// Waits registered and not yet woken or dropped.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        let slab = self.waiters.borrow();
        slab.slots.iter().filter(|w| w.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Wake};

    /// Counts its wakes (a test-only waker; the `Notify` itself stays single-threaded).
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn counter() -> (Arc<Counter>, Waker) {
        let c = Arc::new(Counter::default());
        (c.clone(), Waker::from(c))
    }

    fn woken(c: &Counter) -> usize {
        c.0.load(Ordering::Relaxed)
    }

    #[test]
    fn dropped_waits_give_their_slots_back_and_reuse_them() {
        let notify = Notify::default();
        let ready = Cell::new(false);
        for _ in 0..1000 {
            let (_, waker) = counter(); // a waker of its own, as each long poll's task has
            let mut wait = pin!(notify.wait_until(|| ready.get().then_some(())));
            assert!(wait
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending());
            assert_eq!(notify.waiting(), 1);
        }
        assert_eq!(notify.waiting(), 0);
        assert_eq!(
            notify.waiters.borrow().slots.len(),
            1,
            "the one slot was reused"
        );

        // A live wait among dropped ones is still woken, once, and resolves.
        let (live_count, live_waker) = counter();
        let mut live = pin!(notify.wait_until(|| ready.get().then_some(7)));
        let mut cx = Context::from_waker(&live_waker);
        assert!(live.as_mut().poll(&mut cx).is_pending());
        for _ in 0..10 {
            let (_, w) = counter();
            let mut gone = pin!(notify.wait_until(|| ready.get().then_some(0)));
            assert!(gone
                .as_mut()
                .poll(&mut Context::from_waker(&w))
                .is_pending());
        }
        assert_eq!(notify.waiting(), 1);
        notify.notify_all(); // not ready yet: woken, re-checks, waits again
        assert_eq!(woken(&live_count), 1);
        assert!(live.as_mut().poll(&mut cx).is_pending());
        assert_eq!(notify.waiting(), 1);
        ready.set(true);
        notify.notify_all();
        assert_eq!(woken(&live_count), 2);
        assert_eq!(live.as_mut().poll(&mut cx), Poll::Ready(7));
        assert_eq!(notify.waiting(), 0);
    }

    #[test]
    fn a_wait_polled_again_keeps_one_slot_with_its_latest_waker() {
        let notify = Notify::default();
        let (first_count, first) = counter();
        let (second_count, second) = counter();
        let mut wait = pin!(notify.wait_until(|| None::<()>));
        assert!(wait
            .as_mut()
            .poll(&mut Context::from_waker(&first))
            .is_pending());
        assert!(wait
            .as_mut()
            .poll(&mut Context::from_waker(&first))
            .is_pending());
        // Moved to another task (e.g. a select now polled elsewhere): the new waker replaces it.
        assert!(wait
            .as_mut()
            .poll(&mut Context::from_waker(&second))
            .is_pending());
        assert_eq!(notify.waiting(), 1);
        assert_eq!(notify.waiters.borrow().slots.len(), 1);
        notify.notify_all();
        assert_eq!((woken(&first_count), woken(&second_count)), (0, 1));
        assert_eq!(notify.waiting(), 0);
    }

    #[test]
    fn a_wait_dropped_after_a_notification_leaves_the_new_rounds_slots_alone() {
        let notify = Notify::default();
        let (_, old_waker) = counter();
        let mut old = Box::pin(notify.wait_until(|| None::<()>));
        assert!(old
            .as_mut()
            .poll(&mut Context::from_waker(&old_waker))
            .is_pending());
        notify.notify_all();
        // A new wait takes slot 0 again in the new round; the old wait's drop must not free it.
        let (new_count, new_waker) = counter();
        let mut new = pin!(notify.wait_until(|| None::<()>));
        assert!(new
            .as_mut()
            .poll(&mut Context::from_waker(&new_waker))
            .is_pending());
        drop(old);
        assert_eq!(notify.waiting(), 1);
        notify.notify_all();
        assert_eq!(woken(&new_count), 1);
    }

    #[test]
    fn storage_from_a_burst_is_given_back() {
        let notify = Notify::default();
        let waits: Vec<_> = (0..10_000)
            .map(|_| {
                let (_, w) = counter();
                let mut wait = Box::pin(notify.wait_until(|| None::<()>));
                assert!(wait
                    .as_mut()
                    .poll(&mut Context::from_waker(&w))
                    .is_pending());
                wait
            })
            .collect();
        notify.notify_all();
        drop(waits);
        // Two quiet rounds with one waiter each: both vectors cycle through a notification.
        for _ in 0..2 {
            let (_, w) = counter();
            let mut wait = pin!(notify.wait_until(|| None::<()>));
            assert!(wait
                .as_mut()
                .poll(&mut Context::from_waker(&w))
                .is_pending());
            notify.notify_all();
        }
        let spare = notify.spare.take();
        let slab = notify.waiters.borrow();
        assert!(
            spare.capacity() <= 4 * KEEP_SLOTS_MIN,
            "{}",
            spare.capacity()
        );
        assert!(slab.slots.capacity() <= 4 * KEEP_SLOTS_MIN);
        assert!(slab.free.capacity() <= 4 * KEEP_SLOTS_MIN);
    }
}
