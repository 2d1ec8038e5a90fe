//! One HTTP/2 exchange: open a stream on a leased connection, send the
//! request, wait for the response head; and what a failure means. A stream
//! the server refused (`REFUSED_STREAM`, or cut off by a graceful GOAWAY)
//! was not processed, so it is safe to send again elsewhere, whatever the
//! method.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::Reason;
use http::header::{CONNECTION, HOST, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, Method, Request, Response, Uri};
use keepwarm_pool::{CloseReason, Lease};

use super::body::H2Body;
use super::{H2Conn, StreamGuard};
use crate::client::ClientInner;
use crate::error::{Error, Kind};
use crate::key::Key;
use crate::pooled::Conn;

/// Why an exchange failed.
pub(crate) enum Failure {
    /// The server refused the stream without processing it: safe to send
    /// again on another connection, whatever the method.
    Refused(Error),
    /// Nothing was processed (or the request may be repeated): send it
    /// again on another connection.
    Retry(Error),
    /// Give up with this error.
    Fatal(Error),
}

/// The request head for HTTP/2: an absolute URI (`:scheme`, `:authority`)
/// and no connection-specific headers.
pub(crate) fn head(
    key: &Key,
    method: &Method,
    path: &Uri,
    headers: &HeaderMap,
) -> Result<Request<()>, Error> {
    let pq = path.path_and_query().map_or("/", |p| p.as_str());
    let uri = format!("{}://{}{}", key.scheme.as_str(), key.host_header(), pq)
        .parse::<Uri>()
        .map_err(|e| Error::invalid_url(format!("invalid URL for {key}: {e}")))?;
    let mut req = Request::new(());
    *req.method_mut() = method.clone();
    *req.uri_mut() = uri;
    *req.version_mut() = http::Version::HTTP_2;
    let h = req.headers_mut();
    for (name, value) in headers {
        let connection_specific = name == CONNECTION
            || name == HOST
            || name == TRANSFER_ENCODING
            || name == UPGRADE
            || name.as_str() == "keep-alive"
            || name.as_str() == "proxy-connection"
            || (name.as_str() == "te" && value != "trailers");
        if !connection_specific {
            h.append(name.clone(), value.clone());
        }
    }
    Ok(req)
}

/// A stream the server did not process: `REFUSED_STREAM`, or a graceful
/// GOAWAY that cut it off (above its last stream id, or opened as it came).
fn refused(e: &h2::Error) -> bool {
    e.is_remote()
        && ((e.is_reset() && e.reason() == Some(Reason::REFUSED_STREAM))
            || (e.is_go_away() && e.reason() == Some(Reason::NO_ERROR)))
}

/// Sends `head` + `body` on `conn` (leased as `lease`).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send(
    inner: &Arc<ClientInner>,
    key: &Key,
    lease: Lease<Key, Conn>,
    conn: H2Conn,
    head: Request<()>,
    body: Bytes,
    header_timeout: Duration,
    idempotent: bool,
) -> Result<Response<H2Body>, Failure> {
    let (reused, id) = (lease.info().reused, lease.info().id);
    let mut guard = StreamGuard::new(lease, conn.state.clone());
    let exchange = async {
        let mut sender = conn.send.clone().ready().await?;
        let (resp, mut stream) = sender.send_request(head, body.is_empty())?;
        inner.registry.count(key, |c| c.streams += 1);
        if !body.is_empty() {
            // Fails only when the stream already ended (reset, or cut off
            // by a GOAWAY): the response future says why.
            let _ = stream.send_data(body, true);
        }
        resp.await
    };
    let e = match tokio::time::timeout(header_timeout, exchange).await {
        Ok(Ok(resp)) => {
            let (parts, recv) = resp.into_parts();
            return Ok(Response::from_parts(parts, H2Body::new(recv, guard)));
        }
        Ok(Err(e)) => e,
        Err(_) => {
            guard.done();
            return Err(Failure::Fatal(Error::timeout(
                format_args!("waiting for response headers from {key} (HTTP/2)"),
                header_timeout,
            )));
        }
    };
    // A stream cut off by a GOAWAY can fail before the driver has seen the
    // GOAWAY: record it here so the retry goes to another connection.
    let goaway = e.is_go_away() && e.is_remote() && conn.state.mark_goaway();
    guard.done();
    if goaway {
        inner.registry.count(key, |c| c.goaways += 1);
        inner.pool.connection_draining(key, id, CloseReason::GoAway);
    }
    if refused(&e) {
        inner.registry.count(key, |c| c.refused += 1);
        let err = Error::new(
            Kind::Request,
            format!("{key} refused the HTTP/2 stream"),
            Some(Box::new(e)),
        );
        return Err(Failure::Refused(err));
    }
    let may_repeat = reused && idempotent && (e.is_io() || e.is_go_away());
    let err = Error::new(
        Kind::Request,
        format!("HTTP/2 request to {key} failed"),
        Some(Box::new(e)),
    );
    if may_repeat {
        return Err(Failure::Retry(err));
    }
    Err(Failure::Fatal(err))
}
