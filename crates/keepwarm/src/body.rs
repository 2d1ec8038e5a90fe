//! `ResponseBody`: streams the response and decides the connection's fate.
//! Read to the end, the connection goes back to the pool (unless the server
//! said close); dropped early, errored or timed out, the connection closes.
//! A pause longer than the inactivity `timeout` between frames fails it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use keepwarm_pool::{CloseReason, Lease};
use tokio::time::{Instant, Sleep};

use crate::conn::Http1Conn;
use crate::error::{Error, Kind};
use crate::key::Key;

/// How long a finished exchange may take to leave its connection ready
/// before the connection is closed instead of pooled.
const READY_GRACE: Duration = Duration::from_secs(1);

/// The body of a response. Implements [`http_body::Body`].
pub struct ResponseBody {
    inner: Incoming,
    lease: Option<Lease<Key, Http1Conn>>,
    key: Key,
    server_closes: bool,
    timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("key", &self.key)
            .field("done", &self.lease.is_none())
            .finish()
    }
}

impl ResponseBody {
    pub(crate) fn new(
        inner: Incoming,
        lease: Lease<Key, Http1Conn>,
        server_closes: bool,
        timeout: Duration,
    ) -> ResponseBody {
        let mut body = ResponseBody {
            inner,
            key: lease.key().clone(),
            lease: Some(lease),
            server_closes,
            timeout,
            sleep: None,
        };
        if body.inner.is_end_stream() {
            body.finish();
        }
        body
    }

    /// Reads the whole body.
    pub async fn bytes(self) -> Result<Bytes, Error> {
        Ok(self.collect().await?.to_bytes())
    }

    /// The response ended cleanly: pool the connection if allowed.
    fn finish(&mut self) {
        let Some(mut lease) = self.lease.take() else {
            return;
        };
        if self.server_closes {
            lease.close(CloseReason::ServerClosed);
        } else if lease.conn().sender.is_ready() || lease.conn().sender.is_closed() {
            // Closed: the pool sees it and counts it as a server close.
            lease.release();
        } else if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let ready = std::future::poll_fn(|cx| lease.conn_mut().sender.poll_ready(cx));
                match tokio::time::timeout(READY_GRACE, ready).await {
                    Ok(Ok(())) => lease.release(),
                    _ => lease.close(CloseReason::Error),
                }
            });
        } else {
            lease.close(CloseReason::Error);
        }
    }

    fn fail(&mut self, reason: CloseReason) {
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
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if this.inner.is_end_stream() {
                    this.finish();
                } else if let Some(s) = this.sleep.as_mut() {
                    s.as_mut().reset(Instant::now() + this.timeout);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.fail(CloseReason::Error);
                Poll::Ready(Some(Err(Error::new(
                    Kind::Body,
                    format!("reading the response body from {} failed", this.key),
                    Some(Box::new(e)),
                ))))
            }
            Poll::Ready(None) => {
                this.finish();
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.lease.is_none() {
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
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
