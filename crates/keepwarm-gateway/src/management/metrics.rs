//! `GET /metrics`: Prometheus text (OpenMetrics) from the pools' counters,
//! read at scrape time, plus the gateway's request-duration histograms.
//!
//! Names follow OpenTelemetry's HTTP client conventions under our prefix:
//! `keepwarm_http_client_open_connections{provider,state}`,
//! `keepwarm_http_client_connection_duration_seconds`,
//! `keepwarm_http_client_request_duration_seconds`,
//! `keepwarm_http_client_request_time_in_queue_seconds`, and our counters
//! `keepwarm_requests_total`, `keepwarm_requests_reused_total`,
//! `keepwarm_connections_created_total`,
//! `keepwarm_connections_closed_total{reason}`,
//! `keepwarm_requests_rejected_total{reason}`, HTTP/2's
//! `keepwarm_connections_open_by_protocol{provider,protocol}`,
//! `keepwarm_http2_open_streams`, `keepwarm_http2_streams_total`,
//! `keepwarm_http2_goaways_received_total`,
//! `keepwarm_http2_streams_refused_total`,
//! `keepwarm_http2_streams_retried_total`,
//! `keepwarm_http2_ping_timeouts_total`, …

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use keepwarm_pool::Histogram as PoolHistogram;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::management::recent::{Recent, RecentSeries};
use crate::management::view::provider_views;
use crate::state::{AppState, WeakState};

type Labels = Vec<(&'static str, String)>;

/// The gateway's metric registry.
pub struct Metrics {
    registry: Registry,
    request_duration: Family<Labels, Histogram>,
    recent: Recent,
    streams_cut: Counter,
    /// `keepwarm_route_requests_total` per scenario, in `Scenario::ALL`
    /// order, resolved once (no label vector per request).
    route_requests: [Counter; crate::scenario::Scenario::ALL.len()],
    rejected: Family<Vec<(&'static str, &'static str)>, Counter>,
    reloads: Family<Vec<(&'static str, &'static str)>, Counter>,
}

/// Where a finished request's duration goes: the Prometheus histogram and
/// the dashboard's five-minute window of its provider.
#[derive(Clone)]
pub struct DurationSink {
    histogram: Histogram,
    recent: RecentSeries,
}

impl DurationSink {
    /// Records one request that took `took`.
    pub fn observe(&self, took: std::time::Duration) {
        self.histogram.observe(took.as_secs_f64());
        self.recent.record(took);
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// A registry with the pool collector (attached to the state once built).
    pub(crate) fn new() -> (Metrics, Arc<PoolCollector>) {
        let mut registry = Registry::default();
        let request_duration = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 18))
        });
        registry.register_with_unit(
            "keepwarm_http_client_request_duration",
            "Time from receiving a request to the end of the upstream response body, per provider and status",
            Unit::Seconds,
            request_duration.clone(),
        );
        let streams_cut = Counter::default();
        registry.register(
            "keepwarm_streams_cut",
            "Responses still running at the shutdown deadline (SHUTDOWN_TIMEOUT_MS), cut with an error event",
            streams_cut.clone(),
        );
        let route_requests = Family::<Labels, Counter>::default();
        registry.register(
            "keepwarm_route_requests",
            "LLM requests by the routing scenario that picked their provider (explicit, default, background, think, longContext, webSearch, image, subagent)",
            route_requests.clone(),
        );
        let route_requests = crate::scenario::Scenario::ALL.map(|s| {
            (route_requests.get_or_create(&vec![("scenario", s.as_str().to_owned())])).clone()
        });
        let rejected = Family::<Vec<(&'static str, &'static str)>, Counter>::default();
        registry.register(
            "keepwarm_requests_rejected",
            "Requests the gateway answered itself before routing, by reason (body_timeout: the request body paused past BODY_READ_TIMEOUT_MS or took longer than API_TIMEOUT_MS)",
            rejected.clone(),
        );
        let reloads = Family::<Vec<(&'static str, &'static str)>, Counter>::default();
        registry.register(
            "keepwarm_config_reloads",
            "Config reloads (SIGHUP, POST /api/config/reload, --watch) by result",
            reloads.clone(),
        );
        for result in ["success", "error"] {
            let _ = reloads.get_or_create(&vec![("result", result)]);
        }
        let collector = Arc::new(PoolCollector::default());
        registry.register_collector(Box::new(collector.clone()));
        (
            Metrics {
                registry,
                request_duration,
                recent: Recent::default(),
                streams_cut,
                route_requests,
                rejected,
                reloads,
            },
            collector,
        )
    }

    /// The request-duration sink of `provider` and `status`.
    pub fn request_duration(&self, provider: &str, status: u16) -> DurationSink {
        DurationSink {
            histogram: self
                .request_duration
                .get_or_create(&vec![
                    ("provider", provider.to_string()),
                    ("status", status.to_string()),
                ])
                .clone(),
            recent: self.recent.series(provider),
        }
    }

    /// Counts one request routed by `scenario` (`keepwarm_route_requests_total{scenario}`).
    pub fn route_request(&self, scenario: crate::scenario::Scenario) {
        self.route_requests[scenario as usize].inc();
    }

    /// Counts one config reload by result (`keepwarm_config_reloads_total`).
    pub fn config_reload(&self, success: bool) {
        let result = if success { "success" } else { "error" };
        self.reloads.get_or_create(&vec![("result", result)]).inc();
    }

    /// Responses cut at the shutdown deadline (`keepwarm_streams_cut_total`).
    pub fn streams_cut(&self) -> Counter {
        self.streams_cut.clone()
    }

    /// `provider`'s last five minutes: requests and latency p50/p99 per
    /// 10-second slot (see [`recent`](crate::management::recent)).
    pub fn recent_json(&self, provider: &str) -> serde_json::Value {
        self.recent.json(provider)
    }

    /// Counts a request rejected for `reason` (e.g. `body_timeout`).
    pub fn rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&vec![("reason", reason)]).inc();
    }

    fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Reads the pools at scrape time, through a weak handle so the registry
