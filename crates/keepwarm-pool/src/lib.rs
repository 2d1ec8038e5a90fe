//! A generic keyed keep-alive connection pool. It knows nothing of HTTP.
//!
//! Per key ([`PoolKey`]) the pool keeps open connections ([`Poolable`]):
//! idle ones in a stack (newest reused first, so the oldest expire), a count
//! of connecting + active + idle connections capped by `maxSockets`, and a
//! FIFO queue of waiters. [`Pool::acquire`] gives either a [`Lease`] on an
//! open connection or a [`ConnectPermit`] to open one in a reserved slot.
//!
//! The rules it keeps:
//! - `maxSockets` is a hard cap on connecting + active + idle connections;
//!   past it requests wait in FIFO order, up to `acquireTimeout`.
//! - Idle connections expire by their own deadline (`freeSocketTimeout`, a
//!   server's `Keep-Alive: timeout` hint, `maxSocketLifetime`): one task
//!   sleeps until the earliest deadline, and sleeps without a timer when
//!   nothing is idle. There is no periodic scan.
//! - A connection is checked with [`Poolable::poll_open`] when it goes idle
//!   and before reuse; a dead one is dropped and counted stale. A transport
//!   that notices an idle connection closing says so with
//!   [`Pool::check_idle`] (or [`Pool::connection_closed`]).
//! - A lease returns its connection only through [`Lease::release`]; a drop
//!   closes it (the response was not read to the end).
//! - A dropped waiter, lease or permit gives back what it holds: counts
//!   return to zero when traffic stops. No lock is held across `.await`.
//! - Shareable connections (HTTP/2) carry up to
//!   [`Poolable::max_concurrent`] leases at once.
//!
//! ```
//! use keepwarm_pool::{Acquired, Pool, PoolConfig, PoolKey, Poolable};
//!
//! #[derive(Clone, Debug, PartialEq, Eq, Hash)]
//! struct Host(&'static str);
//! impl PoolKey for Host {
//!     fn label(&self) -> &str { self.0 }
//! }
//! struct Conn;
//! impl Poolable for Conn {
//!     fn is_open(&self) -> bool { true }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let pool: Pool<Host, Conn> = Pool::new(PoolConfig::default()).unwrap();
//! let key = Host("example");
//! let lease = match pool.acquire(&key).await.unwrap() {
//!     Acquired::Connect(permit) => permit.complete(Conn), // dial here
//!     Acquired::Ready(lease) => lease,
//! };
//! assert!(!lease.info().reused);
//! lease.release(); // response read to the end
//! let Acquired::Ready(again) = pool.acquire(&key).await.unwrap() else { panic!() };
//! assert!(again.info().reused);
//! # });
//! ```

mod clock;
mod closes;
mod connections;
mod counters;
mod deadlines;
mod dispatch;
mod entries;
mod expiry;
mod facts;
mod idle_index;
mod key_state;
mod keys;
mod lease;
mod options;
mod pool;
mod reaper;
mod reconfigure;
mod state;
mod traits;
mod waiter;

#[cfg(test)]
mod tests;

pub use connections::ConnectionSnapshot;
pub use counters::{
    reuse_rate, CloseReason, ClosedCounts, Counters, Histogram, KeySnapshot, LIFETIME_BUCKETS,
    WAIT_BUCKETS,
};
pub use facts::LeaseInfo;
pub use lease::{ConnectPermit, Lease};
pub use options::{OptionsError, PoolConfig, PoolOptions};
pub use pool::{AcquireError, Acquired, DestroyReport, Pool};
pub use traits::{BoxError, ConnectFuture, Connector, PoolKey, Poolable};
