//! Raw-socket HTTP/1.1 client helpers shared by the tests.
#![allow(dead_code, unreachable_pub)]

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A parsed response.
#[derive(Debug)]
pub struct Resp {
    pub version: u8,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// For chunked bodies: each chunk's data, in order.
    pub chunks: Vec<Vec<u8>>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends a GET with an empty body.
pub async fn send_get<S: AsyncWrite + Unpin>(s: &mut S, path: &str) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    s.flush().await.unwrap();
}

/// Reads one response with a Content-Length or chunked body. `buf` keeps
/// leftovers between calls. Returns `None` on EOF before a full head.
pub async fn read_resp<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> Option<Resp> {
    loop {
        let mut slots = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Response::new(&mut slots);
        if let httparse::Status::Complete(n) = r.parse(buf).unwrap() {
            let headers: Vec<(String, String)> = r
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_owned(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let mut resp = Resp {
                version: r.version.unwrap(),
                status: r.code.unwrap(),
                headers,
                body: Vec::new(),
                chunks: Vec::new(),
            };
            buf.drain(..n);
            if resp.header("transfer-encoding").is_some() {
                resp.chunks = read_chunked(s, buf).await;
                resp.body = resp.chunks.concat();
            } else {
                let len: usize = resp.header("content-length").unwrap().parse().unwrap();
                while buf.len() < len {
                    if read_more(s, buf).await == 0 {
                        panic!("EOF in body after {} of {len} bytes", buf.len());
                    }
                }
                resp.body = buf.drain(..len).collect();
            }
            return Some(resp);
        }
        if read_more(s, buf).await == 0 {
            return None;
        }
    }
}

/// Reads a chunked body; returns each chunk's data.
async fn read_chunked<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        match httparse::parse_chunk_size(buf).unwrap() {
            httparse::Status::Complete((idx, 0)) => {
                while buf.len() < idx + 2 {
                    assert!(read_more(s, buf).await > 0);
                }
                buf.drain(..idx + 2);
                return body;
            }
            httparse::Status::Complete((idx, size)) => {
                let end = idx + size as usize + 2;
                if buf.len() >= end {
                    body.push(buf[idx..end - 2].to_vec());
                    buf.drain(..end);
                    continue;
                }
            }
            httparse::Status::Partial => {}
        }
        assert!(read_more(s, buf).await > 0, "EOF in chunked body");
    }
}

/// Sends a request with `headers` and a `Content-Length` body.
pub async fn send_req<S: AsyncWrite + Unpin>(
    s: &mut S,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).await.unwrap();
    s.flush().await.unwrap();
}

/// Reads more bytes into `buf`; returns 0 on EOF (or error).
pub async fn read_more<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> usize {
    let mut tmp = [0u8; 4096];
    let n = s.read(&mut tmp).await.unwrap_or(0);
    buf.extend_from_slice(&tmp[..n]);
    n
}
