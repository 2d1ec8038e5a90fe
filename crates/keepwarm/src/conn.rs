//! Opening a connection: DNS, TCP (NODELAY, SO_KEEPALIVE) to the origin or
//! to its proxy (then a `CONNECT` tunnel when the origin is HTTPS or h2c),
//! TLS with ALPN, then the HTTP/1.1 handshake (here) or HTTP/2's
//! (`http2::conn`), and the task that drives it and tells the pool when it
//! ends.

use std::sync::Weak;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

use crate::client::ClientInner;
use crate::error::{Error, Kind};
use crate::info::Handshake;
use crate::key::{Key, Scheme};
use crate::pooled::Conn;
use crate::protocol::Protocol;

/// An HTTP/1.1 connection as the pool holds it.
pub(crate) struct Http1Conn {
    pub(crate) sender: SendRequest<Full<Bytes>>,
    pub(crate) handshake: Handshake,
}

/// TCP to `key`'s origin, or to its proxy when it has one.
async fn tcp(key: &Key, keepalive: Duration) -> Result<TcpStream, Error> {
    let (host, port, what) = match &key.proxy {
        Some(p) => (p.host(), p.port(), format!("proxy {p} for {key}")),
        None => (&*key.host, key.port, key.to_string()),
    };
    let addrs = tokio::net::lookup_host((host, port)).await.map_err(|e| {
        Error::new(
            Kind::Connect,
            format!("resolving {what} failed"),
            Some(Box::new(e)),
        )
    })?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                stream.set_nodelay(true).ok();
                let ka = TcpKeepalive::new().with_time(keepalive);
                SockRef::from(&stream).set_tcp_keepalive(&ka).ok();
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    let source = last.unwrap_or_else(|| std::io::Error::other("no address found"));
    Err(Error::new(
        Kind::Connect,
        format!("connect to {what} failed"),
        Some(Box::new(source)),
    ))
}

fn tls_error(key: &Key, e: std::io::Error, protocol: Protocol) -> Error {
    let is_tls = e
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
    let kind = if is_tls { Kind::Tls } else { Kind::Connect };
    Error::new(
        kind,
        if protocol == Protocol::Http2 {
            format!("TLS handshake with {key} failed (protocol http2 offers ALPN h2 only)")
        } else {
            format!("TLS handshake with {key} failed")
        },
        Some(Box::new(e)),
    )
}

/// Opens connection `id` for `key` and spawns its driver task.
pub(crate) async fn open(client: &Weak<ClientInner>, key: &Key, id: u64) -> Result<Conn, Error> {
    let inner = client
        .upgrade()
        .ok_or_else(|| Error::builder("the client was dropped"))?;
    let connect_timeout = inner.opts_for(key).connect_timeout;
    let protocol = inner.protocol_for(key);
    let work = async {
        let mut stream = tcp(key, inner.opts_for(key).keep_alive_msecs).await?;
        // HTTPS and h2c go through a tunnel; plain HTTP/1.1 talks to the
        // proxy itself, in absolute form.
        let tunnel = key.scheme == Scheme::Https || protocol == Protocol::Http2;
        if let (Some(proxy), true) = (&key.proxy, tunnel) {
            crate::tunnel::connect(&mut stream, proxy, key).await?;
        }
        match key.scheme {
            Scheme::Http if protocol == Protocol::Http2 => {
                crate::http2::conn::handshake(client, key, id, stream, Handshake::None)
                    .await
                    .map(Conn::H2)
            }
            Scheme::Http => handshake(client, key, id, TokioIo::new(stream), Handshake::None)
                .await
                .map(Conn::H1),
            Scheme::Https => {
                let name = ServerName::try_from(key.host.to_string()).map_err(|e| {
                    Error::invalid_url(format!(
                        "`{}` is not a valid TLS server name: {e}",
                        key.host
                    ))
                })?;
                let tls = tokio_rustls::TlsConnector::from(inner.tls_for(key, protocol))
                    .connect(name, stream)
                    .await
                    .map_err(|e| tls_error(key, e, protocol))?;
                let kind = match tls.get_ref().1.handshake_kind() {
                    Some(rustls::HandshakeKind::Resumed) => Handshake::Resumed,
                    _ => Handshake::Full,
                };
                inner.count_handshake(key, kind);
                // The ALPN branch: the server picked the protocol.
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                if h2 {
                    crate::http2::conn::handshake(client, key, id, tls, kind)
                        .await
                        .map(Conn::H2)
                } else if protocol == Protocol::Http2 {
                    Err(Error::new(
                        Kind::Connect,
                        format!("{key} did not agree to HTTP/2 in ALPN (protocol is http2)"),
                        None,
                    ))
                } else {
                    handshake(client, key, id, TokioIo::new(tls), kind)
                        .await
                        .map(Conn::H1)
                }
            }
        }
    };
    match tokio::time::timeout(connect_timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(Error::timeout(
            format_args!("connect to {key} (connectTimeout)"),
            connect_timeout,
        )),
    }
}

async fn handshake<T>(
    client: &Weak<ClientInner>,
    key: &Key,
    id: u64,
    io: TokioIo<T>,
    kind: Handshake,
) -> Result<Http1Conn, Error>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| {
            Error::new(
                Kind::Connect,
                format!("HTTP/1.1 handshake with {key} failed"),
                Some(Box::new(e)),
            )
        })?;
    if let Some(c) = client.upgrade() {
        c.registry.opened(key, id, None);
    }
    let (client, key) = (client.clone(), key.clone());
    tokio::spawn(async move {
        // Ends when the peer closes, on an error, on unexpected bytes while
        // idle, or when the pool drops the sender.
        let _ = conn.await;
        if let Some(c) = client.upgrade() {
            c.registry.closed(id);
            c.pool.connection_closed(&key, id);
        }
    });
    Ok(Http1Conn {
        sender,
        handshake: kind,
    })
}
