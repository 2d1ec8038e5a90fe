//! Reading an HTTP/1.1 response: the head (httparse, header values shared
//! with the read buffer, not copied), how its body is framed (RFC 9112
//! §6.3), and the chunked decoder.

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Response, StatusCode, Version};

/// Most headers a response head may carry (hyper's limit too).
pub(crate) const MAX_HEADERS: usize = 100;
/// Largest response head, and largest chunk-size line plus trailers.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// How a response body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (`HEAD`, 1xx, 204, 304).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes (no length given): never reusable.
    UntilClose,
}

/// A parsed head: the response without its body and how the body is framed.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) response: Response<()>,
    pub(crate) framing: Framing,
}

/// Parses the response head at the start of `buf`, taking it out of `buf`
/// when complete: `Ok(None)` if more bytes are needed. Informational (1xx)
/// heads other than 101 are returned too; the caller skips them.
pub(crate) fn head(buf: &mut BytesMut, method: &Method) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err(format!("response head larger than {} KiB", MAX_HEAD / 1024));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(format!("response head has more than {MAX_HEADERS} headers"));
        }
        Err(e) => return Err(format!("malformed response head: {e}")),
    };
    let version = match resp.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let code = resp.code.unwrap_or(0);
    let status = StatusCode::from_u16(code).map_err(|_| format!("invalid status code {code}"))?;
    // Where each header sits in the head, so values can share its bytes.
    let base = buf.as_ptr() as usize;
    let mut spots = [(0usize, 0usize, 0usize, 0usize); MAX_HEADERS];
    let count = resp.headers.len();
    for (spot, h) in spots.iter_mut().zip(resp.headers.iter()) {
        let n = h.name.as_ptr() as usize - base;
        let v = h.value.as_ptr() as usize - base;
        *spot = (n, n + h.name.len(), v, v + h.value.len());
    }
    let bytes = buf.split_to(len).freeze();
    let mut map = HeaderMap::with_capacity(count);
    for &(n0, n1, v0, v1) in &spots[..count] {
        let name = HeaderName::from_bytes(&bytes[n0..n1]).map_err(|_| {
            format!(
                "invalid header name {:?}",
                String::from_utf8_lossy(&bytes[n0..n1])
            )
        })?;
        let value = HeaderValue::from_maybe_shared(bytes.slice(v0..v1))
            .map_err(|_| format!("invalid value of header {name}"))?;
        map.append(name, value);
    }
    let framing = framing(method, status, &map)?;
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = version;
    *response.headers_mut() = map;
    Ok(Some(Head { response, framing }))
}

/// RFC 9112 §6.3, for a response to `method`.
fn framing(method: &Method, status: StatusCode, headers: &HeaderMap) -> Result<Framing, String> {
    if *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Empty);
    }
    if let Some(last) = headers.get_all(TRANSFER_ENCODING).iter().next_back() {
        let last = last.to_str().unwrap_or("");
        let chunked = last
            .rsplit(',')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"));
        return Ok(if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    let mut length = None;
    for v in headers.get_all(CONTENT_LENGTH) {
        for part in v.to_str().unwrap_or("x").split(',') {
            let part = part.trim();
            let n = part
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| part.parse::<u64>().ok())
                .flatten()
                .ok_or_else(|| format!("invalid Content-Length {part:?}"))?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length values".into());
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(n) => Framing::Length(n),
        None => Framing::UntilClose,
    })
}

/// Where the chunked decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk: bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailers, then an empty line.
    Trailers,
    /// The body ended.
    Done,
}

/// One step of the chunked decoder.
#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    /// Body bytes.
    Data(Bytes),
    /// The trailer section (only when it has fields).
    Trailers(HeaderMap),
    /// `buf` holds too little: read more.
    More,
    /// The body ended.
    Done,
}

