//! What the HTTP/2 test server counted, and its runtime knobs.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Server-side counts of an [`H2Server`](crate::H2Server).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct H2Stats {
    /// HTTP/2 connections established (after TLS, if any).
    pub connections: u64,
    /// HTTP/1.1 connections served (TLS clients that picked `http/1.1`;
    /// only with [`http1_fallback`](crate::H2ServerBuilder::http1_fallback)).
    pub http1_connections: u64,
    /// Requests served on those HTTP/1.1 connections.
    pub http1_requests: u64,
    /// Connections open now.
    pub open_connections: u64,
    /// TLS handshakes completed (HTTP/2 and HTTP/1.1 connections).
    pub tls_handshakes: u64,
    /// Of those, resumed ones (session ticket or ID); the rest were full.
    pub tls_resumed: u64,
    /// Streams served (answered or cancelled; refused ones not included).
    pub streams: u64,
    /// Most streams open at once on one connection.
    pub max_concurrent_streams: u64,
    /// Streams open now, over all connections.
    pub open_streams: u64,
    /// GOAWAY frames sent to start a graceful shutdown (one per connection).
    pub goaways_sent: u64,
    /// Streams reset with `REFUSED_STREAM`.
    pub refused: u64,
    /// Streams the client reset (e.g. cancelled) before the response ended.
    pub cancelled: u64,
}

/// Counters behind [`H2Stats`].
#[derive(Debug, Default)]
pub(crate) struct H2Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) http1_connections: AtomicU64,
    pub(crate) http1_requests: AtomicU64,
    pub(crate) open_connections: AtomicU64,
    pub(crate) tls_handshakes: AtomicU64,
    pub(crate) tls_resumed: AtomicU64,
    pub(crate) streams: AtomicU64,
    pub(crate) max_concurrent_streams: AtomicU64,
    pub(crate) open_streams: AtomicU64,
    pub(crate) goaways_sent: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) cancelled: AtomicU64,
}

impl H2Counters {
    pub(crate) fn snapshot(&self) -> H2Stats {
        let g = |a: &AtomicU64| a.load(Ordering::SeqCst);
        H2Stats {
            connections: g(&self.connections),
            http1_connections: g(&self.http1_connections),
            http1_requests: g(&self.http1_requests),
            open_connections: g(&self.open_connections),
            tls_handshakes: g(&self.tls_handshakes),
            tls_resumed: g(&self.tls_resumed),
            streams: g(&self.streams),
            max_concurrent_streams: g(&self.max_concurrent_streams),
            open_streams: g(&self.open_streams),
            goaways_sent: g(&self.goaways_sent),
            refused: g(&self.refused),
            cancelled: g(&self.cancelled),
        }
    }
}

/// Knobs of an [`H2Server`](crate::H2Server), changeable while it runs.
#[derive(Debug, Default)]
pub(crate) struct H2Knobs {
    /// Delay before each response's headers.
    pub(crate) delay: Mutex<Duration>,
    /// Send a graceful GOAWAY after this many streams on a connection (0: never).
    pub(crate) goaway_after: AtomicU64,
    /// Refuse this many of the next streams.
    pub(crate) refuse_next: AtomicUsize,
}

impl H2Knobs {
    pub(crate) fn delay(&self) -> Duration {
        *self.delay.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one refusal, if any are left.
    pub(crate) fn take_refusal(&self) -> bool {
        self.refuse_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}
