//! The pool's decisions, made under the lock: hand out a connection or a
//! slot, queue a waiter, take a connection back, pre-warm.
//!
//! A key is hashed once, when a request arrives; from then on it is named
//! by its slot in the key table, and a connection by its slot in its key's
//! table (a lease carries both).

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::clock::{Nanos, Span};
use crate::counters::CloseReason;
use crate::facts::{Hints, LeaseInfo, Outcome};
use crate::key_state::KeyState;
use crate::keys::{KeyAt, KeyIdx};
use crate::state::{Assignment, Effects, Globals, Loc, State, Waiter};
use crate::traits::{PoolKey, Poolable};

/// The outcome of an acquire attempt.
pub(crate) enum Step<C> {
    Ready(Assignment<C>),
    Wait(oneshot::Receiver<Assignment<C>>, u64),
}

/// A reserved slot, as its permit holds it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reserved {
    pub(crate) at: KeyAt,
    pub(crate) id: u64,
    pub(crate) generation: u32,
}

/// A lease's connection coming back.
pub(crate) struct Returned<C> {
    pub(crate) id: u64,
    pub(crate) at: Loc,
    pub(crate) conn: C,
    pub(crate) outcome: Outcome,
    pub(crate) hints: Hints,
}

/// Bookkeeping of handing the entry in `slot` to a request.
fn checkout<C: Poolable>(ks: &mut KeyState<C>, slot: u32, now: Nanos) -> Assignment<C> {
    let e = ks.entries.get_mut(slot).expect("checkout of a known entry");
    let was_idle = e.in_flight == 0;
    let conn = if e.shared() {
        e.conn.as_ref().and_then(Poolable::share)
    } else {
        e.conn.take()
    };
    let conn = conn.expect("an available entry holds its connection");
    e.in_flight += 1;
    let info = LeaseInfo {
        id: e.id,
        reused: e.requests > 0,
        requests_before: e.requests,
        idle_for: if was_idle {
            now.since(e.last_used)
        } else {
            Duration::ZERO
        },
        age: now.since(e.created),
    };
    e.requests += 1;
    let (shared, spare) = (e.shared(), e.in_flight < e.capacity);
    if shared && spare {
        ks.shared_offer(slot);
    }
    if shared && !spare {
        ks.shared_withdraw(slot);
    }
    Assignment::Conn {
        id: info.id,
        slot,
        conn,
        info,
    }
}

/// Finds a usable open connection in `ks`, closing dead or expired idle
/// ones on the way.
fn take_available<K, C: Poolable>(
    ks: &mut KeyState<C>,
    g: &mut Globals,
    now: Nanos,
    fx: &mut Effects<K, C>,
) -> Option<Assignment<C>> {
    // A shared connection with spare capacity first.
    while let Some(slot) = ks.shared_last() {
        let e = ks.entries.get(slot).expect("available entries exist");
        if e.is_open() && e.generation == ks.generation && !e.lifetime_over(now, &ks.opts) {
            return Some(checkout(ks, slot, now));
        }
        let open = e.is_open();
        ks.shared_pop();
        if !open {
            ks.entries.get_mut(slot).expect("present").dead = true;
        }
    }
    while let Some(slot) = ks.entries.newest_idle() {
        let e = ks.entries.get_mut(slot).expect("idle entries exist");
        let reason = if !e.poll_open() {
            ks.cold.counters.stale += 1;
            Some(CloseReason::ServerClosed)
        } else if e.lifetime_over(now, &ks.opts) {
            Some(CloseReason::Lifetime)
        } else if e.idle.is_some_and(|m| now >= m.deadline) {
            Some(CloseReason::IdleTimeout)
        } else if e.generation != ks.generation {
            Some(CloseReason::Destroyed)
        } else {
            None
        };
        match reason {
            Some(r) => g.remove_entry(ks, slot, r, now, fx),
            None => {
                g.unidle(ks, slot);
                return Some(checkout(ks, slot, now));
            }
        }
    }
    None
}

