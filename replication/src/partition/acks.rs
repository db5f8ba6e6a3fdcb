//! acks=all waiters of one partition: each waits for the high watermark to pass the last offset
//! of its batch. Ordered by that offset, so a high watermark move completes a prefix in one
//! step; bounded, so a stuck ISR cannot make memory grow without limit (a produce that finds the
//! queue full is refused at once instead of waiting).

use crate::types::Offset;
use std::collections::VecDeque;

/// Waiters in offset order. Appends on one partition are assigned increasing offsets, so waiters
/// arrive in order and a deque suffices (an out-of-order insert is still placed correctly).
#[derive(Debug)]
pub struct AckQueue<T> {
    waiting: VecDeque<(Offset, T)>,
    limit: usize,
}

/// The queue already holds its limit of waiters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many acks=all requests waiting on this partition ({0})")]
pub struct QueueFull(pub usize);

impl<T> AckQueue<T> {
    pub fn new(limit: usize) -> Self {
        Self {
            waiting: VecDeque::new(),
            limit: limit.max(1),
        }
    }

    /// Adds a waiter that completes once the high watermark is above `last_offset`.
    pub fn push(&mut self, last_offset: Offset, waiter: T) -> Result<(), QueueFull> {
        if self.waiting.len() >= self.limit {
            return Err(QueueFull(self.limit));
        }
        let at = self.waiting.partition_point(|(o, _)| *o <= last_offset);
        self.waiting.insert(at, (last_offset, waiter));
        Ok(())
    }

    /// Removes and returns every waiter whose offset is below `high_watermark`, in order.
    pub fn complete_below(&mut self, high_watermark: Offset) -> Vec<T> {
        let n = self.waiting.partition_point(|(o, _)| *o < high_watermark);
        self.waiting.drain(..n).map(|(_, w)| w).collect()
    }

    /// Removes every waiter (leadership lost, partition closed): the caller answers them.
    pub fn drain_all(&mut self) -> Vec<T> {
        self.waiting.drain(..).map(|(_, w)| w).collect()
    }

    /// Removes waiters for which `gone` is true (their requests timed out or were dropped).
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.waiting.retain(|(_, w)| keep(w));
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_in_offset_order_and_only_below_the_high_watermark() {
        let mut q = AckQueue::new(10);
        q.push(4, "b").unwrap();
        q.push(2, "a").unwrap();
        q.push(9, "d").unwrap();
        q.push(4, "c").unwrap();
        assert_eq!(q.complete_below(2), Vec::<&str>::new());
        assert_eq!(q.complete_below(5), ["a", "b", "c"]);
        assert_eq!(q.len(), 1);
        assert_eq!(q.complete_below(10), ["d"]);
        assert!(q.is_empty());
    }

    #[test]
    fn is_bounded_and_can_be_emptied() {
        let mut q = AckQueue::new(2);
        q.push(1, 1).unwrap();
        q.push(2, 2).unwrap();
        assert_eq!(q.push(3, 3), Err(QueueFull(2)));
        q.retain(|w| *w != 1);
        q.push(3, 3).unwrap();
        assert_eq!(q.drain_all(), [2, 3]);
    }
}
