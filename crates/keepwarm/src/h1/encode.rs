//! Writing an HTTP/1.1 request head: the request line, the caller's
//! headers as given (lower-case names, in the map's order) and
//! `Content-Length` for the body, which is always whole (`Bytes`).

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Uri};

/// Bodies up to this size go out in the head's buffer, one write; larger
/// ones in a second write, uncopied.
pub(crate) const INLINE_BODY: usize = 16 * 1024;

/// Appends the head of `method uri` with `headers` and a body of `body_len`
/// bytes to `out`. `uri` is in origin form (`/path?q`) or, to a proxy, in
/// absolute form.
pub(crate) fn head(
    out: &mut Vec<u8>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body_len: usize,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    if let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) {
        out.extend_from_slice(scheme.as_bytes());
        out.extend_from_slice(b"://");
        out.extend_from_slice(authority.as_str().as_bytes());
    }
    match uri.path_and_query().map(|p| p.as_str()) {
        Some(pq) if !pq.is_empty() => out.extend_from_slice(pq.as_bytes()),
        _ => out.push(b'/'),
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        // The body is whole: its length is ours to state, and it is never
        // chunked.
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if body_len > 0 || !matches!(*method, Method::GET | Method::HEAD | Method::CONNECT) {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa(body_len, &mut [0u8; 20]));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// `n` in decimal, written into the end of `buf`.
fn itoa(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(
        method: Method,
        uri: &str,
        headers: &[(&'static str, &'static str)],
        len: usize,
    ) -> String {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(*k, v.parse().unwrap());
        }
        let mut out = Vec::new();
        head(&mut out, &method, &uri.parse().unwrap(), &h, len);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn origin_form_with_length() {
        assert_eq!(
            text(Method::POST, "/v1/messages?beta=true", &[("host", "api.x"), ("x-a", "1")], 12),
            "POST /v1/messages?beta=true HTTP/1.1\r\nhost: api.x\r\nx-a: 1\r\ncontent-length: 12\r\n\r\n"
        );
    }

    #[test]
    fn a_get_without_body_has_no_length_and_a_post_says_zero() {
        assert_eq!(text(Method::GET, "/", &[], 0), "GET / HTTP/1.1\r\n\r\n");
        assert_eq!(
            text(Method::POST, "/", &[], 0),
            "POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n"
        );
    }

    #[test]
    fn absolute_form_and_the_callers_framing_headers_are_replaced() {
        assert_eq!(
            text(
                Method::PUT,
                "http://origin:8080/a",
                &[("content-length", "99"), ("transfer-encoding", "chunked")],
                3
            ),
            "PUT http://origin:8080/a HTTP/1.1\r\ncontent-length: 3\r\n\r\n"
        );
    }

    #[test]
    fn itoa_writes_decimal() {
        for n in [0usize, 7, 10, 65535, usize::MAX] {
            assert_eq!(itoa(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }
}
