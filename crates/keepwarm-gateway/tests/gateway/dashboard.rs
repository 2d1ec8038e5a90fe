//! The dashboard: its shell is public, its data needs `APIKEY`, and the
//! per-connection table and five-minute window it shows match what the
//! upstream server counted.

use std::collections::HashMap;

use http_body_util::BodyExt;
use keepwarm_testkit::MockProvider;
use serde_json::Value;

use crate::support::*;

const BODY: &str = r#"{"model":"mock,claude-test","messages":[]}"#;
const KEY: &str = "dash-key";

async fn get(url: &str, key: Option<&str>) -> (u16, http::HeaderMap, String) {
    let mut b = http::Request::get(url);
    if let Some(k) = key {
        b = b.header("x-api-key", k);
    }
    let resp = client()
        .request(b.body(bytes::Bytes::new()).unwrap())
        .await
        .unwrap();
    read(resp).await
}

#[tokio::test]
async fn the_shell_is_public_and_every_data_call_needs_the_key() {
    let mock = MockProvider::anthropic().await;
    let gw = Gateway::start(
        &anthropic_config(&format!(r#", "APIKEY": "{KEY}""#)),
        &vars(&mock),
        &[&mock],
    )
    .await;
    let (s, h, html) = get(&format!("{}/dashboard", gw.url), None).await;
    assert_eq!(s, 200);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"));
    assert!(html.contains(r#"src="/dashboard/app.js""#), "{html}");
    assert!(!html.contains(KEY));
    let (s, h, js) = get(&format!("{}/dashboard/app.js", gw.url), None).await;
    assert_eq!(s, 200);
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.contains("/api/connections/stream") && js.contains("x-api-key"));
    let (s, _, _) = get(&format!("{}/dashboard/app.css", gw.url), None).await;
    assert_eq!(s, 200);
    for path in [
        "/api/connections/details",
        "/api/connections/stream",
        "/metrics",
        "/dashboard/other",
    ] {
        let (s, _, _) = get(&format!("{}{path}", gw.url), None).await;
        assert_eq!(s, 401, "{path} without the key");
    }
    let (s, _, _) = get(&format!("{}/api/connections/details", gw.url), Some(KEY)).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn open_connections_and_recent_window_match_the_upstream() {
    let mock = MockProvider::anthropic().await;
    let gw = Gateway::start(
        &anthropic_config(r#", "STATS_INTERVAL_MS": 50"#),
        &vars(&mock),
        &[&mock],
    )
    .await;
    let c = client();
    let url = format!("{}/v1/messages", gw.url);
    for _ in 0..3 {
        let (s, _, b) = read(post(&c, &url, &[], BODY).await).await;
        assert_eq!(s, 200, "{b}");
    }
    // Two at once: a second upstream connection.
    let (a, b) = tokio::join!(post(&c, &url, &[], BODY), post(&c, &url, &[], BODY));
    let ((sa, _, _), (sb, _, _)) = tokio::join!(read(a), read(b));
    assert_eq!((sa, sb), (200, 200));

    let (_, _, text) = get(&format!("{}/api/connections/details", gw.url), None).await;
    let d = json(&text)["data"]["providers"][0].clone();
    let open = d["openConnections"].as_array().unwrap();
    let server = mock.upstream().stats();
    assert_eq!(open.len() as u64, server.open, "{open:?}");
    // The mock speaks HTTP/1.1 only: every connection says so, with no streams.
    for o in open {
        assert_eq!(o["protocol"], "http1.1", "{o}");
        assert!(o["openStreams"].is_null(), "{o}");
    }
    // Requests per connection, by the server's own log.
    let mut by_conn: HashMap<u64, u64> = HashMap::new();
    for r in mock.received() {
        *by_conn.entry(r.conn).or_default() += 1;
    }
    let mut ours: Vec<u64> = open
        .iter()
        .map(|o| o["requests"].as_u64().unwrap())
        .collect();
    let mut theirs: Vec<u64> = by_conn.values().copied().collect();
    ours.sort_unstable();
    theirs.sort_unstable();
    assert_eq!(ours, theirs);
    assert_eq!(ours.iter().sum::<u64>(), 5);
    for o in open {
        assert_eq!(o["state"], "idle", "{o}");
        assert_eq!(o["inFlight"], 0);
        assert!(o["idleForSeconds"].as_f64().unwrap() <= o["ageSeconds"].as_f64().unwrap());
    }
    assert_eq!(
        d["connections"]["idle"].as_u64().unwrap(),
        open.len() as u64
    );
    // The five-minute window saw the same five requests.
    let points = d["recent"]["points"].as_array().unwrap();
    assert_eq!(points.len(), 30);
    assert_eq!(
        points
            .iter()
            .map(|p| p["requests"].as_u64().unwrap())
            .sum::<u64>(),
        5
    );
    let last = points.iter().rev().find(|p| p["requests"] != 0).unwrap();
    assert!(last["p50Ms"].as_f64().unwrap() > 0.0);
    assert!(last["p99Ms"].as_f64().unwrap() >= last["p50Ms"].as_f64().unwrap());

    // The stream carries the same details and the health verdict.
    let resp = client()
        .get(&format!("{}/api/connections/stream", gw.url))
        .await
        .unwrap();
    let mut body = resp.into_body();
    let frame = body.frame().await.unwrap().unwrap();
    let text = std::str::from_utf8(frame.data_ref().unwrap())
        .unwrap()
        .to_string();
    let data_line = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("a data line");
    let ev: Value = json(data_line);
    let sd = &ev["data"]["details"][0];
    // Ages move on between the two reads; ids and requests do not.
    let ids = |v: &Value| -> Vec<(u64, u64)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| (o["id"].as_u64().unwrap(), o["requests"].as_u64().unwrap()))
            .collect()
    };
    assert_eq!(ids(&sd["openConnections"]), ids(&d["openConnections"]));
    assert_eq!(sd["performance"]["totalRequests"], 5);
    assert_eq!(ev["data"]["health"]["healthy"], true);
}
