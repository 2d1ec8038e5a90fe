//! `Pool`: the public face of the keyed pool, the shared core behind it, and
//! the cancellation-safe wait for a slot.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use crate::counters::{CloseReason, Counters, KeySnapshot};
use crate::dispatch::{Reserved, Returned, Step};
use crate::facts::{Hints, Outcome};
use crate::keys::{KeyAt, KeyTable};
use crate::lease::{ConnectPermit, Lease};
use crate::options::{OptionsError, PoolConfig, PoolOptions};
use crate::state::{Assignment, Effects, Globals, Loc, State};
use crate::traits::{Connector, PoolKey, Poolable};

/// What [`Pool::acquire`] hands out.
#[derive(Debug)]
pub enum Acquired<K: PoolKey, C: Poolable> {
    /// An open connection, checked out.
    Ready(Lease<K, C>),
    /// A reserved slot: open a connection and
    /// [`complete`](ConnectPermit::complete) the permit.
    Connect(ConnectPermit<K, C>),
}

/// Why [`Pool::acquire`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcquireError {
    /// No slot freed within `acquireTimeout`.
    Exhausted {
        /// The key's label.
        label: String,
        /// The `maxSockets` in force.
        max_sockets: usize,
        /// Connections open or connecting when the wait ended.
        busy: usize,
        /// How long the request waited.
        waited: Duration,
    },
    /// The pool was dropped while the request waited.
    Closed,
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::Exhausted {
                label,
                max_sockets,
                busy,
                waited,
            } => write!(
                f,
                "pool exhausted for {label}: {busy} of {max_sockets} connections busy, waited {waited:?}"
            ),
            AcquireError::Closed => f.write_str("pool closed while waiting for a connection"),
        }
    }
}

impl std::error::Error for AcquireError {}

/// What [`Pool::destroy`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DestroyReport {
    /// Idle connections closed now.
    pub closed_idle: usize,
    /// Active or connecting connections that will close when their request ends.
    pub closing_active: usize,
}

/// The state shared by the pool handle, leases, permits and tasks.
pub(crate) struct Shared<K: PoolKey, C: Poolable> {
    state: Mutex<State<K, C>>,
    config: PoolConfig,
    wake: Arc<Notify>,
    reaper_started: AtomicBool,
    connector: Option<Arc<dyn Connector<K, C>>>,
    me: Weak<Shared<K, C>>,
}

impl<K: PoolKey, C: Poolable> crate::reaper::Expires for Shared<K, C> {
    fn expire(&self, now: Instant) -> Option<Instant> {
        self.with(|s, fx| s.expire(now, fx))
    }

    /// The expiry task ended or was dropped with its runtime: the next
    /// deadline starts a new one.
    fn reaper_gone(&self) {
        self.lock().g.reaper_at = None;
        self.reaper_started.store(false, Ordering::Release);
    }
}

impl<K: PoolKey, C: Poolable> Drop for Shared<K, C> {
    fn drop(&mut self) {
        // Let the reaper see the pool is gone and end.
        self.wake.notify_one();
    }
}

