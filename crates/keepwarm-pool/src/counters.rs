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
    /// Evicted as the least recently used idle connection by the global idle
    /// cap, `maxIdleTotal` (label `idle_cap`).
    IdleCap,
    /// Closed by `destroy`.
    Destroyed,
    /// `keepAlive` is off: one request per connection.
    KeepAliveOff,
    /// The server sent an HTTP/2 GOAWAY: no new streams; the connection
    /// closed when its last stream ended.
    GoAway,
}

impl CloseReason {
    /// Every reason, in a fixed order.
    pub const ALL: [CloseReason; 11] = [
        CloseReason::IdleTimeout,
        CloseReason::Lifetime,
        CloseReason::MaxRequests,
        CloseReason::ServerClosed,
        CloseReason::Error,
        CloseReason::Abandoned,
        CloseReason::OverMaxFree,
        CloseReason::IdleCap,
        CloseReason::Destroyed,
        CloseReason::KeepAliveOff,
        CloseReason::GoAway,
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
            CloseReason::IdleCap => "idle_cap",
            CloseReason::Destroyed => "destroyed",
            CloseReason::KeepAliveOff => "keep_alive_off",
            CloseReason::GoAway => "goaway",
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
pub struct ClosedCounts([u64; CloseReason::ALL.len()]);

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

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &ClosedCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }
}

/// Bucket bounds (seconds) of [`Counters::wait_histogram`].
pub const WAIT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Bucket bounds (seconds) of [`Counters::lifetime_histogram`].
pub const LIFETIME_BUCKETS: &[f64] = &[
    0.1, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// A fixed-bucket histogram of durations: cheap to record under the pool's
/// lock, copied whole into snapshots.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// `counts[i]`: observations `<= bounds[i]` and above the previous bound;
    /// the last slot counts those above every bound.
    counts: [u64; 16],
    sum: Duration,
    count: u64,
}

impl Histogram {
    /// An empty histogram with these upper bounds (at most 15, ascending).
    pub const fn new(bounds: &'static [f64]) -> Self {
        assert!(bounds.len() < 16);
        Histogram {
            bounds,
            counts: [0; 16],
            sum: Duration::ZERO,
            count: 0,
        }
    }

    /// Records one observation.
    pub fn record(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i] += 1;
        self.sum += d;
        self.count += 1;
    }

    /// Observations recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of all observations.
    pub fn sum(&self) -> Duration {
        self.sum
    }

    /// Mean observation; zero when empty. Exact for any count (the sum is
    /// divided as `u128` nanoseconds, never through a `u32`).
    pub fn mean(&self) -> Duration {
        mean(self.sum, self.count)
    }

    /// Adds `other`'s observations (same bounds) to these.
    pub fn merge(&mut self, other: &Histogram) {
        debug_assert_eq!(self.bounds, other.bounds);
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.sum += other.sum;
        self.count += other.count;
    }

    /// Cumulative `(upper bound, count <= bound)` pairs, Prometheus style,
    /// ending with `(+Inf, count)`.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut acc = 0;
        let mut out: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .enumerate()
            .map(|(i, b)| {
                acc += self.counts[i];
                (*b, acc)
            })
            .collect();
        out.push((f64::INFINITY, self.count));
        out
    }
}

/// Monotonic counters of one key.
#[derive(Clone, Copy, Debug, PartialEq)]
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
    /// Time requests waited for a slot, for those that waited and were
    /// served or timed out.
    pub wait_histogram: Histogram,
    /// Lifetimes of closed connections.
    pub lifetime_histogram: Histogram,
}

impl Counters {
    /// Adds `other` to these counters (for a total over several keys).
    pub fn merge(&mut self, other: &Counters) {
        self.requests += other.requests;
        self.reused += other.reused;
        self.created += other.created;
        self.connect_errors += other.connect_errors;
        self.connects_cancelled += other.connects_cancelled;
        self.closed.merge(&other.closed);
        self.stale += other.stale;
        self.retries += other.retries;
        self.waits += other.waits;
        self.wait_time += other.wait_time;
        self.acquire_timeouts += other.acquire_timeouts;
        self.prewarmed += other.prewarmed;
        self.wait_histogram.merge(&other.wait_histogram);
        self.lifetime_histogram.merge(&other.lifetime_histogram);
    }
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            requests: 0,
            reused: 0,
            created: 0,
            connect_errors: 0,
            connects_cancelled: 0,
            closed: ClosedCounts::default(),
            stale: 0,
            retries: 0,
            waits: 0,
            wait_time: Duration::ZERO,
            acquire_timeouts: 0,
            prewarmed: 0,
            wait_histogram: Histogram::new(WAIT_BUCKETS),
            lifetime_histogram: Histogram::new(LIFETIME_BUCKETS),
        }
    }
}

