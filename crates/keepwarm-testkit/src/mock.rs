//! Mock LLM providers ([`MockProvider`]): an [`Upstream`] with a handler that
//! speaks a small, deterministic subset of the Anthropic Messages API or the
//! OpenAI Chat Completions API, JSON and streaming (SSE).

mod anthropic;
mod faulty;
mod openai;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::knobs::KnobSettings;
use crate::reply::Reply;
use crate::stats::RequestRecord;
use crate::upstream::Upstream;

pub use anthropic::anthropic_sse_body;
pub use faulty::{refused_url, Fault, FaultyProvider};
pub use openai::openai_sse_body;

/// Which provider API a [`MockProvider`] speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MockApi {
    /// Anthropic Messages API: `POST /v1/messages` (and
    /// `POST /v1/messages/count_tokens`), `x-api-key` auth.
    Anthropic,
    /// OpenAI Chat Completions API: `POST /v1/chat/completions`,
    /// `Authorization: Bearer` auth.
    OpenAi,
}

impl MockApi {
    fn endpoint_path(self) -> &'static str {
        match self {
            MockApi::Anthropic => "/v1/messages",
            MockApi::OpenAi => "/v1/chat/completions",
        }
    }

    fn default_key(self) -> &'static str {
        match self {
            MockApi::Anthropic => "sk-mock-anthropic",
            MockApi::OpenAi => "sk-mock-openai",
        }
    }
}

/// The default reply text of a [`MockProvider`].
const DEFAULT_TEXT: &str = "Hello from the mock provider";

/// A running mock LLM provider: an [`Upstream`] (plain or TLS) whose handler
/// answers like the Anthropic or OpenAI API with a fixed reply text.
///
/// Every request it reads is recorded ([`received`](Self::received)); the
/// upstream's [`stats`](Upstream::stats) and fault [`knobs`](Upstream::knobs)
/// work as usual. Responses carry a per-provider request counter `<seq>`
/// (1-based, in the order requests are answered) in ids and request-id
/// headers. Dropping it stops the server.
#[derive(Debug)]
pub struct MockProvider {
    api: MockApi,
    key: String,
    text: String,
    upstream: Upstream,
}

/// Builder for a [`MockProvider`]; every setting has a default.
#[must_use]
#[derive(Debug, Clone)]
pub struct MockProviderBuilder {
    api: MockApi,
    tls: bool,
    key: String,
    text: String,
    event_delay: Duration,
    header_delay: Duration,
    knobs: KnobSettings,
}

/// What the handler needs, shared by all requests.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) key: String,
    pub(crate) text: String,
    pub(crate) event_delay: Duration,
    pub(crate) header_delay: Duration,
    seq: AtomicU64,
}

impl Config {
    /// The next request number (1-based).
    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }
}

impl MockProviderBuilder {
    /// Serve TLS (see [`UpstreamBuilder::tls`](crate::UpstreamBuilder::tls));
    /// trust [`Upstream::ca_der`] and connect to `localhost`. Default `false`.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// The API key the mock accepts. Default `"sk-mock-anthropic"` /
    /// `"sk-mock-openai"`.
    pub fn key(mut self, k: impl Into<String>) -> Self {
        self.key = k.into();
        self
    }

    /// The reply text (split into words for streaming). Default
    /// `"Hello from the mock provider"`.
    pub fn text(mut self, t: impl Into<String>) -> Self {
        self.text = t.into();
        self
    }

    /// Delay between consecutive SSE events of a streaming reply (the first
    /// event goes out right after the headers; tokio time). Default zero.
    pub fn event_delay(mut self, d: Duration) -> Self {
        self.event_delay = d;
        self
    }

    /// Delay before the response headers of every reply (JSON, SSE and
    /// errors; tokio time; on top of the `header_delay` knob). Default zero.
    pub fn header_delay(mut self, d: Duration) -> Self {
        self.header_delay = d;
        self
    }

    /// Initial fault knobs of the underlying [`Upstream`]. Default:
    /// [`KnobSettings::default()`] (all off).
    pub fn knobs(mut self, k: KnobSettings) -> Self {
        self.knobs = k;
        self
    }

    /// Binds `127.0.0.1:0` and starts serving.
    ///
    /// # Panics
    /// If binding the listener or building the TLS configuration fails.
    pub async fn start(self) -> MockProvider {
        let cfg = Arc::new(Config {
            key: self.key.clone(),
            text: self.text.clone(),
            event_delay: self.event_delay,
            header_delay: self.header_delay,
            seq: AtomicU64::new(0),
        });
        let api = self.api;
        let upstream = Upstream::builder()
            .tls(self.tls)
            .knobs(self.knobs)
            .handler(move |req| {
                let seq = cfg.next_seq();
                let mut reply = match api {
                    MockApi::Anthropic => anthropic::handle(&cfg, seq, req),
                    MockApi::OpenAi => openai::handle(&cfg, seq, req),
                };
                reply.header_delay += cfg.header_delay;
                reply
            })
            .start()
            .await;
        MockProvider {
            api: self.api,
            key: self.key,
            text: self.text,
            upstream,
        }
    }
}

impl MockProvider {
    /// A builder with all defaults for `api` (plain HTTP, default key and
    /// text, no delays, knobs off).
    pub fn builder(api: MockApi) -> MockProviderBuilder {
        MockProviderBuilder {
            api,
            tls: false,
            key: api.default_key().to_owned(),
            text: DEFAULT_TEXT.to_owned(),
            event_delay: Duration::ZERO,
            header_delay: Duration::ZERO,
            knobs: KnobSettings::default(),
        }
    }