impl<K: PoolKey, C: Poolable> Shared<K, C> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<K, C>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs under-lock decisions' side effects, with the lock released.
    fn run(&self, fx: Effects<K, C>) {
        drop(fx.drop);
        for (key, id, generation) in fx.connects {
            self.spawn_prewarm(key, id, generation);
        }
        if fx.wake_reaper {
            if self.reaper_started.swap(true, Ordering::AcqRel) {
                self.wake.notify_one();
            } else if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let alive = crate::reaper::Alive(self.me.clone());
                rt.spawn(crate::reaper::run(alive, self.wake.clone()));
            } else {
                self.reaper_started.store(false, Ordering::Release);
            }
        }
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut State<K, C>, &mut Effects<K, C>) -> R) -> R {
        let mut fx = Effects::default();
        let r = {
            let mut state = self.lock();
            let r = f(&mut state, &mut fx);
            state.tidy();
            r
        };
        self.run(fx);
        r
    }

    fn spawn_prewarm(&self, key: K, id: u64, generation: u32) {
        let (Some(connector), Ok(rt)) = (
            self.connector.clone(),
            tokio::runtime::Handle::try_current(),
        ) else {
            // Planned only when both exist; give the slot back if not.
            self.with(|s, fx| s.warm_done(&key, id, generation, None, Instant::now(), fx));
            return;
        };
        let me = self.me.clone();
        rt.spawn(async move {
            let conn = connector.connect(key.clone(), id).await.ok();
            match me.upgrade() {
                Some(p) => {
                    p.with(|s, fx| s.warm_done(&key, id, generation, conn, Instant::now(), fx))
                }
                None => drop(conn),
            }
        });
    }

    fn wrap(&self, key: &K, at: KeyAt, a: Assignment<C>) -> Acquired<K, C> {
        match a {
            Assignment::Conn {
                id: _,
                slot,
                conn,
                info,
            } => Acquired::Ready(Lease {
                pool: self.me.clone(),
                key: key.clone(),
                at: Loc { key: at, slot },
                conn: Some(conn),
                info,
                hints: Hints::default(),
            }),
            Assignment::Slot { id, generation } => Acquired::Connect(ConnectPermit {
                pool: self.me.clone(),
                key: key.clone(),
                at,
                id,
                generation,
                done: false,
            }),
        }
    }

    pub(crate) fn release(
        &self,
        key: &K,
        at: Loc,
        id: u64,
        conn: C,
        outcome: Outcome,
        hints: Hints,
    ) {
        let back = Returned {
            id,
            at,
            conn,
            outcome,
            hints,
        };
        self.with(|s, fx| s.release(key, back, Instant::now(), fx));
    }

    pub(crate) fn slot_returned(&self, key: &K, at: KeyAt, failed: bool) {
        self.with(|s, fx| s.slot_returned(key, at, failed, Instant::now(), fx));
    }

    pub(crate) fn complete(&self, key: &K, r: Reserved, conn: C) -> Lease<K, C> {
        let (at, a) = self.with(|s, fx| s.complete(key, r, conn, Instant::now(), fx));
        match self.wrap(key, at, a) {
            Acquired::Ready(lease) => lease,
            Acquired::Connect(_) => unreachable!("complete checks out a connection"),
        }
    }
}

/// A keyed keep-alive pool. Cheap to clone; all clones share one pool.
///
/// See the crate docs for the rules it keeps.
pub struct Pool<K: PoolKey, C: Poolable> {
    pub(crate) shared: Arc<Shared<K, C>>,
}

impl<K: PoolKey, C: Poolable> Clone for Pool<K, C> {
    fn clone(&self) -> Self {
        Pool {
            shared: self.shared.clone(),
        }
    }
}

impl<K: PoolKey, C: Poolable> fmt::Debug for Pool<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl<K: PoolKey, C: Poolable> Pool<K, C> {
    /// A pool with `config`; `minFreeSockets` has no effect without a
    /// connector (see [`with_connector`](Self::with_connector)).
    pub fn new(config: PoolConfig) -> Result<Self, OptionsError> {
        Self::build(config, None)
    }

    /// A pool that can open connections itself, for `minFreeSockets`.
    pub fn with_connector(
        config: PoolConfig,
        connector: Arc<dyn Connector<K, C>>,
    ) -> Result<Self, OptionsError> {
        Self::build(config, Some(connector))
    }

    fn build(
        config: PoolConfig,
        connector: Option<Arc<dyn Connector<K, C>>>,
    ) -> Result<Self, OptionsError> {
        config.validate()?;
        let shared = Arc::new_cyclic(|me| Shared {
            state: Mutex::new(State {
                keys: KeyTable::default(),
                g: Globals::new(&config, Instant::now()),
            }),
            config,
            wake: Arc::new(Notify::new()),
            reaper_started: AtomicBool::new(false),
            connector,
            me: me.clone(),
        });
        Ok(Pool { shared })
    }

