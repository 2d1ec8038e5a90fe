//! The pool's decisions, made under the lock: hand out a connection or a
//! slot, queue a waiter, take a connection back, expire, destroy.

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::counters::CloseReason;
use crate::facts::{Hints, LeaseInfo, Outcome};
use crate::options::PoolConfig;
use crate::state::{Assignment, Effects, Globals, KeyState, State, Waiter};
use crate::traits::{PoolKey, Poolable};

/// The outcome of an acquire attempt.
pub(crate) enum Step<C> {
    Ready(Assignment<C>),
    Wait(oneshot::Receiver<Assignment<C>>, u64),
}

/// A lease's connection coming back.
pub(crate) struct Returned<C> {
    pub(crate) id: u64,
    pub(crate) conn: C,
    pub(crate) outcome: Outcome,
    pub(crate) hints: Hints,
}

/// Bookkeeping of handing entry `id` to a request.
fn checkout<C: Poolable>(ks: &mut KeyState<C>, id: u64, now: Instant) -> Assignment<C> {
    let e = ks.entries.get_mut(&id).expect("checkout of a known entry");
    let was_idle = e.in_flight == 0;
    let conn = if e.shared() {
        e.conn.as_ref().and_then(Poolable::share)
    } else {
        e.conn.take()
    };
    let conn = conn.expect("an available entry holds its connection");
    e.in_flight += 1;
    let info = LeaseInfo {
        id,
        reused: e.requests > 0,
        requests_before: e.requests,
        idle_for: if was_idle {
            now.saturating_duration_since(e.last_used)
        } else {
            Duration::ZERO
        },
        age: now.saturating_duration_since(e.created),
    };
    e.requests += 1;
    ks.counters.requests += 1;
    if info.reused {
        ks.counters.reused += 1;
    }
    if e.shared() && e.in_flight < e.capacity && !ks.shared_avail.contains(&id) {
        ks.shared_avail.push(id);
    }
    if e.shared() && e.in_flight >= e.capacity {
        ks.shared_avail.retain(|x| *x != id);
    }
    Assignment::Conn { id, conn, info }
}

/// Finds a usable open connection in `ks`, closing dead or expired idle
/// ones on the way.
fn take_available<K: PoolKey, C: Poolable>(
    ks: &mut KeyState<C>,
    g: &mut Globals<K>,
    now: Instant,
    fx: &mut Effects<K, C>,
) -> Option<Assignment<C>> {
    // A shared connection with spare capacity first.
    while let Some(&id) = ks.shared_avail.last() {
        let e = &ks.entries[&id];
        if e.is_open() && e.generation == ks.generation && !e.lifetime_over(now, &ks.opts) {
            return Some(checkout(ks, id, now));
        }
        ks.shared_avail.pop();
        if !e.is_open() {
            ks.entries.get_mut(&id).expect("present").dead = true;
        }
    }
    while let Some(&id) = ks.idle.last() {
        let e = ks.entries.get_mut(&id).expect("idle entries exist");
        let reason = if !e.poll_open() {
            ks.counters.stale += 1;
            Some(CloseReason::ServerClosed)
        } else if e.lifetime_over(now, &ks.opts) {
            Some(CloseReason::Lifetime)
        } else if e.idle_key.is_some_and(|(deadline, _)| now >= deadline) {
            Some(CloseReason::IdleTimeout)
        } else if e.generation != ks.generation {
            Some(CloseReason::Destroyed)
        } else {
            None
        };
        match reason {
            Some(r) => g.remove_entry(ks, id, r, fx),
            None => {
                g.unidle(ks, id);
                return Some(checkout(ks, id, now));
            }
        }
    }
    None
}

impl<K: PoolKey, C: Poolable> State<K, C> {
    pub(crate) fn key_state(&mut self, key: &K, config: &PoolConfig) -> &mut KeyState<C> {
        let State { keys, g } = self;
        keys.entry(key.clone())
            .or_insert_with(|| KeyState::new(g.options_for_label(key.label(), config)))
    }

