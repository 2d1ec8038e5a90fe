//! Reading an HTTP/1.1 response body from its connection, frame by frame,
//! by whoever polls the `ResponseBody`: `Content-Length`, chunked (with
//! trailers) or until the server closes.

use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use super::decode::{Chunked, Framing, Step};
use super::Http1Conn;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where a body is.
#[derive(Debug)]
enum State {
    Length(u64),
    Chunked(Chunked),
    UntilClose,
    Done,
}

/// The framing state of one response body.
#[derive(Debug)]
pub(crate) struct H1Body {
    state: State,
}

impl H1Body {
    pub(crate) fn new(framing: Framing) -> H1Body {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(Chunked::Size),
            Framing::UntilClose => State::UntilClose,
        };
        H1Body { state }
    }

    /// No more frames.
    pub(crate) fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(n) => SizeHint::with_exact(n),
            State::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }

    /// The next frame, read from `conn`.
    pub(crate) fn poll_frame(
        &mut self,
        conn: &mut Http1Conn,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            match &mut self.state {
                State::Done => return Poll::Ready(None),
                State::Length(left) if !conn.buf.is_empty() => {
                    let take = (*left).min(conn.buf.len() as u64);
                    let data = conn.buf.split_to(take as usize).freeze();
                    *left -= take;
                    if *left == 0 {
                        self.state = State::Done;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::UntilClose if !conn.buf.is_empty() => {
                    let data = conn.buf.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::Chunked(c) => match c.step(&mut conn.buf) {
                    Ok(Step::Data(d)) => return Poll::Ready(Some(Ok(Frame::data(d)))),
                    Ok(Step::Trailers(t)) => {
                        self.state = State::Done;
                        return Poll::Ready(Some(Ok(Frame::trailers(t))));
                    }
                    Ok(Step::Done) => {
                        self.state = State::Done;
                        return Poll::Ready(None);
                    }
                    Ok(Step::More) => {}
                    Err(msg) => {
                        conn.abandon();
                        return Poll::Ready(Some(Err(msg.into())));
                    }
                },
                _ => {}
            }
            let n = match ready!(conn.poll_fill(cx)) {
                Ok(n) => n,
                Err(e) => return Poll::Ready(Some(Err(Box::new(e)))),
            };
            if n > 0 {
                continue;
            }
            return match self.state {
                State::UntilClose => {
                    self.state = State::Done;
                    Poll::Ready(None)
                }
                State::Length(left) => Poll::Ready(Some(Err(format!(
                    "the server closed the connection {left} bytes before the body's end"
                )
                .into()))),
                _ => Poll::Ready(Some(Err(
                    "the server closed the connection inside a chunked body".into(),
                ))),
            };
        }
    }
}
