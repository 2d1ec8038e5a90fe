//! Hot reload: `SIGHUP`, `POST /api/config/reload` (needs `APIKEY`) and
//! `keepwarm serve --watch` re-read the config file the gateway started with.
//!
//! The new file is parsed and validated first; on any error the running
//! config stays, and the error (with its JSON path) is answered and logged.
//! On success the provider registry is swapped whole (requests in flight
//! keep the one they started with):
//! - a new provider gets its client profile and serves from the next request;
//! - a removed provider drains: its idle connections close now, active ones
//!   when their response ends (no in-flight request fails);
//! - a changed provider's pool settings apply from its next acquire; its
//!   open connections stay (those to an endpoint no longer configured, or
//!   through a proxy no longer its own — `proxy`, `PROXY_URL` — close);
//! - an unchanged provider keeps its pool and idle connections untouched.
//! - key pools, circuit breakers and fallback chains are rebuilt whole from
//!   the new config (breaker and key-cooldown state starts over).
//!
//! `HOST` and `PORT` cannot change without a restart: the listener stays
//! and the reload answers a warning. Every reload is counted by result in
//! `keepwarm_config_reloads_total{result="success"|"error"}`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use crate::config::{self, Config};
use crate::registry::Registry;
use crate::state::AppState;

/// What a reload changed, by provider name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Providers that appeared.
    pub added: Vec<String>,
    /// Providers that are draining away.
    pub removed: Vec<String>,
    /// Providers whose endpoint, key, models or pool settings changed.
    pub changed: Vec<String>,
    /// Providers left exactly as they were (pools and idle connections kept).
    pub unchanged: Vec<String>,
    /// Ignored keys in the new file, one message each.
    pub warnings: Vec<String>,
}

impl ReloadReport {
    /// The JSON answer of `POST /api/config/reload`.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "warnings": self.warnings,
        })
    }
}

