//! The resilience layer in the management API and `/metrics`: each
//! provider's circuit breaker (state, transitions), retries by reason,
//! fallbacks taken, and per-key stats with keys redacted to their last 4
//! characters.

use prometheus_client::encoding::DescriptorEncoder;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::metrics::{counter, gauge};
use crate::resilience::breaker::TRANSITIONS;
use crate::resilience::{BreakerState, ProviderGuards};
use crate::state::AppState;

/// The `resilience` object of `/api/connections/provider/{name}`.
pub(crate) fn provider_json(g: &ProviderGuards) -> Value {
    let now = Instant::now();
    let transitions: Vec<Value> = TRANSITIONS
        .iter()
        .zip(g.breaker.transitions())
        .map(|((from, to), n)| json!({"from": from.as_str(), "to": to.as_str(), "count": n}))
        .collect();
    let retries: serde_json::Map<String, Value> = (g.retries.snapshot().iter())
        .map(|(reason, n)| ((*reason).to_owned(), json!(n)))
        .collect();
    let keys: Vec<Value> = g.keys.as_ref().map_or_else(Vec::new, |k| {
        k.stats(now)
            .into_iter()
            .map(|s| {
                json!({
                    "key": s.key,
                    "state": s.state,
                    "inFlight": s.in_flight,
                    "requests": s.requests,
                    "rateLimited": s.rate_limited,
                    "cooldownRemainingMs": s.cooldown_remaining_ms,
                })
            })
            .collect()
    });
    json!({
        "circuitBreaker": {"state": g.breaker.state().as_str(), "transitions": transitions},
        "retries": retries,
        "fallbacksFrom": g.fell_back.load(std::sync::atomic::Ordering::Relaxed),
        "apiKeys": keys,
    })
}

/// A provider's `status` with its breaker: `circuit_open` /
/// `circuit_half_open` win over the pool's state.
pub(crate) fn status(g: Option<&ProviderGuards>, pool_status: &'static str) -> &'static str {
    match g.map(|g| g.breaker.state()) {
        Some(BreakerState::Open) => "circuit_open",
        Some(BreakerState::HalfOpen) => "circuit_half_open",
        _ => pool_status,
    }
}

/// Health issues: open breakers and providers without a usable key.
pub(crate) fn issues(st: &AppState) -> Vec<String> {
    let now = Instant::now();
    let mut out = Vec::new();
    let reg = st.registry();
    for g in reg.resilience().providers() {
        match g.breaker.state() {
            BreakerState::Open => out.push(format!(
                "{}: circuit breaker is open after repeated failures; requests go to fallbacks or get 503",
                g.name
            )),
            BreakerState::HalfOpen => out.push(format!(
                "{}: circuit breaker is half-open; one probe request decides",
                g.name
            )),
            BreakerState::Closed => {}
        }
        if let Some(k) = &g.keys {
            let stats = k.stats(now);
            let disabled = stats.iter().filter(|s| s.state == "disabled").count();
            if disabled > 0 {
                out.push(format!(
                    "{}: {disabled} of {} API keys disabled after 401/403 (until the config is reloaded)",
                    g.name,
                    stats.len()
                ));
            }
        }
    }
    out
}

type Labels = Vec<(&'static str, String)>;

/// Appends the resilience metrics.
pub(crate) fn encode(enc: &mut DescriptorEncoder, st: &AppState) -> Result<(), std::fmt::Error> {
    let now = Instant::now();
    let reg = st.registry();
    let res = reg.resilience();
    let p = |g: &ProviderGuards| -> Labels { vec![("provider", g.name.to_string())] };
    let (mut state, mut moves, mut retries) = (Vec::new(), Vec::new(), Vec::new());
    let (mut key_req, mut key_429, mut key_fly, mut key_state) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for g in res.providers() {
        state.push((p(g), g.breaker.state().gauge()));
        for ((from, to), n) in TRANSITIONS.iter().zip(g.breaker.transitions()) {
            let mut l = p(g);
            l.extend([
                ("from", from.as_str().to_owned()),
                ("to", to.as_str().to_owned()),
            ]);
            moves.push((l, n));
        }
        for (reason, n) in g.retries.snapshot() {
            let mut l = p(g);
            l.push(("reason", reason.to_owned()));
            retries.push((l, n));
        }
        for s in g.keys.as_ref().map_or_else(Vec::new, |k| k.stats(now)) {
            let mut l = p(g);
            l.push(("key", s.key.clone()));
            key_req.push((l.clone(), s.requests));
            key_429.push((l.clone(), s.rate_limited));
            key_fly.push((l.clone(), s.in_flight as i64));
            let v = match s.state {
                "active" => 0,
                "cooldown" => 1,
                _ => 2,
            };
            key_state.push((l, v));
        }
    }
    gauge(
        enc,
        "keepwarm_circuit_breaker_state",
        "Circuit breaker state per provider: 0 closed, 1 open, 2 half-open",
        &state,
    )?;
    counter(
        enc,
        "keepwarm_circuit_breaker_transitions",
        "Circuit breaker state changes, by provider, from and to",
        &moves,
    )?;
    counter(
        enc,
        "keepwarm_upstream_retries",
        "Upstream attempts retried, by provider and reason (connect, 429, 500, 502, 503, 504, 529)",
        &retries,
    )?;
    let fallbacks: Vec<(Labels, u64)> = res
        .fallbacks_taken()
        .into_iter()
        .map(|((from, to), n)| (vec![("from", from), ("to", to)], n))
        .collect();
    counter(
        enc,
        "keepwarm_fallbacks",
        "Requests that fell back from one provider to the next target's provider",
        &fallbacks,
    )?;
    counter(
        enc,
        "keepwarm_api_key_requests",
        "Upstream requests sent with each API key (keys shown by their last 4 characters)",
        &key_req,
    )?;
    counter(
        enc,
        "keepwarm_api_key_rate_limited",
        "429 answers to each API key",
        &key_429,
    )?;
    gauge(
        enc,
        "keepwarm_api_key_in_flight",
        "Requests using each API key now",
        &key_fly,
    )?;
    gauge(
        enc,
        "keepwarm_api_key_state",
        "Each API key's state: 0 active, 1 cooldown (after a 429), 2 disabled (after a 401/403)",
        &key_state,
    )?;
    Ok(())
}
