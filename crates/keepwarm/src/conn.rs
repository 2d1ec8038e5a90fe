//! Opening a connection: DNS, TCP (NODELAY, SO_KEEPALIVE) to the origin or
//! to its proxy (then a `CONNECT` tunnel when the origin is HTTPS or h2c),
//! TLS with ALPN, then an HTTP/1.1 connection (`h1`, no task of its own)
//! or HTTP/2's handshake and driver task (`http2::conn`).

use std::sync::Weak;
use std::time::Duration;

use rustls::pki_types::ServerName;
use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

use crate::client::ClientInner;
use crate::error::{Error, Kind};
use crate::h1::{Http1Conn, Io};
use crate::info::Handshake;
use crate::key::{Key, Scheme};
use crate::pooled::Conn;
use crate::protocol::Protocol;

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

/// Opens connection `id` for `key` (HTTP/2: and spawns its driver task).
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
            Scheme::Http => Ok(Conn::H1(http1(
                client,
                key,
                id,
                Io::Plain(stream),
                Handshake::None,
            ))),
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
                    Ok(Conn::H1(http1(
                        client,
                        key,
                        id,
                        Io::Tls(Box::new(tls)),
                        kind,
                    )))
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

/// An HTTP/1.1 connection over `io`, registered as open.
fn http1(client: &Weak<ClientInner>, key: &Key, id: u64, io: Io, kind: Handshake) -> Http1Conn {
    if let Some(c) = client.upgrade() {
        c.registry.opened(key, id, None);
    }
    Http1Conn::new(client, key, id, io, kind)
}