/// Why a reload was refused; the running config stays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadError(pub String);

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReloadError {}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Re-reads the config the gateway started from (its file, else
/// `./config.json`, else the environment) and applies it. Counted in
/// `/metrics` and logged either way.
pub fn reload(state: &AppState, trigger: &str) -> Result<ReloadReport, ReloadError> {
    let _one_at_a_time = state.reload_guard();
    let path = state.config_path();
    let result = config::load(path.as_deref(), &env)
        .map_err(|e| ReloadError(format!("the new config is invalid: {e}")))
        .and_then(|loaded| {
            let mut report = apply(state, loaded.config)?;
            report.warnings.extend(loaded.warnings);
            Ok(report)
        });
    state.metrics().config_reload(result.is_ok());
    match &result {
        Ok(r) => tracing::info!(
            trigger,
            "config reloaded: added [{}], removed [{}], changed [{}], unchanged [{}]{}",
            r.added.join(", "),
            r.removed.join(", "),
            r.changed.join(", "),
            r.unchanged.join(", "),
            if r.warnings.is_empty() {
                String::new()
            } else {
                format!("; warnings: {}", r.warnings.join("; "))
            }
        ),
        Err(e) => tracing::error!(
            trigger,
            "config reload refused, the running config stays: {e}"
        ),
    }
    result
}

/// Applies `new` to the running gateway (see the module docs).
pub fn apply(state: &AppState, mut new: Config) -> Result<ReloadReport, ReloadError> {
    let old = state.registry();
    let running = old.config();
    let mut report = ReloadReport::default();
    // The listener stays where it is (the command line may have overridden
    // the file at start).
    if (new.host.as_str(), new.port) != (running.host.as_str(), running.port) {
        report.warnings.push(format!(
            "HOST/PORT {}:{} in the file is not applied: still listening on {}:{} (that needs a restart)",
            new.host, new.port, running.host, running.port
        ));
        new.host.clone_from(&running.host);
        new.port = running.port;
    }
    crate::server::check_exposure(&new).map_err(ReloadError)?;
    let registry = Registry::replacing(new, state.metrics(), Some(&old))
        .map_err(|e| ReloadError(format!("the new config is invalid: {e}")))?;
    for p in registry.providers() {
        let before = old.providers().iter().find(|o| o.name == p.name);
        match before {
            Some(o) if o.config == p.config && o.settings == p.settings && o.proxy == p.proxy => {
                report.unchanged.push(p.name.to_string());
                continue;
            }
            Some(_) => report.changed.push(p.name.to_string()),
            None => report.added.push(p.name.to_string()),
        }
        let profile = state
            .provider_profile(p)
            .map_err(|e| ReloadError(format!("the new config is invalid: {e}")))?;
        state
            .client()
            .set_profile(&p.name, profile)
            .map_err(|e| ReloadError(format!("provider \"{}\": {e}", p.name)))?;
    }
    for o in old.providers() {
        if !registry.providers().iter().any(|p| p.name == o.name) {
            report.removed.push(o.name.to_string());
        }
    }
    let endpoints: Vec<(String, String, u16, Option<keepwarm::Proxy>)> = registry
        .providers()
        .iter()
        .map(|p| {
            let u = p.base();
            let https = u.scheme_str() == Some("https");
            let proxy = match &p.proxy {
                keepwarm::ProxyChoice::Via(x) => Some(x.clone()),
                _ => None,
            };
            (
                p.name.to_string(),
                u.host().unwrap_or_default().to_ascii_lowercase(),
                u.port_u16().unwrap_or(if https { 443 } else { 80 }),
                proxy,
            )
        })
        .collect();
    // The resilience state moves with the registry: unchanged providers
    // keep their breakers and key cooldowns, changed and new ones start
    // afresh.
    state.swap_registry(Arc::new(registry));
    // Drain what is gone: removed providers, and changed providers' keys to
    // an endpoint no longer configured or through a proxy no longer theirs
    // (a changed proxy is a new key). Idle connections close now, active
    // ones when their response ends.
    let gone = |k: &keepwarm::Key| {
        !endpoints
            .iter()
            .any(|(n, h, p, x)| **n == *k.label && *h == *k.host && *p == k.port && *x == k.proxy)
    };
    let changed: Vec<&String> = report.removed.iter().chain(report.changed.iter()).collect();
    state
        .client()
        .destroy_where(|k| changed.iter().any(|n| ***n == *k.label) && gone(k));
    Ok(report)
}

/// `POST /api/config/reload`: 200 with what changed, 400 with why the new
/// file was refused (the running config stays), 403 without `APIKEY`.
pub async fn reload_handler(State(st): State<AppState>) -> Response {
    if st.registry().config().api_key.is_none() {
        return crate::management::fail(
            StatusCode::FORBIDDEN,
            "POST /api/config/reload needs APIKEY to be set; without it reload with SIGHUP or `keepwarm serve --watch`",
        );
    }
    match reload(&st, "api") {
        Ok(r) => crate::management::ok(r.json()).into_response(),
        Err(e) => crate::management::fail(StatusCode::BAD_REQUEST, e.0),
    }
}

/// Reloads on every `SIGHUP`, until the process ends.
pub async fn on_sighup(state: AppState) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!(
                "cannot listen for SIGHUP; reload with POST /api/config/reload or --watch"
            );
            return;
        };
        while hup.recv().await.is_some() {
            let _ = reload(&state, "SIGHUP");
        }
    }
    #[cfg(not(unix))]
    let _ = state;
}

/// What identifies a version of the file: modification time, length and
/// contents (an editor may keep the time and length).
fn fingerprint(path: &Path) -> Option<(std::time::SystemTime, u64, u64)> {
    use std::hash::{Hash, Hasher};
    let meta = std::fs::metadata(path).ok()?;
    let bytes = std::fs::read(path).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    Some((meta.modified().ok()?, meta.len(), h.finish()))
}

/// `--watch`: checks `path` every `every` (1 s in `keepwarm serve`) and
/// reloads when it changed. Polling works on every filesystem, network and
/// container mounts included (a Kubernetes ConfigMap update swaps a symlink).
pub async fn watch(state: AppState, path: PathBuf, every: Duration) {
    let mut last = fingerprint(&path);
    let mut closing = state.closing();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = closing.wait_for(|c| *c) => return,
        }
        let now = fingerprint(&path);
        if now.is_some() && now != last {
            last = now;
            let _ = reload(&state, "watch");
        }
    }
}
