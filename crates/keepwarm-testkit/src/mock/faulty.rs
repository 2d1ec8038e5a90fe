//! [`FaultyProvider`]: a mock provider that accepts several API keys and
//! misbehaves on cue — a key that is always rate limited (`429` with the
//! headers you give, e.g. `retry-after`), a queue of next answers (`529`,
//! `503`, … once, then normal service), or requests that hang — for testing
//! key pools, retries, circuit breakers and fallbacks against a real server.
//! [`refused_url`] gives an address where connections are refused.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::json;

use super::{anthropic, header, openai, MockApi};
use crate::reply::Reply;
use crate::stats::RequestRecord;
use crate::upstream::Upstream;

/// One scripted misbehaviour, used for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with an error body in the provider's shape and
    /// these extra headers.
    Status(u16, Vec<(String, String)>),
    /// Never answer (the headers wait one hour of tokio time).
    Hang,
}

impl Fault {
    /// `status` with no extra headers.
    pub fn status(status: u16) -> Fault {
        Fault::Status(status, Vec::new())
    }
}

#[derive(Debug, Default)]
struct Script {
    /// Keys answered `429` with these headers, every time.
    rate_limited: Vec<(String, Vec<(String, String)>)>,
    /// Faults for the next requests, in order.
    next: VecDeque<Fault>,
}

/// A running mock provider with several accepted keys and scripted faults.
/// Requests it does not fault are answered like [`MockProvider`](crate::MockProvider)
/// (JSON or SSE, default reply text). Dropping it stops the server.
#[derive(Debug)]
pub struct FaultyProvider {
    api: MockApi,
    upstream: Upstream,
    script: Arc<Mutex<Script>>,
}

fn lock(s: &Mutex<Script>) -> MutexGuard<'_, Script> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// The API key a request carries (`x-api-key`, or the `Bearer` token).
fn key_of(api: MockApi, req: &RequestRecord) -> Option<&str> {
    match api {
        MockApi::Anthropic => header(req, "x-api-key"),
        MockApi::OpenAi => header(req, "authorization")
            .and_then(|v| v.split_once(' '))
            .map(|(_, token)| token.trim()),
    }
}

/// An error reply in the provider's shape.
fn error_reply(api: MockApi, status: u16, headers: &[(String, String)]) -> Reply {
    let (kind, msg) = match status {
        429 => ("rate_limit_error", "rate limited (injected)"),
        529 => ("overloaded_error", "overloaded (injected)"),
        _ => ("api_error", "server error (injected)"),
    };
    let body = match api {
        MockApi::Anthropic => json!({"type": "error", "error": {"type": kind, "message": msg}}),
        MockApi::OpenAi => json!({"error": {"message": msg, "type": kind, "code": null}}),
    };
    let mut r = Reply::json(status, &body);
    r.headers.extend(headers.iter().cloned());
    r
}

impl FaultyProvider {
    /// Starts a plain-HTTP mock of `api` on `127.0.0.1:0` that accepts each
    /// of `keys` (any other key gets `401`).
    ///
    /// # Panics
    /// If binding the listener fails.
    pub async fn start(api: MockApi, keys: &[&str]) -> FaultyProvider {
        let script = Arc::new(Mutex::new(Script::default()));
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        let seq = Arc::new(AtomicU64::new(0));
        let s = Arc::clone(&script);
        let upstream = Upstream::builder()
            .handler(move |req| {
                let key = key_of(api, req).unwrap_or_default();
                let fault = {
                    let mut s = lock(&s);
                    match s.rate_limited.iter().find(|(k, _)| k == key) {
                        Some((_, h)) => Some(Fault::Status(429, h.clone())),
                        None => s.next.pop_front(),
                    }
                };
                match fault {
                    Some(Fault::Status(status, headers)) => {
                        return error_reply(api, status, &headers)
                    }
                    Some(Fault::Hang) => {
                        let mut r = error_reply(api, 504, &[]);
                        r.header_delay = Duration::from_secs(3600);
                        return r;
                    }
                    None => {}
                }
                // Answer as the plain mock would, as if `key` were its key.
                let accepted = keys.iter().any(|k| k == key);
                let cfg = super::Config {
                    key: if accepted {
                        key.to_owned()
                    } else {
                        String::from("\u{0}no key")
                    },
                    text: super::DEFAULT_TEXT.to_owned(),
                    event_delay: Duration::ZERO,
                    header_delay: Duration::ZERO,
                    seq: AtomicU64::new(0),
                };
                let n = seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                match api {
                    MockApi::Anthropic => anthropic::handle(&cfg, n, req),
                    MockApi::OpenAi => openai::handle(&cfg, n, req),
                }
            })
            .start()
            .await;
        FaultyProvider {
            api,
            upstream,
            script,
        }
    }

    /// From now on every request with `key` is answered `429` with
    /// `headers` (e.g. `[("retry-after", "30")]`).
    pub fn rate_limit_key(&self, key: &str, headers: &[(&str, &str)]) {
        let headers = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        lock(&self.script)
            .rate_limited
            .push((key.to_owned(), headers));
    }

    /// The next request (after any already queued) gets `fault`.
    pub fn push(&self, fault: Fault) {
        lock(&self.script).next.push_back(fault);
    }

    /// The next `n` requests are answered `status`.
    pub fn fail_next(&self, n: usize, status: u16) {
        (0..n).for_each(|_| self.push(Fault::status(status)));
    }

    /// Requests the server read that carried `key`.
    pub fn requests_with_key(&self, key: &str) -> usize {
        let log = self.upstream.stats().request_log;
        log.iter()
            .filter(|r| key_of(self.api, r) == Some(key))
            .count()
    }

    /// Every request the server read, in order.
    pub fn received(&self) -> Vec<RequestRecord> {
        self.upstream.stats().request_log
    }

    /// The endpoint URL (`http://127.0.0.1:PORT/v1/messages` or
    /// `…/v1/chat/completions`).
    pub fn endpoint(&self) -> String {
        self.upstream.url(self.api.endpoint_path())
    }

    /// The underlying server (`stats()`, `knobs()`, `addr()`).
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }
}

/// `http://127.0.0.1:PORT{path}` for a port that was just bound and
/// released, so connecting to it is refused.
///
/// # Panics
/// If binding a port fails.
pub fn refused_url(path: &str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = l.local_addr().expect("local_addr").port();
    drop(l);
    format!("http://127.0.0.1:{port}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn post(url: &str, key: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let body = r#"{"model":"m","max_tokens":5,"messages":[]}"#;
        let req = format!(
            "POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: {key}\r\nanthropic-version: 2023-06-01\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let status = out[9..12].parse().unwrap();
        (status, out)
    }

    #[tokio::test]
    async fn keys_faults_and_refusals() {
        let p = FaultyProvider::start(MockApi::Anthropic, &["k1", "k2"]).await;
        let url = p.endpoint();
        assert_eq!(post(&url, "k1").await.0, 200);
        assert_eq!(post(&url, "k2").await.0, 200);
        assert_eq!(post(&url, "k3").await.0, 401);
        p.rate_limit_key("k1", &[("retry-after", "7")]);
        let (status, text) = post(&url, "k1").await;
        assert!(
            status == 429 && text.to_ascii_lowercase().contains("retry-after: 7"),
            "{text}"
        );
        p.fail_next(1, 529);
        assert_eq!(post(&url, "k2").await.0, 529);
        assert_eq!(post(&url, "k2").await.0, 200);
        assert_eq!(
            (p.requests_with_key("k1"), p.requests_with_key("k2")),
            (2, 3)
        );
        let refused = refused_url("/v1/messages");
        let addr = refused
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
