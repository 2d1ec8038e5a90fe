//! Counters kept per key, close reasons, and the snapshot handed to callers.

use std::fmt;
use std::time::Duration;

/// Why a connection was closed by (or noticed closed by) the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Idle longer than `freeSocketTimeout` (or the server's `Keep-Alive: timeout`).
    IdleTimeout,
    /// Older than `maxSocketLifetime`.
    Lifetime,
    /// Carried `maxRequestsPerSocket` requests (or the server's `Keep-Alive: max`).
    MaxRequests,
    /// The server closed it, or said `Connection: close`.
    ServerClosed,
    /// A transport or protocol error.
    Error,
    /// The request was dropped before its response was read to the end.
    Abandoned,
    /// Released while `maxFreeSockets` connections were already idle.
    OverMaxFree,
    /// Evicted as the least recently used idle connection by the global idle cap.
    GlobalCap,
    /// Closed by `destroy`.
    Destroyed,
    /// `keepAlive` is off: one request per connection.
    KeepAliveOff,
}

impl CloseReason {
    /// Every reason, in a fixed order.
    pub const ALL: [CloseReason; 10] = [
        CloseReason::IdleTimeout,
        CloseReason::Lifetime,
        CloseReason::MaxRequests,
        CloseReason::ServerClosed,
        CloseReason::Error,
        CloseReason::Abandoned,
        CloseReason::OverMaxFree,
        CloseReason::GlobalCap,
        CloseReason::Destroyed,
        CloseReason::KeepAliveOff,
    ];

    /// A snake_case name, for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::Lifetime => "lifetime",
            CloseReason::MaxRequests => "max_requests",
            CloseReason::ServerClosed => "server_closed",
            CloseReason::Error => "error",
            CloseReason::Abandoned => "abandoned",
            CloseReason::OverMaxFree => "over_max_free",
            CloseReason::GlobalCap => "global_cap",
            CloseReason::Destroyed => "destroyed",
            CloseReason::KeepAliveOff => "keep_alive_off",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Connections closed, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClosedCounts([u64; 10]);

impl ClosedCounts {
    /// Closed for `reason`.
    pub fn get(&self, reason: CloseReason) -> u64 {
        self.0[reason.index()]
    }

    /// All closes.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// `(reason, count)` for every reason.
    pub fn iter(&self) -> impl Iterator<Item = (CloseReason, u64)> + '_ {
        CloseReason::ALL.iter().map(|r| (*r, self.get(*r)))
    }

    pub(crate) fn add(&mut self, reason: CloseReason) {
        self.0[reason.index()] += 1;
    }
}

/// Monotonic counters of one key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests dispatched on a connection (leases handed out).
    pub requests: u64,
    /// Of those, the ones on a connection that had already carried a request.
    pub reused: u64,
    /// Connections established.
    pub created: u64,
    /// Connection attempts that failed.
    pub connect_errors: u64,
    /// Connection attempts abandoned because their request was cancelled
    /// (the server may have accepted the TCP connection).
    pub connects_cancelled: u64,
    /// Connections closed, by reason.
    pub closed: ClosedCounts,
    /// Idle connections found dead (closed by the peer) before reuse.
    pub stale: u64,
    /// Requests retried on another connection (reported by the client).
    pub retries: u64,
    /// Requests that had to wait for a slot.
    pub waits: u64,
    /// Total time requests spent waiting for a slot.
    pub wait_time: Duration,
    /// Requests that gave up waiting (`acquireTimeout`).
    pub acquire_timeouts: u64,
    /// Pre-warmed connections opened for `minFreeSockets`.
    pub prewarmed: u64,
}

/// A point-in-time view of one key: counters plus current gauges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeySnapshot {
    /// Monotonic counters.
    pub counters: Counters,
    /// Connections carrying a request now.
    pub active: usize,
    /// Connections open and free.
    pub idle: usize,
    /// Connections being established.
    pub connecting: usize,
    /// Requests waiting for a slot.
    pub waiters: usize,
    /// Mean age of open (active + idle) connections; zero when none.
    pub mean_age: Duration,
    /// The `maxSockets` in force for this key.
    pub max_sockets: usize,
}

impl KeySnapshot {
    /// `100 × reused / requests`, one decimal; 0 when no requests.
    pub fn reuse_rate(&self) -> f64 {
        reuse_rate(self.counters.reused, self.counters.requests)
    }
}

/// `100 × reused / requests` rounded to one decimal; 0 when `requests` is 0.
pub fn reuse_rate(reused: u64, requests: u64) -> f64 {
    if requests == 0 {
        return 0.0;
    }
    (1000.0 * reused as f64 / requests as f64).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_rate_rounds_to_one_decimal() {
        assert_eq!(reuse_rate(0, 0), 0.0);
        assert_eq!(reuse_rate(99, 100), 99.0);
        assert_eq!(reuse_rate(1420, 1523), 93.2);
        assert_eq!(reuse_rate(2, 3), 66.7);
    }

    #[test]
    fn closed_counts_by_reason() {
        let mut c = ClosedCounts::default();
        c.add(CloseReason::Destroyed);
        c.add(CloseReason::Destroyed);
        c.add(CloseReason::IdleTimeout);
        assert_eq!(c.get(CloseReason::Destroyed), 2);
        assert_eq!(c.total(), 3);
        assert_eq!(CloseReason::ALL.len(), 10);
        for (i, r) in CloseReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
