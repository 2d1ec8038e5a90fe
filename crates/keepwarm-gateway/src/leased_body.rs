//! A response body that holds an API key's lease until the body ends or is
//! dropped, so a streaming answer counts as in flight on its key for as
//! long as it streams (what `least-loaded` balances).

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

use crate::resilience::KeyLease;

/// `inner`, with `lease` released when it ends.
pub(crate) struct LeasedBody {
    inner: Body,
    lease: Option<KeyLease>,
}

impl LeasedBody {
    pub(crate) fn new(inner: Body, lease: KeyLease) -> Self {
        LeasedBody {
            inner,
            lease: Some(lease),
        }
    }
}

impl http_body::Body for LeasedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.lease = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
