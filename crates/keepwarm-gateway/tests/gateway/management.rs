//! The management API's numbers are true: after each scenario `/details`
//! and `/metrics` agree with each other and with what the upstream server
//! itself counted.

use std::collections::HashSet;
use std::time::Duration;

use http_body_util::BodyExt;
use keepwarm_testkit::{KnobSettings, MockApi, MockProvider};
use serde_json::Value;

use crate::support::*;

const BODY: &str = r#"{"model":"mock,claude-test","messages":[]}"#;

async fn get_json(gw: &Gateway, path: &str) -> (u16, Value) {
    let (s, _, text) = read(client().get(&format!("{}{path}", gw.url)).await.unwrap()).await;
    (s, json(&text))
}

async fn details(gw: &Gateway) -> Value {
    let (s, v) = get_json(gw, "/api/connections/details").await;
    assert_eq!(s, 200);
    assert_eq!(v["success"], true);
    v["data"]["providers"][0].clone()
}

async fn metrics(gw: &Gateway) -> String {
    let (s, _, text) = read(client().get(&format!("{}/metrics", gw.url)).await.unwrap()).await;
    assert_eq!(s, 200);
    text
}

/// The value of the sample `name{labels}` (labels as written, in order).
fn sample(text: &str, name: &str, labels: &str) -> u64 {
    let prefix = format!("{name}{{{labels}}} ");
    let line = text
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no sample {prefix} in\n{text}"));
    line[prefix.len()..].trim().parse::<f64>().unwrap() as u64
}

async fn call(gw: &Gateway, n: usize) {
    let c = client();
    for _ in 0..n {
        let (s, _, b) = read(post(&c, &format!("{}/v1/messages", gw.url), &[], BODY).await).await;
        assert_eq!(s, 200, "{b}");
    }
}

/// Connections that carried at least one request, by the server's own log.
fn server_connections_used(mock: &MockProvider) -> u64 {
    mock.received()
        .iter()
        .map(|r| r.conn)
        .collect::<HashSet<_>>()
        .len() as u64
}

/// The identities that must hold after any scenario.
async fn assert_truth(gw: &Gateway, mock: &MockProvider) -> Value {
    let d = details(gw).await;
    let m = metrics(gw).await;
    let p = r#"provider="mock""#;
    let c = &d["counters"];
    let perf = &d["performance"];
    let server = mock.upstream().stats();
    // /details and /metrics agree.
    assert_eq!(
        perf["totalRequests"],
        sample(&m, "keepwarm_requests_total", p)
    );
    assert_eq!(
        perf["reuseCount"],
        sample(&m, "keepwarm_requests_reused_total", p)
    );
    assert_eq!(
        c["connectionsCreated"],
        sample(&m, "keepwarm_connections_created_total", p)
    );
    assert_eq!(
        c["staleCaughtBeforeReuse"],
        sample(&m, "keepwarm_connections_stale_total", p)
    );
    assert_eq!(
        c["tlsHandshakes"]["resumed"],
        sample(
            &m,
            "keepwarm_tls_handshakes_total",
            r#"provider="mock",kind="resumed""#
        )
    );
    assert_eq!(
        d["connections"]["idle"],
        sample(
            &m,
            "keepwarm_http_client_open_connections",
            r#"provider="mock",state="idle""#
        )
    );
    // ... and the server.
    assert_eq!(
        c["connectionsCreated"], server.accepted,
        "connections created == server accepts"
    );
    let first_requests =
        perf["totalRequests"].as_u64().unwrap() - perf["reuseCount"].as_u64().unwrap();
    assert_eq!(
        first_requests,
        server_connections_used(mock),
        "requests - reused == connections that carried a first request"
    );
    assert_eq!(c["tlsHandshakes"]["full"], server.tls_full);
    assert_eq!(c["tlsHandshakes"]["resumed"], server.tls_resumed);
    d
}

