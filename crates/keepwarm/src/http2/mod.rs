//! HTTP/2 to origins, on the `h2` crate: a multiplexed connection the pool
//! shares between requests up to the server's `SETTINGS_MAX_CONCURRENT_STREAMS`
//! (and at most `maxConcurrentStreams`), graceful GOAWAY handling, refused
//! streams retried on another connection, and PING liveness while idle.
//!
//! - [`conn`]: the handshake and the task that drives a connection.
//! - [`send`]: one exchange (a stream) and what its errors mean.
//! - [`body`]: the response body of a stream.

pub(crate) mod body;
pub(crate) mod conn;
pub(crate) mod send;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use keepwarm_pool::{CloseReason, Lease};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::info::Handshake;
use crate::key::Key;
use crate::pooled::Conn;

/// The concurrent-stream limit assumed when a server sets none (RFC 9113
/// recommends servers allow at least 100).
pub(crate) const UNLIMITED_STREAMS_AS: usize = 100;

/// How many times one request is sent again after the server refused its
/// stream (`REFUSED_STREAM`, or cut off by a GOAWAY), apart from
/// `maxRetries`: a refused stream was not processed, and under GOAWAY churn
/// (e.g. nginx's `keepalive_requests`) one request can be refused several
/// times in a row.
pub(crate) const REFUSED_RETRIES: u32 = 10;

/// What the connection's driver task and its handles share.
#[derive(Debug)]
pub(crate) struct ConnState {
    open: AtomicUsize,
    goaway: AtomicBool,
    closed: AtomicBool,
    epoch: Instant,
    /// Milliseconds after `epoch` when the last stream ended.
    last_active_ms: AtomicU64,
}

impl ConnState {
    pub(crate) fn new() -> ConnState {
        ConnState {
            open: AtomicUsize::new(0),
            goaway: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            epoch: Instant::now(),
            last_active_ms: AtomicU64::new(0),
        }
    }

    /// Streams open now.
    pub(crate) fn open_streams(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// The server sent a GOAWAY.
    pub(crate) fn going_away(&self) -> bool {
        self.goaway.load(Ordering::Acquire)
    }

    /// The driver task ended: the connection is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Records a GOAWAY; `true` for the caller that recorded it first
    /// (who counts it and tells the pool).
    pub(crate) fn mark_goaway(&self) -> bool {
        !self.goaway.swap(true, Ordering::AcqRel)
    }

    fn stream_opened(&self) {
        self.open.fetch_add(1, Ordering::AcqRel);
    }

    fn stream_ended(&self) {
        let ms = Instant::now()
            .saturating_duration_since(self.epoch)
            .as_millis() as u64;
        self.last_active_ms.store(ms, Ordering::Release);
        self.open.fetch_sub(1, Ordering::AcqRel);
    }

    /// How long no stream has been open; `None` while one is.
    fn idle_for(&self, now: Instant) -> Option<Duration> {
        if self.open_streams() > 0 {
            return None;
        }
        let last = self.epoch + Duration::from_millis(self.last_active_ms.load(Ordering::Acquire));
        Some(now.saturating_duration_since(last))
    }
}

/// One HTTP/2 connection as the pool holds it; every lease holds a clone.
/// When the last clone is gone the driver lets the connection close.
#[derive(Clone)]
pub(crate) struct H2Conn {
    pub(crate) send: SendRequest<Bytes>,
    pub(crate) state: Arc<ConnState>,
    pub(crate) handshake: Handshake,
    /// Streams it may carry at once.
    pub(crate) capacity: usize,
    /// Dropped with the last clone, which tells the driver.
    _life: Arc<oneshot::Sender<()>>,
}

impl H2Conn {
    /// Open for new streams: not closed, no GOAWAY.
    pub(crate) fn is_open(&self) -> bool {
        !self.state.is_closed() && !self.state.going_away()
    }
}

/// One stream's hold on its connection: counts it open, and gives the
/// lease back when dropped — released, never closed, since ending one
/// stream (even by a reset) leaves the connection usable.
pub(crate) struct StreamGuard {
    lease: Option<Lease<Key, Conn>>,
    state: Arc<ConnState>,
}

impl StreamGuard {
    pub(crate) fn new(lease: Lease<Key, Conn>, state: Arc<ConnState>) -> StreamGuard {
        state.stream_opened();
        StreamGuard {
            lease: Some(lease),
            state,
        }
    }

    /// The lease, while the stream runs.
    pub(crate) fn lease(&self) -> Option<&Lease<Key, Conn>> {
        self.lease.as_ref()
    }

    /// The stream ended: give the connection back now.
    pub(crate) fn done(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        self.state.stream_ended();
        if self.state.going_away() {
            lease.close(CloseReason::GoAway);
        } else {
            lease.release();
        }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.done();
    }
}
