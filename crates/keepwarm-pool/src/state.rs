//! The pool's shared state under one mutex: the table of keys with each
//! key's connections and queue, the pool-wide idle and retirement indexes,
//! and the effects to run once the lock is gone.
//!
//! Everything here runs with the lock held and never awaits. Work that must
//! not happen under the lock (dropping connections, spawning connects, waking
//! the reaper) is collected in [`Effects`] and run by the caller afterwards.

use std::collections::{HashMap, VecDeque};
use std::num::{NonZeroU64, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::clock::{Clock, Nanos};
use crate::counters::{CloseReason, Counters, KeySnapshot};
use crate::deadlines::Deadlines;
use crate::entries::{Entries, Entry};
use crate::facts::LeaseInfo;
use crate::idle_index::{Due, IdleIndex};
use crate::keys::{KeyAt, KeyIdx, KeyTable};
use crate::options::{PoolConfig, PoolOptions};
use crate::traits::Poolable;

/// Where a checked-out connection lives: its key's slot and its own slot
/// in that key's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    pub(crate) key: KeyAt,
    pub(crate) slot: u32,
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
    /// Use this open connection (in this slot of its key's table).
    Conn {
        id: u64,
        slot: u32,
        conn: C,
        info: LeaseInfo,
    },
    /// A slot is reserved: open a new connection with this id.
    Slot { id: u64, generation: u64 },
}

/// Per-key state. Laid out in declaration order: what every acquire and
/// release reads comes first (with the key's first connection inline in
/// `entries`), so with many keys one key's hot state is a few adjacent
/// cache lines rather than lines scattered over the heap.
#[repr(C)]
pub(crate) struct KeyState<C> {
    pub(crate) opts: Arc<PoolOptions>,
    pub(crate) generation: u64,
    pub(crate) connecting: usize,
    pub(crate) warming: usize,
    /// Set while the key is empty: the serial of its entry in
    /// `Globals::retire`.
    pub(crate) retire: Option<NonZeroU64>,
    /// Requests one connection of this key carries at once, as the last
    /// connection established said; `usize::MAX` after
    /// [`Pool::expect_shared`](crate::Pool::expect_shared) until one is
    /// established; `None` when unknown.
    pub(crate) capacity_hint: Option<NonZeroUsize>,
    /// The key asked for pre-warmed connections (it was used or warmed).
    pub(crate) warm: bool,
    pub(crate) waiters: VecDeque<Waiter<C>>,
    /// Slots of shared entries carrying requests that can take more.
    pub(crate) shared_avail: Vec<u32>,
    /// Open connections, and the idle ones among them (newest reused first).
    pub(crate) entries: Entries<C>,
    pub(crate) counters: Counters,
    /// Sum over entries of their creation in pool time, for the mean age.
    pub(crate) created_sum: u128,
}

impl<C> KeyState<C> {
    pub(crate) fn new(opts: Arc<PoolOptions>) -> Self {
        KeyState {
            opts,
            generation: 0,
            connecting: 0,
            warming: 0,
            retire: None,
            capacity_hint: None,
            warm: false,
            waiters: VecDeque::new(),
            shared_avail: Vec::new(),
            entries: Entries::default(),
            counters: Counters::default(),
            created_sum: 0,
        }
    }
}

impl<C: Poolable> KeyState<C> {
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
        match self.capacity_hint.map(NonZeroUsize::get) {
            Some(c) if c > 1 => {
                let dialing = self.connecting.saturating_sub(self.warming);
                dialing
                    .saturating_mul(c - 1)
                    .saturating_add(self.warming.saturating_mul(c))
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
            let mean_created = self.created_sum / open as u128;
            let mean_created = Nanos(u64::try_from(mean_created).unwrap_or(u64::MAX));
            now.since(mean_created)
        };
        KeySnapshot {
            counters: self.counters,
            active: open - idle,
            idle,
            connecting: self.connecting,
            waiters: self.waiters.len(),
            mean_age,
            max_sockets: self.opts.max_sockets,
        }
    }
}

/// The config's options as shared handles: keys of a label without a
/// run-time override share one `Arc` (and so one cache line).
struct ConfigOptions {
    default: Arc<PoolOptions>,
    per_label: HashMap<String, Arc<PoolOptions>>,
}

