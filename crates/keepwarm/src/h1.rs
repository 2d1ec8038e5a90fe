//! An HTTP/1.1 connection driven by the task that uses it, not by a task of
//! its own. hyper's connection future lives inside the pooled `Http1Conn`:
//! the task awaiting `Client::request` polls it together with the response
//! future, and the `ResponseBody` polls it before each frame, so a request
//! is written and its response read without a hop to another task.
//!
//! Idle, nobody polls it. Its last poll (`park`) leaves an idle watch
//! registered as the waker of its socket: a wake while parked (EOF, an
//! error, unexpected bytes) spawns a small check that asks the pool to look
//! at the connection (`Pool::check_idle`), which removes it as stale if it
//! closed. The pool also asks (`poll_open`) before reuse.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Wake, Waker};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::client::conn::TrySendError;

use crate::client::ClientInner;
use crate::info::Handshake;
use crate::key::Key;

/// hyper's connection future, boxed (plain TCP or TLS underneath).
pub(crate) type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// An HTTP/1.1 connection as the pool holds it.
pub(crate) struct Http1Conn {
    sender: SendRequest<Full<Bytes>>,
    /// `None` once the connection ended (then the socket is closed).
    driver: Option<Driver>,
    watch: Arc<Watch>,
    /// `watch` as a waker (made once).
    waker: Waker,
    pub(crate) handshake: Handshake,
}

/// The waker of a parked connection.
struct Watch {
    /// Parked: a wake means news on the socket.
    armed: AtomicBool,
    /// Woken while parked and not looked at since.
    signalled: AtomicBool,
    client: Weak<ClientInner>,
    key: Key,
    id: u64,
    rt: tokio::runtime::Handle,
}

impl Wake for Watch {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.armed.swap(false, Ordering::AcqRel) {
            return;
        }
        self.signalled.store(true, Ordering::Release);
        let me = self.clone();
        self.rt.spawn(async move {
            if let Some(c) = me.client.upgrade() {
                c.pool.check_idle(&me.key, me.id);
            }
        });
    }
}

impl Http1Conn {
    /// Connection `id` of `key` after hyper's handshake; parked (watched)
    /// until a request uses it.
    pub(crate) fn new(
        client: &Weak<ClientInner>,
        key: &Key,
        id: u64,
        sender: SendRequest<Full<Bytes>>,
        driver: Driver,
        handshake: Handshake,
    ) -> Http1Conn {
        let watch = Arc::new(Watch {
            armed: AtomicBool::new(false),
            signalled: AtomicBool::new(false),
            client: client.clone(),
            key: key.clone(),
            id,
            rt: tokio::runtime::Handle::current(),
        });
        let waker = Waker::from(watch.clone());
        let mut conn = Http1Conn {
            sender,
            driver: Some(driver),
            watch,
            waker,
            handshake,
        };
        conn.park();
        conn
    }

    /// Polls hyper's connection with `cx`: `Ready` once it ended (closed by
    /// either side or failed); the socket is closed then.
    pub(crate) fn drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(d) = self.driver.as_mut() else {
            return Poll::Ready(());
        };
        match d.as_mut().poll(cx) {
            Poll::Ready(_) => {
                self.driver = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Drives the connection until hyper is ready for the next request:
    /// `Ready(true)`, or `Ready(false)` if it ended first.
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let ended = self.drive(cx).is_ready();
        match self.sender.poll_ready(cx) {
            Poll::Ready(r) => Poll::Ready(r.is_ok() && !ended),
            Poll::Pending if ended => Poll::Ready(false),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The connection has not ended.
    pub(crate) fn is_open(&self) -> bool {
        self.driver.is_some() && !self.sender.is_closed()
    }

    /// Sends `req` and waits for the response head, driving the connection
    /// meanwhile. A request hyper did not write comes back in the error.
    pub(crate) async fn send(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, TrySendError<Request<Full<Bytes>>>> {
        // From here the caller's task drives the connection.
        self.watch.armed.store(false, Ordering::Release);
        if !self.sender.is_ready() {
            // hyper takes a request once its connection asked for one.
            // Ended first: `try_send_request` hands the request back.
            poll_fn(|cx| self.poll_ready(cx)).await;
        }
        let mut response = std::pin::pin!(self.sender.try_send_request(req));
        poll_fn(|cx| {
            // The connection first: it writes the request and reads the head
            // into the response future. Ended, it drops the request's
            // callback, so the response future is ready with the error.
            let _ = self.drive(cx);
            // Only `drive` (this task) completes the response future, so it
            // needs no waker of ours: with one, hyper's hand-over of the
            // head would wake this very task for a wasted extra poll.
            response
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
        })
        .await
    }

    /// Leaves the connection idle and watched: polls it once with the idle
    /// watch as its waker. `true` if hyper is ready for the next request.
    pub(crate) fn park(&mut self) -> bool {
        self.watch.signalled.store(false, Ordering::Release);
        self.watch.armed.store(true, Ordering::Release);
        let waker = self.waker.clone();
        let ended = self.drive(&mut Context::from_waker(&waker)).is_ready();
        !ended && self.sender.is_ready()
    }

    /// For the pool (`Poolable::poll_open`): if the watch was woken since
    /// the connection was parked, look at it again (re-parking it).
    pub(crate) fn poll_open(&mut self) -> bool {
        if self.watch.signalled.swap(false, Ordering::AcqRel) {
            self.park();
        }
        self.is_open()
    }
}

impl Drop for Http1Conn {
    fn drop(&mut self) {
        if let Some(c) = self.watch.client.upgrade() {
            c.registry.closed(self.watch.id);
        }
    }
}
