//! The LLM routes: `POST /v1/messages` (+ `/count_tokens`) and
//! `POST /v1/chat/completions`. The body's `"model"` picks the provider, the
//! model is rewritten, the provider's key injected, and the response —
//! streaming or not — is forwarded frame by frame, never buffered. A caller
//! that goes away drops the upstream body, which closes that connection
//! (it is never returned to the pool half-read).

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, Uri};
use keepwarm::ConnectionInfo;
use serde_json::Value;

use crate::access_log::LoggedBody;
use crate::attempts;
use crate::body_json::{BodyError, TopLevel};
use crate::bridge;
use crate::config::ApiKind;
use crate::config::RouteTarget;
use crate::drain::CutAtDeadline;
use crate::error::{ApiError, Shape};
use crate::headers;
use crate::leased_body::LeasedBody;
use crate::request_body::{self, Bounds};
use crate::routing::route;
use crate::scenario::{self, Scenario};
use crate::state::AppState;
use crate::tokens;
use crate::transformer::Chain;

/// Which LLM endpoint a request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Anthropic `POST /v1/messages`.
    Messages,
    /// Anthropic `POST /v1/messages/count_tokens`.
    CountTokens,
    /// OpenAI `POST /v1/chat/completions`.
    ChatCompletions,
}

impl Endpoint {
    fn api(self) -> ApiKind {
        match self {
            Endpoint::Messages | Endpoint::CountTokens => ApiKind::Anthropic,
            Endpoint::ChatCompletions => ApiKind::OpenAi,
        }
    }

    fn shape(self) -> Shape {
        match self.api() {
            ApiKind::Anthropic => Shape::Anthropic,
            ApiKind::OpenAi => Shape::OpenAi,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Endpoint::CountTokens => "/count_tokens",
            _ => "",
        }
    }
}

/// `POST /v1/messages`
pub async fn messages(State(st): State<AppState>, req: Request) -> Response {
    forward(st, req, Endpoint::Messages).await
}

/// `POST /v1/messages/count_tokens`
pub async fn count_tokens(State(st): State<AppState>, req: Request) -> Response {
    forward(st, req, Endpoint::CountTokens).await
}

/// `POST /v1/chat/completions`
pub async fn chat_completions(State(st): State<AppState>, req: Request) -> Response {
    forward(st, req, Endpoint::ChatCompletions).await
}

async fn forward(st: AppState, req: Request, ep: Endpoint) -> Response {
    let started = Instant::now();
    match exchange(&st, req, ep, started).await {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(target: "keepwarm::access", status = e.status.as_u16(), error = %e.message, "request rejected");
            e.shaped(ep.shape()).into_response()
        }
    }
}

/// The provider's endpoint plus `suffix` on its path; its own query first,
/// then the caller's (`?api-version=…&beta=true`).
pub(crate) fn upstream_uri(base: &Uri, suffix: &str, query: Option<&str>) -> Result<Uri, ApiError> {
    let query = query.filter(|q| !q.is_empty());
    if suffix.is_empty() && query.is_none() {
        return Ok(base.clone()); // shares the parsed URI's bytes
    }
    let mut s = String::with_capacity(128);
    if let (Some(scheme), Some(authority)) = (base.scheme_str(), base.authority()) {
        s.push_str(scheme);
        s.push_str("://");
        s.push_str(authority.as_str());
    }
    let path = base.path().trim_end_matches('/');
    s.push_str(path);
    s.push_str(suffix);
    if path.is_empty() && suffix.is_empty() {
        s.push('/');
    }
    let mut sep = '?';
    for q in [base.query(), query].into_iter().flatten() {
        s.push(sep);
        s.push_str(q);
        sep = '&';
    }
    s.parse().map_err(|e| {
        ApiError::bad_request(
            "invalid_request",
            format!("cannot build the upstream URL: {e}"),
        )
    })
}

