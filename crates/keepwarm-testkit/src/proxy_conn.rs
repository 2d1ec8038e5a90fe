//! One client connection of the [`ProxyServer`](crate::ProxyServer): read
//! request heads; tunnel a `CONNECT`; forward absolute-form requests over a
//! fresh origin connection each (`Connection: close` upstream), relaying the
//! answer with its framing so the client's connection stays open.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::proxy::{ProxyShared, ProxyStats};

/// Largest head read from either side.
const MAX_HEAD: usize = 64 * 1024;

/// A parsed head: method or status, target or reason, headers, length.
struct Head {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    len: usize,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads until `buf` holds a complete request head; `None` on EOF, error or
/// a malformed head.
async fn read_request(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Head> {
    loop {
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut slots);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(len)) => {
                return Some(Head {
                    method: req.method?.to_string(),
                    target: req.path?.to_string(),
                    headers: owned(req.headers),
                    len,
                })
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            _ => return None,
        }
        if !read_more(tcp, buf).await {
            return None;
        }
    }
}

fn owned(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

async fn read_more(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match tcp.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

async fn answer(tcp: &mut TcpStream, status: &str, extra: &str) -> bool {
    let msg = format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\n\r\n");
    tcp.write_all(msg.as_bytes()).await.is_ok()
}

/// Serves one client connection until it closes.
pub(crate) async fn run(mut tcp: TcpStream, shared: Arc<ProxyShared>) {
    let mut buf = Vec::new();
    loop {
        let Some(head) = read_request(&mut tcp, &mut buf).await else {
            return;
        };
        let auth = head.header("proxy-authorization").map(str::to_string);
        shared.update(|s| {
            s.targets.push(format!("{} {}", head.method, head.target));
            s.proxy_authorization.push(auth.clone());
        });
        let body_len: usize = head
            .header("content-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head.len + body_len {
            if !read_more(&mut tcp, &mut buf).await {
                return;
            }
        }
        let request: Vec<u8> = buf.drain(..head.len + body_len).collect();
        let connect = head.method.eq_ignore_ascii_case("CONNECT");
        if let Some(expected) = &shared.expected_auth {
            if auth.as_deref() != Some(expected.as_str()) {
                shared.update(|s| s.auth_required += 1);
                let ok = answer(
                    &mut tcp,
                    "407 Proxy Authentication Required",
                    "Proxy-Authenticate: Basic realm=\"testkit\"\r\n",
                )
                .await;
                if connect || !ok {
                    return;
                }
                continue;
            }
        }
        if connect {
            return tunnel(tcp, &head.target, buf, &shared).await;
        }
        if head.header("transfer-encoding").is_some() {
            answer(&mut tcp, "501 Not Implemented", "").await;
            return;
        }
        match forward(&mut tcp, &head, &request[head.len..], &shared).await {
            Forwarded::KeepAlive => {}
            Forwarded::Close => return,
        }
    }
}

async fn tunnel(mut tcp: TcpStream, target: &str, early: Vec<u8>, shared: &ProxyShared) {
    let upstream = if shared.refuse_connect {
        None
    } else {
        TcpStream::connect(target).await.ok()
    };
    let Some(mut upstream) = upstream else {
        shared.update(|s| s.bad_gateway += 1);
        answer(&mut tcp, "502 Bad Gateway", "").await;
        return;
    };
    let _ = upstream.set_nodelay(true);
    if tcp
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    shared.update(|s| {
        s.connects += 1;
        s.tunnels_open += 1;
    });
    struct Open<'a>(&'a ProxyShared);
    impl Drop for Open<'_> {
        fn drop(&mut self) {
            self.0.update(|s: &mut ProxyStats| s.tunnels_open -= 1);
        }
    }
    let _open = Open(shared);
    if !early.is_empty() && upstream.write_all(&early).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut upstream).await;
}

enum Forwarded {
    KeepAlive,
    Close,
}

/// Forwards one absolute-form request and relays the answer.
async fn forward(tcp: &mut TcpStream, head: &Head, body: &[u8], shared: &ProxyShared) -> Forwarded {
    let Some(rest) = head.target.strip_prefix("http://") else {
        answer(tcp, "400 Bad Request", "").await;
        return Forwarded::Close;
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let authority = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let Ok(mut up) = TcpStream::connect(&authority).await else {
        shared.update(|s| s.bad_gateway += 1);
        return if answer(tcp, "502 Bad Gateway", "").await {
            Forwarded::KeepAlive
        } else {
            Forwarded::Close
        };
    };
    let mut out = format!("{} {path} HTTP/1.1\r\n", head.method);
    for (n, v) in &head.headers {
        let n_l = n.to_ascii_lowercase();
        if !matches!(
            n_l.as_str(),
            "proxy-authorization" | "proxy-connection" | "connection" | "keep-alive"
        ) {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut req = out.into_bytes();
    req.extend_from_slice(body);
    if up.write_all(&req).await.is_err() {
        return Forwarded::Close;
    }
    shared.update(|s| s.forwarded += 1);
    // The answer head, re-framed without `Connection: close`.
    let mut buf = Vec::new();
    let (status, headers, len) = loop {
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut slots);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let status = format!("{} {}", resp.code.unwrap_or(502), resp.reason.unwrap_or(""));
                break (status, owned(resp.headers), len);
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            _ => return Forwarded::Close,
        }
        if !read_more(&mut up, &mut buf).await {
            return Forwarded::Close;
        }
    };
    let framed = headers.iter().any(|(n, _)| {
        n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding")
    });
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (n, v) in &headers {
        if !n.eq_ignore_ascii_case("connection") && !n.eq_ignore_ascii_case("keep-alive") {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
    }
    if !framed {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut first = out.into_bytes();
    first.extend_from_slice(&buf[len..]);
    if tcp.write_all(&first).await.is_err() {
        return Forwarded::Close;
    }
    // The origin closes after its answer (we asked it to).
    if tokio::io::copy(&mut up, tcp).await.is_err() || !framed {
        return Forwarded::Close;
    }
    Forwarded::KeepAlive
}
