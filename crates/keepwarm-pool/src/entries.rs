//! One key's open connections ([`Entry`]) in stable slots, and its idle
//! ones as a list threaded through them (newest reused first, oldest
//! closed first).
//!
//! Slot 0 is stored inline in the key's state, so a key with one
//! connection (most keys, when there are many) keeps everything an acquire
//! and a release touch in one place; more connections go to a vector.
//! Leases name their connection by slot; the pool's public connection ids
//! are looked up only on the rare calls that pass one in.

use std::num::NonZeroU32;
use std::time::Duration;

use crate::clock::{Nanos, Span};
use crate::counters::CloseReason;
use crate::options::PoolOptions;
use crate::traits::Poolable;

/// No slot: the end of the idle list.
const NIL: u32 = u32::MAX;

/// An idle connection's deadline and its place in release order (a
/// sequence number that wraps: see `idle_index`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IdleMark {
    pub(crate) deadline: Nanos,
    pub(crate) seq: NonZeroU32,
}

/// One open connection (not counting ones still connecting): 96 bytes
/// besides the connection itself, all of it read or written by an acquire
/// and a release.
#[repr(C)]
pub(crate) struct Entry<C> {
    /// The pool's id of the connection.
    pub(crate) id: u64,
    pub(crate) created: Nanos,
    pub(crate) last_used: Nanos,
    pub(crate) requests: u64,
    pub(crate) idle_timeout: Span,
    /// Most requests it carries; `u64::MAX` for no limit.
    pub(crate) max_requests: u64,
    /// The deadline of this connection's item in the pool's idle index,
    /// if it has one (at or before its idle deadline; see `idle_index`).
    pub(crate) queued: Option<Nanos>,
    /// Set while the entry is in the idle list.
    pub(crate) idle: Option<IdleMark>,
    pub(crate) generation: u32,
    pub(crate) capacity: u32,
    pub(crate) in_flight: u32,
    /// Idle list links (slots), while idle.
    newer: u32,
    older: u32,
    /// The peer closed it while a request was using it.
    pub(crate) dead: bool,
    /// A shared connection to close, for this reason, when its last request ends.
    pub(crate) doomed: Option<CloseReason>,
    /// Exclusive: `Some` while idle, `None` while a lease holds it.
    /// Shared: always `Some` (the master handle).
    pub(crate) conn: Option<C>,
}

impl<C> Entry<C> {
    pub(crate) fn new(
        id: u64,
        conn: C,
        capacity: u32,
        now: Nanos,
        generation: u32,
        idle_timeout: Duration,
        max_requests: Option<u64>,
    ) -> Self {
        Entry {
            id,
            created: now,
            last_used: now,
            requests: 0,
            idle_timeout: Span::of(idle_timeout),
            max_requests: max_requests.unwrap_or(u64::MAX),
            queued: None,
            idle: None,
            generation,
            capacity,
            in_flight: 0,
            newer: NIL,
            older: NIL,
            dead: false,
            doomed: None,
            conn: Some(conn),
        }
    }
}

impl<C: Poolable> Entry<C> {
    pub(crate) fn shared(&self) -> bool {
        self.capacity > 1
    }

    pub(crate) fn lifetime_over(&self, now: Nanos, opts: &PoolOptions) -> bool {
        opts.max_socket_lifetime
            .is_some_and(|l| now.reached(self.created, l))
    }

    pub(crate) fn requests_over(&self) -> bool {
        self.requests >= self.max_requests
    }

    pub(crate) fn is_open(&self) -> bool {
        !self.dead && self.doomed.is_none() && self.conn.as_ref().is_none_or(Poolable::is_open)
    }

    /// [`is_open`](Self::is_open), letting an idle connection look at its
    /// transport ([`Poolable::poll_open`]).
    pub(crate) fn poll_open(&mut self) -> bool {
        !self.dead && self.doomed.is_none() && self.conn.as_mut().is_none_or(Poolable::poll_open)
    }
}

