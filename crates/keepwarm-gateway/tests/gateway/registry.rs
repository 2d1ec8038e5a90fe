//! One client for all providers: the global idle cap is global (issue 8
//! bug 2); a provider's URL query reaches the upstream and is redacted in
//! management answers (bug 1); a stalled request body is cut off (bug 3).

use std::time::Duration;

use keepwarm_testkit::MockProvider;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{anthropic_config, client, eventually, json, post, read, vars, Gateway};

const BODY: &str =
    r#"{"max_tokens":8,"messages":[{"role":"user","content":"hi"}],"model":"MODEL"}"#;

async fn get_json(gw: &Gateway, path: &str) -> serde_json::Value {
    let resp = client()
        .get(&format!("{}{path}", gw.url))
        .await
        .expect("the gateway answers");
    let (status, _, text) = read(resp).await;
    assert_eq!(status, 200, "{text}");
    json(&text)
}

#[tokio::test]
async fn max_idle_total_caps_idle_connections_across_all_providers() {
    let mocks = [
        MockProvider::anthropic().await,
        MockProvider::anthropic().await,
        MockProvider::anthropic().await,
    ];
    let cfg = r#"{
      "Providers": [
        { "name": "p1", "api_base_url": "$URL1", "api_key": "$KEY1" },
        { "name": "p2", "api_base_url": "$URL2", "api_key": "$KEY2" },
        { "name": "p3", "api_base_url": "$URL3", "api_key": "$KEY3" }
      ],
      "HttpConnectionPool": { "global": { "maxIdleTotal": 2 } }
    }"#;
    let mut v = Vec::new();
    for (m, (url, key)) in mocks
        .iter()
        .zip([("URL1", "KEY1"), ("URL2", "KEY2"), ("URL3", "KEY3")])
    {
        v.push((url, m.endpoint()));
        v.push((key, m.key().to_string()));
    }
    let refs: Vec<&MockProvider> = mocks.iter().collect();
    let gw = Gateway::start(cfg, &v, &refs).await;
    let c = client();
    // p1, p2, p3 in turn: each leaves one idle connection behind.
    for (i, name) in ["p1", "p2", "p3"].iter().enumerate() {
        let body = BODY.replace("MODEL", &format!("{name},claude-test"));
        let (s, _, text) =
            read(post(&c, &format!("{}/v1/messages", gw.url), &[], &body).await).await;
        assert_eq!(s, 200, "{text}");
        let want_idle = (i + 1).min(2);
        let client = gw.state.client().clone();
        let idle_now = move || client.stats().iter().map(|k| k.pool.idle).sum::<usize>();
        assert!(
            eventually(|| idle_now() == want_idle).await,
            "after {name}: {} idle, want {want_idle}",
            idle_now()
        );
        let stats = get_json(&gw, "/api/connections/stats").await;
        let total = stats["data"]["totalIdleConnections"].as_u64().unwrap();
        assert!(total <= 2, "after {name}: {total} idle across providers");
    }
    // The least recently used (p1's) was closed by the cap; the others stay.
    let details = get_json(&gw, "/api/connections/details").await;
    let by_name = |n: &str| {
        details["data"]["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["provider"] == n)
            .cloned()
            .unwrap()
    };
    let p1 = by_name("p1");
    assert_eq!(p1["connections"]["idle"], 0, "{p1}");
    assert_eq!(p1["counters"]["closedByReason"]["idleCap"], 1, "{p1}");
    for n in ["p2", "p3"] {
        let p = by_name(n);
        assert_eq!(p["connections"]["idle"], 1, "{p}");
        assert_eq!(p["counters"]["closedByReason"]["idleCap"], 0, "{p}");
    }
    // The servers agree: p1's connection is gone, p2's and p3's are open.
    let open = |i: usize| mocks[i].upstream().stats().open;
    assert!(eventually(|| open(0) == 0).await, "p1 upstream still open");
    assert_eq!((open(1), open(2)), (1, 1));
    let text = read(client().get(&format!("{}/metrics", gw.url)).await.unwrap())
        .await
        .2;
    assert!(
        text.contains(r#"keepwarm_connections_closed_total{provider="p1",reason="idle_cap"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn the_providers_query_goes_upstream_before_the_callers_and_is_redacted() {
    let mock = MockProvider::anthropic().await;
    let mut v = vars(&mock);
    v[0].1 = format!("{}?api-version=2024-10-21&key=q-secret", mock.endpoint());
    let gw = Gateway::start(&anthropic_config(""), &v, &[&mock]).await;
    let body = BODY.replace("MODEL", "mock,claude-test");
    let url = format!("{}/v1/messages?beta=true", gw.url);
    let (s, _, text) = read(post(&client(), &url, &[], &body).await).await;
    assert_eq!(s, 200, "{text}");
    let got = mock.received();
    assert_eq!(
        got[0].path,
        "/v1/messages?api-version=2024-10-21&key=q-secret&beta=true"
    );
    for path in ["/api/connections/config", "/api/connections/providers"] {
        let answer = get_json(&gw, path).await.to_string();
        assert!(
            !answer.contains("q-secret"),
            "{path} leaks the key: {answer}"
        );
    }
    let cfg = get_json(&gw, "/api/connections/config").await;
    let endpoint = cfg["data"]["providers"][0]["endpoint"].as_str().unwrap();
    assert!(
        endpoint.ends_with("/v1/messages?api-version=2024-10-21&key=***"),
        "{endpoint}"
    );
}

/// Sends headers announcing a 100-byte body, 10 bytes of it, then stalls;
/// returns what the gateway answered before closing.
async fn stall_body(gw: &Gateway, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(gw.url.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"model\":"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    // Closed (EOF) instead of waiting for the rest forever.
    read.expect("the gateway answers and closes well before 10 s")
        .expect("a clean close");
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn a_stalled_request_body_gets_408_in_the_callers_shape_and_is_counted() {
    let mock = MockProvider::anthropic().await;
    let gw = Gateway::start(
        &anthropic_config(r#", "BODY_READ_TIMEOUT_MS": 200"#),
        &vars(&mock),
        &[&mock],
    )
    .await;
    let text = stall_body(&gw, "/v1/messages").await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(text.contains(r#""type":"timeout_error""#), "{text}");
    assert!(text.contains("BODY_READ_TIMEOUT_MS"), "{text}");
    let text = stall_body(&gw, "/v1/chat/completions").await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains(r#""code":"request_timeout""#), "{text}");
    assert!(mock.received().is_empty());
    let metrics = read(client().get(&format!("{}/metrics", gw.url)).await.unwrap())
        .await
        .2;
    assert!(
        metrics.contains(r#"keepwarm_requests_rejected_total{reason="body_timeout"} 2"#),
        "{metrics}"
    );
}