    /// The pool's configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.shared.config
    }

    /// The options `key` was configured with at build time (without the
    /// changes of [`set_label_options`](Self::set_label_options)).
    pub fn options_for(&self, key: &K) -> &PoolOptions {
        self.shared.config.for_label(key.label())
    }

    /// An idle connection for `key`, or a slot to open one, waiting in FIFO
    /// order at `maxSockets` for up to `acquireTimeout`.
    ///
    /// Cancellation-safe: dropping the future at any point gives back
    /// whatever it was assigned.
    pub async fn acquire(&self, key: &K) -> Result<Acquired<K, C>, AcquireError> {
        let shared = &self.shared;
        let can_spawn = shared.connector.is_some() && tokio::runtime::Handle::try_current().is_ok();
        let now = Instant::now();
        let (at, step) = shared.with(|s, fx| s.acquire(key, now, can_spawn, fx));
        let (rx, id) = match step {
            Step::Ready(a) => return Ok(shared.wrap(key, at, a)),
            Step::Wait(rx, id) => (rx, id),
        };
        let mut waiting = Waiting {
            shared,
            key,
            id,
            since: now,
            rx: Some(rx),
            timed_out: false,
        };
        // The key's options now (they may have changed since the build).
        let timeout = shared
            .lock()
            .keys
            .get(key)
            .map_or(self.options_for(key).acquire_timeout, |ks| {
                ks.opts.acquire_timeout
            });
        let rx = waiting.rx.as_mut().expect("set above");
        let got = match timeout {
            Some(t) => tokio::time::timeout(t, &mut *rx).await,
            None => Ok((&mut *rx).await),
        };
        let assigned = match got {
            Ok(Ok(a)) => Some(a),
            Ok(Err(_)) => {
                waiting.rx = None;
                return Err(AcquireError::Closed);
            }
            Err(_) => {
                // The deadline passed. Close the channel first: from here no
                // assignment can arrive, and one that landed on the same tick
                // is served rather than counted as a timeout and undone.
                rx.close();
                rx.try_recv().ok()
            }
        };
        if let Some(a) = assigned {
            waiting.rx = None;
            let waited = Instant::now().saturating_duration_since(now);
            if let Some(ks) = shared.lock().keys.get_mut(key) {
                ks.cold.counters.wait_time += waited;
                ks.cold.counters.wait_histogram.record(waited);
            }
            return Ok(shared.wrap(key, at, a));
        }
        waiting.timed_out = true;
        let waited = Instant::now().saturating_duration_since(now);
        let (busy, max_sockets) = shared
            .lock()
            .keys
            .get(key)
            .map_or((0, self.options_for(key).max_sockets), |ks| {
                (ks.total(), ks.opts.max_sockets)
            });
        Err(AcquireError::Exhausted {
            label: key.label().to_string(),
            max_sockets,
            busy,
            waited,
        })
    }

    /// Counts a request the caller retried on another connection.
    pub fn record_retry(&self, key: &K) {
        if let Some(ks) = self.shared.lock().keys.get_mut(key) {
            ks.cold.counters.retries += 1;
        }
    }

    /// Tells the pool the peer closed connection `id` (e.g. its connection
    /// task ended). An idle one is removed now and counted stale; one in use
    /// is closed when released.
    pub fn connection_closed(&self, key: &K, id: u64) {
        self.shared.with(|s, fx| s.conn_closed(key, id, fx));
    }

    /// The transport of connection `id` signalled while it may be idle
    /// (readable: EOF, an error or unexpected bytes). If it is idle and
    /// [`Poolable::poll_open`] says it closed, it is removed now and
    /// counted stale; otherwise nothing changes.
    pub fn check_idle(&self, key: &K, id: u64) {
        self.shared.with(|s, fx| s.conn_check(key, id, fx));
    }

    /// Connection `id` takes no new requests any more (the peer sent an
    /// HTTP/2 GOAWAY): closed now if idle, else when its last request ends,
    /// counted under `reason` (not as stale).
    pub fn connection_draining(&self, key: &K, id: u64, reason: CloseReason) {
        self.shared
            .with(|s, fx| s.conn_draining(key, id, reason, fx));
    }

    /// Says `key`'s connections may be shared (HTTP/2). Until one is
    /// established and tells its real capacity, requests that arrive while
    /// one is connecting wait for it instead of each dialing their own
    /// connection; after that, a request dials only when the open and
    /// connecting connections cannot carry it. No effect once any connection
    /// of `key` was established.
    pub fn expect_shared(&self, key: &K) {
        self.shared.with(|s, _| {
            let idx = s.key_slot(key);
            let ks = s.keys.state_mut(idx).expect("just found");
            if ks.cold.capacity_hint.is_none() {
                ks.cold.capacity_hint = Some(std::num::NonZeroUsize::MAX);
            }
        });
    }

    /// Marks `key` as wanting `minFreeSockets` pre-warmed connections and
    /// starts opening them; returns how many connects it started (0 without
    /// a connector or outside a tokio runtime). Each one's outcome reaches
    /// the connector.
    pub fn warm(&self, key: &K) -> usize {
        if self.shared.connector.is_none() || tokio::runtime::Handle::try_current().is_err() {
            return 0;
        }
        self.shared.with(|s, fx| {
            let idx = s.key_slot(key);
            s.keys.state_mut(idx).expect("just found").warm = true;
            s.refill(idx, fx);
            fx.connects.iter().filter(|(k, _, _)| k == key).count()
        })
    }

    /// Closes `key`'s idle connections now; active and connecting ones
    /// close when their request ends. No in-flight request fails.
    pub fn destroy(&self, key: &K) -> DestroyReport {
        self.destroy_where(|k| k == key)
    }

    /// [`destroy`](Self::destroy) for every key with this label.
    pub fn destroy_label(&self, label: &str) -> DestroyReport {
        self.destroy_where(|k| k.label() == label)
    }

    /// [`destroy`](Self::destroy) for every key `pred` accepts.
    pub fn destroy_where(&self, pred: impl Fn(&K) -> bool) -> DestroyReport {
        self.shared.with(|s, fx| {
            let mut report = DestroyReport::default();
            for idx in s.keys.select(pred) {
                let (now_closed, later) = s.destroy(idx, fx);
                report.closed_idle += now_closed;
                report.closing_active += later;
            }
            report
        })
    }

    /// Counters and gauges of every key the pool has seen.
    pub fn snapshot(&self) -> Vec<(K, KeySnapshot)> {
        let now = Instant::now();
        let s = self.shared.lock();
        let now = s.g.clock.at(now);
        s.keys
            .iter()
            .map(|(_, k, ks)| (k.clone(), ks.snapshot(now)))
            .collect()
    }

    /// Counters and gauges of one key.
    pub fn key_snapshot(&self, key: &K) -> Option<KeySnapshot> {
        let now = Instant::now();
        let s = self.shared.lock();
        s.keys.get(key).map(|ks| ks.snapshot(s.g.clock.at(now)))
    }

    /// Counters of keys whose state was dropped, summed by label. A key's
    /// state goes once it has had nothing open, connecting or waiting for
    /// `freeSocketTimeout`; its counters are added here, so a label's
    /// totals are its live keys' [`snapshot`](Self::snapshot)s plus this.
    pub fn retired(&self) -> Vec<(String, Counters)> {
        let s = self.shared.lock();
        s.g.retired.iter().map(|(l, c)| (l.clone(), *c)).collect()
    }

    /// Whether the pool holds state for `key` now.
    pub fn has_key(&self, key: &K) -> bool {
        self.shared.lock().keys.contains(key)
    }

    /// Keys the pool holds state for now.
    pub fn key_count(&self) -> usize {
        self.shared.lock().keys.len()
    }

    /// Idle connections across all keys.
    pub fn idle_total(&self) -> usize {
        self.shared.lock().g.idle.len()
    }
}

