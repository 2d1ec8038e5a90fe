//! Pre-warm at start: `minFreeSockets` connections per provider opened
//! (TCP, TLS and ALPN done) while the gateway starts serving, so the first
//! user request skips the handshake. One log line per provider and one
//! total; a failed warm-up is a warning, never fatal.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use keepwarm::ConnProtocol;

use crate::config::redact_url;
use crate::state::AppState;

/// What pre-warming did for one provider.
#[derive(Debug)]
pub struct ProviderWarm {
    /// The provider's name.
    pub provider: String,
    /// Its `minFreeSockets`.
    pub wanted: usize,
    /// Connections opened speaking HTTP/2.
    pub h2: usize,
    /// Connections opened speaking HTTP/1.1.
    pub http1: usize,
    /// Why connects failed, one message each (naming host and cause).
    pub failures: Vec<String>,
    /// How long its warm-up took.
    pub took: Duration,
}

impl ProviderWarm {
    /// Connections opened.
    pub fn opened(&self) -> usize {
        self.h2 + self.http1
    }
}

/// Opens `minFreeSockets` connections for every provider that has one
/// set, all providers at once; returns when each connect has finished
/// (each bounded by its `connectTimeout`). Providers with
/// `minFreeSockets` 0 are not listed.
pub async fn run(state: &AppState) -> Vec<ProviderWarm> {
    let registry = state.registry();
    let client = state.client().clone();
    let work = (registry.providers().iter())
        .filter(|p| p.settings.min_free_sockets > 0 && p.settings.enabled)
        .map(|p| {
            let (client, url) = (client.clone(), p.base().to_string());
            let (name, wanted) = (p.name.to_string(), p.settings.min_free_sockets);
            async move {
                let start = Instant::now();
                let mut w = ProviderWarm {
                    provider: name,
                    wanted,
                    h2: 0,
                    http1: 0,
                    failures: Vec::new(),
                    took: Duration::ZERO,
                };
                match client.prewarm(&url, Some(&w.provider)).await {
                    Ok(r) => {
                        w.h2 = r.count(ConnProtocol::H2);
                        w.http1 = r.count(ConnProtocol::Http1);
                        w.failures = r.failed.iter().map(error_chain).collect();
                    }
                    Err(e) => w.failures.push(error_chain(&e)),
                }
                w.took = start.elapsed();
                w
            }
        });
    join_all(work).await
}

/// `e` and its causes, `: `-separated.
fn error_chain(e: &keepwarm::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(&format!(": {c}"));
        src = c.source();
    }
    s
}

/// Logs one line per provider and the total (`took`: the whole warm-up).
pub fn log(state: &AppState, results: &[ProviderWarm], took: Duration) {
    let registry = state.registry();
    for w in results {
        let url = registry
            .get(&w.provider)
            .map(|p| redact_url(p.base()))
            .unwrap_or_default();
        let protocol = match (w.h2, w.http1) {
            (0, 0) => "none".to_string(),
            (n, 0) => format!("h2 ×{n}"),
            (0, n) => format!("http1.1 ×{n}"),
            (a, b) => format!("h2 ×{a}, http1.1 ×{b}"),
        };
        tracing::info!(
            "pre-warm {}: {} of {} connections open to {url} ({protocol}) in {} ms",
            w.provider,
            w.opened(),
            w.wanted,
            w.took.as_millis()
        );
        for f in &w.failures {
            tracing::warn!("pre-warm {}: a connect failed (not fatal): {f}", w.provider);
        }
    }
    let opened: usize = results.iter().map(ProviderWarm::opened).sum();
    let failed: usize = results.iter().map(|w| w.failures.len()).sum();
    tracing::info!(
        "pre-warm: {opened} connections open for {} providers in {} ms, {failed} failed",
        results.len(),
        took.as_millis()
    );
}

/// Warms every provider, then logs ([`run`], [`log`]); for `keepwarm serve`.
pub async fn run_and_log(state: AppState) {
    let start = Instant::now();
    let results = run(&state).await;
    if !results.is_empty() {
        log(&state, &results, start.elapsed());
    }
}