impl Chunked {
    /// Decodes from the start of `buf`, taking what it used.
    pub(crate) fn step(&mut self, buf: &mut BytesMut) -> Result<Step, String> {
        loop {
            match *self {
                Chunked::Size => {
                    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
                        if buf.len() > 1024 {
                            return Err("chunk-size line longer than 1 KiB".into());
                        }
                        return Ok(Step::More);
                    };
                    let line = &buf[..end];
                    let hex = line.split(|&b| b == b';').next().unwrap_or(b"");
                    let hex = std::str::from_utf8(hex).unwrap_or("").trim();
                    let size = (!hex.is_empty() && hex.len() <= 16)
                        .then(|| u64::from_str_radix(hex, 16).ok())
                        .flatten()
                        .ok_or_else(|| {
                            format!("invalid chunk size {:?}", String::from_utf8_lossy(line))
                        })?;
                    let _ = buf.split_to(end + 2);
                    *self = if size == 0 {
                        Chunked::Trailers
                    } else {
                        Chunked::Data(size)
                    };
                }
                Chunked::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    let take = (left as usize).min(buf.len());
                    let data = buf.split_to(take).freeze();
                    let left = left - take as u64;
                    *self = if left == 0 {
                        Chunked::DataEnd
                    } else {
                        Chunked::Data(left)
                    };
                    return Ok(Step::Data(data));
                }
                Chunked::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Step::More);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err("chunk data not followed by CRLF".into());
                    }
                    let _ = buf.split_to(2);
                    *self = Chunked::Size;
                }
                Chunked::Trailers => {
                    let mut fields = [httparse::EMPTY_HEADER; 32];
                    let (len, map) = match httparse::parse_headers(buf, &mut fields) {
                        Ok(httparse::Status::Complete((len, fields))) => {
                            let mut map = HeaderMap::new();
                            for f in fields.iter() {
                                if let (Ok(n), Ok(v)) = (
                                    HeaderName::from_bytes(f.name.as_bytes()),
                                    HeaderValue::from_bytes(f.value),
                                ) {
                                    map.append(n, v);
                                }
                            }
                            (len, map)
                        }
                        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                            return Err("trailers larger than 64 KiB".into())
                        }
                        Ok(httparse::Status::Partial) => return Ok(Step::More),
                        Err(e) => return Err(format!("malformed trailers: {e}")),
                    };
                    let _ = buf.split_to(len);
                    *self = Chunked::Done;
                    return Ok(if map.is_empty() {
                        Step::Done
                    } else {
                        Step::Trailers(map)
                    });
                }
                Chunked::Done => return Ok(Step::Done),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, method: Method) -> Result<Option<Head>, String> {
        head(&mut BytesMut::from(text), &method)
    }

    #[test]
    fn heads_and_framing() {
        let h = parse(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
            Method::GET,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Length(5));
        assert_eq!(h.response.headers()["x-a"], "b");
        assert_eq!(h.response.version(), Version::HTTP_11);
        let h = parse("HTTP/1.0 200 OK\r\n\r\n", Method::GET)
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.framing, h.response.version()),
            (Framing::UntilClose, Version::HTTP_10)
        );
        let h = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Method::HEAD)
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Empty);
        for status in ["204 No Content", "304 Not Modified", "100 Continue"] {
            let h = parse(
                &format!("HTTP/1.1 {status}\r\nContent-Length: 5\r\n\r\n"),
                Method::GET,
            );
            assert_eq!(h.unwrap().unwrap().framing, Framing::Empty);
        }
        let h = parse(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            Method::GET,
        );
        assert_eq!(h.unwrap().unwrap().framing, Framing::Chunked);
        let h = parse(
            "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n",
            Method::GET,
        );
        assert_eq!(h.unwrap().unwrap().framing, Framing::Length(3));
    }

    #[test]
    fn the_head_leaves_the_body_in_the_buffer() {
        let mut buf = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        head(&mut buf, &Method::GET).unwrap().unwrap();
        assert_eq!(&buf[..], b"hello");
        let mut partial = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Le");
        assert!(head(&mut partial, &Method::GET).unwrap().is_none());
        assert_eq!(partial.len(), 27);
    }

    #[test]
    fn bad_heads_are_errors_that_say_why() {
        let e = parse(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            Method::GET,
        );
        assert!(e.unwrap_err().contains("conflicting"));
        let e = parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", Method::GET);
        assert!(e.unwrap_err().contains("invalid Content-Length"));
        let e = parse("HTTP/1.1 2000 OK\r\n\r\n", Method::GET);
        assert!(e.unwrap_err().contains("malformed"));
        let e = parse("SSH-2.0-OpenSSH\r\n\r\n", Method::GET);
        assert!(e.unwrap_err().contains("malformed"));
        let many: String = (0..101).map(|i| format!("x-{i}: v\r\n")).collect();
        let e = parse(&format!("HTTP/1.1 200 OK\r\n{many}\r\n"), Method::GET);
        assert!(e.unwrap_err().contains("more than 100 headers"));
        let big = "x".repeat(MAX_HEAD + 1);
        let e = parse(&format!("HTTP/1.1 200 OK\r\nx-big: {big}"), Method::GET);
        assert!(e.unwrap_err().contains("64 KiB"));
    }

    fn decode_all(mut input: &[u8], piece: usize) -> Result<(Vec<u8>, Option<HeaderMap>), String> {
        let mut state = Chunked::Size;
        let mut buf = BytesMut::new();
        let (mut body, mut trailers) = (Vec::new(), None);
        loop {
            match state.step(&mut buf)? {
                Step::Data(d) => body.extend_from_slice(&d),
                Step::Trailers(t) => trailers = Some(t),
                Step::More if input.is_empty() => return Err("truncated".into()),
                Step::More => {
                    let n = piece.min(input.len());
                    buf.extend_from_slice(&input[..n]);
                    input = &input[n..];
                }
                Step::Done => {
                    assert!(buf.is_empty() && input.is_empty());
                    return Ok((body, trailers));
                }
            }
        }
    }

    #[test]
    fn chunked_in_any_pieces() {
        let wire = b"5;ext=1\r\nhello\r\nA\r\n, world!!!\r\n0\r\n\r\n";
        for piece in [1, 2, 3, 7, 100] {
            let (body, trailers) = decode_all(wire, piece).unwrap();
            assert_eq!(body, b"hello, world!!!");
            assert!(trailers.is_none());
        }
        let (_, trailers) = decode_all(b"1\r\na\r\n0\r\nx-sum: 9\r\n\r\n", 4).unwrap();
        assert_eq!(trailers.unwrap()["x-sum"], "9");
    }

    #[test]
    fn chunked_errors() {
        assert!(decode_all(b"zz\r\n", 10)
            .unwrap_err()
            .contains("invalid chunk size"));
        assert!(decode_all(b"2\r\nabX\r\n", 10)
            .unwrap_err()
            .contains("CRLF"));
        assert!(decode_all(b"11111111111111111\r\n", 100)
            .unwrap_err()
            .contains("invalid"));
        assert_eq!(decode_all(b"2\r\nab\r\n", 10).unwrap_err(), "truncated");
    }
}