    /// Serves a new request for `key`: a connection, a slot, or a place in
    /// the queue.
    pub(crate) fn acquire(
        &mut self,
        key: &K,
        now: Instant,
        config: &PoolConfig,
        can_spawn: bool,
        fx: &mut Effects<K, C>,
    ) -> Step<C> {
        let State { keys, g } = self;
        let ks = keys
            .entry(key.clone())
            .or_insert_with(|| KeyState::new(g.options_for_label(key.label(), config)));
        ks.warm |= ks.opts.min_free_sockets > 0;
        let mut step = None;
        if ks.waiters.is_empty() {
            step = take_available(ks, g, now, fx).map(Step::Ready);
            if step.is_none() && ks.has_free_slot() && ks.connecting_spare() == 0 {
                ks.connecting += 1;
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
            ks.counters.waits += 1;
            ks.waiters.push_back(Waiter { id: wid, tx });
            Step::Wait(rx, wid)
        });
        // Waiters beyond what shared connections now connecting will carry
        // dial more connections.
        let shared_dialing = ks.connecting_spare() > 0;
        if ks.retire_key.is_some() {
            g.settle(key, ks, now, fx);
        }
        let warm = ks.warm;
        if shared_dialing && matches!(step, Step::Wait(..)) {
            self.dispatch(key, now, fx);
        }
        if can_spawn && warm {
            self.refill(key, fx);
        }
        step
    }

    /// Arms or disarms the retirement of `key`'s state (see
    /// [`Globals::settle`]).
    pub(crate) fn settle(&mut self, key: &K, now: Instant, fx: &mut Effects<K, C>) {
        let State { keys, g } = self;
        if let Some(ks) = keys.get_mut(key) {
            g.settle(key, ks, now, fx);
        }
    }

    /// Drops the state of keys that stayed empty until their retirement
    /// deadline, adding their counters to their label's retired totals.
    fn retire(&mut self, now: Instant) {
        let State { keys, g } = self;
        while let Some((&t, _)) = g.retire.iter().next() {
            if t.0 > now {
                break;
            }
            let Some(key) = g.retire.remove(&t) else {
                break;
            };
            let due = keys
                .get(&key)
                .is_some_and(|ks| ks.retire_key == Some(t) && ks.is_empty());
            if let Some(ks) = due.then(|| keys.remove(&key)).flatten() {
                g.retired
                    .entry(key.label().to_string())
                    .or_default()
                    .merge(&ks.counters);
            }
        }
        if keys.capacity() > 64 && keys.len() * 4 < keys.capacity() {
            keys.shrink_to_fit();
        }
    }

    /// Reverses an assignment a waiter could not take.
    pub(crate) fn undo(&mut self, key: &K, a: Assignment<C>, now: Instant, fx: &mut Effects<K, C>) {
        let State { keys, g } = self;
        let Some(ks) = keys.get_mut(key) else {
            return;
        };
        match a {
            Assignment::Slot { .. } => ks.connecting -= 1,
            Assignment::Conn { id, conn, info } => {
                let Some(e) = ks.entries.get_mut(&id) else {
                    fx.drop.push(conn);
                    return;
                };
                e.in_flight -= 1;
                e.requests -= 1;
                ks.counters.requests -= 1;
                if info.reused {
                    ks.counters.reused -= 1;
                }
                if e.shared() {
                    fx.drop.push(conn);
                } else {
                    e.conn = Some(conn);
                }
                if e.in_flight == 0 {
                    ks.shared_avail.retain(|x| *x != id);
                    g.make_idle(key, ks, id, now, fx);
                }
            }
        }
    }

    /// Hands free connections and slots of `key` to its waiters, in order.
    pub(crate) fn dispatch(&mut self, key: &K, now: Instant, fx: &mut Effects<K, C>) {
        loop {
            let Some(ks) = self.keys.get_mut(key) else {
                return;
            };
            match ks.waiters.front() {
                None => return,
                Some(w) if w.tx.is_closed() => {
                    ks.waiters.pop_front();
                    continue;
                }
                Some(_) => {}
            }
            let State { keys, g } = &mut *self;
            let ks = keys.get_mut(key).expect("present");
            let a = match take_available(ks, g, now, fx) {
                Some(a) => a,
                None => {
                    if !ks.has_free_slot() || ks.waiters.len() <= ks.connecting_spare() {
                        return;
                    }
                    ks.connecting += 1;
                    Assignment::Slot {
                        id: g.new_id(),
                        generation: ks.generation,
                    }
                }
            };
            let w = ks.waiters.pop_front().expect("checked above");
            // The waiter records its own wait once it knows its outcome
            // (served, or timed out / cancelled with this handed back).
            if let Err(a) = w.tx.send(a) {
                self.undo(key, a, now, fx);
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
            mut conn,
            outcome,
            hints,
        } = back;
        let State { keys, g } = self;
        let Some(ks) = keys.get_mut(key) else {
            fx.drop.push(conn);
            return;
        };
        let Some(e) = ks.entries.get_mut(&id) else {
            fx.drop.push(conn);
            return;
        };
        e.in_flight -= 1;
        e.last_used = now;
        if let Some(t) = hints.idle_timeout {
            e.idle_timeout = e.idle_timeout.min(t);
        }
        if let Some(n) = hints.remaining_requests {
            let cap = e.requests.saturating_add(n);
            e.max_requests = Some(e.max_requests.map_or(cap, |m| m.min(cap)));
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
                ks.shared_avail.retain(|x| *x != id);
            }
            Some(r) => g.remove_entry(ks, id, r, fx),
            None if e.in_flight == 0 => {
                ks.shared_avail.retain(|x| *x != id);
                g.make_idle(key, ks, id, now, fx);
            }
            None => {
                if !ks.shared_avail.contains(&id) {
                    ks.shared_avail.push(id);
                }
            }
        }
        let (waiting, warm) = (!ks.waiters.is_empty(), ks.warm);
        if waiting {
            self.dispatch(key, now, fx);
            self.enforce_idle_caps(key, fx);
        } else {
            // The common case, without looking the key up again.
            while ks.idle.len() > ks.opts.max_free_sockets {
                let oldest = ks.idle[0];
                g.remove_entry(ks, oldest, CloseReason::OverMaxFree, fx);
            }
            if g.max_idle_total.is_some() {
                self.enforce_idle_caps(key, fx);
            }
        }
        if warm {
            self.refill(key, fx);
        }
        self.settle(key, now, fx);
    }

