//! HTTP/1.1 request parsing (httparse) and response encoding.
//!
//! Parsing is stateless: [`parse_request`] is re-run on the whole buffer
//! whenever more bytes arrive, and reports how many bytes one complete
//! request (head and body) used, so pipelined leftovers stay in the buffer.

use bytes::Bytes;

/// Largest accepted request head.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Most request headers accepted.
const MAX_HEADERS: usize = 128;

/// A fully read request.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
    /// The client asked to close after this request.
    pub(crate) wants_close: bool,
}

/// Result of one parse attempt.
#[derive(Debug)]
pub(crate) enum Parse {
    /// A complete request and the number of buffer bytes it used.
    Done(Request, usize),
    /// More bytes are needed.
    Partial,
    /// Malformed request (answer 400 and close).
    Invalid,
}

/// Tries to parse one complete request from the start of `buf`.
pub(crate) fn parse_request(buf: &[u8]) -> Parse {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => return Parse::Partial,
        _ => return Parse::Invalid,
    };
    if head_len > MAX_HEAD {
        return Parse::Invalid;
    }
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
        return Parse::Invalid;
    };
    let (body, used) = match framing(&headers) {
        Err(()) => return Parse::Invalid,
        Ok(Framing::Length(len)) => {
            let Ok(len) = usize::try_from(len) else {
                return Parse::Invalid;
            };
            let Some(end) = head_len.checked_add(len) else {
                return Parse::Invalid;
            };
            if buf.len() < end {
                return Parse::Partial;
            }
            (Bytes::copy_from_slice(&buf[head_len..end]), end - head_len)
        }
        Ok(Framing::Chunked) => match decode_chunked(&buf[head_len..]) {
            Parse2::Done(body, used) => (body, used),
            Parse2::Partial => return Parse::Partial,
            Parse2::Invalid => return Parse::Invalid,
        },
    };
    let wants_close = connection_has(&headers, "close")
        || (minor == 0 && !connection_has(&headers, "keep-alive"));
    let request = Request {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
        body,
        wants_close,
    };
    Parse::Done(request, head_len + used)
}

enum Framing {
    Length(u64),
    Chunked,
}

fn framing(headers: &[(String, String)]) -> Result<Framing, ()> {
    let te: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n == "transfer-encoding")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if let Some(last) = te.last() {
        return if last.eq_ignore_ascii_case("chunked") {
            Ok(Framing::Chunked)
        } else {
            Err(())
        };
    }
    let mut len = None;
    for (_, v) in headers.iter().filter(|(n, _)| n == "content-length") {
        let n: u64 = v.trim().parse().map_err(|_| ())?;
        if len.is_some_and(|l| l != n) {
            return Err(());
        }
        len = Some(n);
    }
    Ok(Framing::Length(len.unwrap_or(0)))
}

fn connection_has(headers: &[(String, String)], token: &str) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n == "connection")
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

enum Parse2 {
    Done(Bytes, usize),
    Partial,
    Invalid,
}

/// Decodes a chunked body at the start of `buf`.
fn decode_chunked(buf: &[u8]) -> Parse2 {
    let mut body = Vec::new();
    let mut pos = 0usize;
    loop {
        let rest = &buf[pos..];
        let (idx, size) = match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete(v)) => v,
            Ok(httparse::Status::Partial) => return Parse2::Partial,
            Err(_) => return Parse2::Invalid,
        };
        pos += idx;
        if size == 0 {
            // Optional trailers, then an empty line.
            let rest = &buf[pos..];
            if rest.starts_with(b"\r\n") {
                return Parse2::Done(body.into(), pos + 2);
            }
            return match rest.windows(4).position(|w| w == b"\r\n\r\n") {
                Some(i) => Parse2::Done(body.into(), pos + i + 4),
                None if rest.len() > MAX_HEAD => Parse2::Invalid,
                None => Parse2::Partial,
            };
        }
        let Ok(size) = usize::try_from(size) else {
            return Parse2::Invalid;
        };
        let Some(end) = pos.checked_add(size).and_then(|e| e.checked_add(2)) else {
            return Parse2::Invalid;
        };
        if buf.len() < end {
            return Parse2::Partial;
        }
        if &buf[end - 2..end] != b"\r\n" {
            return Parse2::Invalid;
        }
        body.extend_from_slice(&buf[pos..end - 2]);
        pos = end;
    }
}

