//! What the pool needs to know about keys and connections, and nothing of HTTP.

use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;

/// A pool key: connections under one key are interchangeable.
///
/// Keys carry a label (a provider name) that groups them for per-label
/// options and for [`Pool::destroy_label`](crate::Pool::destroy_label).
pub trait PoolKey: Clone + Eq + Hash + Debug + Send + Sync + 'static {
    /// The group this key belongs to, e.g. `anthropic`.
    fn label(&self) -> &str;
}

/// A connection the pool can hold.
///
/// An exclusive connection (HTTP/1.1) carries one request at a time; a
/// shareable one (HTTP/2) carries up to [`max_concurrent`](Self::max_concurrent)
/// requests at once, each lease holding a handle made by [`share`](Self::share).
pub trait Poolable: Send + 'static {
    /// `false` once the peer closed the connection or it failed. Checked
    /// before every reuse.
    fn is_open(&self) -> bool;

    /// [`is_open`](Self::is_open) for a connection nobody drives: it may
    /// look at its transport for news (EOF, an error, unexpected bytes)
    /// first. The pool calls it, under its lock, when a connection goes
    /// idle, before an idle one is reused and from
    /// [`Pool::check_idle`](crate::Pool::check_idle); keep it cheap when
    /// nothing happened. Default: [`is_open`](Self::is_open).
    fn poll_open(&mut self) -> bool {
        self.is_open()
    }

    /// How many requests may use the connection at once. Default 1.
    fn max_concurrent(&self) -> usize {
        1
    }

    /// Another handle to the same connection, for shareable connections.
    /// Default `None` (exclusive).
    fn share(&self) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }
}

/// The boxed error a [`Connector`] returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The future a [`Connector`] returns.
pub type ConnectFuture<C> = Pin<Box<dyn Future<Output = Result<C, BoxError>> + Send>>;

/// Opens connections in the background, for `minFreeSockets` pre-warming.
pub trait Connector<K, C>: Send + Sync + 'static {
    /// Opens a connection for `key`; `id` is the pool's id for it (the same
    /// id a later [`Pool::connection_closed`](crate::Pool::connection_closed)
    /// call names).
    fn connect(&self, key: K, id: u64) -> ConnectFuture<C>;
}