    /// A reserved slot was given back without a connection.
    pub(crate) fn slot_returned(
        &mut self,
        key: &K,
        failed: bool,
        now: Instant,
        fx: &mut Effects<K, C>,
    ) {
        if let Some(ks) = self.keys.get_mut(key) {
            ks.connecting -= 1;
            if failed {
                ks.counters.connect_errors += 1;
            } else {
                ks.counters.connects_cancelled += 1;
            }
        }
        self.dispatch(key, now, fx);
        self.settle(key, now, fx);
    }

    /// A reserved slot became connection `id`; it is checked out for the
    /// request that reserved it.
    pub(crate) fn complete(
        &mut self,
        key: &K,
        id: u64,
        generation: u64,
        conn: C,
        now: Instant,
        fx: &mut Effects<K, C>,
    ) -> Assignment<C> {
        let State { keys, g } = self;
        let ks = keys.get_mut(key).expect("a slot's key stays in the pool");
        ks.connecting -= 1;
        g.insert_entry(ks, id, conn, generation, now);
        let a = checkout(ks, id, now);
        // A shared connection can serve waiters at once.
        self.dispatch(key, now, fx);
        a
    }

    /// Closes the idle connections over `maxFreeSockets` (oldest first) and
    /// over the global idle cap (least recently used first).
    fn enforce_idle_caps(&mut self, key: &K, fx: &mut Effects<K, C>) {
        let State { keys, g } = self;
        let max_idle_total = g.max_idle_total;
        if let Some(ks) = keys.get_mut(key) {
            while ks.idle.len() > ks.opts.max_free_sockets {
                let oldest = ks.idle[0];
                g.remove_entry(ks, oldest, CloseReason::OverMaxFree, fx);
            }
        }
        if let Some(cap) = max_idle_total {
            while g.lru.len() > cap {
                let (&(_, id), k) = g.lru.iter().next().expect("non-empty");
                let k = k.clone();
                if let Some(ks) = keys.get_mut(&k) {
                    g.remove_entry(ks, id, CloseReason::IdleCap, fx);
                }
            }
        }
    }

    /// Plans pre-warm connects so `key` has `minFreeSockets` idle.
    pub(crate) fn refill(&mut self, key: &K, fx: &mut Effects<K, C>) {
        let State { keys, g } = self;
        let Some(ks) = keys.get_mut(key) else {
            return;
        };
        if !ks.warm || !ks.opts.keep_alive || !ks.waiters.is_empty() {
            return;
        }
        let have = ks.idle.len() + ks.warming;
        let want = ks.opts.min_free_sockets.saturating_sub(have);
        let room = ks.opts.max_sockets.saturating_sub(ks.total());
        for _ in 0..want.min(room) {
            ks.connecting += 1;
            ks.warming += 1;
            fx.connects.push((key.clone(), g.new_id(), ks.generation));
        }
    }

