//! Opening an HTTP/2 connection and the task that drives it: it learns the
//! server's stream limit (the SETTINGS before the answer to a first PING),
//! notices a GOAWAY, PINGs after `keepAliveMsecs` without streams and drops
//! the connection when no answer comes within the PING timeout.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use h2::client::{Connection, SendRequest};
use h2::{Ping, PingPong};
use keepwarm_pool::CloseReason;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use super::{ConnState, H2Conn, UNLIMITED_STREAMS_AS};
use crate::client::ClientInner;
use crate::error::{Error, Kind};
use crate::info::Handshake;
use crate::key::Key;

/// Stream receive window (default 64 KiB is slow for large responses).
const STREAM_WINDOW: u32 = 1 << 20;
/// Connection receive window.
const CONN_WINDOW: u32 = 4 << 20;

/// Runs the HTTP/2 handshake on `io` for connection `id` of `key`, spawns
/// its driver and waits until the server's SETTINGS are known.
pub(crate) async fn handshake<T>(
    client: &Weak<ClientInner>,
    key: &Key,
    id: u64,
    io: T,
    kind: Handshake,
) -> Result<H2Conn, Error>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let inner = client
        .upgrade()
        .ok_or_else(|| Error::builder("the client was dropped"))?;
    let failed = |what: &str, e: h2::Error| {
        Error::new(
            Kind::Connect,
            format!("HTTP/2 {what} with {key} failed"),
            Some(Box::new(e)),
        )
    };
    let (send, mut conn) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONN_WINDOW)
        .enable_push(false)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(|e| failed("handshake", e))?;
    let mut ping = conn
        .ping_pong()
        .ok_or_else(|| Error::new(Kind::Connect, "HTTP/2 PING handle taken", None))?;
    ping.send_ping(Ping::opaque())
        .map_err(|e| failed("first PING", e))?;
    let state = Arc::new(ConnState::new());
    let (life_tx, life_rx) = oneshot::channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    let driver = Driver {
        conn,
        ping,
        probe: Some(send.clone()),
        life: life_rx,
        ready: Some(ready_tx),
        state: state.clone(),
        keep_alive: inner.opts_for(key).keep_alive_msecs,
        ping_timeout: inner.opts_for(key).ping_timeout,
        timer: Box::pin(tokio::time::sleep(inner.opts_for(key).connect_timeout)),
        pinging: true,
        ended: None,
    };
    inner.registry.opened(key, id, Some(state.clone()));
    tokio::spawn(run(driver, client.clone(), key.clone(), id));
    let server_max = ready_rx.await.map_err(|_| {
        Error::new(
            Kind::Connect,
            format!("HTTP/2 connection to {key} closed before its SETTINGS arrived"),
            None,
        )
    })?;
    let server_max = if server_max == usize::MAX {
        UNLIMITED_STREAMS_AS
    } else {
        server_max
    };
    let ours = inner
        .opts_for(key)
        .max_concurrent_streams
        .map_or(usize::MAX, |n| n as usize);
    Ok(H2Conn {
        send,
        state,
        handshake: kind,
        capacity: server_max.min(ours).max(1),
        _life: Arc::new(life_tx),
    })
}

/// Why a driver ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// The connection closed (after a GOAWAY, or with no handles left).
    Closed,
    /// A transport or protocol error.
    Failed,
    /// A PING went unanswered within the PING timeout.
    PingTimeout,
}

/// What the driver reports between polls.
enum Step {
    GoAway,
    End(End),
}

struct Driver<T> {
    conn: Connection<T, Bytes>,
    ping: PingPong,
    /// A handle to read the connection's error state (a GOAWAY) and the
    /// server's limit; let go once every other handle is gone, so the
    /// connection can close.
    probe: Option<SendRequest<Bytes>>,
    life: oneshot::Receiver<()>,
    ready: Option<oneshot::Sender<usize>>,
    state: Arc<ConnState>,
    keep_alive: Duration,
    ping_timeout: Duration,
    /// A PING's deadline while `pinging`, else the next idle check.
    timer: Pin<Box<Sleep>>,
    pinging: bool,
    /// The connection future finished (never polled again).
    ended: Option<End>,
}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Driver<T> {
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        if self.probe.is_some() && Pin::new(&mut self.life).poll(cx).is_ready() {
            self.probe = None;
        }
        if let Some(end) = self.ended {
            return Poll::Ready(Step::End(end));
        }
        if let Poll::Ready(r) = Pin::new(&mut self.conn).poll(cx) {
            let end = if r.is_ok() { End::Closed } else { End::Failed };
            // A GOAWAY and the close can come in one poll: report both.
            self.ended = Some(end);
        }
        if !self.state.going_away() {
            if let Some(Poll::Ready(Err(e))) = self.probe.as_mut().map(|p| p.poll_ready(cx)) {
                if e.is_go_away() && e.is_remote() && self.state.mark_goaway() {
                    return Poll::Ready(Step::GoAway);
                }
            }
        }
        if let Some(end) = self.ended {
            return Poll::Ready(Step::End(end));
        }
        loop {
            if self.pinging {
                match self.ping.poll_pong(cx) {
                    Poll::Ready(Ok(_)) => {
                        self.pinging = false;
                        if let Some(tx) = self.ready.take() {
                            let max = self
                                .probe
                                .as_ref()
                                .map_or(1, SendRequest::current_max_send_streams);
                            let _ = tx.send(max);
                        }
                        let at = Instant::now() + self.keep_alive;
                        self.timer.as_mut().reset(at);
                        continue;
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(Step::End(End::Failed)),
                    Poll::Pending => {
                        if self.timer.as_mut().poll(cx).is_ready() {
                            return Poll::Ready(Step::End(End::PingTimeout));
                        }
                        return Poll::Pending;
                    }
                }
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            let next = match self.state.idle_for(now) {
                Some(idle) if idle >= self.keep_alive => {
                    if self.ping.send_ping(Ping::opaque()).is_err() {
                        return Poll::Ready(Step::End(End::Failed));
                    }
                    self.pinging = true;
                    now + self.ping_timeout
                }
                Some(idle) => now + (self.keep_alive - idle),
                None => now + self.keep_alive,
            };
            self.timer.as_mut().reset(next);
        }
    }
}

/// Drives the connection until it ends, then tells the pool why.
async fn run<T: AsyncRead + AsyncWrite + Send + Unpin + 'static>(
    mut d: Driver<T>,
    client: Weak<ClientInner>,
    key: Key,
    id: u64,
) {
    let end = loop {
        match poll_fn(|cx| d.poll_step(cx)).await {
            Step::GoAway => {
                if let Some(c) = client.upgrade() {
                    c.registry.count(&key, |h| h.goaways += 1);
                    c.pool.connection_draining(&key, id, CloseReason::GoAway);
                }
            }
            Step::End(end) => break end,
        }
    };
    let state = d.state.clone();
    // Tell the pool why first, then mark the connection closed: a stream
    // released in between (on another thread) must find the pool's reason
    // (`goaway`), not only a closed connection (which it would count as
    // `serverClosed`).
    let c = client.upgrade();
    if let Some(c) = &c {
        if state.going_away() {
            c.pool.connection_draining(&key, id, CloseReason::GoAway);
        } else {
            c.pool.connection_closed(&key, id);
        }
    }
    state
        .closed
        .store(true, std::sync::atomic::Ordering::Release);
    // Closes the socket (a PING timeout leaves a connection nobody answers).
    drop(d);
    let Some(c) = c else {
        return;
    };
    c.registry.closed(id);
    if end == End::PingTimeout {
        c.registry.count(&key, |h| h.ping_timeouts += 1);
    }
}
