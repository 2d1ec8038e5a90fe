//! The HTTP/1.1 side of an [`H2Server`](crate::H2Server) built with
//! [`http1_fallback`](crate::H2ServerBuilder::http1_fallback): TLS
//! connections whose client picked `http/1.1` in ALPN (or offered no ALPN)
//! are served by hyper's HTTP/1.1 server with the same delay and response
//! (content type, body, streamed pieces) as the HTTP/2 side, and counted apart from the HTTP/2 connections.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::h2server::Shared;

/// Serves HTTP/1.1 keep-alive on `io` until the client closes it.
pub(crate) async fn serve_http1<T>(io: T, shared: Arc<Shared>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let c = &shared.counters;
    c.http1_connections.fetch_add(1, Ordering::SeqCst);
    let svc = {
        let shared = shared.clone();
        service_fn(move |req| answer(req, shared.clone()))
    };
    let _ = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), svc)
        .await;
}

/// The HTTP/1.1 response body: the server's pieces, `gap` apart.
type Body = BoxBody<Bytes, Infallible>;

/// One request: read its body, wait the delay, answer with the body (at
/// once with a `content-length`, or streamed chunked).
async fn answer(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Response<Body>, Infallible> {
    shared
        .counters
        .http1_requests
        .fetch_add(1, Ordering::SeqCst);
    let _ = req.into_body().collect().await;
    tokio::time::sleep(shared.knobs.delay()).await;
    let head = shared.head();
    let body: Body = if shared.streamed() {
        let pieces = futures_util::stream::unfold(0usize, move |i| {
            let shared = shared.clone();
            async move {
                let piece = shared.pieces.get(i)?.clone();
                if i > 0 {
                    tokio::time::sleep(shared.gap).await;
                }
                Some((Ok::<_, Infallible>(Frame::data(piece)), i + 1))
            }
        });
        BodyExt::boxed(StreamBody::new(pieces))
    } else {
        BodyExt::boxed(Full::new(shared.pieces.concat().into()))
    };
    Ok(head.body(body).unwrap_or_default())
}
