//! Server-side counters (ground truth) and their snapshot type.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

/// One request as the server read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// Server-side connection number, 1-based in accept order.
    pub conn: u64,
    /// Position of the request on its connection, 1-based.
    pub seq_on_conn: u64,
    /// Request method, e.g. `GET`.
    pub method: String,
    /// Request target as sent, e.g. `/a?b=c`.
    pub path: String,
    /// Request headers in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Decoded request body (de-chunked if it was chunked).
    pub body: Bytes,
}

/// A snapshot of what really happened on the server side.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamStats {
    /// TCP connections accepted.
    pub accepted: u64,
    /// Connections currently open (connection tasks still running).
    pub open: u64,
    /// Most connections open at once.
    pub max_open: u64,
    /// Requests fully read (all of them, including dropped ones).
    pub requests: u64,
    /// Responses fully written (complete ones only).
    pub responses: u64,
    /// Full TLS handshakes completed (including HelloRetryRequest ones).
    pub tls_full: u64,
    /// Resumed TLS handshakes completed.
    pub tls_resumed: u64,
    /// TLS handshakes that failed.
    pub tls_failed: u64,
    /// Connections the server closed because of `close_idle_after` /
    /// `close_idle_random`, or because they sat idle past the `Keep-Alive:
    /// timeout` it advertised (`keep_alive_header`).
    pub idle_closes: u64,
    /// Connections closed because of `close_after_requests`.
    pub closed_after_requests: u64,
    /// Requests read and dropped without response (`drop_next_request_after`).
    pub dropped_requests: u64,
    /// Connections reset by the `reset` knob.
    pub resets: u64,
    /// Connections the client closed (EOF, or a read error such as a reset)
    /// while the server was waiting for or reading a request, or while a
    /// handler's [`Reply`](crate::Reply) was waiting out one of its delays.
    pub client_closes: u64,
    /// For each closed connection, in close order, how many requests it
    /// carried (every request read, answered or not).
    pub requests_per_connection: Vec<u64>,
    /// Every request read, in order.
    pub request_log: Vec<RequestRecord>,
}

/// Why a connection ended; decides which counter is bumped on close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// Ordinary close (Connection: close, HTTP/1.0, truncation, write error, 400).
    Normal,
    /// Idle timeout knob.
    Idle,
    /// `close_after_requests` knob.
    AfterRequests,
    /// `drop_next_request_after` knob.
    Dropped,
    /// `reset` knob.
    Reset,
    /// Client EOF / error while waiting for a request.
    Client,
    /// TLS handshake failed.
    TlsFailed,
}

/// Shared mutable counters.
#[derive(Debug, Default)]
pub(crate) struct StatsCell {
    inner: Mutex<UpstreamStats>,
}

impl StatsCell {
    fn lock(&self) -> MutexGuard<'_, UpstreamStats> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `f` to the counters under the lock.
    pub(crate) fn update(&self, f: impl FnOnce(&mut UpstreamStats)) {
        f(&mut self.lock());
    }

    /// Returns a copy of the counters.
    pub(crate) fn snapshot(&self) -> UpstreamStats {
        self.lock().clone()
    }
}

/// Tracks one open connection; records its close exactly once (on
/// [`ConnGuard::finish`] or, failing that, on drop, e.g. when aborted).
#[derive(Debug)]
pub(crate) struct ConnGuard {
    stats: Arc<StatsCell>,
    requests: u64,
    done: bool,
}

impl ConnGuard {
    /// Counts a newly accepted connection as open.
    pub(crate) fn open(stats: Arc<StatsCell>) -> Self {
        stats.update(|s| {
            s.accepted += 1;
            s.open += 1;
            s.max_open = s.max_open.max(s.open);
        });
        Self {
            stats,
            requests: 0,
            done: false,
        }
    }

    /// The shared counters.
    pub(crate) fn stats(&self) -> &StatsCell {
        &self.stats
    }

    /// Records one request read on this connection.
    pub(crate) fn request(&mut self, rec: RequestRecord) {
        self.requests += 1;
        self.stats.update(|s| {
            s.requests += 1;
            s.request_log.push(rec);
        });
    }

    /// Records one complete response.
    pub(crate) fn response(&self) {
        self.stats.update(|s| s.responses += 1);
    }

    /// Records the end of the connection (once).
    pub(crate) fn finish(&mut self, reason: CloseReason) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let n = self.requests;
        self.stats.update(|s| {
            s.open -= 1;
            s.requests_per_connection.push(n);
            match reason {
                CloseReason::Normal => {}
                CloseReason::Idle => s.idle_closes += 1,
                CloseReason::AfterRequests => s.closed_after_requests += 1,
                CloseReason::Dropped => s.dropped_requests += 1,
                CloseReason::Reset => s.resets += 1,
                CloseReason::Client => s.client_closes += 1,
                CloseReason::TlsFailed => s.tls_failed += 1,
            }
        });
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.finish(CloseReason::Normal);
    }
}
