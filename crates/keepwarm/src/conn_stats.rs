//! Per-connection facts (protocol, open streams) and HTTP/2 counters per
//! key, kept beside the pool's own counters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::http2::ConnState;
use crate::key::Key;
use crate::protocol::ConnProtocol;

/// HTTP/2 counters of one key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct H2Counts {
    /// Streams opened (requests sent on HTTP/2 connections).
    pub streams: u64,
    /// Connections that received a GOAWAY (counted once per connection).
    pub goaways: u64,
    /// Streams the server refused without processing them: `REFUSED_STREAM`
    /// resets, streams above a GOAWAY's last stream id, and streams opened
    /// as a GOAWAY arrived.
    pub refused: u64,
    /// Refused streams sent again on another connection (also counted in
    /// the pool's `retries`).
    pub retried: u64,
    /// Idle connections closed because a PING went unanswered within the
    /// PING timeout (also counted as stale by the pool).
    pub ping_timeouts: u64,
}

/// One open connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnStats {
    /// The pool's id of the connection.
    pub id: u64,
    /// `h2` or `http1.1`.
    pub protocol: ConnProtocol,
    /// Streams open on it now (HTTP/2 only; `None` for HTTP/1.1).
    pub open_streams: Option<usize>,
}

/// One open connection as a dashboard shows it: the pool's facts (age,
/// idle time, requests carried, in flight) plus its wire protocol and open
/// HTTP/2 streams.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenConnection {
    /// The pool's view of it.
    pub pool: keepwarm_pool::ConnectionSnapshot,
    /// `h2` or `http1.1`; `None` only in the instant between the pool
    /// listing it and the transport registering it.
    pub protocol: Option<ConnProtocol>,
    /// Streams open on it now (HTTP/2 only).
    pub open_streams: Option<usize>,
}

struct Live {
    key: Key,
    protocol: ConnProtocol,
    state: Option<Arc<ConnState>>,
}

/// Open connections and HTTP/2 counters, per key.
#[derive(Default)]
pub(crate) struct Registry {
    conns: Mutex<HashMap<u64, Live>>,
    h2: Mutex<HashMap<Key, H2Counts>>,
}

impl Registry {
    /// Connection `id` of `key` is open (`state` for HTTP/2).
    pub(crate) fn opened(&self, key: &Key, id: u64, state: Option<Arc<ConnState>>) {
        let protocol = if state.is_some() {
            ConnProtocol::H2
        } else {
            ConnProtocol::Http1
        };
        let live = Live {
            key: key.clone(),
            protocol,
            state,
        };
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, live);
    }

    /// Connection `id` ended.
    pub(crate) fn closed(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// Updates `key`'s HTTP/2 counters.
    pub(crate) fn count(&self, key: &Key, f: impl FnOnce(&mut H2Counts)) {
        let mut m = self.h2.lock().unwrap_or_else(|e| e.into_inner());
        f(m.entry(key.clone()).or_default());
    }

    /// `key`'s HTTP/2 counters.
    pub(crate) fn h2_counts(&self) -> HashMap<Key, H2Counts> {
        self.h2.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Open connections by key, sorted by id.
    pub(crate) fn connections(&self) -> HashMap<Key, Vec<ConnStats>> {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: HashMap<Key, Vec<ConnStats>> = HashMap::new();
        for (id, live) in conns.iter() {
            out.entry(live.key.clone()).or_default().push(ConnStats {
                id: *id,
                protocol: live.protocol,
                open_streams: live.state.as_ref().map(|s| s.open_streams()),
            });
        }
        for v in out.values_mut() {
            v.sort_by_key(|c| c.id);
        }
        out
    }
}
