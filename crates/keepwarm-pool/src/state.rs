//! The pool's shared state under one mutex: per-key connection tables, the
//! idle-deadline and LRU indexes, and the effects to run once the lock is gone.
//!
//! Everything here runs with the lock held and never awaits. Work that must
//! not happen under the lock (dropping connections, spawning connects, waking
//! the reaper) is collected in [`Effects`] and run by the caller afterwards.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::counters::{CloseReason, Counters, KeySnapshot};
use crate::facts::LeaseInfo;
use crate::options::PoolOptions;
use crate::traits::{PoolKey, Poolable};

/// Hashes the pool's own sequential connection ids: a multiply is enough
/// (they are not attacker-chosen), and much cheaper than SipHash.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Connections of one key by id.
pub(crate) type Entries<C> = HashMap<u64, Entry<C>, BuildHasherDefault<IdHasher>>;

/// One open connection (not counting ones still connecting).
pub(crate) struct Entry<C> {
    /// Exclusive: `Some` while idle, `None` while a lease holds it.
    /// Shared: always `Some` (the master handle).
    pub(crate) conn: Option<C>,
    pub(crate) capacity: usize,
    pub(crate) in_flight: usize,
    pub(crate) created: Instant,
    pub(crate) last_used: Instant,
    pub(crate) requests: u64,
    pub(crate) generation: u64,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_requests: Option<u64>,
    /// Set while the entry is in the idle list: its timer key.
    pub(crate) idle_key: Option<(Instant, u64)>,
    /// Set while in the LRU index.
    pub(crate) lru_key: Option<(Instant, u64)>,
    /// The peer closed it while a request was using it.
    pub(crate) dead: bool,
    /// A shared connection to close, for this reason, when its last request ends.
    pub(crate) doomed: Option<CloseReason>,
}

impl<C: Poolable> Entry<C> {
    pub(crate) fn shared(&self) -> bool {
        self.capacity > 1
    }

    pub(crate) fn lifetime_over(&self, now: Instant, opts: &PoolOptions) -> bool {
        opts.max_socket_lifetime
            .is_some_and(|l| now.saturating_duration_since(self.created) >= l)
    }

