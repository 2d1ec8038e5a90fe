//! Reading a caller's request body, bounded in size (`BODY_LIMIT_BYTES`),
//! in the pause allowed between its bytes (`BODY_READ_TIMEOUT_MS`) and in
//! total (`API_TIMEOUT_MS`): a client that sends its headers and then
//! trickles or stalls its body cannot hold a task forever.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::time::Instant;

use crate::error::ApiError;

/// The bounds on one request body.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    /// Most bytes (`BODY_LIMIT_BYTES`).
    pub(crate) limit: usize,
    /// Longest pause before the next bytes (`BODY_READ_TIMEOUT_MS`).
    pub(crate) between: Duration,
    /// Longest time for the whole body (`API_TIMEOUT_MS`).
    pub(crate) total: Duration,
}

/// Reads `body` to the end within `bounds`: 413 past the size limit, 408
/// when it pauses too long or takes too long in total, 400 when it fails.
pub(crate) async fn read<B>(body: B, bounds: Bounds) -> Result<Bytes, ApiError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut body = Limited::new(body, bounds.limit);
    let deadline = Instant::now() + bounds.total;
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (wait, which, limit) = if bounds.between < left {
            (bounds.between, "BODY_READ_TIMEOUT_MS", bounds.between)
        } else {
            (left, "API_TIMEOUT_MS", bounds.total)
        };
        let frame = match tokio::time::timeout(wait, body.frame()).await {
            Err(_) => return Err(ApiError::body_timeout(which, limit)),
            Ok(None) => break,
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(e))) if e.is::<LengthLimitError>() => {
                return Err(ApiError::too_large(bounds.limit))
            }
            Ok(Some(Err(e))) => {
                return Err(ApiError::bad_request(
                    "invalid_body",
                    format!("reading the request body failed: {e}"),
                ))
            }
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        // One chunk (the common case) is handed on without a copy.
        match &first {
            None => first = Some(data),
            Some(f) => {
                if rest.is_empty() {
                    rest.extend_from_slice(f);
                }
                rest.extend_from_slice(&data);
            }
        }
    }
    Ok(if rest.is_empty() {
        first.unwrap_or_default()
    } else {
        rest.freeze()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use http_body::Frame;
    use http_body_util::StreamBody;

    type Chunk = Result<Frame<Bytes>, std::io::Error>;

    /// 101 bytes: one past the limit of [`bounds`].
    const BIG: &str = concat!(
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "x"
    );

    /// A body sending `chunks`, each after its delay.
    fn paced(
        chunks: Vec<(u64, &'static str)>,
    ) -> StreamBody<impl futures_util::Stream<Item = Chunk>> {
        StreamBody::new(Box::pin(stream::unfold(
            chunks.into_iter(),
            |mut it| async move {
                let (ms, s) = it.next()?;
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Some((Ok(Frame::data(Bytes::from_static(s.as_bytes()))), it))
            },
        )))
    }

    fn bounds(between_ms: u64, total_ms: u64) -> Bounds {
        Bounds {
            limit: 100,
            between: Duration::from_millis(between_ms),
            total: Duration::from_millis(total_ms),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_body_is_read_whole() {
        let body = paced(vec![(0, "ab"), (90, "cd"), (90, "ef")]);
        let got = read(body, bounds(100, 1000)).await.unwrap();
        assert_eq!(got, "abcdef");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_times_out_between_bytes() {
        let body = paced(vec![(0, "ab"), (150, "cd")]);
        let e = read(body, bounds(100, 1000)).await.unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (408, "request_timeout"));
        assert!(e.message.contains("BODY_READ_TIMEOUT_MS"), "{}", e.message);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickling_body_times_out_in_total() {
        // Every pause is within the 100 ms allowed, but the whole takes 450 ms.
        let body = paced(vec![(90, "a"), (90, "b"), (90, "c"), (90, "d"), (90, "e")]);
        let e = read(body, bounds(100, 300)).await.unwrap_err();
        assert_eq!(e.status.as_u16(), 408);
        assert!(e.message.contains("API_TIMEOUT_MS"), "{}", e.message);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_over_the_limit_is_413() {
        let e = read(paced(vec![(0, BIG)]), bounds(100, 1000))
            .await
            .unwrap_err();
        assert_eq!(e.status.as_u16(), 413);
    }
}
