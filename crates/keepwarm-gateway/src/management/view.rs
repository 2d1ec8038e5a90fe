//! A provider's numbers, summed over its pool's keys, and the JSON views of
//! them in the seed's shapes.

use std::time::Duration;

use keepwarm::TlsCounts;
use keepwarm_pool::{reuse_rate, Counters, KeySnapshot};
use serde_json::{json, Value};

use crate::state::{AppState, ProviderPool};

/// One provider's pool, now.
#[derive(Clone, Debug)]
pub struct ProviderView {
    /// Provider name as configured.
    pub name: String,
    /// `http` or `https` (the scheme of its endpoint).
    pub protocol: &'static str,
    /// Counters summed over the provider's keys.
    pub counters: Counters,
    /// Connections carrying a request now.
    pub active: usize,
    /// Connections open and free.
    pub idle: usize,
    /// Connections being established.
    pub connecting: usize,
    /// Requests waiting for a slot.
    pub waiters: usize,
    /// Mean age of open connections.
    pub mean_age: Duration,
    /// TLS handshakes.
    pub tls: TlsCounts,
    /// `maxSockets` in force.
    pub max_sockets: usize,
}

impl ProviderView {
    fn of(pool: &ProviderPool, protocol: &'static str) -> ProviderView {
        let mut v = ProviderView {
            name: pool.name.clone(),
            protocol,
            counters: Counters::default(),
            active: 0,
            idle: 0,
            connecting: 0,
            waiters: 0,
            mean_age: Duration::ZERO,
            tls: TlsCounts::default(),
            max_sockets: pool.settings.max_sockets,
        };
        let mut age_weight = Duration::ZERO;
        for k in pool.client.stats() {
            let s: &KeySnapshot = &k.pool;
            v.counters.merge(&s.counters);
            v.active += s.active;
            v.idle += s.idle;
            v.connecting += s.connecting;
            v.waiters += s.waiters;
            age_weight += s.mean_age * (s.active + s.idle) as u32;
            v.tls.full += k.tls.full;
            v.tls.resumed += k.tls.resumed;
        }
        let open = v.active + v.idle;
        if open > 0 {
            v.mean_age = age_weight / open as u32;
        }
        v
    }

    /// `100 × reused / requests`, one decimal.
    pub fn reuse_rate(&self) -> f64 {
        reuse_rate(self.counters.reused, self.counters.requests)
    }

    /// The seed's per-provider summary (`/stats`, `/provider/{name}`).
    pub fn summary(&self) -> Value {
        json!({
            "provider": self.name,
            "protocol": self.protocol,
            "activeConnections": self.active,
            "idleConnections": self.idle,
            "totalRequests": self.counters.requests,
            "reuseCount": self.counters.reused,
            "reuseRate": self.reuse_rate(),
        })
    }

    fn status(&self) -> &'static str {
        if self.active > 0 || self.connecting > 0 {
            "active"
        } else if self.idle > 0 {
            "idle"
        } else if self.counters.requests > 0 {
            "cold"
        } else {
            "unused"
        }
    }

    /// The seed's `/details` entry plus our counters.
    pub fn details(&self) -> Value {
        let c = &self.counters;
        let closed: serde_json::Map<String, Value> = c
            .closed
            .iter()
            .map(|(r, n)| (camel(r.as_str()), json!(n)))
            .collect();
        json!({
            "provider": self.name,
            "protocol": self.protocol,
            "connections": {
                "active": self.active,
                "idle": self.idle,
                "total": self.active + self.idle,
                "connecting": self.connecting,
                "maxSockets": self.max_sockets,
            },
            "performance": {
                "totalRequests": c.requests,
                "reuseCount": c.reused,
                "reuseRate": self.reuse_rate(),
                "averageConnectionAge": round1(self.mean_age.as_secs_f64()),
            },
            "status": self.status(),
            "counters": {
                "connectionsCreated": c.created,
                "connectionsClosed": c.closed.total(),
                "closedByReason": closed,
                "staleCaughtBeforeReuse": c.stale,
                "retries": c.retries,
                "connectErrors": c.connect_errors,
                "connectsCancelled": c.connects_cancelled,
                "waits": c.waits,
                "waitTimeMs": round1(c.wait_time.as_secs_f64() * 1000.0),
                "waitersNow": self.waiters,
                "acquireTimeouts": c.acquire_timeouts,
                "prewarmed": c.prewarmed,
                "averageClosedConnectionLifetime": round1(c.lifetime_histogram.mean().as_secs_f64()),
                "tlsHandshakes": { "full": self.tls.full, "resumed": self.tls.resumed },
            },
        })
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// `over_max_free` → `overMaxFree`.
fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for ch in snake.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            out.push(ch.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

/// Every provider's view, in config order.
pub fn provider_views(state: &AppState) -> Vec<ProviderView> {
    state
        .config()
        .providers
        .iter()
        .filter_map(|p| {
            let protocol = if p.api_base_url.scheme_str() == Some("https") {
                "https"
            } else {
                "http"
            };
            state
                .pool(&p.name)
                .map(|pool| ProviderView::of(pool, protocol))
        })
        .collect()
}

/// Totals over all providers.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Overview {
    /// Providers configured.
    pub providers: usize,
    /// Active connections.
    pub active: usize,
    /// Idle connections.
    pub idle: usize,
    /// Requests dispatched.
    pub requests: u64,
    /// Of those, reused.
    pub reused: u64,
}

/// The totals of `views`.
pub fn overview(views: &[ProviderView]) -> Overview {
    views.iter().fold(
        Overview {
            providers: views.len(),
            ..Default::default()
        },
        |mut o, v| {
            o.active += v.active;
            o.idle += v.idle;
            o.requests += v.counters.requests;
            o.reused += v.counters.reused;
            o
        },
    )
}

impl Overview {
    /// The seed's overview object.
    pub fn json(&self) -> Value {
        json!({
            "totalProviders": self.providers,
            "totalActiveConnections": self.active,
            "totalIdleConnections": self.idle,
            "totalRequests": self.requests,
            "overallReuseRate": reuse_rate(self.reused, self.requests),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::camel;

    #[test]
    fn camel_case() {
        assert_eq!(camel("over_max_free"), "overMaxFree");
        assert_eq!(camel("lifetime"), "lifetime");
    }
}
