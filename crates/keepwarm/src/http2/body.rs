//! The body of an HTTP/2 response: data frames handed on as they come (the
//! flow-control window is released as they are), then trailers. Dropped
//! early, the stream is reset (CANCEL) and its slot freed; the connection
//! stays.

use std::task::{Context, Poll};

use bytes::Bytes;
use h2::RecvStream;
use http_body::Frame;

use super::StreamGuard;

/// One stream's response body and its hold on the connection. Field order
/// matters: the stream is dropped (reset if unfinished) before the guard
/// gives the slot back.
pub(crate) struct H2Body {
    recv: RecvStream,
    data_done: bool,
    pub(crate) guard: StreamGuard,
}

impl H2Body {
    pub(crate) fn new(recv: RecvStream, guard: StreamGuard) -> H2Body {
        H2Body {
            recv,
            data_done: false,
            guard,
        }
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }

    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        if !self.data_done {
            match self.recv.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    // Only fails once the stream is gone; the next poll says so.
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => self.data_done = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        match self.recv.poll_trailers(cx) {
            Poll::Ready(Ok(Some(t))) => Poll::Ready(Some(Ok(Frame::trailers(t)))),
            Poll::Ready(Ok(None)) => Poll::Ready(None),
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Pending => Poll::Pending,
        }
    }
}
