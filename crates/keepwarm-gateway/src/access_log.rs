//! One log line per proxied request, written when its response body ends
//! (or is dropped): provider, model, status, duration, reused, connection id,
//! bytes, and whether the body completed. Never a key.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use keepwarm::{ConnectionInfo, ResponseBody};

use crate::management::DurationSink;

/// Wraps an upstream body to log when it ends.
pub(crate) struct LoggedBody {
    inner: ResponseBody,
    provider: std::sync::Arc<str>,
    model: String,
    status: u16,
    info: Option<ConnectionInfo>,
    started: Instant,
    bytes: u64,
    state: End,
    route: String,
    duration: DurationSink,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Open,
    Complete,
    Failed,
    Logged,
}

impl LoggedBody {
    /// Wraps `inner`.
    pub(crate) fn new(
        inner: ResponseBody,
        provider: std::sync::Arc<str>,
        model: String,
        status: u16,
        info: Option<ConnectionInfo>,
        started: Instant,
        duration: DurationSink,
    ) -> Self {
        LoggedBody {
            duration,
            inner,
            provider,
            model,
            status,
            info,
            started,
            bytes: 0,
            state: End::Open,
            route: String::new(),
        }
    }

    /// Adds the route taken (`think deepseek,deepseek-reasoner`) to the log line.
    pub(crate) fn with_route(mut self, route: String) -> Self {
        self.route = route;
        self
    }

    fn log(&mut self) {
        if self.state == End::Logged {
            return;
        }
        let outcome = match self.state {
            End::Complete => "complete",
            End::Failed => "upstream error",
            _ => "client went away",
        };
        self.state = End::Logged;
        self.duration.observe(self.started.elapsed());
        tracing::info!(
            target: "keepwarm::access",
            provider = %self.provider,
            model = %self.model,
            route = %self.route,
            status = self.status,
            duration_ms = self.started.elapsed().as_millis() as u64,
            reused = self.info.is_some_and(|i| i.reused),
            connection = self.info.map_or(0, |i| i.id),
            bytes = self.bytes,
            outcome,
            "proxied"
        );
    }
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = keepwarm::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, keepwarm::Error>>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    this.bytes += d.len() as u64;
                }
                if this.inner.is_end_stream() {
                    this.state = End::Complete;
                    this.log();
                }
            }
            Poll::Ready(Some(Err(_))) => {
                this.state = End::Failed;
                this.log();
            }
            Poll::Ready(None) => {
                if this.state == End::Open {
                    this.state = End::Complete;
                }
                this.log();
            }
            Poll::Pending => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        self.log();
    }
}