/// A point-in-time view of one key: counters plus current gauges.
#[derive(Clone, Debug, Default, PartialEq)]
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

    /// Adds `other` (another key of the same group) to this snapshot: counts
    /// and gauges summed, the mean age weighted by open connections,
    /// `max_sockets` summed (the group's total limit).
    pub fn merge(&mut self, other: &KeySnapshot) {
        let (a, b) = (
            (self.active + self.idle) as u128,
            (other.active + other.idle) as u128,
        );
        let total = self.mean_age.as_nanos() * a + other.mean_age.as_nanos() * b;
        if let Some(mean) = total.checked_div(a + b) {
            self.mean_age = nanos(mean);
        }
        self.counters.merge(&other.counters);
        self.active += other.active;
        self.idle += other.idle;
        self.connecting += other.connecting;
        self.waiters += other.waiters;
        self.max_sockets += other.max_sockets;
    }
}

/// `sum / count` computed in `u128` nanoseconds; zero when `count` is 0.
pub(crate) fn mean(sum: Duration, count: u64) -> Duration {
    if count == 0 {
        return Duration::ZERO;
    }
    nanos(sum.as_nanos() / u128::from(count))
}

/// A duration of `n` nanoseconds, saturating at `u64::MAX` nanoseconds.
fn nanos(n: u128) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))
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
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::new(&[0.01, 1.0]);
        h.record(Duration::from_millis(5));
        h.record(Duration::from_millis(10));
        h.record(Duration::from_millis(500));
        h.record(Duration::from_secs(7));
        assert_eq!(h.count(), 4);
        assert_eq!(
            h.cumulative(),
            vec![(0.01, 2), (1.0, 3), (f64::INFINITY, 4)]
        );
        assert_eq!(h.sum(), Duration::from_millis(7515));
        let mut twice = h;
        twice.merge(&h);
        assert_eq!(twice.count(), 8);
        assert_eq!(twice.cumulative()[1], (1.0, 6));
    }

    #[test]
    fn means_hold_past_u32_samples() {
        // 2^32 samples of 3 ns each: a `count as u32` divisor is 0 here.
        let n = u64::from(u32::MAX) + 1;
        let mut h = Histogram::new(WAIT_BUCKETS);
        h.count = n;
        h.sum = Duration::from_nanos(3 * n);
        assert_eq!(h.mean(), Duration::from_nanos(3));
        // One more sample: a u32 divisor of 1 would give the whole sum.
        h.count = n + 1;
        h.sum = Duration::from_nanos(3 * (n + 1));
        assert_eq!(h.mean(), Duration::from_nanos(3));
        assert_eq!(mean(Duration::from_secs(1), 0), Duration::ZERO);
    }

    #[test]
    fn merged_mean_age_is_weighted_by_open_connections() {
        let a = KeySnapshot {
            active: 1,
            mean_age: Duration::from_secs(10),
            ..KeySnapshot::default()
        };
        let b = KeySnapshot {
            idle: 3,
            mean_age: Duration::from_secs(2),
            ..KeySnapshot::default()
        };
        let mut m = a.clone();
        m.merge(&b);
        assert_eq!(m.mean_age, Duration::from_secs(4));
    }

    #[test]
    fn closed_counts_by_reason() {
        let mut c = ClosedCounts::default();
        c.add(CloseReason::Destroyed);
        c.add(CloseReason::Destroyed);
        c.add(CloseReason::IdleTimeout);
        assert_eq!(c.get(CloseReason::Destroyed), 2);
        assert_eq!(c.total(), 3);
        assert_eq!(CloseReason::ALL.len(), 11);
        for (i, r) in CloseReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
