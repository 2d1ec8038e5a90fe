//! The management endpoints' handlers.

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use http::StatusCode;
use serde_json::{json, Value};

use crate::management::health::assess;
use crate::management::view::{overview, provider_views, ProviderView};
use crate::state::AppState;

/// The `/api/connections` routes (nest them under that prefix).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/stats", get(stats))
        .route("/provider/{name}", get(provider))
        .route("/providers", get(providers))
        .route("/health", get(health))
        .route("/details", get(details))
        .route("/stream", get(stream))
        .route("/destroy/{provider}", post(destroy))
        .route("/config", get(config))
}

fn timestamp() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    // RFC 3339 in UTC, millisecond precision, without a date crate.
    let (secs, millis) = ((ms / 1000) as i64, (ms % 1000) as u32);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}

/// A management answer: `{"success": true, "data": …}`.
pub(crate) fn ok(data: Value) -> Json<Value> {
    Json(json!({ "success": true, "data": data, "timestamp": timestamp() }))
}

/// A management error: `{"success": false, "error": …}`.
pub(crate) fn fail(status: StatusCode, error: impl Into<String>) -> Response {
    let body = json!({ "success": false, "error": error.into(), "timestamp": timestamp() });
    (status, Json(body)).into_response()
}

fn stats_data(st: &AppState) -> Value {
    let views = provider_views(st);
    let mut data = overview(&views).json();
    data["providers"] = views.iter().map(|v| summary(st, v)).collect();
    data
}

/// The seed's summary plus the provider's `resilience` object.
fn summary(st: &AppState, v: &crate::management::ProviderView) -> Value {
    let mut data = v.summary();
    if let Some(g) = st.registry().resilience().get(&v.name) {
        data["resilience"] = super::resilience::provider_json(g);
    }
    data
}

async fn stats(State(st): State<AppState>) -> Json<Value> {
    ok(stats_data(&st))
}

async fn provider(State(st): State<AppState>, Path(name): Path<String>) -> Response {
    match provider_views(&st)
        .into_iter()
        .find(|v| v.name.eq_ignore_ascii_case(&name))
    {
        Some(v) => ok(summary(&st, &v)).into_response(),
        None => fail(
            StatusCode::NOT_FOUND,
            format!("unknown provider \"{name}\" ({})", st.registry().known()),
        ),
    }
}

async fn providers(State(st): State<AppState>) -> Json<Value> {
    let views = provider_views(&st);
    let reg = st.registry();
    let list: Vec<Value> = (reg.providers().iter())
        .zip(views.iter())
        .map(|(p, v)| {
            let (s, base) = (&p.settings, p.base());
            json!({
                "provider": &*p.name,
                "protocol": p.protocol,
                "host": base.host().unwrap_or_default(),
                "port": base.port_u16().unwrap_or(if p.protocol == "https" { 443 } else { 80 }),
                "api": p.api().as_str(),
                "models": p.config.models,
                "proxy": crate::config::proxy_json(&p.proxy),
                "poolEnabled": s.enabled && s.keep_alive,
                "status": super::resilience::status(reg.resilience().get(&p.name), v.status()),
                "circuitBreaker": reg.resilience().get(&p.name).map(|g| g.breaker.state().as_str()),
            })
        })
        .collect();
    ok(json!(list))
}

async fn health(State(st): State<AppState>) -> Json<Value> {
    let mut json = assess(&provider_views(&st), &st.config().health).json;
    let more = super::resilience::issues(&st);
    if !more.is_empty() {
        json["healthy"] = Value::Bool(false);
        if let Some(list) = json["issues"].as_array_mut() {
            list.extend(more.into_iter().map(Value::String));
        }
    }
    ok(json)
}

/// Each provider's details plus its last five minutes (`recent`).
fn provider_details(st: &AppState, views: &[ProviderView]) -> Vec<Value> {
    views
        .iter()
        .map(|v| {
            let mut d = v.details();
            d["recent"] = st.metrics().recent_json(&v.name);
            d
        })
        .collect()
}