impl<K: PoolKey, C: Poolable> State<K, C> {
    /// `key`'s slot, adding the key if the pool does not hold it.
    pub(crate) fn key_slot(&mut self, key: &K) -> KeyIdx {
        match self.keys.find(key) {
            Some(s) => s,
            None => {
                let opts = self.g.options_for_label(key.label());
                self.keys.insert(key.clone(), KeyState::new(opts))
            }
        }
    }

    /// Serves a new request for `key`: a connection, a slot, or a place in
    /// the queue; and where the key is, for the lease or permit.
    pub(crate) fn acquire(
        &mut self,
        key: &K,
        now: Instant,
        can_spawn: bool,
        fx: &mut Effects<K, C>,
    ) -> (KeyAt, Step<C>) {
        let now = self.g.clock.at(now);
        let s = self.key_slot(key);
        let State { keys, g } = self;
        let ks = keys.state_mut(s).expect("just found");
        ks.warm |= ks.opts.min_free_sockets > 0;
        let mut step = None;
        if !ks.has_waiters() {
            step = take_available(ks, g, now, fx).map(Step::Ready);
            if step.is_none() && ks.has_free_slot() && ks.connecting_spare() == 0 {
                ks.cold.connecting += 1;
                step = Some(Step::Ready(Assignment::Slot {
                    id: g.new_id(),
                    generation: ks.generation,
                }));
            }
        }
        let step = step.unwrap_or_else(|| {
            let (tx, rx) = oneshot::channel();
            g.next_waiter += 1;
            let wid = g.next_waiter;
            ks.cold.counters.waits += 1;
            ks.push_waiter(Waiter { id: wid, tx });
            Step::Wait(rx, wid)
        });
        // Waiters beyond what shared connections now connecting will carry
        // dial more connections.
        let shared_dialing = matches!(step, Step::Wait(..)) && ks.connecting_spare() > 0;
        let (retiring, warm) = (ks.retiring(), ks.warm);
        if retiring {
            self.settle_at(s, now, fx);
        }
        if shared_dialing {
            self.dispatch_at(s, now, fx);
        }
        if can_spawn && warm {
            self.refill(s, fx);
        }
        (self.keys.at(s), step)
    }

    /// Reverses an assignment a waiter of `key` could not take.
    pub(crate) fn undo(&mut self, key: &K, a: Assignment<C>, now: Instant, fx: &mut Effects<K, C>) {
        let now = self.g.clock.at(now);
        if let Some(s) = self.keys.find(key) {
            self.undo_at(s, a, now, fx);
        }
    }

    fn undo_at(&mut self, s: KeyIdx, a: Assignment<C>, now: Nanos, fx: &mut Effects<K, C>) {
        let State { keys, g } = self;
        let Some(ks) = keys.state_mut(s) else {
            return;
        };
        match a {
            Assignment::Slot { .. } => ks.cold.connecting -= 1,
            Assignment::Conn { id, slot, conn, .. } => {
                let Some(slot) = ks.entries.find(id, slot) else {
                    fx.drop.push(conn);
                    return;
                };
                let e = ks.entries.get_mut(slot).expect("found");
                e.in_flight -= 1;
                e.requests -= 1;
                if e.shared() {
                    fx.drop.push(conn);
                } else {
                    e.conn = Some(conn);
                }
                if e.in_flight == 0 {
                    ks.shared_withdraw(slot);
                    g.make_idle(s, ks, slot, now, fx);
                }
            }
        }
    }

    /// Hands free connections and slots of `key` to its waiters, in order.
    pub(crate) fn dispatch(&mut self, key: &K, now: Instant, fx: &mut Effects<K, C>) {
        let now = self.g.clock.at(now);
        if let Some(s) = self.keys.find(key) {
            self.dispatch_at(s, now, fx);
        }
    }

