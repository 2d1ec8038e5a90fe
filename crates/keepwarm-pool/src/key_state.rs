//! One key's state, split by how often it is touched.
//!
//! [`KeyState`] holds what an acquire and a release that reuse the key's
//! connection read and write, with the key's first connection inline: 160
//! bytes with a zero-sized connection, one slot of the key table. With
//! many keys each costs two and a half cache lines rather than lines
//! scattered over the heap, and 10,000 keys stay within a 2 MiB L2 cache.
//! [`Cold`] (boxed) holds what rarer events touch: the waiters, the shared
//! connections with spare streams, connects under way, the retirement
//! serial, the counters. The hot part keeps the lengths of the two queues
//! and whether a retirement is armed, so that an acquire and a release see
//! those without reading the box; they are changed only through the
//! methods here, which keep both in step. The request counters are not
//! kept per key at all: each connection counts its requests, and a key's
//! totals are its open connections' plus its closed ones'.

use std::collections::VecDeque;
use std::num::{NonZeroU64, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Nanos;
use crate::counters::{Counters, KeySnapshot};
use crate::entries::Entries;
use crate::options::PoolOptions;
use crate::traits::Poolable;
use crate::waiter::Waiter;

/// Per-key state, hot part (laid out in declaration order).
#[repr(C)]
pub(crate) struct KeyState<C> {
    /// Tells this key from a later one in the same table slot.
    pub(crate) serial: u32,
    /// Bumped by `destroy`: connections of an older generation are closed.
    pub(crate) generation: u32,
    pub(crate) opts: Arc<PoolOptions>,
    /// `cold.waiters.len()`.
    waiting: u32,
    /// `cold.shared_avail.len()`.
    sharing: u32,
    pub(crate) cold: Box<Cold<C>>,
    /// The key asked for pre-warmed connections (it was used or warmed).
    pub(crate) warm: bool,
    /// `cold.retire.is_some()`.
    retiring: bool,
    /// Open connections, and the idle ones among them (newest reused first).
    pub(crate) entries: Entries<C>,
}

/// Per-key state touched only by rarer events.
pub(crate) struct Cold<C> {
    /// Requests waiting for a connection or a slot, in order.
    waiters: VecDeque<Waiter<C>>,
    /// Slots of shared entries carrying requests that can take more.
    shared_avail: Vec<u32>,
    pub(crate) connecting: usize,
    pub(crate) warming: usize,
    /// Requests one connection of this key carries at once, as the last
    /// connection established said; `usize::MAX` after
    /// [`Pool::expect_shared`](crate::Pool::expect_shared) until one is
    /// established; `None` when unknown.
    pub(crate) capacity_hint: Option<NonZeroUsize>,
    /// Set while the key is empty: the serial of its entry in
    /// `Globals::retire`.
    retire: Option<NonZeroU64>,
    /// The counters; `requests` and `reused` only of closed connections.
    pub(crate) counters: Counters,
    /// Sum over entries of their creation in pool time, for the mean age.
    pub(crate) created_sum: u128,
}

impl<C> KeyState<C> {
    pub(crate) fn new(opts: Arc<PoolOptions>) -> Self {
        KeyState {
            serial: 0,
            generation: 0,
            opts,
            waiting: 0,
            sharing: 0,
            cold: Box::new(Cold {
                waiters: VecDeque::new(),
                shared_avail: Vec::new(),
                connecting: 0,
                warming: 0,
                capacity_hint: None,
                retire: None,
                counters: Counters::default(),
                created_sum: 0,
            }),
            warm: false,
            retiring: false,
            entries: Entries::default(),
        }
    }

    /// All of the key's counters: a connection's requests after its first
    /// were on a reused connection.
    pub(crate) fn counters(&self) -> Counters {
        let mut c = self.cold.counters;
        for (_, e) in self.entries.iter() {
            c.requests += e.requests;
            c.reused += e.requests.saturating_sub(1);
        }
        c
    }

    /// A connection that carried `requests` requests was closed.
    pub(crate) fn count_closed(&mut self, requests: u64) {
        self.cold.counters.requests += requests;
        self.cold.counters.reused += requests.saturating_sub(1);
    }

    /// Whether a retirement is armed.
    pub(crate) fn retiring(&self) -> bool {
        self.retiring
    }

    /// The serial of the armed retirement.
    pub(crate) fn retire_serial(&self) -> Option<NonZeroU64> {
        self.cold.retire
    }

    /// Arms (`Some`) or disarms (`None`) the retirement.
    pub(crate) fn set_retire(&mut self, serial: Option<NonZeroU64>) {
        self.retiring = serial.is_some();
        self.cold.retire = serial;
    }

    pub(crate) fn has_waiters(&self) -> bool {
        self.waiting > 0
    }

    pub(crate) fn waiter_count(&self) -> usize {
        self.waiting as usize
    }

    pub(crate) fn push_waiter(&mut self, w: Waiter<C>) {
        self.cold.waiters.push_back(w);
        self.waiting += 1;
    }

    pub(crate) fn first_waiter(&self) -> Option<&Waiter<C>> {
        if self.waiting == 0 {
            return None;
        }
        self.cold.waiters.front()
    }

    pub(crate) fn pop_waiter(&mut self) -> Option<Waiter<C>> {
        if self.waiting == 0 {
            return None;
        }
        let w = self.cold.waiters.pop_front();
        self.waiting -= 1;
        w
    }

    /// Takes waiter `id` out of the queue, if it is still there.
    pub(crate) fn remove_waiter(&mut self, id: u64) {
        if let Some(pos) = self.cold.waiters.iter().position(|w| w.id == id) {
            self.cold.waiters.remove(pos);
            self.waiting -= 1;
        }
    }

    /// The shared connection with spare streams offered first.
    pub(crate) fn shared_last(&self) -> Option<u32> {
        if self.sharing == 0 {
            return None;
        }
        self.cold.shared_avail.last().copied()
    }

    pub(crate) fn shared_pop(&mut self) {
        if self.cold.shared_avail.pop().is_some() {
            self.sharing -= 1;
        }
    }

    /// Offers shared entry `slot` (once).
    pub(crate) fn shared_offer(&mut self, slot: u32) {
        if !self.cold.shared_avail.contains(&slot) {
            self.cold.shared_avail.push(slot);
            self.sharing += 1;
        }
    }

    /// Stops offering entry `slot`.
    pub(crate) fn shared_withdraw(&mut self, slot: u32) {
        if self.sharing == 0 {
            return;
        }
        self.cold.shared_avail.retain(|x| *x != slot);
        self.sharing = self.cold.shared_avail.len() as u32;
    }

    pub(crate) fn shared_clear(&mut self) {
        self.cold.shared_avail.clear();
        self.sharing = 0;
    }
}

impl<C: Poolable> KeyState<C> {
    /// Nothing open, connecting or waiting, and no pre-warm wish: the
    /// key's state can go once it stays so for `freeSocketTimeout`.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
            && !self.has_waiters()
            && self.cold.connecting == 0
            && !(self.warm && self.opts.min_free_sockets > 0)
    }

    /// Connections counted against `maxSockets`.
    pub(crate) fn total(&self) -> usize {
        self.entries.len() + self.cold.connecting
    }

    pub(crate) fn has_free_slot(&self) -> bool {
        self.total() < self.opts.max_sockets
    }

    /// Requests that the shared connections now connecting will take
    /// besides the ones that dial them (a pre-warm connect dials for no
    /// request). Zero for exclusive connections. A request that finds no free
    /// stream waits for these before it dials another connection.
    pub(crate) fn connecting_spare(&self) -> usize {
        let cold = &self.cold;
        match cold.capacity_hint.map(NonZeroUsize::get) {
            Some(c) if c > 1 => {
                let dialing = cold.connecting.saturating_sub(cold.warming);
                dialing
                    .saturating_mul(c - 1)
                    .saturating_add(cold.warming.saturating_mul(c))
            }
            _ => 0,
        }
    }

    pub(crate) fn snapshot(&self, now: Nanos) -> KeySnapshot {
        let open = self.entries.len();
        let idle = self.entries.idle_len();
        let mean_age = if open == 0 {
            Duration::ZERO
        } else {
            let mean_created = self.cold.created_sum / open as u128;
            now.since(Nanos::new(u64::try_from(mean_created).unwrap_or(u64::MAX)))
        };
        KeySnapshot {
            counters: self.counters(),
            active: open - idle,
            idle,
            connecting: self.cold.connecting,
            waiters: self.waiter_count(),
            mean_age,
            max_sockets: self.opts.max_sockets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entries::Entry;

    #[test]
    fn the_hot_part_is_160_bytes() {
        assert_eq!(std::mem::size_of::<Entry<()>>(), 96);
        assert_eq!(std::mem::size_of::<KeyState<()>>(), 160);
        assert_eq!(std::mem::size_of::<Option<KeyState<()>>>(), 160);
    }

    #[test]
    fn request_counters_are_summed_over_open_and_closed_connections() {
        let mut ks: KeyState<()> = KeyState::new(Arc::new(PoolOptions::default()));
        let now = Nanos::new(1);
        for (id, requests) in [(1, 3), (2, 1), (3, 0)] {
            let mut e = Entry::new(id, (), 1, now, 0, Duration::from_secs(1), None);
            e.requests = requests;
            ks.entries.insert(e);
        }
        ks.count_closed(5);
        ks.count_closed(0);
        let c = ks.counters();
        assert_eq!((c.requests, c.reused), (3 + 1 + 5, 2 + 4));
    }

    #[test]
    fn the_retirement_flag_follows_its_serial() {
        let mut ks: KeyState<()> = KeyState::new(Arc::new(PoolOptions::default()));
        assert!(!ks.retiring());
        ks.set_retire(NonZeroU64::new(7));
        assert_eq!(
            (ks.retiring(), ks.retire_serial()),
            (true, NonZeroU64::new(7))
        );
        ks.set_retire(None);
        assert_eq!((ks.retiring(), ks.retire_serial()), (false, None));
    }

    #[test]
    fn queue_lengths_follow_the_queues() {
        let mut ks: KeyState<()> = KeyState::new(Arc::new(PoolOptions::default()));
        assert!(!ks.has_waiters() && ks.first_waiter().is_none());
        for id in 1..=3 {
            let (tx, _rx) = tokio::sync::oneshot::channel();
            ks.push_waiter(Waiter { id, tx });
        }
        ks.remove_waiter(2);
        ks.remove_waiter(9);
        assert_eq!(ks.waiter_count(), 2);
        assert_eq!(ks.pop_waiter().map(|w| w.id), Some(1));
        assert_eq!(ks.first_waiter().map(|w| w.id), Some(3));
        assert_eq!(ks.pop_waiter().map(|w| w.id), Some(3));
        assert!(ks.pop_waiter().is_none() && !ks.has_waiters());

        for slot in [4, 7, 4, 9] {
            ks.shared_offer(slot);
        }
        assert_eq!((ks.sharing, ks.shared_last()), (3, Some(9)));
        ks.shared_withdraw(7);
        ks.shared_pop();
        assert_eq!((ks.sharing, ks.shared_last()), (1, Some(4)));
        ks.shared_clear();
        assert_eq!((ks.sharing, ks.shared_last()), (0, None));
        ks.shared_pop();
        assert_eq!(ks.sharing, 0);
    }
}