async fn details(State(st): State<AppState>) -> Json<Value> {
    let views = provider_views(&st);
    ok(json!({
        "overview": overview(&views).json(),
        "providers": provider_details(&st, &views),
    }))
}

/// What the stream sends: the stats (as `/stats`), plus every provider's
/// details (as `/details`) and the health verdict (as `/health`), all read
/// at one moment, so a dashboard needs nothing else.
fn stream_data(st: &AppState) -> Value {
    let views = provider_views(st);
    let mut data = overview(&views).json();
    data["providers"] = views.iter().map(|v| v.summary()).collect();
    data["details"] = json!(provider_details(st, &views));
    data["health"] = assess(&views, &st.config().health).json;
    data
}

async fn stream(State(st): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let interval = st.registry().config().stats_interval;
    let ticker = tokio::time::interval(interval);
    let closing = st.closing();
    let events = futures_util::stream::unfold(
        (st, ticker, closing),
        |(st, mut ticker, mut closing)| async move {
            tokio::select! {
                _ = ticker.tick() => {}
                // The server is shutting down: end the stream cleanly.
                _ = closing.wait_for(|c| *c) => return None,
            }
            let data =
                json!({ "success": true, "data": stream_data(&st), "timestamp": timestamp() });
            let event = Event::default().event("stats").data(data.to_string());
            Some((Ok(event), (st, ticker, closing)))
        },
    );
    Sse::new(events).keep_alive(KeepAlive::default())
}

async fn destroy(State(st): State<AppState>, Path(name): Path<String>, body: Bytes) -> Response {
    let protocol = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(o)) => match o.get("protocol") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) if p == "http" || p == "https" => Some(p.clone()),
                Some(other) => {
                    return fail(
                        StatusCode::BAD_REQUEST,
                        format!(
                        "unknown protocol {other}: use \"http\" or \"https\", or omit it for both"
                    ),
                    )
                }
            },
            Ok(_) => {
                return fail(
                    StatusCode::BAD_REQUEST,
                    "the body must be a JSON object such as {\"protocol\": \"https\"}",
                )
            }
            Err(e) => {
                return fail(
                    StatusCode::BAD_REQUEST,
                    format!("the body is not valid JSON: {e}"),
                )
            }
        }
    };
    let reg = st.registry();
    let Some(provider) = reg.get(&name) else {
        return fail(
            StatusCode::NOT_FOUND,
            format!("unknown provider \"{name}\" ({})", reg.known()),
        );
    };
    let report = st.client().destroy_where(|k| {
        k.label == provider.name && protocol.as_deref().is_none_or(|p| k.scheme.as_str() == p)
    });
    ok(json!({
        "provider": &*provider.name,
        "protocol": protocol.as_deref().unwrap_or("all"),
        "closedIdle": report.closed_idle,
        "closingActive": report.closing_active,
    }))
    .into_response()
}

async fn config(State(st): State<AppState>) -> Json<Value> {
    let reg = st.registry();
    let full = reg.config().redacted_json();
    let providers: Vec<Value> = full["Providers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let name = p["name"].as_str().unwrap_or_default().to_string();
            json!({
                "provider": name,
                "endpoint": p["api_base_url"],
                "apiKey": p["api_key"],
                "pool": full["HttpConnectionPool"]["providers"][name.as_str()],
                "proxy": reg.get(&name).map(|p| crate::config::proxy_json(&p.proxy)),
            })
        })
        .collect();
    ok(json!({
        "enabled": full["HttpConnectionPool"]["enabled"],
        "global": full["HttpConnectionPool"]["global"],
        "providers": providers,
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_rfc3339() {
        let t = super::timestamp();
        assert_eq!(t.len(), 24, "{t}");
        assert!(
            t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T",
            "{t}"
        );
    }
}