    pub(crate) fn dispatch_at(&mut self, s: KeyIdx, now: Nanos, fx: &mut Effects<K, C>) {
        loop {
            let Some(ks) = self.keys.state_mut(s) else {
                return;
            };
            match ks.first_waiter() {
                None => return,
                Some(w) if w.tx.is_closed() => {
                    ks.pop_waiter();
                    continue;
                }
                Some(_) => {}
            }
            let State { keys, g } = &mut *self;
            let ks = keys.state_mut(s).expect("present");
            let a = match take_available(ks, g, now, fx) {
                Some(a) => a,
                None => {
                    if !ks.has_free_slot() || ks.waiter_count() <= ks.connecting_spare() {
                        return;
                    }
                    ks.cold.connecting += 1;
                    Assignment::Slot {
                        id: g.new_id(),
                        generation: ks.generation,
                    }
                }
            };
            let w = ks.pop_waiter().expect("checked above");
            // The waiter records its own wait once it knows its outcome
            // (served, or timed out / cancelled with this handed back).
            if let Err(a) = w.tx.send(a) {
                self.undo_at(s, a, now, fx);
            }
        }
    }

    /// Takes back a lease's connection.
    pub(crate) fn release(
        &mut self,
        key: &K,
        back: Returned<C>,
        now: Instant,
        fx: &mut Effects<K, C>,
    ) {
        let Returned {
            id,
            at,
            mut conn,
            outcome,
            hints,
        } = back;
        let now = self.g.clock.at(now);
        let Some(s) = self.keys.resolve(key, at.key) else {
            fx.drop.push(conn);
            return;
        };
        let State { keys, g } = self;
        let ks = keys.state_mut(s).expect("resolved");
        let Some(slot) = ks.entries.find(id, at.slot) else {
            fx.drop.push(conn);
            return;
        };
        let e = ks.entries.get_mut(slot).expect("found");
        e.in_flight -= 1;
        e.last_used = now;
        if let Some(t) = hints.idle_timeout {
            e.idle_timeout = e.idle_timeout.min(Span::of(t));
        }
        if let Some(n) = hints.remaining_requests {
            e.max_requests = e.max_requests.min(e.requests.saturating_add(n));
        }
        let close = match outcome {
            Outcome::Close(r) => Some(r),
            Outcome::Reusable if e.doomed.is_some() => e.doomed,
            Outcome::Reusable if !ks.opts.keep_alive => Some(CloseReason::KeepAliveOff),
            Outcome::Reusable if !e.is_open() || (!e.shared() && !conn.poll_open()) => {
                Some(CloseReason::ServerClosed)
            }
            Outcome::Reusable if e.generation != ks.generation => Some(CloseReason::Destroyed),
            Outcome::Reusable if e.lifetime_over(now, &ks.opts) => Some(CloseReason::Lifetime),
            Outcome::Reusable if e.requests_over() => Some(CloseReason::MaxRequests),
            Outcome::Reusable => None,
        };
        if e.shared() {
            fx.drop.push(conn);
        } else {
            e.conn = Some(conn);
        }
        match close {
            Some(r) if e.shared() && e.in_flight > 0 => {
                // Other streams still run on it: stop handing it out, close
                // it for this reason when the last one ends.
                e.doomed = e.doomed.or(Some(r));
                ks.shared_withdraw(slot);
            }
            Some(r) => g.remove_entry(ks, slot, r, now, fx),
            None if e.in_flight == 0 => {
                ks.shared_withdraw(slot);
                g.make_idle(s, ks, slot, now, fx);
            }
            None => ks.shared_offer(slot),
        }
        let (waiting, warm) = (ks.has_waiters(), ks.warm);
        if waiting {
            self.dispatch_at(s, now, fx);
            self.enforce_idle_caps(s, now, fx);
        } else {
            // The common case, without looking the key up again.
            while ks.entries.idle_len() > ks.opts.max_free_sockets {
                let oldest = ks.entries.oldest_idle().expect("idle entries exist");
                g.remove_entry(ks, oldest, CloseReason::OverMaxFree, now, fx);
            }
            if g.max_idle_total.is_some() {
                self.enforce_idle_caps(s, now, fx);
            }
        }
        if warm {
            self.refill(s, fx);
        }
        self.settle_at(s, now, fx);
    }

