//! The pool's shared state under one mutex: the table of keys with each
//! key's connections and queue, the pool-wide idle and retirement indexes,
//! and the effects to run once the lock is gone.
//!
//! Everything here runs with the lock held and never awaits. Work that must
//! not happen under the lock (dropping connections, spawning connects, waking
//! the reaper) is collected in [`Effects`] and run by the caller afterwards.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;

use tokio::time::Instant;

use crate::clock::{Clock, Nanos, Span};
use crate::counters::{CloseReason, Counters};
use crate::deadlines::Deadlines;
use crate::entries::Entry;
use crate::idle_index::{Due, IdleIndex};
use crate::key_state::KeyState;
use crate::keys::{KeyAt, KeyIdx, KeyTable};
use crate::options::{PoolConfig, PoolOptions};
use crate::traits::Poolable;
pub(crate) use crate::waiter::{Assignment, Waiter};

/// Where a checked-out connection lives: its key's slot and its own slot
/// in that key's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    pub(crate) key: KeyAt,
    pub(crate) slot: u32,
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
    pub(crate) connects: Vec<(K, u64, u32)>,
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
            deadline = deadline.min(e.created.after(Span::of(l)));
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
        ks.shared_withdraw(slot);
        if let Some(e) = ks.entries.remove(slot) {
            self.idle.removed(&e);
            ks.count_closed(e.requests);
            ks.cold.created_sum -= u128::from(e.created.get());
            ks.cold.counters.closed.add(reason);
            ks.cold
                .counters
                .lifetime_histogram
                .record(now.since(e.created));
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
        generation: u32,
        now: Nanos,
    ) -> u32 {
        let capacity = conn.max_concurrent().max(1);
        ks.cold.capacity_hint = NonZeroUsize::new(capacity);
        let capacity = u32::try_from(capacity).unwrap_or(u32::MAX);
        ks.cold.created_sum += u128::from(now.get());
        ks.cold.counters.created += 1;
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
