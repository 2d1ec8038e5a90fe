//! [`Reply`]: a response produced by a handler set with
//! [`UpstreamBuilder::handler`](crate::UpstreamBuilder::handler).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::stats::RequestRecord;

/// A response produced by a handler set with
/// [`UpstreamBuilder::handler`](crate::UpstreamBuilder::handler).
///
/// Framing is chosen by the server from `chunks`:
/// - no chunks → `Content-Length: 0`;
/// - exactly one chunk with a zero delay → `Content-Length` of that chunk;
/// - otherwise `Transfer-Encoding: chunked`: the head is written and flushed
///   first, then each piece is written **and flushed** as its own chunk as
///   soon as its delay has passed (streaming; the body is never buffered
///   whole). Empty pieces only contribute their delay.
///
/// Statuses 1xx, 204 and 304 are sent without a body and without framing
/// headers. A `HEAD` request gets the head only.
#[derive(Clone, Debug, Default)]
pub struct Reply {
    /// Status code, `100..=999`. Default `0`, which is sent as `200`.
    pub status: u16,
    /// Extra response headers, written in order after the server's own
    /// `X-Upstream-Conn` / `X-Upstream-Seq`. A `Content-Type` here replaces
    /// the default `text/plain`. `Content-Length` and `Transfer-Encoding`
    /// are dropped (the server frames the body itself). `Connection` is not
    /// copied either: if it contains `close`, the server sends
    /// `Connection: close` and closes after this response.
    /// Default empty.
    pub headers: Vec<(String, String)>,
    /// Wait this long (tokio time, so paused-time tests work) before writing
    /// the headers; added to the `header_delay` knob. Default zero.
    pub header_delay: Duration,
    /// Body pieces, each sent after waiting its delay (tokio time). See the
    /// type docs for the framing. Default empty (empty body).
    pub chunks: Vec<(Duration, Bytes)>,
}

impl Reply {
    /// A JSON reply: `status`, `Content-Type: application/json`, body
    /// `serde_json::to_vec(v)` sent with `Content-Length`.
    pub fn json(status: u16, v: &serde_json::Value) -> Reply {
        let body = serde_json::to_vec(v).expect("serializing a serde_json::Value cannot fail");
        Reply {
            status,
            headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
            header_delay: Duration::ZERO,
            chunks: vec![(Duration::ZERO, Bytes::from(body))],
        }
    }

    /// A `200` server-sent-events reply (`Content-Type: text/event-stream`,
    /// `Cache-Control: no-cache`): each `(delay, text)` is one body piece,
    /// sent as-is (the caller formats `event:` / `data:` lines and the blank
    /// line) after its delay.
    pub fn sse(events: Vec<(Duration, String)>) -> Reply {
        Reply {
            status: 200,
            headers: vec![
                ("Content-Type".to_owned(), "text/event-stream".to_owned()),
                ("Cache-Control".to_owned(), "no-cache".to_owned()),
            ],
            header_delay: Duration::ZERO,
            chunks: events
                .into_iter()
                .map(|(d, s)| (d, Bytes::from(s)))
                .collect(),
        }
    }
}

/// A shared response hook.
#[derive(Clone)]
pub(crate) struct Handler(pub(crate) Arc<dyn Fn(&RequestRecord) -> Reply + Send + Sync>);

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handler(..)")
    }
}
