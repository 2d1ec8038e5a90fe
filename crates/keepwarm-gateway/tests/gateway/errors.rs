//! Bad input and failed upstreams get a clear error in the caller's API
//! shape, naming what is wrong; never a stack trace or a secret.

use std::time::Duration;

use keepwarm_testkit::{MockApi, MockProvider};

use crate::support::*;

async fn status_and_json(
    gw: &Gateway,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, serde_json::Value) {
    let (s, _, text) =
        read(post(&client(), &format!("{}{path}", gw.url), headers, body).await).await;
    (s, json(&text))
}

#[tokio::test]
async fn bad_requests_are_400_in_the_callers_shape() {
    let mock = MockProvider::anthropic().await;
    let oai = MockProvider::openai().await;
    let cfg = r#"{"Providers":[
        {"name":"mock","api_base_url":"$MOCK_URL","api_key":"$MOCK_KEY","models":["claude-test"]},
        {"name":"oai","api_base_url":"$OAI","api_key":"sk-oai"}]}"#;
    let mut v = vars(&mock);
    v.push(("OAI", oai.endpoint()));
    let gw = Gateway::start(cfg, &v, &[&mock, &oai]).await;
    let cases = [
        (
            "/v1/messages",
            "{not json",
            "request body is not valid JSON",
        ),
        (
            "/v1/messages",
            "[1,2]",
            "request body must be a JSON object",
        ),
        ("/v1/messages", r#"{"messages":[]}"#, "missing \"model\""),
        (
            "/v1/messages",
            r#"{"model":42}"#,
            "\"model\" must be a string, got a number",
        ),
        (
            "/v1/messages",
            r#"{"model":"nope,claude"}"#,
            "unknown provider \"nope\" (configured: mock, oai)",
        ),
        (
            "/v1/messages",
            r#"{"model":"mystery-model"}"#,
            "unknown model \"mystery-model\"",
        ),
        (
            "/v1/messages",
            r#"{"model":"mock,"}"#,
            "no model after the comma",
        ),
        (
            "/v1/messages",
            r#"{"model":"oai,gpt","messages":[{"role":"user","content":[{"type":"document"}]}]}"#,
            "cannot translate this request for provider \"oai\" (openai API): messages[0].content[0].type",
        ),
    ];
    for (path, body, want) in cases {
        let (s, v) = status_and_json(&gw, path, &[], body).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(want), "{body}: {msg}");
    }
    let (s, v) = status_and_json(&gw, "/v1/chat/completions", &[], "{oops").await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["code"], "invalid_json");
    assert!(v.get("type").is_none(), "OpenAI shape: {v}");
    assert!(mock.received().is_empty() && oai.received().is_empty());
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let mock = MockProvider::anthropic().await;
    let gw = Gateway::start(
        &anthropic_config(r#", "BODY_LIMIT_BYTES": 64"#),
        &vars(&mock),
        &[&mock],
    )
    .await;
    let big = format!(
        r#"{{"model":"mock,claude-test","pad":"{}"}}"#,
        "x".repeat(100)
    );
    let (s, v) = status_and_json(&gw, "/v1/messages", &[], &big).await;
    assert_eq!(s, 413, "{v}");
    assert_eq!(v["error"]["type"], "request_too_large");
    assert!(v["error"]["message"].as_str().unwrap().contains("64 bytes"));
}

#[tokio::test]
async fn apikey_guards_every_route() {
    let mock = MockProvider::anthropic().await;
    let gw = Gateway::start(
        &anthropic_config(r#", "APIKEY": "gw-secret""#),
        &vars(&mock),
        &[&mock],
    )
    .await;
    let body = r#"{"model":"mock,claude-test","messages":[]}"#;
    let (s, v) = status_and_json(&gw, "/v1/messages", &[], body).await;
    assert_eq!(s, 401);
    assert_eq!(v["error"]["type"], "authentication_error");
    let (s, v) =
        status_and_json(&gw, "/v1/chat/completions", &[("x-api-key", "wrong")], body).await;
    assert_eq!(s, 401);
    assert_eq!(v["error"]["code"], "invalid_api_key");
    let (s, _) = status_and_json(&gw, "/v1/messages", &[("x-api-key", "gw-secret")], body).await;
    assert_eq!(s, 200);
    let (s, _) = status_and_json(
        &gw,
        "/v1/messages",
        &[("authorization", "Bearer gw-secret")],
        body,
    )
    .await;
    assert_eq!(s, 200);
    let c = client();
    let health = c.get(&format!("{}/health", gw.url)).await.unwrap();
    assert_eq!(health.status(), 401, "health is guarded too");
    // The gateway's key never went upstream.
    for r in mock.received() {
        assert!(
            !r.headers.iter().any(|(_, v)| v.contains("gw-secret")),
            "{:?}",
            r.headers
        );
    }
}

#[tokio::test]
async fn unreachable_upstream_is_502_naming_the_provider() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let url = format!("http://127.0.0.1:{port}/v1/messages");
    let gw = Gateway::start(
        &anthropic_config(""),
        &[("MOCK_URL", url), ("MOCK_KEY", "sk-secret-xyz".into())],
        &[],
    )
    .await;
    let (s, _, text) = read(
        post(
            &client(),
            &format!("{}/v1/messages", gw.url),
            &[],
            r#"{"model":"mock,claude-test"}"#,
        )
        .await,
    )
    .await;
    assert_eq!(s, 502, "{text}");
    let v = json(&text);
    assert_eq!(v["error"]["type"], "api_error");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("provider mock: connect to mock (127.0.0.1:"),
        "{msg}"
    );
    assert!(!text.contains("sk-secret-xyz"));
}