    pub(crate) fn requests_over(&self) -> bool {
        self.max_requests.is_some_and(|m| self.requests >= m)
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

/// A request waiting for a connection or a slot.
pub(crate) struct Waiter<C> {
    pub(crate) id: u64,
    pub(crate) tx: oneshot::Sender<Assignment<C>>,
}

/// What a waiter (or a direct acquire) is given. Plain data with no `Drop`
/// of its own, so it can be moved around under the lock; the receiver wraps
/// it into a `Lease` or `ConnectPermit`.
pub(crate) enum Assignment<C> {
    /// Use this open connection.
    Conn { id: u64, conn: C, info: LeaseInfo },
    /// A slot is reserved: open a new connection with this id.
    Slot { id: u64, generation: u64 },
}

/// Per-key state.
pub(crate) struct KeyState<C> {
    pub(crate) opts: Arc<PoolOptions>,
    pub(crate) entries: Entries<C>,
    /// Ids of idle entries, newest last (reused first).
    pub(crate) idle: Vec<u64>,
    /// Shared entries carrying requests that can take more.
    pub(crate) shared_avail: Vec<u64>,
    pub(crate) connecting: usize,
    pub(crate) warming: usize,
    pub(crate) waiters: VecDeque<Waiter<C>>,
    pub(crate) generation: u64,
    pub(crate) counters: Counters,
    /// Sum over entries of `created - epoch`, in nanoseconds, for the mean age.
    pub(crate) created_sum: u128,
    /// The key asked for pre-warmed connections (it was used or warmed).
    pub(crate) warm: bool,
    /// Requests one connection of this key carries at once, as the last
    /// connection established said; `Some(usize::MAX)` after
    /// [`Pool::expect_shared`](crate::Pool::expect_shared) until one is
    /// established; `None` when unknown.
    pub(crate) capacity_hint: Option<usize>,
    /// Set while the key is empty: its entry in `Globals::retire`.
    pub(crate) retire_key: Option<(Instant, u64)>,
}

impl<C: Poolable> KeyState<C> {
    pub(crate) fn new(opts: Arc<PoolOptions>) -> Self {
        KeyState {
            opts,
            entries: Entries::default(),
            idle: Vec::new(),
            shared_avail: Vec::new(),
            connecting: 0,
            warming: 0,
            waiters: VecDeque::new(),
            generation: 0,
            counters: Counters::default(),
            created_sum: 0,
            warm: false,
            capacity_hint: None,
            retire_key: None,
        }
    }

    /// Nothing open, connecting or waiting, and no pre-warm wish: the
    /// key's state can go once it stays so for `freeSocketTimeout`.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
            && self.connecting == 0
            && self.waiters.is_empty()
            && !(self.warm && self.opts.min_free_sockets > 0)
    }

    /// Connections counted against `maxSockets`.
    pub(crate) fn total(&self) -> usize {
        self.entries.len() + self.connecting
    }

    pub(crate) fn has_free_slot(&self) -> bool {
        self.total() < self.opts.max_sockets
    }

    /// Requests that the shared connections now connecting will take
    /// besides the ones that dial them (a pre-warm connect dials for no
    /// request). Zero for exclusive connections. A request that finds no free
    /// stream waits for these before it dials another connection.
    pub(crate) fn connecting_spare(&self) -> usize {
        match self.capacity_hint {
            Some(c) if c > 1 => {
                let dialing = self.connecting.saturating_sub(self.warming);
                dialing
                    .saturating_mul(c - 1)
                    .saturating_add(self.warming.saturating_mul(c))
            }
            _ => 0,
        }
    }

    pub(crate) fn snapshot(&self, now: Instant, epoch: Instant) -> KeySnapshot {
        let open = self.entries.len();
        let mean_age = if open == 0 {
            Duration::ZERO
        } else {
            let since_epoch = now.saturating_duration_since(epoch).as_nanos();
            let mean_created = self.created_sum / open as u128;
            Duration::from_nanos(since_epoch.saturating_sub(mean_created) as u64)
        };
        KeySnapshot {
            counters: self.counters,
            active: open - self.idle.len(),
            idle: self.idle.len(),
            connecting: self.connecting,
            waiters: self.waiters.len(),
            mean_age,
            max_sockets: self.opts.max_sockets,
        }
    }
}

/// Pool-wide indexes.
pub(crate) struct Globals<K> {
    /// Idle deadline → key, one per idle connection.
    pub(crate) timers: BTreeMap<(Instant, u64), K>,
    /// Idle since → key, one per idle connection (least recently used
    /// first); kept only when there is a global idle cap.
    pub(crate) lru: BTreeMap<(Instant, u64), K>,
    /// Idle connections across all keys.
    pub(crate) idle_count: usize,
    pub(crate) next_id: u64,
    pub(crate) next_waiter: u64,
    /// When the reaper will next wake on its own; `None` when it sleeps
    /// until notified.
    pub(crate) reaper_at: Option<Instant>,
    /// The global idle cap (`PoolConfig::max_idle_total`).
    pub(crate) max_idle_total: Option<usize>,
    /// Options set at run time per label ([`Pool::set_label_options`](crate::Pool::set_label_options)),
    /// in force over the `PoolConfig` for keys of that label.
    pub(crate) label_opts: HashMap<String, Arc<PoolOptions>>,
    pub(crate) epoch: Instant,
    /// When an empty key's state is dropped → key, one per empty key.
    pub(crate) retire: BTreeMap<(Instant, u64), K>,
    /// Counters of dropped keys, summed by label.
    pub(crate) retired: HashMap<String, Counters>,
    pub(crate) next_seq: u64,
}

/// All state behind the pool's mutex.
pub(crate) struct State<K, C> {
    pub(crate) keys: HashMap<K, KeyState<C>>,
    pub(crate) g: Globals<K>,
}

/// Work to do after the lock is released.
pub(crate) struct Effects<K, C> {
    /// Connections to drop (closing them).
    pub(crate) drop: Vec<C>,
    /// Pre-warm connects to spawn: key, connection id, generation.
    pub(crate) connects: Vec<(K, u64, u64)>,
    /// The reaper must re-plan its sleep.
    pub(crate) wake_reaper: bool,
}

impl<K, C> Default for Effects<K, C> {
    fn default() -> Self {
        Effects {
            drop: Vec::new(),
            connects: Vec::new(),
            wake_reaper: false,
        }
    }
}

impl<K: PoolKey> Globals<K> {
    /// The options for a new key with `label`: a run-time override, else the config's.
    pub(crate) fn options_for_label(
        &self,
        label: &str,
        config: &crate::PoolConfig,
    ) -> Arc<PoolOptions> {
        self.label_opts
            .get(label)
            .cloned()
            .unwrap_or_else(|| Arc::new(config.for_label(label).clone()))
    }

