//! Cutting responses at the shutdown deadline. While the server drains
//! (SIGTERM, Ctrl-C), in-flight responses and streams run on; when
//! `SHUTDOWN_TIMEOUT_MS` passes, every response still running is cut: a
//! stream gets one last error event in its caller's API shape (so clients
//! see why it ended, rather than a bare disconnect), any other body ends
//! with an error, and each cut is counted (`keepwarm_streams_cut_total`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use prometheus_client::metrics::counter::Counter;
use serde_json::json;
use tokio::sync::watch;

use crate::error::Shape;

type Signal = Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

/// A response body that ends early, with an error event, when the
/// shutdown deadline passes.
pub(crate) struct CutAtDeadline<B> {
    inner: Option<B>,
    signal: Signal,
    sse: bool,
    shape: Shape,
    cuts: Counter,
    deadline_ms: u128,
}

impl<B> CutAtDeadline<B> {
    /// Wraps `inner`; `cut` turns `true` at the deadline. `sse`: the
    /// response is an event stream (it gets an error event when cut).
    pub(crate) fn new(
        inner: B,
        mut cut: watch::Receiver<bool>,
        sse: bool,
        shape: Shape,
        cuts: Counter,
        deadline_ms: u128,
    ) -> Self {
        let signal: Signal = Box::pin(async move {
            // A dropped sender (the state is gone) also ends the wait.
            let _ = cut.wait_for(|c| *c).await;
        });
        CutAtDeadline {
            inner: Some(inner),
            signal,
            sse,
            shape,
            cuts,
            deadline_ms,
        }
    }

    fn error_event(&self) -> Bytes {
        let message = format!(
            "the gateway is shutting down: this response was still running at the \
             SHUTDOWN_TIMEOUT_MS deadline ({} ms) and was cut",
            self.deadline_ms
        );
        match self.shape {
            Shape::OpenAi => {
                let e = json!({"error": {"message": message, "type": "server_error", "code": "shutdown"}});
                Bytes::from(format!("data: {e}\n\n"))
            }
            _ => {
                let e =
                    json!({"type": "error", "error": {"type": "api_error", "message": message}});
                Bytes::from(format!("event: error\ndata: {e}\n\n"))
            }
        }
    }
}

/// The error a non-stream body ends with when cut.
#[derive(Debug)]
pub(crate) struct Cut;

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cut at the shutdown deadline")
    }
}

impl std::error::Error for Cut {}

impl<B> Body for CutAtDeadline<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if this.signal.as_mut().poll(cx).is_ready() {
            // Dropping the upstream body closes that connection (half-read).
            this.inner = None;
            this.cuts.inc();
            tracing::warn!("shutdown deadline: cut a response still running");
            return Poll::Ready(Some(if this.sse {
                Ok(Frame::data(this.error_event()))
            } else {
                Err(Box::new(Cut))
            }));
        }
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(Some(Ok(f))) => Poll::Ready(Some(Ok(f))),
            Poll::Ready(None) => {
                this.inner = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            // A cut may add an event: no exact length while running.
            Some(b) if self.sse => {
                let mut h = SizeHint::new();
                h.set_lower(b.size_hint().lower());
                h
            }
            Some(b) => b.size_hint(),
            None => SizeHint::with_exact(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, Full};

    use super::*;

    fn cut_body(sse: bool, shape: Shape) -> (CutAtDeadline<Full<Bytes>>, Counter) {
        let (tx, rx) = watch::channel(false);
        tx.send_replace(true);
        let cuts = Counter::default();
        let b = CutAtDeadline::new(
            Full::new(Bytes::from_static(b"data: {}\n\n")),
            rx,
            sse,
            shape,
            cuts.clone(),
            500,
        );
        (b, cuts)
    }

    #[tokio::test]
    async fn each_api_gets_its_own_error_event_and_other_bodies_an_error() {
        let (b, cuts) = cut_body(true, Shape::OpenAi);
        let text = b.collect().await.unwrap().to_bytes();
        let text = std::str::from_utf8(&text).unwrap();
        assert!(text.starts_with("data: {\"error\":{"), "{text}");
        assert!(
            text.contains("\"code\":\"shutdown\"") && text.contains("(500 ms)"),
            "{text}"
        );
        assert_eq!(cuts.get(), 1);

        let (b, _) = cut_body(true, Shape::Anthropic);
        let text = b.collect().await.unwrap().to_bytes();
        let text = std::str::from_utf8(&text).unwrap();
        assert!(
            text.starts_with("event: error\ndata: {\"type\":\"error\""),
            "{text}"
        );

        let (b, cuts) = cut_body(false, Shape::Anthropic);
        assert!(b.collect().await.is_err());
        assert_eq!(cuts.get(), 1);
    }

    #[tokio::test]
    async fn before_the_deadline_the_body_passes_through() {
        let (_tx, rx) = watch::channel(false);
        let cuts = Counter::default();
        let b = CutAtDeadline::new(
            Full::new(Bytes::from_static(b"whole")),
            rx,
            true,
            Shape::Anthropic,
            cuts.clone(),
            500,
        );
        assert_eq!(&b.collect().await.unwrap().to_bytes()[..], b"whole");
        assert_eq!(cuts.get(), 0);
    }
}
