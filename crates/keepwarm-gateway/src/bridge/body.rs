//! A response body that translates an upstream SSE stream event by event.
//!
//! Each upstream data frame goes through the stream translator and whatever
//! caller events it completes go out at once (nothing waits for the whole
//! response). An upstream error mid-stream becomes the caller's error event;
//! after the translator's terminal event the rest of the upstream body is
//! read and discarded so the connection can return to the pool. Dropping
//! this body (the caller went away) drops the upstream body, which cancels
//! the upstream request.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::translate::chunks_to_events::ChunksToEvents;
use crate::translate::events_to_chunks::EventsToChunks;
use crate::translate::stream::StreamMachine;

/// One of the two stream translators.
#[derive(Debug)]
pub enum StreamTranslator {
    /// OpenAI upstream, Anthropic caller.
    ToAnthropic(ChunksToEvents),
    /// Anthropic upstream, OpenAI caller.
    ToOpenAi(EventsToChunks),
}

impl StreamTranslator {
    /// Feeds upstream bytes; returns caller bytes.
    pub fn push(&mut self, b: &[u8]) -> Vec<u8> {
        match self {
            StreamTranslator::ToAnthropic(t) => t.push(b),
            StreamTranslator::ToOpenAi(t) => t.push(b),
        }
    }

    /// The upstream ended.
    pub fn finish(&mut self) -> Vec<u8> {
        match self {
            StreamTranslator::ToAnthropic(t) => t.finish(),
            StreamTranslator::ToOpenAi(t) => t.finish(),
        }
    }

    /// The upstream failed with `cause`.
    pub fn fail(&mut self, cause: &str) -> Vec<u8> {
        match self {
            StreamTranslator::ToAnthropic(t) => t.fail(cause),
            StreamTranslator::ToOpenAi(t) => t.fail(cause),
        }
    }

    /// The terminal event was produced.
    pub fn is_done(&self) -> bool {
        match self {
            StreamTranslator::ToAnthropic(t) => t.is_done(),
            StreamTranslator::ToOpenAi(t) => t.is_done(),
        }
    }
}

/// The translating body around an upstream body `B`.
pub struct TranslatedBody<B> {
    inner: B,
    t: StreamTranslator,
    /// No more caller bytes will come (the terminal event went out).
    closed: bool,
    /// The upstream ended too.
    ended: bool,
}

impl<B> TranslatedBody<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, t: StreamTranslator) -> Self {
        TranslatedBody {
            inner,
            t,
            closed: false,
            ended: false,
        }
    }
}

impl<B> Body for TranslatedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            let out = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => match frame.data_ref() {
                    Some(d) if !this.closed => this.t.push(d),
                    _ => Vec::new(), // trailers, or draining after the end
                },
                Poll::Ready(Some(Err(e))) => {
                    this.ended = true;
                    this.t.fail(&e.to_string())
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    this.t.finish()
                }
            };
            this.closed |= this.t.is_done();
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::chunks_to_events::StreamOptions;
    use http_body_util::{BodyExt, StreamBody};
    use std::convert::Infallible;

    #[tokio::test]
    async fn frames_translate_one_by_one_and_errors_become_events() {
        let frames: Vec<Result<Frame<Bytes>, String>> = vec![
            Ok(Frame::data(Bytes::from_static(
                b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n",
            ))),
            Err("connection reset".to_owned()),
        ];
        let inner = StreamBody::new(futures_util::stream::iter(frames));
        let t = StreamTranslator::ToAnthropic(ChunksToEvents::new(StreamOptions::new("m", "p")));
        let mut body = TranslatedBody::new(inner, t);
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        let first = String::from_utf8(first.to_vec()).unwrap();
        assert!(first.starts_with("event: message_start"), "{first}");
        assert!(first.contains("\"text\":\"hi\""), "{first}");
        let last = body.frame().await.unwrap().unwrap().into_data().unwrap();
        let last = String::from_utf8(last.to_vec()).unwrap();
        assert!(
            last.ends_with("provider p: the stream failed: connection reset\"}}\n\n"),
            "{last}"
        );
        assert!(body.frame().await.is_none());
        assert!(body.is_end_stream());
    }

    #[tokio::test]
    async fn after_the_end_the_upstream_is_drained_silently() {
        let frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![
            Ok(Frame::data(Bytes::from_static(b"data: [DONE]\n\n"))),
            Ok(Frame::data(Bytes::from_static(
                b"data: {\"choices\":[{\"delta\":{\"content\":\"late\"}}]}\n\n",
            ))),
        ];
        let inner = StreamBody::new(futures_util::stream::iter(frames));
        let t = StreamTranslator::ToAnthropic(ChunksToEvents::new(StreamOptions::new("m", "p")));
        let all = TranslatedBody::new(inner, t)
            .collect()
            .await
            .unwrap()
            .to_bytes();
        let all = String::from_utf8(all.to_vec()).unwrap();
        assert!(
            all.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
            "{all}"
        );
        assert!(!all.contains("late"));
    }
}
