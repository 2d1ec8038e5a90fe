//! A request waiting in a key's queue, and what it (or a direct acquire)
//! is given: plain data, so the key's state can hold waiters without
//! depending on the pool's state.

use tokio::sync::oneshot;

use crate::facts::LeaseInfo;

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
    Slot { id: u64, generation: u32 },
}
