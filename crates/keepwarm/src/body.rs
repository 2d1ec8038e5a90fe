//! `ResponseBody`: streams the response and decides the connection's fate.
//! Read to the end, the connection goes back to the pool (unless the server
//! said close); dropped early, errored or timed out, the connection closes.
//! A pause longer than the inactivity `timeout` between frames fails it.
//! An HTTP/2 body ends only its stream, never the connection: dropped early
//! or failed, the stream is reset and its slot freed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use keepwarm_pool::{CloseReason, Lease};
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

use crate::error::{Error, Kind};
use crate::h1::body::H1Body;
use crate::http2::body::H2Body;
use crate::key::Key;
use crate::pooled::Conn;

/// The stream underneath.
enum Inner {
    /// HTTP/1.1, read from the connection in `ResponseBody::lease`.
    H1(H1Body),
    /// HTTP/2; the stream holds its own lease.
    H2(Box<H2Body>),
    /// An HTTP/2 stream that failed: reset and given back.
    Ended,
}

/// The body of a response. Implements [`http_body::Body`].
pub struct ResponseBody {
    inner: Inner,
    lease: Option<Lease<Key, Conn>>,
    key: Key,
    server_closes: bool,
    timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    /// An HTTP/1.1 read error held back for one poll (see `poll_frame`).
    deferred: Option<Error>,
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("key", &self.key)
            .field("done", &!self.active())
            .finish()
    }
}

impl ResponseBody {
    pub(crate) fn new(
        inner: H1Body,
        lease: Lease<Key, Conn>,
        server_closes: bool,
        timeout: Duration,
    ) -> ResponseBody {
        let mut body = ResponseBody {
            inner: Inner::H1(inner),
            key: lease.key().clone(),
            lease: Some(lease),
            server_closes,
            timeout,
            sleep: None,
            deferred: None,
        };
        if body.is_end_stream() {
            body.finish();
        }
        body
    }

    /// An HTTP/2 stream's body.
    pub(crate) fn h2(inner: H2Body, key: Key, timeout: Duration) -> ResponseBody {
        let mut body = ResponseBody {
            inner: Inner::H2(Box::new(inner)),
            key,
            lease: None,
            server_closes: false,
            timeout,
            sleep: None,
            deferred: None,
        };
        if body.is_end_stream() {
            body.finish();
        }
        body
    }

    /// Still holding a connection (or a stream on one).
    fn active(&self) -> bool {
        match &self.inner {
            Inner::H2(b) => b.guard.lease().is_some(),
            _ => self.lease.is_some(),
        }
    }

    /// Reads the whole body.
    pub async fn bytes(self) -> Result<Bytes, Error> {
        Ok(self.collect().await?.to_bytes())
    }

    /// The response ended cleanly: pool the connection if allowed.
    fn finish(&mut self) {
        if let Inner::H2(b) = &mut self.inner {
            b.guard.done();
            return;
        }
        let Some(mut lease) = self.lease.take() else {
            return;
        };
        let reusable = match lease.conn_mut() {
            Conn::H1(c) => c.finish_exchange(),
            Conn::H2(_) => true,
        };
        if self.server_closes {
            lease.close(CloseReason::ServerClosed);
        } else if !reusable {
            // The server sent more than the response, or closed after it:
            // the pool counts a peer's close as such when it sees it.
            lease.close(CloseReason::Error);
        } else {
            lease.release();
        }
    }

    fn fail(&mut self, reason: CloseReason) {
        if matches!(self.inner, Inner::H2(_)) {
            // Resets the stream, then frees its slot.
            self.inner = Inner::Ended;
        }
        if let Some(lease) = self.lease.take() {
            lease.close(reason);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        if let Some(e) = this.deferred.take() {
            return Poll::Ready(Some(Err(e)));
        }
        let polled = match &mut this.inner {
            Inner::H1(b) => match this.lease.as_mut().map(Lease::conn_mut) {
                Some(Conn::H1(c)) => b.poll_frame(c, cx),
                _ => Poll::Ready(None),
            },
            Inner::H2(b) => b.poll_frame(cx).map_err(|e| Box::new(e) as BoxError),
            Inner::Ended => Poll::Ready(None),
        };
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if this.is_end_stream() {
                    this.finish();
                } else if let Some(s) = this.sleep.as_mut() {
                    s.as_mut().reset(Instant::now() + this.timeout);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let h1 = matches!(this.inner, Inner::H1(_));
                this.fail(CloseReason::Error);
                let e = Error::new(
                    Kind::Body,
                    format!("reading the response body from {} failed", this.key),
                    Some(e),
                );
                if !h1 {
                    return Poll::Ready(Some(Err(e)));
                }
                // The socket is read inside this poll, so a peer's close
                // can surface right after the data before it. Yield once
                // first, as a body read by another task would: a relay (a
                // hyper server) flushes the bytes it has before it sees
                // the error and aborts.
                this.deferred = Some(e);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Ready(None) => {
                this.finish();
                Poll::Ready(None)
            }
            Poll::Pending => {
                if !this.active() {
                    return Poll::Pending;
                }
                let timeout = this.timeout;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if sleep.as_mut().poll(cx).is_ready() {
                    this.fail(CloseReason::Error);
                    return Poll::Ready(Some(Err(Error::timeout(
                        format_args!(
                            "response body from {} paused longer than the inactivity timeout",
                            this.key
                        ),
                        timeout,
                    ))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::H1(b) => b.is_end_stream(),
            Inner::H2(b) => b.is_end_stream(),
            Inner::Ended => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::H1(b) => b.size_hint(),
            _ => SizeHint::default(),
        }
    }
}