/// Pool-wide indexes and counters.
pub(crate) struct Globals {
    /// Every idle connection: deadlines and release order.
    pub(crate) idle: IdleIndex,
    /// Dead items piled up in `idle`: compacted once the operation that
    /// noticed is done ([`State::tidy`]).
    pub(crate) idle_bloated: bool,
    /// When an empty key's state is dropped: (key slot, serial of the
    /// arming), dead once the key's `retire` moved on.
    pub(crate) retire: Deadlines<(KeyIdx, u64)>,
    /// Keys with a retirement armed.
    pub(crate) retire_armed: usize,
    pub(crate) next_id: u64,
    pub(crate) next_waiter: u64,
    pub(crate) next_seq: u64,
    /// When the reaper will next wake on its own; `None` when it sleeps
    /// until notified.
    pub(crate) reaper_at: Option<Nanos>,
    /// The global idle cap (`PoolConfig::max_idle_total`).
    pub(crate) max_idle_total: Option<usize>,
    /// Options set at run time per label ([`Pool::set_label_options`](crate::Pool::set_label_options)),
    /// in force over the `PoolConfig` for keys of that label.
    pub(crate) label_opts: HashMap<String, Arc<PoolOptions>>,
    config_opts: ConfigOptions,
    pub(crate) clock: Clock,
    /// Counters of dropped keys, summed by label.
    pub(crate) retired: HashMap<String, Counters>,
}

/// All state behind the pool's mutex.
pub(crate) struct State<K, C> {
    pub(crate) keys: KeyTable<K, C>,
    pub(crate) g: Globals,
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

impl Globals {
    pub(crate) fn new(config: &PoolConfig, now: Instant) -> Self {
        Globals {
            idle: IdleIndex::new(config.max_idle_total.is_some()),
            idle_bloated: false,
            retire: Deadlines::default(),
            retire_armed: 0,
            next_id: 0,
            next_waiter: 0,
            next_seq: 0,
            reaper_at: None,
            max_idle_total: config.max_idle_total,
            label_opts: HashMap::new(),
            config_opts: ConfigOptions {
                default: Arc::new(config.default.clone()),
                per_label: config
                    .per_label
                    .iter()
                    .map(|(l, o)| (l.clone(), Arc::new(o.clone())))
                    .collect(),
            },
            clock: Clock::new(now),
            retired: HashMap::new(),
        }
    }

    /// The options for a new key with `label`: a run-time override, else the config's.
    pub(crate) fn options_for_label(&self, label: &str) -> Arc<PoolOptions> {
        self.label_opts
            .get(label)
            .or_else(|| self.config_opts.per_label.get(label))
            .unwrap_or(&self.config_opts.default)
            .clone()
    }

    pub(crate) fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Puts the entry in `slot` of key `key` in the idle list and arms its
    /// deadline.
    pub(crate) fn make_idle<K, C: Poolable>(
        &mut self,
        key: KeyIdx,
        ks: &mut KeyState<C>,
        slot: u32,
        now: Nanos,
        fx: &mut Effects<K, C>,
    ) {
        let Some(e) = ks.entries.get_mut(slot) else {
            return;
        };
        debug_assert_eq!(e.in_flight, 0);
        let mut deadline = e.last_used.max(now).after(e.idle_timeout);
        if let Some(l) = ks.opts.max_socket_lifetime {
            deadline = deadline.min(e.created.after(l));
        }
        let due = Due {
            key,
            slot,
            id: e.id,
        };
        let (mark, bloated) = self.idle.went_idle(due, e, deadline);
        ks.entries.link_idle(slot, mark);
        self.idle_bloated |= bloated;
        if self.reaper_at.is_none_or(|at| deadline < at) {
            fx.wake_reaper = true;
        }
    }

    /// Takes the entry in `slot` out of the idle list.
    pub(crate) fn unidle<C>(&mut self, ks: &mut KeyState<C>, slot: u32) {
        if ks.entries.unlink_idle(slot).is_some() {
            self.idle.went_busy();
        }
    }

    /// Removes the entry in `slot`, counting the close; its connection goes
    /// to `fx.drop`.
    pub(crate) fn remove_entry<K, C: Poolable>(
        &mut self,
        ks: &mut KeyState<C>,
        slot: u32,
        reason: CloseReason,
        now: Nanos,
        fx: &mut Effects<K, C>,
    ) {
        self.unidle(ks, slot);
        ks.shared_avail.retain(|x| *x != slot);
        if let Some(e) = ks.entries.remove(slot) {
            self.idle.removed(&e);
            ks.created_sum -= u128::from(e.created.0);
            ks.counters.closed.add(reason);
            ks.counters.lifetime_histogram.record(now.since(e.created));
            if let Some(c) = e.conn {
                fx.drop.push(c);
            }
        }
    }

    /// Adds a newly established connection `id`; its slot.
    pub(crate) fn insert_entry<C: Poolable>(
        &mut self,
        ks: &mut KeyState<C>,
        id: u64,
        conn: C,
        generation: u64,
        now: Nanos,
    ) -> u32 {
        let capacity = conn.max_concurrent().max(1);
        ks.capacity_hint = NonZeroUsize::new(capacity);
        ks.created_sum += u128::from(now.0);
        ks.counters.created += 1;
        ks.entries.insert(Entry::new(
            id,
            conn,
            capacity,
            now,
            generation,
            ks.opts.free_socket_timeout,
            ks.opts.max_requests_per_socket,
        ))
    }
}
