//! Every idle connection across keys, for the two pool-wide questions:
//! which idle deadline comes first (the expiry task), and which idle
//! connection was used least recently (`maxIdleTotal`). No key is cloned
//! and no search tree is walked, whatever the number of keys.
//!
//! Deadlines: a heap with at most one live item per connection, naming it
//! by key slot, slot and id ([`Due`]); the connection remembers the
//! deadline of its item (`Entry::queued`). A connection going idle again
//! with a later deadline than its item (a reuse: release time plus the
//! same timeout) leaves the item as it is, so the common acquire + release
//! cycle does no heap work at all. When an item reaches the top, it is
//! checked against its connection: gone or superseded, it is dropped; idle
//! with a later deadline, it moves there; idle and due, the connection
//! expires. So the first live item after that check is the exact earliest
//! idle deadline. Under steady traffic most items have moved on when the
//! expiry task reaches them; it checks at most a [`Budget`] of them per
//! lock hold and, if that runs out, comes back at once for the rest (the
//! time it then sleeps until is never later than the true deadline, and
//! only a checked connection expires).
//!
//! Release order (kept only under a global idle cap): a queue of
//! (sequence, connection); an item is live while its connection is still
//! idle with that sequence number. Dead items are dropped at the front, and
//! all of them once they outnumber the live ones.

use std::collections::VecDeque;
use std::num::NonZeroU32;

use crate::clock::Nanos;
use crate::deadlines::Deadlines;
use crate::entries::{Entry, IdleMark};
use crate::keys::{KeyIdx, KeyTable};
use crate::traits::PoolKey;

/// A connection: its key's slot, its slot there, and its id (which tells
/// it from a later connection in the same slots).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Due {
    pub(crate) key: KeyIdx,
    pub(crate) slot: u32,
    pub(crate) id: u64,
}

/// How many heap items one expiry pass may check, move, drop or expire, so
/// that no pass holds the pool's lock for long (each costs a heap pop and
/// maybe a push: a fraction of a microsecond with 10,000 connections).
pub(crate) struct Budget(u32);

impl Budget {
    /// The budget of one expiry pass.
    pub(crate) fn per_pass() -> Budget {
        Budget(256)
    }

    /// Spends one check; whether any are left.
    fn spend(&mut self) -> bool {
        self.0 = self.0.saturating_sub(1);
        self.0 > 0
    }
}

/// The pool-wide idle index.
pub(crate) struct IdleIndex {
    timers: Deadlines<Due>,
    /// Connections with an item in `timers` (`Entry::queued` set).
    queued: usize,
    /// Release order, kept only under a global idle cap.
    lru: Option<VecDeque<(NonZeroU32, Due)>>,
    next_seq: NonZeroU32,
    /// Idle connections.
    len: usize,
}

fn entry<K: PoolKey, C>(keys: &mut KeyTable<K, C>, due: Due) -> Option<&mut Entry<C>> {
    keys.state_mut(due.key)?
        .entries
        .get_mut(due.slot)
        .filter(|e| e.id == due.id)
}

impl IdleIndex {
    /// An empty index; `lru` keeps release order (for a global idle cap).
    pub(crate) fn new(lru: bool) -> Self {
        IdleIndex {
            timers: Deadlines::default(),
            queued: 0,
            lru: lru.then(VecDeque::new),
            next_seq: NonZeroU32::MIN,
            len: 0,
        }
    }

    /// Idle connections now.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Connection `due` (entry `e`) goes idle until `deadline`, the most
    /// recently used; the mark to keep on it while idle. Returns whether
    /// dead items piled up enough for [`compact`](Self::compact) to run.
    pub(crate) fn went_idle<C>(
        &mut self,
        due: Due,
        e: &mut Entry<C>,
        deadline: Nanos,
    ) -> (IdleMark, bool) {
        self.len += 1;
        // Wraps after 2^32 - 1: queue items are compacted long before a
        // number comes round again.
        self.next_seq = self.next_seq.checked_add(1).unwrap_or(NonZeroU32::MIN);
        match e.queued {
            // An item at or before the deadline: it moves when it surfaces.
            Some(q) if q <= deadline => {}
            q => {
                self.queued += usize::from(q.is_none());
                e.queued = Some(deadline);
                self.timers.push(deadline, due);
            }
        }
        let mut bloated = self.timers.bloated(self.queued);
        if let Some(lru) = &mut self.lru {
            lru.push_back((self.next_seq, due));
            bloated |= lru.len() > 2 * self.len + 64;
        }
        let mark = IdleMark {
            deadline,
            seq: self.next_seq,
        };
        (mark, bloated)
    }