/// How the response body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyMode {
    /// `Content-Length` of the full body.
    Length,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// No body and no framing header (1xx, 204, 304).
    None,
}

/// Response head options.
#[derive(Debug)]
pub(crate) struct Head<'a> {
    pub(crate) http10: bool,
    /// Status code (`200` for the fixed-body responses).
    pub(crate) status: u16,
    pub(crate) conn: u64,
    pub(crate) seq: u64,
    pub(crate) body_len: usize,
    pub(crate) mode: BodyMode,
    /// Send `Connection: close`.
    pub(crate) close: bool,
    /// `Keep-Alive: timeout=N[, max=M]`.
    pub(crate) keep_alive: Option<(u64, Option<u64>)>,
    /// Extra headers (from a handler's reply); framing and `Connection`
    /// headers among them are skipped, a `Content-Type` replaces the default.
    pub(crate) extra: &'a [(String, String)],
}

/// The reason phrase for common status codes.
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "Status",
    }
}

/// Whether a response with this status never has a body.
pub(crate) fn bodyless_status(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

/// Encodes a response head.
pub(crate) fn encode_head(h: &Head<'_>) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    let version = if h.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    out.push_str(&format!("{version} {} {}\r\n", h.status, reason(h.status)));
    match h.mode {
        BodyMode::Length => out.push_str(&format!("Content-Length: {}\r\n", h.body_len)),
        BodyMode::Chunked => out.push_str("Transfer-Encoding: chunked\r\n"),
        BodyMode::None => {}
    }
    let has = |name: &str| h.extra.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !has("content-type") {
        out.push_str("Content-Type: text/plain\r\n");
    }
    out.push_str(&format!("X-Upstream-Conn: {}\r\n", h.conn));
    out.push_str(&format!("X-Upstream-Seq: {}\r\n", h.seq));
    for (name, value) in h.extra {
        let skip = ["content-length", "transfer-encoding", "connection"];
        if !skip.iter().any(|s| name.eq_ignore_ascii_case(s)) {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if h.close {
        out.push_str("Connection: close\r\n");
    } else if let Some((timeout, max)) = h.keep_alive {
        match max {
            Some(m) => out.push_str(&format!("Keep-Alive: timeout={timeout}, max={m}\r\n")),
            None => out.push_str(&format!("Keep-Alive: timeout={timeout}\r\n")),
        }
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// Whether a header list has a `Connection` header with the `close` token.
pub(crate) fn says_close(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("close"))
}

/// Encodes an empty `400 Bad Request` that closes the connection.
pub(crate) fn bad_request() -> &'static [u8] {
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
}

/// Appends one chunk (non-empty `data`) in chunked encoding.
pub(crate) fn push_chunk(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The terminating zero-size chunk.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Splits `body` into up to 4 non-empty, nearly equal parts.
pub(crate) fn split4(body: &[u8]) -> Vec<&[u8]> {
    let (base, extra) = (body.len() / 4, body.len() % 4);
    let mut parts = Vec::with_capacity(4);
    let mut pos = 0;
    for i in 0..4 {
        let len = base + usize::from(i < extra);
        if len > 0 {
            parts.push(&body[pos..pos + len]);
        }
        pos += len;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelined_and_chunked() {
        let buf = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi";
        let Parse::Done(r, used) = parse_request(buf) else {
            panic!()
        };
        assert_eq!(&r.body[..], b"abc");
        assert_eq!(r.path, "/a");
        let Parse::Done(r2, used2) = parse_request(&buf[used..]) else {
            panic!()
        };
        assert_eq!(&r2.body[..], b"hi");
        assert_eq!(used + used2, buf.len());
        assert!(matches!(parse_request(&buf[..used - 3]), Parse::Partial));
        assert!(matches!(
            parse_request(b"\x00garbage\r\n\r\n"),
            Parse::Invalid
        ));
        assert_eq!(split4(b"ok"), vec![&b"o"[..], &b"k"[..]]);
        assert_eq!(split4(b"abcdefgh").len(), 4);
        assert_eq!(split4(b"abcde").concat(), b"abcde");
        assert_eq!(split4(b"abcde").len(), 4);
    }
}
