//! Deadlines under the lock: closing idle connections whose deadline
//! passed, arming and running the retirement of keys that stay empty, and
//! the next deadline the expiry task sleeps until.

use std::num::NonZeroU64;

use tokio::time::Instant;

use crate::clock::{Nanos, Span};
use crate::counters::CloseReason;
use crate::idle_index::Budget;
use crate::keys::{KeyIdx, KeyTable};
use crate::state::{Effects, State};
use crate::traits::{PoolKey, Poolable};

/// Whether retirement `serial` of the key in slot `s` is still armed.
fn armed<K: PoolKey, C>(keys: &KeyTable<K, C>, (s, serial): (KeyIdx, u64)) -> bool {
    keys.state(s)
        .is_some_and(|ks| ks.retire_serial().map(NonZeroU64::get) == Some(serial))
}

impl<K: PoolKey, C: Poolable> State<K, C> {
    /// Arms or disarms the retirement of `key`'s state (see
    /// [`settle_at`](Self::settle_at)).
    pub(crate) fn settle(&mut self, key: &K, now: Instant, fx: &mut Effects<K, C>) {
        let now = self.g.clock.at(now);
        if let Some(s) = self.keys.find(key) {
            self.settle_at(s, now, fx);
        }
    }

    /// Arms the retirement of the key in slot `s` when it is empty (dropped
    /// after `freeSocketTimeout` unless used again), disarms it when it is
    /// not.
    pub(crate) fn settle_at(&mut self, s: KeyIdx, now: Nanos, fx: &mut Effects<K, C>) {
        let State { keys, g } = self;
        let Some(ks) = keys.state_mut(s) else {
            return;
        };
        if !ks.is_empty() {
            if ks.retiring() {
                ks.set_retire(None);
                g.retire_armed -= 1;
            }
            return;
        }
        if ks.retiring() {
            return;
        }
        g.next_seq += 1;
        let at = now.after(Span::of(ks.opts.free_socket_timeout));
        ks.set_retire(NonZeroU64::new(g.next_seq));
        g.retire_armed += 1;
        g.retire.push(at, (s, g.next_seq));
        g.retire.compact(g.retire_armed, |_, x| armed(keys, x));
        if g.reaper_at.is_none_or(|r| at < r) {
            fx.wake_reaper = true;
        }
    }

    /// Drops the state of keys that stayed empty until their retirement
    /// deadline, adding their counters to their label's retired totals.
    fn retire(&mut self, now: Nanos) {
        let State { keys, g } = self;
        let mut dropped = false;
        while let Some((_, (s, _))) = g.retire.pop_due(now, |_, x| armed(keys, x)) {
            g.retire_armed -= 1;
            let empty = keys.state_mut(s).is_some_and(|ks| {
                ks.set_retire(None);
                ks.is_empty()
            });
            if let Some((key, ks)) = empty.then(|| keys.remove(s)).flatten() {
                g.retired
                    .entry(key.label().to_string())
                    .or_default()
                    .merge(&ks.counters());
                dropped = true;
            }
        }
        if dropped {
            keys.trim();
        }
    }

    /// The earliest deadline: an idle connection's or an empty key's (or
    /// an earlier time, when `budget` ran out before the idle one was
    /// found).
    fn next_deadline(&mut self, budget: &mut Budget) -> Option<Nanos> {
        let State { keys, g } = self;
        let idle = g.idle.next_deadline(keys, budget).map(|(at, _)| at);
        let retire = g.retire.next(|_, x| armed(keys, x));
        match (idle, retire) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Housekeeping after an operation: compacts the idle index if dead
    /// items piled up in it.
    pub(crate) fn tidy(&mut self) {
        let State { keys, g } = self;
        if std::mem::take(&mut g.idle_bloated) {
            g.idle.compact(keys);
        }
    }

    /// Closes idle connections whose deadline passed and drops keys empty
    /// long enough; returns the next deadline.
    pub(crate) fn expire(&mut self, now: Instant, fx: &mut Effects<K, C>) -> Option<Instant> {
        let now = self.g.clock.at(now);
        let State { keys, g } = self;
        let mut budget = Budget::per_pass();
        let mut touched = Vec::new();
        while let Some(due) = g.idle.pop_due(now, keys, &mut budget) {
            let ks = keys.state_mut(due.key).expect("a due connection's key");
            let over = ks
                .entries
                .get(due.slot)
                .is_some_and(|e| e.lifetime_over(now, &ks.opts));
            let reason = if over {
                CloseReason::Lifetime
            } else {
                CloseReason::IdleTimeout
            };
            g.remove_entry(ks, due.slot, reason, now, fx);
            touched.push(due.key);
        }
        touched.sort_unstable();
        touched.dedup();
        for s in touched {
            self.refill(s, fx);
            self.settle_at(s, now, fx);
        }
        self.retire(now);
        let next = self.next_deadline(&mut budget);
        self.g.reaper_at = next;
        next.map(|n| self.g.clock.instant(n))
    }
}