async fn exchange(
    st: &AppState,
    req: Request,
    ep: Endpoint,
    started: Instant,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let reg = st.registry();
    let config = reg.config();
    let bounds = Bounds {
        limit: config.body_limit,
        between: config.body_read_timeout,
        total: config.api_timeout,
    };
    let bytes = match request_body::read(body, bounds).await {
        Ok(b) => b,
        Err(e) => {
            if e.code == "request_timeout" {
                st.metrics().rejected("body_timeout");
            }
            return Err(e);
        }
    };
    let top = TopLevel::parse(&bytes).map_err(|e| match e {
        BodyError::Syntax(why) => ApiError::bad_request(
            "invalid_json",
            format!("request body is not valid JSON: {why}"),
        ),
        BodyError::NotAnObject => {
            ApiError::bad_request("invalid_request", "request body must be a JSON object")
        }
    })?;
    let missing = || {
        ApiError::bad_request(
            "missing_model",
            "missing \"model\": send \"provider,model\", e.g. \"anthropic,claude-sonnet-4-5\"",
        )
    };
    let raw = top.get("model").ok_or_else(missing)?;
    let model = match crate::body_json::string(raw) {
        Some(s) => s,
        None => match serde_json::from_str::<Value>(raw.get()) {
            Ok(other) => {
                return Err(ApiError::bad_request(
                    "invalid_model",
                    format!(
                        "\"model\" must be a string, got {}",
                        crate::translate::kind(&other)
                    ),
                ))
            }
            Err(_) => return Err(missing()),
        },
    };
    let mut parsed: Option<Value> = None;
    let (route, scenario) = if model.contains(',') {
        (route(&reg, &model)?, Scenario::Explicit)
    } else if config.router.targets().iter().any(|(k, _)| *k != "default") {
        // Scenarios read the body (and may take the subagent tag out of it).
        let mut v = full_json(&bytes)?;
        let d = scenario::decide(&mut v, &config.router, tokens::count_request);
        parsed = Some(v);
        let target = d.target.map(|t| t.to_string());
        (
            route(&reg, target.as_deref().unwrap_or(&model))?,
            d.scenario,
        )
    } else {
        (route(&reg, &model)?, Scenario::Default)
    };
    let provider = route.provider;
    st.metrics().route_request(scenario);
    if ep == Endpoint::CountTokens && provider.api() == ApiKind::OpenAi {
        let route_tag = format!("{} {},{}", scenario.as_str(), provider.name, route.model);
        let route_value = HeaderValue::from_str(&route_tag).ok();
        // An OpenAI-format provider has no count_tokens: estimate here.
        let v = match parsed {
            Some(v) => v,
            None => full_json(&bytes)?,
        };
        let n = tokens::count_request(&v);
        let mut out = axum::Json(serde_json::json!({ "input_tokens": n })).into_response();
        if let Some(v) = route_value {
            out.headers_mut().insert("x-keepwarm-route", v);
        }
        return Ok(out);
    }
    let body_for = |p: &crate::registry::Provider,
                    model: &str|
     -> Result<(Bytes, Option<bridge::Bridge>), ApiError> {
        let chain = Chain(
            (p.config.transformer.chain(model).into_iter())
                .cloned()
                .collect(),
        );
        if p.api() != ep.api() || !chain.0.is_empty() || parsed.is_some() {
            let mut v = match &parsed {
                Some(v) => v.clone(),
                None => full_json(&bytes)?,
            };
            bridge::request(ep.api(), p.api(), &p.name, &mut v, model, &chain)
        } else {
            Ok((Bytes::from(top.with_string("model", model)), None))
        }
    };
    let request = attempts::Request {
        parts: &parts,
        api: ep.api(),
        suffix: ep.suffix(),
        scenario: Some(scenario.as_str()),
        cross_api: ep != Endpoint::CountTokens,
        body: &body_for,
    };
    let first = RouteTarget {
        provider: provider.name.to_string(),
        model: route.model,
    };
    let deadline = tokio::time::Instant::from_std(started) + config.api_timeout;
    let before = started.elapsed();
    let served = attempts::send(st, &reg, &request, first, deadline).await?;
    let provider = served.provider;
    let route_value = HeaderValue::from_str(&served.route).ok();
    let upstream_wait = served.sent.elapsed();
    let overhead = started.elapsed().saturating_sub(upstream_wait).max(before);
    let resp = served.response;
    let info = resp.extensions().get::<ConnectionInfo>().copied();
    let (p, body) = resp.into_parts();
    let logged = LoggedBody::new(
        body,
        provider.name.clone(),
        served.model,
        p.status.as_u16(),
        info,
        started,
        provider.request_duration(st.metrics(), p.status.as_u16()),
    )
    .with_route(served.route);
    let down = headers::downstream_response(p.headers);
    let mut out = match &served.bridge {
        Some(b) => b.response(p.status, down, logged, config.body_limit).await,
        None => {
            let mut r = Response::new(Body::new(logged));
            *r.status_mut() = p.status;
            *r.headers_mut() = down;
            r
        }
    };
    out.headers_mut()
        .insert("x-keepwarm-attempts", count_header(served.attempts));
    let reused = info.is_some_and(|i| i.reused);
    let h = out.headers_mut();
    h.insert(
        "x-keepwarm-connection-reused",
        HeaderValue::from_static(if reused { "true" } else { "false" }),
    );
    h.insert("x-keepwarm-overhead-ms", millis_header(overhead));
    if let Some(v) = route_value {
        h.insert("x-keepwarm-route", v);
    }
    let sse = out
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let body = std::mem::take(out.body_mut());
    *out.body_mut() = Body::new(CutAtDeadline::new(
        body,
        st.cut_signal(),
        sse,
        ep.shape(),
        st.metrics().streams_cut(),
        st.config().shutdown_timeout.as_millis(),
    ));
    if let Some(lease) = served.lease {
        let body = std::mem::take(out.body_mut());
        *out.body_mut() = Body::new(LeasedBody::new(body, lease));
    }
    Ok(out)
}