    /// A plain-HTTP Anthropic mock with defaults.
    pub async fn anthropic() -> MockProvider {
        Self::builder(MockApi::Anthropic).start().await
    }

    /// A plain-HTTP OpenAI mock with defaults.
    pub async fn openai() -> MockProvider {
        Self::builder(MockApi::OpenAi).start().await
    }

    /// Which API this mock speaks.
    pub fn api(&self) -> MockApi {
        self.api
    }

    /// The full endpoint URL: `http://127.0.0.1:PORT/v1/messages` or
    /// `…/v1/chat/completions` (`https://localhost:PORT/…` with TLS).
    pub fn endpoint(&self) -> String {
        self.upstream.url(self.api.endpoint_path())
    }

    /// The underlying server: `stats()`, `knobs()`, `ca_der()`, `addr()`,
    /// `url()`.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// The API key the mock accepts.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Every request the server read, in order (the upstream's
    /// `request_log`), including rejected and dropped ones.
    pub fn received(&self) -> Vec<RequestRecord> {
        self.upstream.stats().request_log
    }

    /// The reply text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// The first value of header `name` (lowercase), if any.
fn header<'a>(req: &'a RequestRecord, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The request path without its query string.
fn route(req: &RequestRecord) -> &str {
    req.path.split('?').next().unwrap_or_default()
}

/// Prompt token estimate: characters in the request body / 4, at least 1.
fn prompt_tokens(req: &RequestRecord) -> u64 {
    let chars = String::from_utf8_lossy(&req.body).chars().count();
    u64::try_from(chars / 4).unwrap_or(u64::MAX).max(1)
}

/// Number of whitespace-separated words in `text`.
fn word_count(text: &str) -> u64 {
    u64::try_from(text.split_whitespace().count()).unwrap_or(u64::MAX)
}

/// Splits `text` into streaming pieces: each word with the whitespace that
/// follows it (leading whitespace stays on the first piece), so the pieces
/// concatenate back to `text` exactly. "a b c" → ["a ", "b ", "c"].
fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    let mut seen_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            in_space = true;
        } else {
            if in_space && seen_word {
                out.push(&text[start..i]);
                start = i;
            }
            in_space = false;
            seen_word = true;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// A parsed request body: the model, whether streaming was asked for, and
/// the tool to call (see [`tool_to_call`]).
struct Body {
    model: String,
    stream: bool,
    /// OpenAI's `stream_options.include_usage`.
    include_usage: bool,
    tool: Option<String>,
}

/// The arguments every mock tool call carries, and the fragments a
/// streaming reply sends them in.
pub const MOCK_TOOL_ARGUMENTS: [&str; 3] = ["{\"query\":", " \"mock", "\"}"];

/// The first offered tool's name when the request offers tools and its last
/// message carries no tool result (so a tool round trip is: call, result,
/// text). Tools are OpenAI functions or Anthropic tools.
fn tool_to_call(v: &Value) -> Option<String> {
    let tool = v.get("tools")?.as_array()?.first()?;
    let name = tool
        .get("function")
        .and_then(|f| f.get("name"))
        .or_else(|| tool.get("name"))?
        .as_str()?;
    let last = v.get("messages")?.as_array()?.last()?;
    let answered = last.get("role").and_then(Value::as_str) == Some("tool")
        || last
            .get("content")
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
            });
    (!answered).then(|| name.to_owned())
}

/// Parses a JSON object body with a string `model`; `Err` names the problem.
fn parse_body(req: &RequestRecord) -> Result<Body, String> {
    let v: Value = serde_json::from_slice(&req.body)
        .map_err(|e| format!("request body is not valid JSON: {e}"))?;
    if !v.is_object() {
        return Err("request body must be a JSON object".to_owned());
    }
    let model = match v.get("model") {
        Some(Value::String(m)) => m.clone(),
        Some(_) => return Err("model: expected a string".to_owned()),
        None => return Err("model: field required".to_owned()),
    };
    let stream = v.get("stream") == Some(&Value::Bool(true));
    let include_usage = v.pointer("/stream_options/include_usage") == Some(&Value::Bool(true));
    let tool = tool_to_call(&v);
    Ok(Body {
        model,
        stream,
        include_usage,
        tool,
    })
}

/// The SSE reply for `events`: the first right away, then `delay` apart.
fn sse_reply(events: Vec<String>, delay: Duration) -> Reply {
    Reply::sse(
        events
            .into_iter()
            .enumerate()
            .map(|(i, e)| (if i == 0 { Duration::ZERO } else { delay }, e))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_concatenate_to_text() {
        assert_eq!(pieces("a b  c"), ["a ", "b  ", "c"]);
        assert_eq!(pieces(" a b\n"), [" a ", "b\n"]);
        assert_eq!(pieces("word"), ["word"]);
        assert!(pieces("").is_empty());
        assert_eq!(pieces("  "), ["  "]);
        for t in ["Hello from the mock provider", " x  y ", "héllo wörld"] {
            assert_eq!(pieces(t).concat(), t);
        }
        assert_eq!(word_count(DEFAULT_TEXT), 5);
    }

    #[test]
    fn prompt_tokens_at_least_one() {
        let rec = |body: &'static str| RequestRecord {
            conn: 1,
            seq_on_conn: 1,
            method: "POST".into(),
            path: "/".into(),
            headers: Vec::new(),
            body: body.into(),
        };
        assert_eq!(prompt_tokens(&rec("")), 1);
        assert_eq!(prompt_tokens(&rec("abcdefghi")), 2);
        assert_eq!(prompt_tokens(&rec("éééé")), 1);
    }
}