/// A queued request. Dropped before it was served (cancelled or timed out),
/// it leaves the queue and gives back anything assigned to it meanwhile.
struct Waiting<'a, K: PoolKey, C: Poolable> {
    shared: &'a Shared<K, C>,
    key: &'a K,
    id: u64,
    since: Instant,
    rx: Option<oneshot::Receiver<Assignment<C>>>,
    timed_out: bool,
}

impl<K: PoolKey, C: Poolable> Drop for Waiting<'_, K, C> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        // After close() no assignment can arrive; one that came before is
        // given back. A waiter has exactly one outcome: served (recorded by
        // `acquire`), timed out or cancelled (recorded here, once).
        rx.close();
        let late = rx.try_recv().ok();
        let now = Instant::now();
        let waited = now.saturating_duration_since(self.since);
        let (key, id, timed_out) = (self.key, self.id, self.timed_out);
        self.shared.with(|s, fx| {
            if let Some(ks) = s.keys.get_mut(key) {
                ks.remove_waiter(id);
                ks.cold.counters.wait_time += waited;
                if timed_out {
                    ks.cold.counters.acquire_timeouts += 1;
                    ks.cold.counters.wait_histogram.record(waited);
                }
            }
            if let Some(a) = late {
                s.undo(key, a, now, fx);
            }
            s.dispatch(key, now, fx);
            s.settle(key, now, fx);
        });
    }
}

#[cfg(test)]
impl<K: PoolKey, C: Poolable> Pool<K, C> {
    pub(crate) fn shared_reaper_at(&self) -> Option<Instant> {
        let s = self.shared.lock();
        s.g.reaper_at.map(|n| s.g.clock.instant(n))
    }

    /// The state lock itself, for tests that must act inside a race window.
    pub(crate) fn lock_state(&self) -> MutexGuard<'_, State<K, C>> {
        self.shared.lock()
    }
}