/// A small count as a header value, without allocating for 0–9.
fn count_header(n: u32) -> HeaderValue {
    const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    match DIGITS.get(n as usize) {
        Some(d) => HeaderValue::from_static(d),
        None => HeaderValue::from(n),
    }
}

/// `d` in milliseconds with three decimals (`0.042`), formatted on the
/// stack: the header value is the one allocation.
fn millis_header(d: std::time::Duration) -> HeaderValue {
    use std::io::Write;
    let mut buf = [0u8; 32];
    let mut w = &mut buf[..];
    let _ = write!(w, "{:.3}", d.as_secs_f64() * 1000.0);
    let len = 32 - w.len();
    HeaderValue::from_bytes(&buf[..len]).unwrap_or(HeaderValue::from_static("0"))
}

/// The whole body as JSON (already checked to be an object).
fn full_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_headers() {
        for n in [0u32, 1, 9, 10, 12345] {
            assert_eq!(count_header(n), n.to_string().as_str());
        }
    }

    #[test]
    fn overhead_header_in_milliseconds() {
        let h = millis_header(std::time::Duration::from_micros(42));
        assert_eq!(h, "0.042");
        let h = millis_header(std::time::Duration::from_secs(90));
        assert_eq!(h, "90000.000");
    }

    #[test]
    fn upstream_uris() {
        let base: Uri = "https://api.example.com/v1/messages".parse().unwrap();
        assert_eq!(
            upstream_uri(&base, "/count_tokens", Some("beta=true")).unwrap(),
            "https://api.example.com/v1/messages/count_tokens?beta=true"
        );
        assert_eq!(
            upstream_uri(&base, "", None).unwrap(),
            "https://api.example.com/v1/messages"
        );
    }

    #[test]
    fn the_providers_query_is_kept_and_the_callers_follows_it() {
        let azure: Uri =
            "https://r.example/openai/deployments/d/chat/completions?api-version=2024-10-21"
                .parse()
                .unwrap();
        assert_eq!(upstream_uri(&azure, "", None).unwrap(), azure);
        assert_eq!(
            upstream_uri(&azure, "", Some("beta=true")).unwrap(),
            "https://r.example/openai/deployments/d/chat/completions?api-version=2024-10-21&beta=true"
        );
        let anthropic: Uri = "http://127.0.0.1:9/v1/messages/?key=k1".parse().unwrap();
        assert_eq!(
            upstream_uri(&anthropic, "/count_tokens", Some("beta=true")).unwrap(),
            "http://127.0.0.1:9/v1/messages/count_tokens?key=k1&beta=true"
        );
        assert_eq!(
            upstream_uri(&anthropic, "/count_tokens", Some("")).unwrap(),
            "http://127.0.0.1:9/v1/messages/count_tokens?key=k1"
        );
    }
}