    pub(crate) fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The next deadline of the expiry task: an idle connection's or an
    /// empty key's.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let idle = self.timers.keys().next().map(|(t, _)| *t);
        let retire = self.retire.keys().next().map(|(t, _)| *t);
        match (idle, retire) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Arms the retirement of `key`'s state when it is empty (dropped after
    /// `freeSocketTimeout` unless used again), disarms it when it is not.
    pub(crate) fn settle<C: Poolable>(
        &mut self,
        key: &K,
        ks: &mut KeyState<C>,
        now: Instant,
        fx: &mut Effects<K, C>,
    ) {
        if !ks.is_empty() {
            if let Some(t) = ks.retire_key.take() {
                self.retire.remove(&t);
            }
            return;
        }
        if ks.retire_key.is_some() {
            return;
        }
        self.next_seq += 1;
        let at = now + ks.opts.free_socket_timeout;
        ks.retire_key = Some((at, self.next_seq));
        self.retire.insert((at, self.next_seq), key.clone());
        if self.reaper_at.is_none_or(|r| at < r) {
            fx.wake_reaper = true;
        }
    }

    /// Puts entry `id` of `key` in the idle list and arms its deadline.
    pub(crate) fn make_idle<C: Poolable>(
        &mut self,
        key: &K,
        ks: &mut KeyState<C>,
        id: u64,
        now: Instant,
        fx: &mut Effects<K, C>,
    ) {
        let Some(e) = ks.entries.get_mut(&id) else {
            return;
        };
        debug_assert_eq!(e.in_flight, 0);
        let mut deadline = e.last_used.max(now) + e.idle_timeout;
        if let Some(l) = ks.opts.max_socket_lifetime {
            deadline = deadline.min(e.created + l);
        }
        e.idle_key = Some((deadline, id));
        self.timers.insert((deadline, id), key.clone());
        if self.max_idle_total.is_some() {
            e.lru_key = Some((now, id));
            self.lru.insert((now, id), key.clone());
        }
        ks.idle.push(id);
        self.idle_count += 1;
        if self.reaper_at.is_none_or(|at| deadline < at) {
            fx.wake_reaper = true;
        }
    }

    /// Takes entry `id` out of the idle list and its indexes.
    pub(crate) fn unidle<C: Poolable>(&mut self, ks: &mut KeyState<C>, id: u64) {
        let Some(e) = ks.entries.get_mut(&id) else {
            return;
        };
        if let Some(t) = e.idle_key.take() {
            self.timers.remove(&t);
            self.idle_count -= 1;
            if let Some(pos) = ks.idle.iter().rposition(|x| *x == id) {
                ks.idle.remove(pos);
            }
        }
        if let Some(l) = e.lru_key.take() {
            self.lru.remove(&l);
        }
    }

    /// Removes entry `id`, counting the close; its connection goes to `fx.drop`.
    pub(crate) fn remove_entry<C: Poolable>(
        &mut self,
        ks: &mut KeyState<C>,
        id: u64,
        reason: CloseReason,
        fx: &mut Effects<K, C>,
    ) {
        self.unidle(ks, id);
        ks.shared_avail.retain(|x| *x != id);
        if let Some(e) = ks.entries.remove(&id) {
            ks.created_sum -= e.created.saturating_duration_since(self.epoch).as_nanos();
            ks.counters.closed.add(reason);
            ks.counters
                .lifetime_histogram
                .record(Instant::now().saturating_duration_since(e.created));
            if let Some(c) = e.conn {
                fx.drop.push(c);
            }
        }
    }

    /// Adds a newly established connection as entry `id`.
    pub(crate) fn insert_entry<C: Poolable>(
        &mut self,
        ks: &mut KeyState<C>,
        id: u64,
        conn: C,
        generation: u64,
        now: Instant,
    ) {
        let capacity = conn.max_concurrent().max(1);
        ks.capacity_hint = Some(capacity);
        ks.created_sum += now.saturating_duration_since(self.epoch).as_nanos();
        ks.counters.created += 1;
        ks.entries.insert(
            id,
            Entry {
                conn: Some(conn),
                capacity,
                in_flight: 0,
                created: now,
                last_used: now,
                requests: 0,
                generation,
                idle_timeout: ks.opts.free_socket_timeout,
                max_requests: ks.opts.max_requests_per_socket,
                idle_key: None,
                lru_key: None,
                dead: false,
                doomed: None,
            },
        );
    }
}
