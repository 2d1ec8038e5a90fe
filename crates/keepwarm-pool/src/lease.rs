//! `Lease` (a connection checked out for one request) and `ConnectPermit`
//! (a reserved slot to open a new connection in). Both give back what they
//! hold when dropped, through a `Weak` reference so they never keep a dropped
//! pool alive.

use std::sync::Weak;
use std::time::Duration;

use crate::counters::CloseReason;
use crate::dispatch::Reserved;
use crate::facts::{Hints, LeaseInfo, Outcome};
use crate::keys::KeyAt;
use crate::pool::Shared;
use crate::state::Loc;
use crate::traits::{PoolKey, Poolable};

/// A connection checked out for one request.
///
/// Call [`release`](Self::release) once the response was read to the end and
/// the protocol allows reuse; anything else ([`close`](Self::close), or a
/// plain drop) closes the connection.
pub struct Lease<K: PoolKey, C: Poolable> {
    pub(crate) pool: Weak<Shared<K, C>>,
    pub(crate) key: K,
    /// Where its connection lives in the pool.
    pub(crate) at: Loc,
    pub(crate) conn: Option<C>,
    pub(crate) info: LeaseInfo,
    pub(crate) hints: Hints,
}

impl<K: PoolKey, C: Poolable> std::fmt::Debug for Lease<K, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.key)
            .field("info", &self.info)
            .finish()
    }
}

impl<K: PoolKey, C: Poolable> Lease<K, C> {
    /// The connection.
    pub fn conn(&self) -> &C {
        self.conn
            .as_ref()
            .expect("a live lease holds its connection")
    }

    /// The connection, mutably.
    pub fn conn_mut(&mut self) -> &mut C {
        self.conn
            .as_mut()
            .expect("a live lease holds its connection")
    }

    /// Facts about this checkout.
    pub fn info(&self) -> &LeaseInfo {
        &self.info
    }

    /// The key it was checked out under.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// Caps this connection's idle time (the server's `Keep-Alive: timeout`
    /// less a margin). Only ever lowers the configured timeout.
    pub fn limit_idle_timeout(&mut self, d: Duration) {
        self.hints.idle_timeout = Some(self.hints.idle_timeout.map_or(d, |x| x.min(d)));
    }

    /// Allows at most `n` more requests on this connection after this one
    /// (the server's `Keep-Alive: max`).
    pub fn limit_remaining_requests(&mut self, n: u64) {
        self.hints.remaining_requests = Some(n);
    }

    /// Returns the connection for reuse (or closes it if the pool's rules
    /// say so: keep-alive off, lifetime, max requests, destroyed, peer gone).
    pub fn release(mut self) {
        self.finish(Outcome::Reusable);
    }

    /// Closes the connection, counted under `reason`.
    pub fn close(mut self, reason: CloseReason) {
        self.finish(Outcome::Close(reason));
    }

    fn finish(&mut self, outcome: Outcome) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        match self.pool.upgrade() {
            Some(pool) => pool.release(&self.key, self.at, self.info.id, conn, outcome, self.hints),
            None => drop(conn),
        }
    }
}

impl<K: PoolKey, C: Poolable> Drop for Lease<K, C> {
    fn drop(&mut self) {
        self.finish(Outcome::Close(CloseReason::Abandoned));
    }
}

/// A reserved slot under `maxSockets`: open a connection, then
/// [`complete`](Self::complete) it. Dropping the permit frees the slot.
pub struct ConnectPermit<K: PoolKey, C: Poolable> {
    pub(crate) pool: Weak<Shared<K, C>>,
    pub(crate) key: K,
    /// Where its key is in the pool.
    pub(crate) at: KeyAt,
    pub(crate) id: u64,
    pub(crate) generation: u32,
    pub(crate) done: bool,
}

impl<K: PoolKey, C: Poolable> std::fmt::Debug for ConnectPermit<K, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectPermit")
            .field("key", &self.key)
            .field("id", &self.id)
            .finish()
    }
}

impl<K: PoolKey, C: Poolable> ConnectPermit<K, C> {
    /// The id the new connection will have.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The key the slot is reserved under.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// Registers the new connection and checks it out for this request.
    /// If the pool is gone, the lease is detached (dropping it just closes
    /// the connection).
    pub fn complete(mut self, conn: C) -> Lease<K, C> {
        self.done = true;
        match self.pool.upgrade() {
            Some(pool) => {
                let r = Reserved {
                    at: self.at,
                    id: self.id,
                    generation: self.generation,
                };
                pool.complete(&self.key, r, conn)
            }
            None => Lease {
                pool: Weak::new(),
                key: self.key.clone(),
                at: Loc {
                    key: KeyAt::NONE,
                    slot: 0,
                },
                info: LeaseInfo {
                    id: self.id,
                    reused: false,
                    requests_before: 0,
                    idle_for: Duration::ZERO,
                    age: Duration::ZERO,
                },
                conn: Some(conn),
                hints: Hints::default(),
            },
        }
    }

    /// Frees the slot, counting a failed connect.
    pub fn fail(mut self) {
        self.done = true;
        if let Some(pool) = self.pool.upgrade() {
            pool.slot_returned(&self.key, self.at, true);
        }
    }
}

impl<K: PoolKey, C: Poolable> Drop for ConnectPermit<K, C> {
    fn drop(&mut self) {
        if !self.done {
            if let Some(pool) = self.pool.upgrade() {
                pool.slot_returned(&self.key, self.at, false);
            }
        }
    }
}