    /// An idle connection was taken out of the idle list (its mark cleared).
    pub(crate) fn went_busy(&mut self) {
        self.len -= 1;
    }

    /// A connection (already out of the idle list) was removed.
    pub(crate) fn removed<C>(&mut self, e: &Entry<C>) {
        if e.queued.is_some() {
            self.queued -= 1;
        }
    }

    /// Checks the top item against its connection until the top is live and
    /// exact (see the module docs) or `budget` runs out; its deadline, and
    /// whether it is exact (else it is no later than the earliest idle
    /// deadline).
    pub(crate) fn next_deadline<K: PoolKey, C>(
        &mut self,
        keys: &mut KeyTable<K, C>,
        budget: &mut Budget,
    ) -> Option<(Nanos, bool)> {
        loop {
            let (at, due) = self.timers.peek()?;
            let Some(e) = entry(keys, due).filter(|e| e.queued == Some(at)) else {
                self.timers.pop();
                if !budget.spend() {
                    return self.timers.peek().map(|(at, _)| (at, false));
                }
                continue;
            };
            let exact = e.idle.is_some_and(|m| m.deadline == at);
            if exact {
                return Some((at, true));
            }
            if !budget.spend() {
                return Some((at, false));
            }
            match e.idle {
                Some(m) => {
                    // Used since it was queued: move the item.
                    e.queued = Some(m.deadline);
                    self.timers.pop();
                    self.timers.push(m.deadline, due);
                }
                None => {
                    e.queued = None;
                    self.queued -= 1;
                    self.timers.pop();
                }
            }
        }
    }

    /// An idle connection whose deadline passed by `now`, taken off the
    /// heap (the caller removes it).
    pub(crate) fn pop_due<K: PoolKey, C>(
        &mut self,
        now: Nanos,
        keys: &mut KeyTable<K, C>,
        budget: &mut Budget,
    ) -> Option<Due> {
        match self.next_deadline(keys, budget)? {
            (at, true) if at <= now && budget.spend() => {}
            _ => return None,
        }
        let (_, due) = self.timers.pop()?;
        let e = entry(keys, due).expect("checked by next_deadline");
        e.queued = None;
        self.queued -= 1;
        Some(due)
    }

    /// The least recently used idle connection (needs `lru`).
    pub(crate) fn least_recent<K: PoolKey, C>(&mut self, keys: &mut KeyTable<K, C>) -> Option<Due> {
        let lru = self.lru.as_mut()?;
        while let Some(&(seq, due)) = lru.front() {
            if entry(keys, due).is_some_and(|e| e.idle.is_some_and(|m| m.seq == seq)) {
                return Some(due);
            }
            lru.pop_front();
        }
        None
    }

    /// Drops dead items once they outnumber the live ones.
    pub(crate) fn compact<K: PoolKey, C>(&mut self, keys: &mut KeyTable<K, C>) {
        self.timers.compact(self.queued, |at, due| {
            entry(keys, due).is_some_and(|e| e.queued == Some(at))
        });
        if let Some(lru) = &mut self.lru {
            if lru.len() > 2 * self.len + 64 {
                lru.retain(|&(seq, due)| {
                    entry(keys, due).is_some_and(|e| e.idle.is_some_and(|m| m.seq == seq))
                });
            }
        }
    }

    /// Items held by the heap and the queue, live and dead (for tests).
    #[cfg(test)]
    pub(crate) fn held(&self) -> (usize, usize) {
        (
            self.timers.len(),
            self.lru.as_ref().map_or(0, VecDeque::len),
        )
    }
}
