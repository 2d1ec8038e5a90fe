//! A provider's numbers, summed over its keys in the one pool, and the JSON
//! views of them in the seed's shapes.

use keepwarm::{H2Counts, LabelReport, OpenConnection, TlsCounts};
use keepwarm_pool::{reuse_rate, KeySnapshot};
use serde_json::{json, Value};

use crate::registry::Provider;
use crate::state::AppState;

/// One provider's pool, now: its keys' snapshots merged.
#[derive(Clone, Debug)]
pub struct ProviderView {
    /// Provider name as configured.
    pub name: String,
    /// `http` or `https` (the scheme of its endpoint).
    pub protocol: &'static str,
    /// Counters and gauges summed over the provider's keys.
    pub pool: KeySnapshot,
    /// TLS handshakes.
    pub tls: TlsCounts,
    /// HTTP/2 counters: streams, GOAWAYs received, streams refused and
    /// retried, PING timeouts.
    pub h2: H2Counts,
    /// Its open connections with their protocol (`h2`/`http1.1`) and open
    /// streams, oldest first (read just after the counters).
    pub connections: Vec<OpenConnection>,
    /// `circuit_open` / `circuit_half_open` while the provider's circuit
    /// breaker is not closed (it wins over the pool's own status).
    pub breaker: Option<&'static str>,
}

impl ProviderView {
    /// `provider`'s numbers: its label's entry of one client
    /// [`report`](keepwarm::Client::report).
    pub fn of(provider: &Provider, report: &[LabelReport]) -> ProviderView {
        let mut v = ProviderView {
            name: provider.name.to_string(),
            protocol: provider.protocol,
            pool: KeySnapshot::default(),
            tls: TlsCounts::default(),
            h2: H2Counts::default(),
            connections: Vec::new(),
            breaker: None,
        };
        if let Some(r) = report.iter().find(|r| *r.stats.label == *provider.name) {
            v.pool = r.stats.pool.clone();
            v.tls = r.stats.tls;
            v.h2 = r.h2;
            v.connections = r.connections.clone();
        }
        // The limit in force for the provider, even before its first request.
        v.pool.max_sockets = provider.settings.max_sockets;
        v
    }

    /// `100 × reused / requests`, one decimal.
    pub fn reuse_rate(&self) -> f64 {
        self.pool.reuse_rate()
    }

    /// The seed's per-provider summary (`/stats`, `/provider/{name}`).
    pub fn summary(&self) -> Value {
        json!({
            "provider": self.name,
            "protocol": self.protocol,
            "activeConnections": self.pool.active,
            "idleConnections": self.pool.idle,
            "totalRequests": self.pool.counters.requests,
            "reuseCount": self.pool.counters.reused,
            "reuseRate": self.reuse_rate(),
            "http2": self.http2_json(),
        })
    }

    /// Open connections speaking `p`.
    pub fn count(&self, p: keepwarm::ConnProtocol) -> usize {
        self.connections
            .iter()
            .filter(|c| c.protocol == Some(p))
            .count()
    }

    /// Streams open now over all its HTTP/2 connections.
    pub fn open_streams(&self) -> usize {
        self.connections.iter().filter_map(|c| c.open_streams).sum()
    }

    /// The HTTP/2 block of `/stats` and `/details`.
    pub fn http2_json(&self) -> Value {
        json!({
            "connections": self.count(keepwarm::ConnProtocol::H2),
            "http1Connections": self.count(keepwarm::ConnProtocol::Http1),
            "openStreams": self.open_streams(),
            "streamsTotal": self.h2.streams,
            "goawaysReceived": self.h2.goaways,
            "streamsRefused": self.h2.refused,
            "streamsRetried": self.h2.retried,
            "pingTimeouts": self.h2.ping_timeouts,
        })
    }

    /// `active`, `idle`, `cold` (used, nothing open) or `unused`.
    pub fn status(&self) -> &'static str {
        if self.pool.active > 0 || self.pool.connecting > 0 {
            "active"
        } else if self.pool.idle > 0 {
            "idle"
        } else if self.pool.counters.requests > 0 {
            "cold"
        } else {
            "unused"
        }
    }

    /// The seed's `/details` entry plus our counters.
    pub fn details(&self) -> Value {
        let c = &self.pool.counters;
        let closed: serde_json::Map<String, Value> = c
            .closed
            .iter()
            .map(|(r, n)| (camel(r.as_str()), json!(n)))
            .collect();
        json!({
            "provider": self.name,
            "protocol": self.protocol,
            "connections": {
                "active": self.pool.active,
                "idle": self.pool.idle,
                "total": self.pool.active + self.pool.idle,
                "connecting": self.pool.connecting,
                "maxSockets": self.pool.max_sockets,
            },
            "performance": {
                "totalRequests": c.requests,
                "reuseCount": c.reused,
                "reuseRate": self.reuse_rate(),
                "averageConnectionAge": round1(self.pool.mean_age.as_secs_f64()),
            },
            "status": self.breaker.unwrap_or(self.status()),
            "openConnections": self.connections.iter().map(|o| {
                let c = &o.pool;
                json!({
                    "id": c.id,
                    "state": if c.in_flight > 0 { "active" } else { "idle" },
                    "ageSeconds": round1(c.age.as_secs_f64()),
                    "idleForSeconds": c.idle_for.map(|d| round1(d.as_secs_f64())),
                    "requests": c.requests,
                    "inFlight": c.in_flight,
                    "protocol": o.protocol.map(|p| p.as_str()),
                    "openStreams": o.open_streams,
                })
            }).collect::<Vec<_>>(),
            "http2": self.http2_json(),
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
                "waitersNow": self.pool.waiters,
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
    // One client call: totals, HTTP/2 counters and open connections with
    // their protocol.
    let report = state.client().report();
    let reg = state.registry();
    let resilience = reg.resilience();
    (reg.providers().iter())
        .map(|p| {
            let mut v = ProviderView::of(p, &report);
            let guards = resilience.get(&p.name);
            let status = super::resilience::status(guards, v.status());
            v.breaker = status.starts_with("circuit_").then_some(status);
            v
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
            o.active += v.pool.active;
            o.idle += v.pool.idle;
            o.requests += v.pool.counters.requests;
            o.reused += v.pool.counters.reused;
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
