//! The HTTP/1.1 side of an [`H2Server`](crate::H2Server) built with
//! [`http1_fallback`](crate::H2ServerBuilder::http1_fallback): TLS
//! connections whose client picked `http/1.1` in ALPN (or offered no ALPN)
//! are served by hyper's HTTP/1.1 server with the same delay and response
//! as the HTTP/2 side, and counted apart from the HTTP/2 connections.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
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

/// One request: read its body, wait the delay, answer with the body.
async fn answer(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    shared
        .counters
        .http1_requests
        .fetch_add(1, Ordering::SeqCst);
    let _ = req.into_body().collect().await;
    tokio::time::sleep(shared.knobs.delay()).await;
    Ok(Response::builder()
        .status(200)
        .header("content-length", shared.body.len())
        .body(Full::new(shared.body.clone()))
        .unwrap_or_default())
}
