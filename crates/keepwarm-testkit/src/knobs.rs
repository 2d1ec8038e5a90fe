//! Fault knobs that tests can change while an [`Upstream`](crate::Upstream) runs.
//!
//! Every connection re-reads the knobs for each request and for each idle
//! wait, so flipping a knob takes effect on the next request of every open
//! connection.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Values of all fault knobs. Every field defaults to off / `None`.
///
/// When several knobs apply to one request, they are checked in this order:
/// `reset`, `drop_next_request_after`, `header_delay`, then the response is
/// shaped by `http10`, `truncate_body`, `chunk_delay` (in that precedence),
/// `keep_alive_header` and `connection_close`. With a
/// [`handler`](crate::UpstreamBuilder::handler), `http10` and `chunk_delay`
/// are ignored and `truncate_body` cuts the reply's body in half.
#[derive(Clone, Debug, Default)]
pub struct KnobSettings {
    /// Close a keep-alive connection (FIN) after it has been idle this long.
    /// Default `None` (never).
    pub close_idle_after: Option<Duration>,
    /// Close a keep-alive connection (FIN) after an idle delay chosen
    /// uniformly in `[lo, hi]`, drawn anew for every idle period. If both this
    /// and `close_idle_after` are set, the shorter delay wins. Default `None`.
    pub close_idle_random: Option<(Duration, Duration)>,
    /// After answering N requests on a connection, close it silently (FIN,
    /// no `Connection: close` header). Checked before waiting for the next
    /// request, so `Some(0)` closes right after accept. Default `None`.
    pub close_after_requests: Option<u64>,
    /// After answering N requests on a connection, read request N+1 fully and
    /// close (FIN) without responding; counted in `dropped_requests`.
    /// Default `None`.
    pub drop_next_request_after: Option<u64>,
    /// Answer with `Connection: close` and close after the response.
    /// Default `false`.
    pub connection_close: bool,
    /// Send `Keep-Alive: timeout=N` (`(N, None)`) or
    /// `Keep-Alive: timeout=N, max=M` (`(N, Some(M))`) on responses that keep
    /// the connection open, and keep the promise: after a response, a
    /// connection idle for N seconds is closed (FIN), counted in
    /// `idle_closes`. Default `None`.
    pub keep_alive_header: Option<(u64, Option<u64>)>,
    /// Wait this long before writing the response headers. Default `None`.
    pub header_delay: Option<Duration>,
    /// Hold each response (after `header_delay`) until this many are held
    /// at once, then send them all: rounds of concurrent requests without
    /// timing. Default `None` (no barrier).
    pub hold_responses: Option<usize>,
    /// Declare the `Content-Length` of the full body, send only the first
    /// half, then close. The response is not counted in `responses`.
    /// Default `false`.
    pub truncate_body: bool,
    /// On a request, reset the connection (SO_LINGER 0, then drop) without
    /// responding. Default `false`.
    pub reset: bool,
    /// Answer `HTTP/1.0 200 OK` without keep-alive and close afterwards.
    /// Default `false`.
    pub http10: bool,
    /// Send the body with chunked transfer-encoding, split into up to 4
    /// non-empty chunks with this delay between them. Default `None`
    /// (`Content-Length` body in one write).
    pub chunk_delay: Option<Duration>,
}

impl KnobSettings {
    /// The idle timeout to use for the next idle wait, if any (draws the
    /// random delay for `close_idle_random`).
    /// `answered`: responses already sent on the connection (an advertised
    /// `Keep-Alive: timeout` applies only after one).
    pub(crate) fn idle_timeout(&self, answered: u64) -> Option<Duration> {
        let advertised = self
            .keep_alive_header
            .filter(|_| answered > 0 && !self.http10)
            .map(|(secs, _)| Duration::from_secs(secs));
        let random = self.close_idle_random.map(|(lo, hi)| {
            let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
            if lo == hi {
                lo
            } else {
                rand::random_range(lo..=hi)
            }
        });
        [self.close_idle_after, random, advertised]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Shared, runtime-changeable fault knobs of one [`Upstream`](crate::Upstream).
///
/// A `std::sync::Mutex<KnobSettings>` inside; the lock is never held across
/// an `.await`.
#[derive(Debug, Default)]
pub struct Knobs {
    inner: Mutex<KnobSettings>,
}

impl Knobs {
    /// Creates knobs with the given initial values.
    pub(crate) fn new(k: KnobSettings) -> Self {
        Self {
            inner: Mutex::new(k),
        }
    }

    fn lock(&self) -> MutexGuard<'_, KnobSettings> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns a copy of the current values.
    pub fn get(&self) -> KnobSettings {
        self.lock().clone()
    }

    /// Replaces all values.
    pub fn set(&self, k: KnobSettings) {
        *self.lock() = k;
    }

    /// Changes some values in place.
    pub fn update(&self, f: impl FnOnce(&mut KnobSettings)) {
        f(&mut self.lock());
    }
}