    /// A reserved slot was given back without a connection.
    pub(crate) fn slot_returned(
        &mut self,
        key: &K,
        at: KeyAt,
        failed: bool,
        now: Instant,
        fx: &mut Effects<K, C>,
    ) {
        let now = self.g.clock.at(now);
        let Some(s) = self.keys.resolve(key, at) else {
            return;
        };
        if let Some(ks) = self.keys.state_mut(s) {
            ks.cold.connecting -= 1;
            if failed {
                ks.cold.counters.connect_errors += 1;
            } else {
                ks.cold.counters.connects_cancelled += 1;
            }
        }
        self.dispatch_at(s, now, fx);
        self.settle_at(s, now, fx);
    }

    /// A reserved slot became connection `id`; it is checked out for the
    /// request that reserved it.
    pub(crate) fn complete(
        &mut self,
        key: &K,
        r: Reserved,
        conn: C,
        now: Instant,
        fx: &mut Effects<K, C>,
    ) -> (KeyAt, Assignment<C>) {
        let Reserved { at, id, generation } = r;
        let now = self.g.clock.at(now);
        let s = self
            .keys
            .resolve(key, at)
            .expect("a slot's key stays in the pool");
        let State { keys, g } = self;
        let ks = keys.state_mut(s).expect("resolved");
        ks.cold.connecting -= 1;
        let slot = g.insert_entry(ks, id, conn, generation, now);
        let a = checkout(ks, slot, now);
        // A shared connection can serve waiters at once.
        self.dispatch_at(s, now, fx);
        (self.keys.at(s), a)
    }

    /// Closes the idle connections over `maxFreeSockets` (oldest first) and
    /// over the global idle cap (least recently used first, any key).
    fn enforce_idle_caps(&mut self, s: KeyIdx, now: Nanos, fx: &mut Effects<K, C>) {
        let State { keys, g } = self;
        if let Some(ks) = keys.state_mut(s) {
            while ks.entries.idle_len() > ks.opts.max_free_sockets {
                let oldest = ks.entries.oldest_idle().expect("idle entries exist");
                g.remove_entry(ks, oldest, CloseReason::OverMaxFree, now, fx);
            }
        }
        if let Some(cap) = g.max_idle_total {
            while g.idle.len() > cap {
                let Some(lru) = g.idle.least_recent(keys) else {
                    break;
                };
                let ks = keys.state_mut(lru.key).expect("an idle connection's key");
                g.remove_entry(ks, lru.slot, CloseReason::IdleCap, now, fx);
            }
        }
    }

    /// Plans pre-warm connects so the key in slot `s` has `minFreeSockets` idle.
    pub(crate) fn refill(&mut self, s: KeyIdx, fx: &mut Effects<K, C>) {
        let State { keys, g } = self;
        let Some((key, ks)) = keys.key_and_state_mut(s) else {
            return;
        };
        if !ks.warm || !ks.opts.keep_alive || ks.has_waiters() {
            return;
        }
        let have = ks.entries.idle_len() + ks.cold.warming;
        let want = ks.opts.min_free_sockets.saturating_sub(have);
        let room = ks.opts.max_sockets.saturating_sub(ks.total());
        for _ in 0..want.min(room) {
            ks.cold.connecting += 1;
            ks.cold.warming += 1;
            fx.connects.push((key.clone(), g.new_id(), ks.generation));
        }
    }

    /// A pre-warm connect finished.
    pub(crate) fn warm_done(
        &mut self,
        key: &K,
        id: u64,
        generation: u32,
        conn: Option<C>,
        now: Instant,
        fx: &mut Effects<K, C>,
    ) {
        let now = self.g.clock.at(now);
        let Some(s) = self.keys.find(key) else {
            return;
        };
        let State { keys, g } = self;
        let ks = keys.state_mut(s).expect("found");
        ks.cold.connecting -= 1;
        ks.cold.warming -= 1;
        match conn {
            Some(c) => {
                let slot = g.insert_entry(ks, id, c, generation, now);
                ks.cold.counters.prewarmed += 1;
                g.make_idle(s, ks, slot, now, fx);
            }
            None => ks.cold.counters.connect_errors += 1,
        }
        self.dispatch_at(s, now, fx);
        self.enforce_idle_caps(s, now, fx);
        self.settle_at(s, now, fx);
    }
}