/// A key's connections by slot, and its idle list: the list ends and the
/// inline slot first, then the other slots (allocated once a key has a
/// second connection).
#[repr(C)]
pub(crate) struct Entries<C> {
    newest_idle: u32,
    oldest_idle: u32,
    idle_len: u32,
    len: u32,
    first: Option<Entry<C>>,
    /// Slots 1 and up. Boxed: eight bytes in the key's hot part rather than
    /// a vector's 24 (the extra hop is paid only by keys with several
    /// connections, which are few and warm).
    #[allow(clippy::box_collection)]
    rest: Option<Box<Vec<Option<Entry<C>>>>>,
}

impl<C> Default for Entries<C> {
    fn default() -> Self {
        Entries {
            newest_idle: NIL,
            oldest_idle: NIL,
            idle_len: 0,
            len: 0,
            first: None,
            rest: None,
        }
    }
}

impl<C> Entries<C> {
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn get(&self, slot: u32) -> Option<&Entry<C>> {
        match slot {
            0 => self.first.as_ref(),
            NIL => None,
            n => self.rest.as_ref()?.get(n as usize - 1)?.as_ref(),
        }
    }

    pub(crate) fn get_mut(&mut self, slot: u32) -> Option<&mut Entry<C>> {
        match slot {
            0 => self.first.as_mut(),
            NIL => None,
            n => self.rest.as_mut()?.get_mut(n as usize - 1)?.as_mut(),
        }
    }

    /// The slot of connection `id`: `hint` if it holds it, else a scan.
    pub(crate) fn find(&self, id: u64, hint: u32) -> Option<u32> {
        if self.get(hint).is_some_and(|e| e.id == id) {
            return Some(hint);
        }
        self.iter().find(|(_, e)| e.id == id).map(|(s, _)| s)
    }

    /// Stores `e` in the lowest free slot; its slot.
    pub(crate) fn insert(&mut self, e: Entry<C>) -> u32 {
        self.len += 1;
        if self.first.is_none() {
            self.first = Some(e);
            return 0;
        }
        let rest = self.rest.get_or_insert_with(Box::default);
        if let Some(i) = rest.iter().position(Option::is_none) {
            rest[i] = Some(e);
            return i as u32 + 1;
        }
        rest.push(Some(e));
        u32::try_from(rest.len()).expect("fewer than 2^32 connections per key")
    }

    /// Takes the entry out of `slot` (unlinked from the idle list first).
    pub(crate) fn remove(&mut self, slot: u32) -> Option<Entry<C>> {
        if self.get(slot)?.idle.is_some() {
            self.unlink_idle(slot);
        }
        let e = match slot {
            0 => self.first.take(),
            n => self.rest.as_mut()?.get_mut(n as usize - 1)?.take(),
        };
        self.len -= 1;
        if let Some(rest) = &mut self.rest {
            while matches!(rest.last(), Some(None)) {
                rest.pop();
            }
            if rest.is_empty() {
                self.rest = None;
            }
        }
        e
    }