#[tokio::test]
async fn sequential_traffic() {
    let mock = MockProvider::anthropic().await;
    let gw = Gateway::start(&anthropic_config(""), &vars(&mock), &[&mock]).await;
    call(&gw, 30).await;
    let d = assert_truth(&gw, &mock).await;
    assert_eq!(d["performance"]["totalRequests"], 30);
    assert_eq!(d["performance"]["reuseCount"], 29);
    assert_eq!(d["performance"]["reuseRate"], 96.7);
    let (_, stats) = get_json(&gw, "/api/connections/stats").await;
    let s = &stats["data"];
    assert_eq!(
        (s["totalProviders"].as_u64(), s["totalRequests"].as_u64()),
        (Some(1), Some(30))
    );
    assert_eq!(s["overallReuseRate"], 96.7);
    assert_eq!(s["providers"][0]["reuseCount"], 29);
    assert!(stats["timestamp"].as_str().unwrap().ends_with('Z'));
    let (st, one) = get_json(&gw, "/api/connections/provider/MOCK").await;
    assert_eq!(st, 200);
    assert_eq!(one["data"], s["providers"][0]);
    let (st, missing) = get_json(&gw, "/api/connections/provider/nope").await;
    assert_eq!(st, 404);
    assert_eq!(missing["success"], false);
    assert!(missing["error"]
        .as_str()
        .unwrap()
        .contains("unknown provider \"nope\""));
    let (_, list) = get_json(&gw, "/api/connections/providers").await;
    assert_eq!(list["data"][0]["provider"], "mock");
    assert_eq!(list["data"][0]["protocol"], "http");
}