/// (inside the state) does not keep the state alive.
#[derive(Debug, Default)]
pub(crate) struct PoolCollector {
    state: std::sync::OnceLock<WeakState>,
}

impl PoolCollector {
    pub(crate) fn attach(&self, state: WeakState) {
        let _ = self.state.set(state);
    }
}

fn histogram(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, PoolHistogram)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    for (labels, h) in rows {
        let buckets = h.cumulative();
        let per_bucket: Vec<(f64, u64)> = buckets
            .iter()
            .scan(0, |prev, (b, c)| {
                let d = c - *prev;
                *prev = *c;
                Some((*b, d))
            })
            .collect();
        m.encode_family(labels)?.encode_histogram::<NoLabelSet>(
            h.sum().as_secs_f64(),
            h.count(),
            &per_bucket,
            None,
        )?;
    }
    Ok(())
}

pub(super) fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, u64)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        m.encode_family(labels)?
            .encode_counter::<NoLabelSet, _, u64>(v, None)?;
    }
    Ok(())
}

pub(super) fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, i64)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        m.encode_family(labels)?.encode_gauge(v)?;
    }
    Ok(())
}

impl Collector for PoolCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(state) = self.state.get().and_then(WeakState::upgrade) else {
            return Ok(());
        };
        let views = provider_views(&state);
        let p = |v: &crate::management::ProviderView| vec![("provider", v.name.clone())];
        let rows = |f: &dyn Fn(&crate::management::ProviderView) -> u64| -> Vec<(Labels, u64)> {
            views.iter().map(|v| (p(v), f(v))).collect()
        };
        let mut open = Vec::new();
        for v in &views {
            let mut l = p(v);
            l.push(("state", "active".into()));
            open.push((l, v.pool.active as i64));
            let mut l = p(v);
            l.push(("state", "idle".into()));
            open.push((l, v.pool.idle as i64));
        }
        gauge(
            &mut enc,
            "keepwarm_http_client_open_connections",
            "Open upstream connections by state (active: carrying a request; idle: kept for reuse)",
            &open,
        )?;
        gauge(
            &mut enc,
            "keepwarm_http_client_connecting",
            "Upstream connections being established",
            &views
                .iter()
                .map(|v| (p(v), v.pool.connecting as i64))
                .collect::<Vec<_>>(),
        )?;
        gauge(
            &mut enc,
            "keepwarm_pool_waiters",
            "Requests waiting for a connection slot (maxSockets reached)",
            &views
                .iter()
                .map(|v| (p(v), v.pool.waiters as i64))
                .collect::<Vec<_>>(),
        )?;
        gauge(
            &mut enc,
            "keepwarm_pool_max_sockets",
            "The maxSockets limit in force",
            &views
                .iter()
                .map(|v| (p(v), v.pool.max_sockets as i64))
                .collect::<Vec<_>>(),
        )?;
        counter(
            &mut enc,
            "keepwarm_requests",
            "Requests dispatched on an upstream connection",
            &rows(&|v| v.pool.counters.requests),
        )?;
        counter(
            &mut enc,
            "keepwarm_requests_reused",
            "Requests sent on a connection that had already carried one",
            &rows(&|v| v.pool.counters.reused),
        )?;
        counter(
            &mut enc,
            "keepwarm_requests_retried",
            "Requests retried on another connection (safe-retry rules)",
            &rows(&|v| v.pool.counters.retries),
        )?;
        counter(
            &mut enc,
            "keepwarm_connections_created",
            "Upstream connections established",
            &rows(&|v| v.pool.counters.created),
        )?;
        let mut closed = Vec::new();
        for v in &views {
            for (reason, n) in v.pool.counters.closed.iter() {
                let mut l = p(v);
                l.push(("reason", reason.as_str().to_string()));
                closed.push((l, n));
            }
        }
        counter(
            &mut enc,
            "keepwarm_connections_closed",
            "Upstream connections closed, by reason",
            &closed,
        )?;
        counter(
            &mut enc,
            "keepwarm_connections_stale",
            "Idle connections found closed by the server before reuse",
            &rows(&|v| v.pool.counters.stale),
        )?;
        counter(
            &mut enc,
            "keepwarm_connect_errors",
            "Failed connection attempts",
            &rows(&|v| v.pool.counters.connect_errors),
        )?;
        counter(
            &mut enc,
            "keepwarm_pool_waits",
            "Requests that waited for a slot",
            &rows(&|v| v.pool.counters.waits),
        )?;
        counter(
            &mut enc,
            "keepwarm_pool_acquire_timeouts",
            "Requests that gave up waiting (acquireTimeout)",
            &rows(&|v| v.pool.counters.acquire_timeouts),
        )?;
        let mut by_protocol = Vec::new();
        for v in &views {
            for proto in [keepwarm::ConnProtocol::H2, keepwarm::ConnProtocol::Http1] {
                let mut l = p(v);
                l.push(("protocol", proto.as_str().to_string()));
                by_protocol.push((l, v.count(proto) as i64));
            }
        }
        gauge(
            &mut enc,
            "keepwarm_connections_open_by_protocol",
            "Open upstream connections by wire protocol (h2 or http1.1)",
            &by_protocol,
        )?;
        gauge(
            &mut enc,
            "keepwarm_http2_open_streams",
            "Streams open now over the provider's HTTP/2 connections",
            &views
                .iter()
                .map(|v| (p(v), v.open_streams() as i64))
                .collect::<Vec<_>>(),
        )?;
        counter(
            &mut enc,
            "keepwarm_http2_streams",
            "Streams opened on upstream HTTP/2 connections (one per request)",
            &rows(&|v| v.h2.streams),
        )?;
        counter(
            &mut enc,
            "keepwarm_http2_goaways_received",
            "Upstream HTTP/2 connections that received a GOAWAY",
            &rows(&|v| v.h2.goaways),
        )?;
        counter(
            &mut enc,
            "keepwarm_http2_streams_refused",
            "Streams the upstream refused unprocessed (REFUSED_STREAM, above a GOAWAY's last stream id)",
            &rows(&|v| v.h2.refused),
        )?;
        counter(
            &mut enc,
            "keepwarm_http2_streams_retried",
            "Refused streams sent again on another connection",
            &rows(&|v| v.h2.retried),
        )?;
        counter(
            &mut enc,
            "keepwarm_http2_ping_timeouts",
            "Idle HTTP/2 connections closed because a PING went unanswered",
            &rows(&|v| v.h2.ping_timeouts),
        )?;
        let mut tls = Vec::new();
        for v in &views {
            for (kind, n) in [("full", v.tls.full), ("resumed", v.tls.resumed)] {
                let mut l = p(v);
                l.push(("kind", kind.to_string()));
                tls.push((l, n));
            }
        }
        counter(
            &mut enc,
            "keepwarm_tls_handshakes",
            "TLS handshakes with upstreams, full or resumed",
            &tls,
        )?;
        histogram(
            &mut enc,
            "keepwarm_http_client_connection_duration",
            "Lifetime of closed upstream connections",
            &views
                .iter()
                .map(|v| (p(v), v.pool.counters.lifetime_histogram))
                .collect::<Vec<_>>(),
        )?;
        histogram(
            &mut enc,
            "keepwarm_http_client_request_time_in_queue",
            "Time requests waited for a connection slot",
            &views
                .iter()
                .map(|v| (p(v), v.pool.counters.wait_histogram))
                .collect::<Vec<_>>(),
        )?;
        super::resilience::encode(&mut enc, &state)?;
        Ok(())
    }
}

/// `GET /metrics`
pub async fn metrics_handler(State(st): State<AppState>) -> Response {
    match st.metrics().render() {
        Ok(body) => (
            [(
                CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => (
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "encoding metrics failed",
        )
            .into_response(),
    }
}