    /// Every entry with its slot.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Entry<C>)> {
        self.first.iter().map(|e| (0, e)).chain(
            self.rest
                .iter()
                .flat_map(|r| r.iter())
                .enumerate()
                .filter_map(|(i, e)| e.as_ref().map(|e| (i as u32 + 1, e))),
        )
    }

    /// Every entry, mutably.
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut Entry<C>> {
        self.first.iter_mut().chain(
            self.rest
                .iter_mut()
                .flat_map(|r| r.iter_mut())
                .filter_map(Option::as_mut),
        )
    }

    /// Idle connections.
    pub(crate) fn idle_len(&self) -> usize {
        self.idle_len as usize
    }

    /// The most recently idled connection's slot.
    pub(crate) fn newest_idle(&self) -> Option<u32> {
        (self.newest_idle != NIL).then_some(self.newest_idle)
    }

    /// The longest idle connection's slot.
    pub(crate) fn oldest_idle(&self) -> Option<u32> {
        (self.oldest_idle != NIL).then_some(self.oldest_idle)
    }

    /// Slots of the idle connections, oldest first.
    pub(crate) fn idle_slots(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.idle_len());
        let mut s = self.oldest_idle;
        while let Some(e) = self.get(s) {
            out.push(s);
            s = e.newer;
        }
        out
    }

    /// Puts the entry in `slot` at the newest end of the idle list, marked
    /// with `mark`.
    pub(crate) fn link_idle(&mut self, slot: u32, mark: IdleMark) {
        let older = self.newest_idle;
        let e = self.get_mut(slot).expect("linking a stored entry");
        debug_assert!(e.idle.is_none());
        e.idle = Some(mark);
        e.newer = NIL;
        e.older = older;
        match self.get_mut(older) {
            Some(o) => o.newer = slot,
            None => self.oldest_idle = slot,
        }
        self.newest_idle = slot;
        self.idle_len += 1;
    }

    /// Takes the entry in `slot` out of the idle list; its mark.
    pub(crate) fn unlink_idle(&mut self, slot: u32) -> Option<IdleMark> {
        let e = self.get_mut(slot)?;
        let mark = e.idle.take()?;
        let (newer, older) = (e.newer, e.older);
        e.newer = NIL;
        e.older = NIL;
        match self.get_mut(newer) {
            Some(n) => n.older = older,
            None => self.newest_idle = older,
        }
        match self.get_mut(older) {
            Some(o) => o.newer = newer,
            None => self.oldest_idle = newer,
        }
        self.idle_len -= 1;
        Some(mark)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64) -> Entry<()> {
        Entry::new(id, (), 1, Nanos::new(1), 0, Duration::from_secs(1), None)
    }

    fn mark(t: u32) -> IdleMark {
        IdleMark {
            deadline: Nanos::new(u64::from(t) + 1),
            seq: NonZeroU32::new(t + 1).unwrap(),
        }
    }

    #[test]
    fn slots_are_stable_and_reused_lowest_first() {
        let mut es = Entries::default();
        let a = es.insert(entry(10));
        let b = es.insert(entry(11));
        let c = es.insert(entry(12));
        assert_eq!((a, b, c, es.len()), (0, 1, 2, 3));
        assert_eq!(es.remove(a).map(|e| e.id), Some(10));
        assert_eq!(es.get(c).map(|e| e.id), Some(12), "others keep their slot");
        assert_eq!(es.find(12, 0), Some(c));
        assert_eq!(es.find(12, c), Some(c));
        assert_eq!(es.find(10, 0), None);
        assert_eq!(es.insert(entry(13)), 0, "the inline slot first");
        assert_eq!(es.remove(c).map(|e| e.id), Some(12));
        assert_eq!(es.insert(entry(14)), 2);
        let ids: Vec<u64> = es.iter().map(|(_, e)| e.id).collect();
        assert_eq!(ids, vec![13, 11, 14]);
        assert_eq!(es.get(NIL).map(|e| e.id), None);
    }

    #[test]
    fn the_idle_list_keeps_release_order_through_removals() {
        let mut es = Entries::default();
        let s: Vec<u32> = (0..5).map(|i| es.insert(entry(i))).collect();
        for &x in &s {
            es.link_idle(x, mark(x));
        }
        assert_eq!(es.idle_slots(), s);
        assert_eq!((es.newest_idle(), es.oldest_idle()), (Some(4), Some(0)));
        // Reuse the newest, drop one from the middle and the oldest.
        assert_eq!(es.unlink_idle(4), Some(mark(4)));
        assert_eq!(es.unlink_idle(4), None, "not idle any more");
        es.remove(2);
        es.remove(0);
        assert_eq!(es.idle_slots(), vec![1, 3]);
        assert_eq!(es.idle_len(), 2);
        // Back to idle: newest again.
        es.link_idle(4, mark(4));
        assert_eq!(es.idle_slots(), vec![1, 3, 4]);
        assert_eq!((es.newest_idle(), es.oldest_idle()), (Some(4), Some(1)));
        for x in [3, 1, 4] {
            es.unlink_idle(x);
        }
        assert_eq!(
            (es.newest_idle(), es.oldest_idle(), es.idle_len()),
            (None, None, 0)
        );
        assert!(es.idle_slots().is_empty());
    }
}