    /// A pre-warm connect finished.
    pub(crate) fn warm_done(
        &mut self,
        key: &K,
        id: u64,
        generation: u64,
        conn: Option<C>,
        now: Instant,
        fx: &mut Effects<K, C>,
    ) {
        let State { keys, g } = self;
        let Some(ks) = keys.get_mut(key) else {
            return;
        };
        ks.connecting -= 1;
        ks.warming -= 1;
        match conn {
            Some(c) => {
                g.insert_entry(ks, id, c, generation, now);
                ks.counters.prewarmed += 1;
                g.make_idle(key, ks, id, now, fx);
            }
            None => ks.counters.connect_errors += 1,
        }
        self.dispatch(key, now, fx);
        self.enforce_idle_caps(key, fx);
        self.settle(key, now, fx);
    }

    /// Closes idle connections whose deadline passed; returns the next deadline.
    pub(crate) fn expire(&mut self, now: Instant, fx: &mut Effects<K, C>) -> Option<Instant> {
        let mut touched = Vec::new();
        while let Some((&(deadline, id), _)) = self.g.timers.iter().next() {
            if deadline > now {
                break;
            }
            let key = self.g.timers[&(deadline, id)].clone();
            let State { keys, g } = self;
            match keys.get_mut(&key) {
                Some(ks) => {
                    let reason = match ks.entries.get(&id) {
                        Some(e) if e.lifetime_over(now, &ks.opts) => CloseReason::Lifetime,
                        _ => CloseReason::IdleTimeout,
                    };
                    g.remove_entry(ks, id, reason, fx);
                }
                None => {
                    g.timers.remove(&(deadline, id));
                }
            }
            if !touched.contains(&key) {
                touched.push(key);
            }
        }
        for key in touched {
            self.refill(&key, fx);
            self.settle(&key, now, fx);
        }
        self.retire(now);
        let next = self.g.next_deadline();
        self.g.reaper_at = next;
        next
    }

    /// The transport noticed connection `id` closed by the peer.
    pub(crate) fn conn_closed(&mut self, key: &K, id: u64, fx: &mut Effects<K, C>) {
        let State { keys, g } = self;
        let Some(ks) = keys.get_mut(key) else {
            return;
        };
        let Some(e) = ks.entries.get_mut(&id) else {
            return;
        };
        if e.idle_key.is_some() {
            ks.counters.stale += 1;
            g.remove_entry(ks, id, CloseReason::ServerClosed, fx);
            self.refill(key, fx);
            self.settle(key, Instant::now(), fx);
        } else {
            e.dead = true;
            ks.shared_avail.retain(|x| *x != id);
        }
    }

    /// Idle connection `id`'s transport signalled: if it is closed now
    /// ([`Poolable::poll_open`]), it is removed and counted stale. A
    /// connection in use is left to its user.
    pub(crate) fn conn_check(&mut self, key: &K, id: u64, fx: &mut Effects<K, C>) {
        let State { keys, g } = self;
        let Some(ks) = keys.get_mut(key) else {
            return;
        };
        let Some(e) = ks.entries.get_mut(&id) else {
            return;
        };
        if e.idle_key.is_none() || e.poll_open() {
            return;
        }
        ks.counters.stale += 1;
        g.remove_entry(ks, id, CloseReason::ServerClosed, fx);
        self.refill(key, fx);
        self.settle(key, Instant::now(), fx);
    }

    /// Connection `id` takes no new requests any more (an HTTP/2 GOAWAY):
    /// idle, it closes now; in use, when its last request ends; counted
    /// under `reason`, not as stale.
    pub(crate) fn conn_draining(
        &mut self,
        key: &K,
        id: u64,
        reason: CloseReason,
        fx: &mut Effects<K, C>,
    ) {
        let State { keys, g } = self;
        let Some(ks) = keys.get_mut(key) else {
            return;
        };
        let Some(e) = ks.entries.get_mut(&id) else {
            return;
        };
        if e.idle_key.is_some() {
            g.remove_entry(ks, id, reason, fx);
            self.refill(key, fx);
            self.settle(key, Instant::now(), fx);
        } else {
            e.doomed = e.doomed.or(Some(reason));
            ks.shared_avail.retain(|x| *x != id);
        }
    }

    /// Closes idle connections of `key` now and marks the rest to close on
    /// release. Returns (closed now, closing later).
    pub(crate) fn destroy(&mut self, key: &K, fx: &mut Effects<K, C>) -> (usize, usize) {
        let State { keys, g } = self;
        let Some(ks) = keys.get_mut(key) else {
            return (0, 0);
        };
        ks.generation += 1;
        ks.shared_avail.clear();
        let idle: Vec<u64> = ks.idle.clone();
        for id in &idle {
            g.remove_entry(ks, *id, CloseReason::Destroyed, fx);
        }
        g.settle(key, ks, Instant::now(), fx);
        (idle.len(), ks.entries.len() + ks.connecting)
    }
}
