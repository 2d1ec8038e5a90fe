//! The `CONNECT` handshake with an HTTP proxy: ask for a tunnel to the
//! target, read the proxy's answer head (at most [`MAX_HEAD`] bytes, and
//! never a byte past it, so what the target sends first stays in the
//! socket), and turn a refusal into an error that names the proxy, the
//! target and the cause.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, Kind};
use crate::key::Key;
use crate::proxy::{authority, Proxy};

/// The longest proxy answer head read.
const MAX_HEAD: usize = 16 * 1024;

/// Asks `proxy` (connected on `stream`) for a tunnel to `key`'s origin.
/// The caller bounds the whole exchange with `connectTimeout`.
pub(crate) async fn connect(stream: &mut TcpStream, proxy: &Proxy, key: &Key) -> Result<(), Error> {
    let target = authority(&key.host, key.port);
    let fail = |cause: String, source: Option<std::io::Error>| {
        Error::new(
            Kind::Connect,
            format!(
                "proxy {proxy} refused CONNECT to {target} (for {}): {cause}",
                key.label
            ),
            source.map(|e| Box::new(e) as _),
        )
    };
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = proxy.authorization() {
        // Built from a header value: visible ASCII only.
        head.push_str("Proxy-Authorization: ");
        head.push_str(auth.to_str().unwrap_or_default());
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| fail("sending CONNECT failed".into(), Some(e)))?;
    let answer = read_head(stream)
        .await
        .map_err(|(cause, e)| fail(cause, e))?;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let code = match resp.parse(&answer) {
        Ok(httparse::Status::Complete(_)) => resp.code.unwrap_or(0),
        _ => {
            return Err(fail(
                format!(
                    "malformed answer `{}`",
                    String::from_utf8_lossy(&answer[..answer.len().min(80)]).trim_end()
                ),
                None,
            ))
        }
    };
    if (200..300).contains(&code) {
        return Ok(());
    }
    let reason = resp.reason.unwrap_or("").trim();
    let hint = match code {
        407 if proxy.authorization().is_some() => " (check the proxy's user:pass)",
        407 => " (the proxy wants credentials: http://user:pass@host:port)",
        _ => "",
    };
    Err(fail(format!("{code} {reason}{hint}"), None))
}

/// Reads the answer head up to and including its blank line, and no
/// further: peeks, then consumes only bytes that belong to the head.
async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, (String, Option<std::io::Error>)> {
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 2048];
    loop {
        let n = stream
            .peek(&mut buf)
            .await
            .map_err(|e| ("reading its answer failed".to_string(), Some(e)))?;
        if n == 0 {
            return Err((
                "it closed the connection before answering".to_string(),
                None,
            ));
        }
        // Where the head ends, counting bytes already taken.
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&buf[..n]);
        let end = head[from..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| from + i + 4);
        let take = match end {
            Some(end) => {
                let take = end - (head.len() - n);
                head.truncate(end);
                take
            }
            None => n,
        };
        stream
            .read_exact(&mut buf[..take])
            .await
            .map_err(|e| ("reading its answer failed".to_string(), Some(e)))?;
        if end.is_some() {
            return Ok(head);
        }
        if head.len() > MAX_HEAD {
            return Err((format!("its answer head is over {MAX_HEAD} bytes"), None));
        }
    }
}