#[tokio::test]
async fn concurrent_at_max_sockets() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .header_delay(Duration::from_millis(40))
        .start()
        .await;
    let cfg = anthropic_config(r#", "HttpConnectionPool": {"global": {"maxSockets": 4}}"#);
    let gw = Gateway::start(&cfg, &vars(&mock), &[&mock]).await;
    let url = format!("{}/v1/messages", gw.url);
    let c = client();
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move { read(post(&c, &url, &[], BODY).await).await.0 })
        })
        .collect();
    // While saturated, health says so.
    let saturated = async {
        loop {
            let (_, h) = get_json(&gw, "/api/connections/health").await;
            if h["data"]["activeConnections"] == 4 {
                return h;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let h = tokio::time::timeout(Duration::from_secs(5), saturated)
        .await
        .expect("saturates");
    assert_eq!(h["data"]["healthy"], false);
    assert!(
        h["data"]["issues"][0]
            .as_str()
            .unwrap()
            .contains("all 4 connections (maxSockets) are active"),
        "{h}"
    );
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let d = assert_truth(&gw, &mock).await;
    assert_eq!(d["counters"]["connectionsCreated"], 4);
    assert!(mock.upstream().stats().max_open <= 4);
    let m = metrics(&gw).await;
    let waits = sample(&m, "keepwarm_pool_waits_total", r#"provider="mock""#);
    assert_eq!(d["counters"]["waits"], waits);
    assert!(waits > 0);
    assert_eq!(
        sample(
            &m,
            "keepwarm_http_client_request_time_in_queue_seconds_count",
            r#"provider="mock""#
        ),
        waits
    );
}

#[tokio::test]
async fn server_closes_idle_connections() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .knobs(KnobSettings {
            close_idle_after: Some(Duration::from_millis(30)),
            ..Default::default()
        })
        .start()
        .await;
    let gw = Gateway::start(&anthropic_config(""), &vars(&mock), &[&mock]).await;
    for _ in 0..5 {
        call(&gw, 1).await;
        let before = mock.upstream().stats().idle_closes;
        assert!(
            mock.upstream()
                .wait_until(|s| s.idle_closes > before, Duration::from_secs(2))
                .await
        );
    }
    // The pool notices each close (stale, caught before reuse).
    let pool = gw.state.client().clone();
    assert!(eventually(|| pool.stats()[0].pool.counters.stale == 5).await);
    let d = assert_truth(&gw, &mock).await;
    assert_eq!(
        d["counters"]["staleCaughtBeforeReuse"],
        mock.upstream().stats().idle_closes
    );
    assert_eq!(d["counters"]["closedByReason"]["serverClosed"], 5);
    assert_eq!(d["performance"]["reuseCount"], 0);
}

#[tokio::test]
async fn connection_close_answers() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .knobs(KnobSettings {
            connection_close: true,
            ..Default::default()
        })
        .start()
        .await;
    let gw = Gateway::start(&anthropic_config(""), &vars(&mock), &[&mock]).await;
    call(&gw, 5).await;
    let pool = gw.state.client().clone();
    assert!(eventually(|| pool.stats()[0].pool.counters.closed.total() == 5).await);
    let d = assert_truth(&gw, &mock).await;
    assert_eq!(d["counters"]["connectionsCreated"], 5);
    assert_eq!(d["counters"]["closedByReason"]["serverClosed"], 5);
    let m = metrics(&gw).await;
    assert_eq!(
        sample(
            &m,
            "keepwarm_connections_closed_total",
            r#"provider="mock",reason="server_closed""#
        ),
        5
    );
}

#[tokio::test]
async fn lifetime_rotation() {
    let mock = MockProvider::anthropic().await;
    let cfg = anthropic_config(r#", "HttpConnectionPool": {"global": {"maxSocketLifetime": 100}}"#);
    let gw = Gateway::start(&cfg, &vars(&mock), &[&mock]).await;
    for _ in 0..3 {
        call(&gw, 2).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let d = assert_truth(&gw, &mock).await;
    assert_eq!(d["counters"]["connectionsCreated"], 3);
    assert_eq!(d["performance"]["reuseCount"], 3);
    assert_eq!(d["counters"]["closedByReason"]["lifetime"], 3);
    let m = metrics(&gw).await;
    assert_eq!(
        sample(
            &m,
            "keepwarm_http_client_connection_duration_seconds_count",
            r#"provider="mock""#
        ),
        3
    );
}

#[tokio::test]
async fn destroy_mid_traffic_fails_no_request() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .text("a b c d e f")
        .event_delay(Duration::from_millis(60))
        .start()
        .await;
    let gw = Gateway::start(&anthropic_config(""), &vars(&mock), &[&mock]).await;
    let c = client();
    // A stream in flight holds connection 1 for ~0.5 s...
    let stream_body = r#"{"model":"mock,claude-test","stream":true}"#;
    let held = post(&c, &format!("{}/v1/messages", gw.url), &[], stream_body).await;
    // ...while a plain request opens connection 2, which then sits idle.
    call(&gw, 1).await;
    let destroy = |body: &'static str| {
        let c = c.clone();
        let url = format!("{}/api/connections/destroy/mock", gw.url);
        async move {
            let req = http::Request::post(url)
                .body(bytes::Bytes::from(body))
                .unwrap();
            let (s, _, t) = read(c.request(req).await.unwrap()).await;
            (s, json(&t))
        }
    };
    let (s, none) = destroy(r#"{"protocol": "https"}"#).await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            none["data"]["closedIdle"].as_u64(),
            none["data"]["protocol"].as_str()
        ),
        (Some(0), Some("https"))
    );
    let (s, r) = destroy(r#"{"protocol": "http"}"#).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["data"]["closedIdle"], 1);
    assert_eq!(r["data"]["closingActive"], 1);
    // The in-flight stream still completes.
    let bytes = held
        .into_body()
        .collect()
        .await
        .expect("no request fails")
        .to_bytes();
    assert!(std::str::from_utf8(&bytes)
        .unwrap()
        .contains("message_stop"));
    // The next request opens a new connection.
    let (s, h, _) = read(post(&c, &format!("{}/v1/messages", gw.url), &[], BODY).await).await;
    assert_eq!(
        (s, h["x-keepwarm-connection-reused"].to_str().unwrap()),
        (200, "false")
    );
    let d = assert_truth(&gw, &mock).await;
    assert_eq!(d["counters"]["closedByReason"]["destroyed"], 2);
    assert_eq!(d["counters"]["connectionsCreated"], 3);
    for (body, want) in [
        (r#"{"protocol": "ftp"}"#, "unknown protocol \"ftp\""),
        ("{oops", "not valid JSON"),
        ("[1]", "must be a JSON object"),
    ] {
        let (s, v) = destroy(body).await;
        assert_eq!(s, 400, "{body}");
        assert!(v["error"].as_str().unwrap().contains(want), "{v}");
    }
    let req = http::Request::post(format!("{}/api/connections/destroy/ghost", gw.url))
        .body(bytes::Bytes::new())
        .unwrap();
    let (s, _, t) = read(c.request(req).await.unwrap()).await;
    assert_eq!(s, 404, "{t}");
    let (s, _, _) = read(
        c.get(&format!("{}/api/connections/destroy/mock", gw.url))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 405, "destroy is POST only");
}

#[tokio::test]
async fn tls_resumption_counts_match_the_server() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .tls(true)
        .start()
        .await;
    let cfg = anthropic_config(r#", "HttpConnectionPool": {"enabled": false}"#);
    let gw = Gateway::start(&cfg, &vars(&mock), &[&mock]).await;
    call(&gw, 4).await;
    let pool = gw.state.client().clone();
    assert!(eventually(|| pool.stats()[0].pool.idle == 0).await);
    let d = assert_truth(&gw, &mock).await;
    assert_eq!(d["counters"]["tlsHandshakes"]["full"], 1);
    assert_eq!(d["counters"]["tlsHandshakes"]["resumed"], 3);
}

#[tokio::test]
async fn health_rules_speak_after_enough_traffic() {
    let mock = MockProvider::anthropic().await;
    let cfg = anthropic_config(
        r#", "HttpConnectionPool": {"enabled": false}, "HealthThresholds": {"minRequests": 20, "minClosedConnections": 10}"#,
    );
    let gw = Gateway::start(&cfg, &vars(&mock), &[&mock]).await;
    call(&gw, 5).await;
    let (_, h) = get_json(&gw, "/api/connections/health").await;
    assert_eq!(
        h["data"]["healthy"], true,
        "too few requests and closes for the rules: {h}"
    );
    call(&gw, 20).await;
    let pool = gw.state.client().clone();
    assert!(eventually(|| pool.stats()[0].pool.counters.closed.total() == 25).await);
    let (_, h) = get_json(&gw, "/api/connections/health").await;
    let issues: Vec<&str> = h["data"]["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert_eq!(h["data"]["healthy"], false);
    assert!(
        issues
            .iter()
            .any(|i| i.contains("reuse rate 0.0% is below 70% over 25 requests")),
        "{issues:?}"
    );
    assert!(
        issues
            .iter()
            .any(|i| i.contains("connections are dying too quickly")),
        "{issues:?}"
    );
}

#[tokio::test]
async fn the_stream_sends_stats_at_once_then_on_interval_and_ends_on_shutdown() {
    let mock = MockProvider::anthropic().await;
    let mut gw = Gateway::start(
        &anthropic_config(r#", "STATS_INTERVAL_MS": 100"#),
        &vars(&mock),
        &[&mock],
    )
    .await;
    call(&gw, 2).await;
    let resp = client()
        .get(&format!("{}/api/connections/stream", gw.url))
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let mut text = String::new();
    while text.matches("event: stats").count() < 2 {
        let f = body.frame().await.unwrap().unwrap();
        text.push_str(std::str::from_utf8(f.data_ref().unwrap()).unwrap());
    }
    let first = text.split("\n\n").next().unwrap();
    let data = first
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap();
    let v = json(data);
    assert_eq!(v["success"], true);
    assert_eq!(v["data"]["totalRequests"], 2);
    gw.stop();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(f) = body.frame().await {
            if f.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the stream ends cleanly when the server shuts down"
    );
}

#[tokio::test]
async fn apikey_guards_management_and_no_secret_is_shown() {
    let mock = MockProvider::anthropic().await;
    let gw = Gateway::start(
        &anthropic_config(r#", "APIKEY": "gw-topsecret""#),
        &vars(&mock),
        &[&mock],
    )
    .await;
    let c = client();
    for path in [
        "/api/connections/stats",
        "/api/connections/config",
        "/metrics",
    ] {
        let (s, _, t) = read(c.get(&format!("{}{path}", gw.url)).await.unwrap()).await;
        assert_eq!(s, 401, "{path}");
        assert_eq!(json(&t)["success"], false, "{path}: {t}");
    }
    let authed = |path: &str| {
        let req = http::Request::get(format!("{}{path}", gw.url))
            .header("x-api-key", "gw-topsecret")
            .body(bytes::Bytes::new())
            .unwrap();
        let c = c.clone();
        async move { read(c.request(req).await.unwrap()).await }
    };
    for path in [
        "/api/connections/stats",
        "/api/connections/details",
        "/api/connections/health",
        "/api/connections/providers",
        "/api/connections/config",
        "/api/connections/provider/mock",
        "/metrics",
    ] {
        let (s, _, t) = authed(path).await;
        assert_eq!(s, 200, "{path}: {t}");
        assert!(
            !t.contains("gw-topsecret") && !t.contains(mock.key()),
            "{path} leaks a key: {t}"
        );
    }
}
