//! What the transport and the user say about connections, under the lock:
//! one closed or is closing (by the peer, or a GOAWAY), one may have
//! closed while idle, and `destroy` (close the idle ones now, the rest on
//! release).

use tokio::time::Instant;

use crate::counters::CloseReason;
use crate::keys::KeyIdx;
use crate::state::{Effects, State};
use crate::traits::{PoolKey, Poolable};

/// What to do with connection `id` of a key.
enum Notice {
    /// The peer closed it: idle, remove it (stale); in use, mark it dead.
    Closed,
    /// Its transport signalled: idle and closed ([`Poolable::poll_open`]),
    /// remove it (stale); else leave it.
    Check,
    /// It takes no new requests: idle, close it now; in use, when its last
    /// request ends; counted under this reason.
    Draining(CloseReason),
}

impl<K: PoolKey, C: Poolable> State<K, C> {
    /// The transport noticed connection `id` closed by the peer.
    pub(crate) fn conn_closed(&mut self, key: &K, id: u64, fx: &mut Effects<K, C>) {
        self.notice(key, id, Notice::Closed, fx);
    }

    /// Idle connection `id`'s transport signalled: if it is closed now
    /// ([`Poolable::poll_open`]), it is removed and counted stale. A
    /// connection in use is left to its user.
    pub(crate) fn conn_check(&mut self, key: &K, id: u64, fx: &mut Effects<K, C>) {
        self.notice(key, id, Notice::Check, fx);
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
        self.notice(key, id, Notice::Draining(reason), fx);
    }

    fn notice(&mut self, key: &K, id: u64, what: Notice, fx: &mut Effects<K, C>) {
        let Some(s) = self.keys.find(key) else {
            return;
        };
        let State { keys, g } = self;
        let ks = keys.state_mut(s).expect("found");
        let Some(slot) = ks.entries.find(id, 0) else {
            return;
        };
        let e = ks.entries.get_mut(slot).expect("found");
        let idle = e.idle.is_some();
        let reason = match what {
            Notice::Closed if idle => {
                ks.cold.counters.stale += 1;
                CloseReason::ServerClosed
            }
            Notice::Closed => {
                e.dead = true;
                ks.shared_withdraw(slot);
                return;
            }
            Notice::Check if !idle || e.poll_open() => return,
            Notice::Check => {
                ks.cold.counters.stale += 1;
                CloseReason::ServerClosed
            }
            Notice::Draining(r) if idle => r,
            Notice::Draining(r) => {
                e.doomed = e.doomed.or(Some(r));
                ks.shared_withdraw(slot);
                return;
            }
        };
        let now = g.clock.at(Instant::now());
        g.remove_entry(ks, slot, reason, now, fx);
        self.refill(s, fx);
        self.settle_at(s, now, fx);
    }

    /// Closes idle connections of the key in slot `s` now and marks the
    /// rest to close on release. Returns (closed now, closing later).
    pub(crate) fn destroy(&mut self, s: KeyIdx, fx: &mut Effects<K, C>) -> (usize, usize) {
        let State { keys, g } = self;
        let Some(ks) = keys.state_mut(s) else {
            return (0, 0);
        };
        let now = g.clock.at(Instant::now());
        ks.generation = ks.generation.wrapping_add(1);
        ks.shared_clear();
        let idle = ks.entries.idle_slots();
        for slot in &idle {
            g.remove_entry(ks, *slot, CloseReason::Destroyed, now, fx);
        }
        let report = (idle.len(), ks.total());
        self.settle_at(s, now, fx);
        report
    }
}