#[tokio::test]
async fn upstream_slower_than_api_timeout_is_504() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .header_delay(Duration::from_secs(5))
        .start()
        .await;
    let gw = Gateway::start(
        &anthropic_config(r#", "API_TIMEOUT_MS": 200"#),
        &vars(&mock),
        &[&mock],
    )
    .await;
    let (s, v) = status_and_json(&gw, "/v1/messages", &[], r#"{"model":"mock,claude-test"}"#).await;
    assert_eq!(s, 504, "{v}");
    assert_eq!(v["error"]["type"], "timeout_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("waiting for response headers from mock"),
        "{v}"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json() {
    let mock = MockProvider::anthropic().await;
    let gw = Gateway::start(&anthropic_config(""), &vars(&mock), &[&mock]).await;
    let c = client();
    let (s, _, text) = read(c.get(&format!("{}/nope", gw.url)).await.unwrap()).await;
    assert_eq!(s, 404);
    assert_eq!(json(&text)["error"]["type"], "not_found_error");
    let (s, _, text) = read(c.get(&format!("{}/v1/messages", gw.url)).await.unwrap()).await;
    assert_eq!(s, 405);
    assert!(json(&text)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("GET is not allowed"));
    let (s, _, text) = read(c.get(&format!("{}/health", gw.url)).await.unwrap()).await;
    assert_eq!(s, 200);
    assert_eq!(json(&text)["status"], "ok");
}

#[tokio::test]
async fn an_untrusted_upstream_certificate_is_502_naming_tls() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .tls(true)
        .start()
        .await;
    // No root added for the mock's self-signed certificate.
    let gw = Gateway::start(&anthropic_config(""), &vars(&mock), &[]).await;
    let (s, v) = status_and_json(&gw, "/v1/messages", &[], r#"{"model":"mock,claude-test"}"#).await;
    assert_eq!(s, 502, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("provider mock: TLS handshake with mock (localhost:"),
        "{msg}"
    );
}

#[tokio::test]
async fn pool_exhausted_is_504_naming_the_limit() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .header_delay(Duration::from_millis(500))
        .start()
        .await;
    let cfg = anthropic_config(
        r#", "HttpConnectionPool": {"global": {"maxSockets": 1, "acquireTimeout": 100}}"#,
    );
    let gw = Gateway::start(&cfg, &vars(&mock), &[&mock]).await;
    let c = client();
    let url = format!("{}/v1/messages", gw.url);
    let slow = {
        let (c, url) = (c.clone(), url.clone());
        tokio::spawn(async move {
            read(post(&c, &url, &[], r#"{"model":"mock,claude-test"}"#).await)
                .await
                .0
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (s, _, text) = read(post(&c, &url, &[], r#"{"model":"mock,claude-test"}"#).await).await;
    assert_eq!(s, 504, "{text}");
    let msg = json(&text)["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    // The measured wait: the 100 ms acquireTimeout plus scheduling delay.
    let waited_ms = msg
        .split("1 of 1 connections busy, waited ")
        .nth(1)
        .and_then(|w| w.strip_suffix("ms"))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(
        msg.contains("pool exhausted for mock (127.0.0.1:")
            && waited_ms.is_some_and(|ms| ms >= 100),
        "{msg}"
    );
    assert_eq!(
        slow.await.unwrap(),
        200,
        "the request holding the slot is unaffected"
    );
}
