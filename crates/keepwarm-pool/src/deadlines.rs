//! A min-heap of deadlines with lazy deletion: an item is never searched
//! for; its owner tells live items from dead ones when they reach the top
//! (or when the heap is compacted), through a `live` predicate.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::clock::Nanos;

/// Deadlines of items `T`.
pub(crate) struct Deadlines<T> {
    heap: BinaryHeap<Reverse<(Nanos, T)>>,
}

impl<T: Ord + Copy> Default for Deadlines<T> {
    fn default() -> Self {
        Deadlines {
            heap: BinaryHeap::new(),
        }
    }
}

impl<T: Ord + Copy> Deadlines<T> {
    pub(crate) fn push(&mut self, at: Nanos, item: T) {
        self.heap.push(Reverse((at, item)));
    }

    /// Items held, live and dead.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// The earliest item, live or dead.
    pub(crate) fn peek(&self) -> Option<(Nanos, T)> {
        self.heap.peek().map(|Reverse(x)| *x)
    }

    pub(crate) fn pop(&mut self) -> Option<(Nanos, T)> {
        self.heap.pop().map(|Reverse(x)| x)
    }

    /// Drops dead items from the top; the earliest live deadline.
    pub(crate) fn next(&mut self, mut live: impl FnMut(Nanos, T) -> bool) -> Option<Nanos> {
        while let Some((at, item)) = self.peek() {
            if live(at, item) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Takes the earliest live item if it is due by `now`.
    pub(crate) fn pop_due(
        &mut self,
        now: Nanos,
        live: impl FnMut(Nanos, T) -> bool,
    ) -> Option<(Nanos, T)> {
        if self.next(live)? > now {
            return None;
        }
        self.pop()
    }

    /// Whether dead items may make up more than half the heap, given
    /// `live_count` live ones (with some slack).
    pub(crate) fn bloated(&self, live_count: usize) -> bool {
        self.heap.len() > 2 * live_count + 64
    }

    /// Drops every dead item when [`bloated`](Self::bloated): the heap stays
    /// within `2 × live + 64` items at O(1) amortized cost per push.
    pub(crate) fn compact(&mut self, live_count: usize, mut live: impl FnMut(Nanos, T) -> bool) {
        if self.bloated(live_count) {
            self.heap.retain(|Reverse((at, item))| live(*at, *item));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn pops_live_items_in_deadline_order_and_skips_dead_ones() {
        let mut d = Deadlines::default();
        let dead: RefCell<HashSet<u32>> = RefCell::default();
        for (at, id) in [(30, 3), (10, 1), (20, 2), (15, 4)] {
            d.push(Nanos::new(at), id);
        }
        dead.borrow_mut().insert(1);
        let live = |_, id: u32| !dead.borrow().contains(&id);
        assert_eq!(d.next(live), Some(Nanos::new(15)));
        assert_eq!(d.len(), 3, "the dead top was dropped");
        assert_eq!(d.pop_due(Nanos::new(14), live), None);
        assert_eq!(d.pop_due(Nanos::new(20), live), Some((Nanos::new(15), 4)));
        assert_eq!(d.pop_due(Nanos::new(20), live), Some((Nanos::new(20), 2)));
        assert_eq!(d.pop_due(Nanos::new(20), live), None);
        dead.borrow_mut().insert(3);
        assert_eq!(d.next(live), None);
        assert_eq!(d.len(), 0);
    }

    #[test]
    fn compaction_bounds_the_heap_and_keeps_the_live_items() {
        let mut d = Deadlines::default();
        let mut live_ids = HashSet::new();
        // Every item but the newest goes dead.
        for i in 0..10_000u32 {
            live_ids.clear();
            live_ids.insert(i);
            d.push(Nanos::new(u64::from(i) + 1_000), i);
            d.compact(live_ids.len(), |_, id| live_ids.contains(&id));
            assert!(d.len() <= 2 * live_ids.len() + 65, "{} items", d.len());
        }
        assert_eq!(
            d.next(|_, id| live_ids.contains(&id)),
            Some(Nanos::new(10_999))
        );
        // Below the threshold nothing is dropped.
        let mut d = Deadlines::default();
        for i in 0..50u32 {
            d.push(Nanos::new(u64::from(i) + 1), i);
        }
        assert!(!d.bloated(0));
        d.compact(0, |_, _| false);
        assert_eq!(d.len(), 50);
    }
}
