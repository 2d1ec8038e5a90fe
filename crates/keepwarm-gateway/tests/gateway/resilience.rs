//! Key pool, retries, circuit breaker and fallback against real loopback
//! providers that misbehave on cue ([`FaultyProvider`]); each test checks
//! what the provider's server saw and what the caller saw.

use std::time::Duration;

use keepwarm_testkit::{refused_url, Fault, FaultyProvider, MockApi};

use crate::support::*;

const K1: &str = "sk-test-key-one-AAAA";
const K2: &str = "sk-test-key-two-BBBB";
const BODY: &str =
    r#"{"model":"p,claude-test","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;

fn config(extra: &str) -> String {
    format!(
        r#"{{
          "Providers": [{{ "name": "p", "api_base_url": "$URL", "api_keys": ["$K1", "$K2"] }}],
          "ApiKeyPool": {{"enabled": true, "strategy": "round-robin"}},
          "Retry": {{"attempts": 2, "backoffMs": 5, "maxBackoffMs": 20}}
          {extra}
        }}"#
    )
}

fn env(p: &FaultyProvider) -> Vec<(&'static str, String)> {
    vec![("URL", p.endpoint()), ("K1", K1.into()), ("K2", K2.into())]
}

async fn messages(gw: &Gateway, body: &str) -> (u16, http::HeaderMap, String) {
    let c = client();
    let resp = post(
        &c,
        &format!("{}/v1/messages", gw.url),
        &[("anthropic-version", "2023-06-01")],
        body,
    )
    .await;
    read(resp).await
}

async fn get(gw: &Gateway, path: &str) -> String {
    let c = client();
    let req = http::Request::get(format!("{}{path}", gw.url))
        .body(bytes::Bytes::new())
        .unwrap();
    let (status, _, body) = read(c.request(req).await.unwrap()).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

async fn provider_json(gw: &Gateway, name: &str) -> serde_json::Value {
    json(&get(gw, &format!("/api/connections/provider/{name}")).await)["data"].clone()
}

#[tokio::test]
async fn a_429_on_one_key_is_answered_by_another() {
    let p = FaultyProvider::start(MockApi::Anthropic, &[K1, K2]).await;
    p.rate_limit_key(K1, &[("retry-after", "30")]);
    let gw = Gateway::start(&config(""), &env(&p), &[]).await;
    let (status, h, body) = messages(&gw, BODY).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        h["x-keepwarm-attempts"], "2",
        "key 1 got a 429, key 2 answered"
    );
    for _ in 0..3 {
        assert_eq!(messages(&gw, BODY).await.0, 200);
    }
    // The server saw key 1 once (then it cooled down for its retry-after), key 2 four times.
    assert_eq!((p.requests_with_key(K1), p.requests_with_key(K2)), (1, 4));

    let v = provider_json(&gw, "p").await;
    let keys = &v["resilience"]["apiKeys"];
    assert_eq!(keys[0]["key"], "…AAAA");
    assert_eq!(
        (
            keys[0]["state"].as_str(),
            keys[0]["requests"].as_u64(),
            keys[0]["rateLimited"].as_u64()
        ),
        (Some("cooldown"), Some(1), Some(1))
    );
    assert!(keys[0]["cooldownRemainingMs"].as_u64().unwrap() > 20_000);
    assert_eq!(
        (
            keys[1]["key"].as_str(),
            keys[1]["state"].as_str(),
            keys[1]["requests"].as_u64()
        ),
        (Some("…BBBB"), Some("active"), Some(4))
    );
    assert_eq!(keys[1]["inFlight"], 0);
    assert_eq!(v["resilience"]["retries"]["429"], 1);
    let metrics = get(&gw, "/metrics").await;
    assert!(
        metrics.contains("keepwarm_api_key_requests_total{provider=\"p\",key=\"…BBBB\"} 4"),
        "{metrics}"
    );
    assert!(metrics.contains("keepwarm_api_key_rate_limited_total{provider=\"p\",key=\"…AAAA\"} 1"));
    assert!(metrics.contains("keepwarm_upstream_retries_total{provider=\"p\",reason=\"429\"} 1"));
    let all = format!(
        "{metrics}{}{}",
        get(&gw, "/api/connections/providers").await,
        get(&gw, "/api/connections/config").await
    );
    assert!(!all.contains("sk-test-key"), "a key leaked");
}

#[tokio::test]
async fn a_529_once_then_200_is_retried_invisibly() {
    let p = FaultyProvider::start(MockApi::Anthropic, &[K1, K2]).await;
    p.fail_next(1, 529);
    let gw = Gateway::start(&config(""), &env(&p), &[]).await;
    let (status, h, body) = messages(&gw, BODY).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["content"][0]["type"], "text");
    assert_eq!(h["x-keepwarm-attempts"], "2");
    assert_eq!(
        p.received().len(),
        2,
        "the server saw the 529 attempt and the retry"
    );
    let v = provider_json(&gw, "p").await;
    assert_eq!(v["resilience"]["retries"]["529"], 1);
    assert_eq!(v["resilience"]["circuitBreaker"]["state"], "closed");
}

#[tokio::test]
async fn retries_stop_at_the_limit_and_relay_the_last_answer() {
    let p = FaultyProvider::start(MockApi::Anthropic, &[K1]).await;
    p.fail_next(5, 503);
    let gw = Gateway::start(&config(""), &env(&p), &[]).await;
    let (status, h, body) = messages(&gw, BODY).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(json(&body)["type"], "error");
    assert_eq!(
        h["x-keepwarm-attempts"], "3",
        "attempts: 2 retries after the first try"
    );
    assert_eq!(p.received().len(), 3);
}

#[tokio::test]
async fn no_retry_after_the_first_byte_was_relayed() {
    let p = FaultyProvider::start(MockApi::Anthropic, &[K1, K2]).await;
    p.upstream().knobs().update(|k| k.truncate_body = true);
    let gw = Gateway::start(&config(""), &env(&p), &[]).await;
    let c = client();
    let resp = post(&c, &format!("{}/v1/messages", gw.url), &[], BODY).await;
    assert_eq!(resp.status(), 200, "the headers went to the caller");
    assert_eq!(resp.headers()["x-keepwarm-attempts"], "1");
    assert!(
        resp.into_body().bytes().await.is_err(),
        "the cut body reaches the caller as an error"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        p.received().len(),
        1,
        "never retried once bytes were relayed"
    );
    let v = provider_json(&gw, "p").await;
    let retried: u64 = v["resilience"]["retries"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|n| n.as_u64())
        .sum();
    assert_eq!(retried, 0);
}

#[tokio::test]
async fn the_breaker_walks_closed_open_half_open_closed() {
    let p = FaultyProvider::start(MockApi::Anthropic, &[K1]).await;
    p.fail_next(2, 500);
    let extra = r#", "CircuitBreaker": {"failureThreshold": 2, "windowMs": 60000, "openMs": 300},
        "Providers": [{ "name": "p", "api_base_url": "$URL", "api_key": "$K1", "retry": {"attempts": 0} }]"#;
    let text = format!(r#"{{"Retry": {{"attempts": 0}} {extra}}}"#);
    let gw = Gateway::start(&text, &env(&p), &[]).await;
    assert_eq!(messages(&gw, BODY).await.0, 500);
    assert_eq!(messages(&gw, BODY).await.0, 500);
    // Open: answered at once by the gateway, naming the provider.
    let (status, _, body) = messages(&gw, BODY).await;
    assert_eq!(status, 503, "{body}");
    let msg = json(&body)["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        msg.contains("provider p") && msg.contains("circuit breaker is open"),
        "{msg}"
    );
    assert_eq!(
        p.received().len(),
        2,
        "an open breaker sends nothing upstream"
    );
    let providers = json(&get(&gw, "/api/connections/providers").await);
    assert_eq!(providers["data"][0]["status"], "circuit_open");
    // The dashboard reads /details (and its stream): the breaker shows there too.
    let details = json(&get(&gw, "/api/connections/details").await);
    assert_eq!(details["data"]["providers"][0]["status"], "circuit_open");
    let health = json(&get(&gw, "/api/connections/health").await);
    assert_eq!(health["data"]["healthy"], false);
    assert!(
        health["data"]["issues"]
            .to_string()
            .contains("p: circuit breaker is open"),
        "{health}"
    );
    assert!(get(&gw, "/metrics")
        .await
        .contains("keepwarm_circuit_breaker_state{provider=\"p\"} 1"));

    tokio::time::sleep(Duration::from_millis(400)).await; // openMs passes
    let (status, _, body) = messages(&gw, BODY).await;
    assert_eq!(status, 200, "the half-open probe succeeds: {body}");
    assert_eq!(p.received().len(), 3);
    let v = provider_json(&gw, "p").await;
    let t = &v["resilience"]["circuitBreaker"];
    assert_eq!(t["state"], "closed");
    let counts: Vec<(String, u64)> = t["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                format!(
                    "{}>{}",
                    x["from"].as_str().unwrap(),
                    x["to"].as_str().unwrap()
                ),
                x["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("closed>open".into(), 1),
            ("open>half_open".into(), 1),
            ("half_open>closed".into(), 1),
            ("half_open>open".into(), 0)
        ]
    );
    let metrics = get(&gw, "/metrics").await;
    assert!(metrics.contains("keepwarm_circuit_breaker_state{provider=\"p\"} 0"));
    assert!(metrics.contains(
        "keepwarm_circuit_breaker_transitions_total{provider=\"p\",from=\"closed\",to=\"open\"} 1"
    ));
}

#[tokio::test]
async fn a_refused_provider_falls_back_to_the_next_target() {
    let b = FaultyProvider::start(MockApi::Anthropic, &[K2]).await;
    let text = r#"{
      "Providers": [
        { "name": "a", "api_base_url": "$A_URL", "api_key": "$K1" },
        { "name": "b", "api_base_url": "$B_URL", "api_key": "$K2" }],
      "Retry": {"attempts": 1, "backoffMs": 1, "maxBackoffMs": 2},
      "fallback": {"default": ["b,model-b"]}
    }"#;
    let vars = vec![
        ("A_URL", refused_url("/v1/messages")),
        ("B_URL", b.endpoint()),
        ("K1", K1.into()),
        ("K2", K2.into()),
    ];
    let gw = Gateway::start(text, &vars, &[]).await;
    let body =
        r#"{"model":"a,model-a","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    let (status, h, text) = messages(&gw, body).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(h["x-keepwarm-route"], "explicit b,model-b");
    assert_eq!(
        h["x-keepwarm-attempts"], "3",
        "a: first try + 1 retry, then b"
    );
    let got = b.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        json(std::str::from_utf8(&got[0].body).unwrap())["model"],
        "model-b",
        "the model is rewritten for the target"
    );
    let metrics = get(&gw, "/metrics").await;
    assert!(
        metrics.contains("keepwarm_fallbacks_total{from=\"a\",to=\"b\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("keepwarm_upstream_retries_total{provider=\"a\",reason=\"connect\"} 1")
    );
    assert_eq!(
        provider_json(&gw, "a").await["resilience"]["fallbacksFrom"],
        1
    );
}

#[tokio::test]
async fn a_hanging_provider_times_out_opens_its_breaker_and_traffic_falls_back() {
    let a = FaultyProvider::start(MockApi::Anthropic, &[K1]).await;
    let b = FaultyProvider::start(MockApi::Anthropic, &[K2]).await;
    a.push(Fault::Hang);
    let text = r#"{
      "API_TIMEOUT_MS": 300,
      "Providers": [
        { "name": "a", "api_base_url": "$A_URL", "api_key": "$K1" },
        { "name": "b", "api_base_url": "$B_URL", "api_key": "$K2" }],
      "CircuitBreaker": {"failureThreshold": 1, "openMs": 60000},
      "fallback": {"default": ["b,model-b"]}
    }"#;
    let vars = vec![
        ("A_URL", a.endpoint()),
        ("B_URL", b.endpoint()),
        ("K1", K1.into()),
        ("K2", K2.into()),
    ];
    let gw = Gateway::start(text, &vars, &[]).await;
    let body = r#"{"model":"a,model-a","max_tokens":5,"messages":[]}"#;
    let (status, _, text) = messages(&gw, body).await;
    assert_eq!(status, 504, "{text}");
    assert!(
        json(&text)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("provider a"),
        "{text}"
    );
    assert_eq!(a.received().len(), 1);
    assert_eq!(
        provider_json(&gw, "a").await["resilience"]["circuitBreaker"]["state"],
        "open"
    );
    // a's breaker is open: the next request goes straight to b, a sees nothing.
    let before_b = b.received().len();
    let (status, h, text) = messages(&gw, body).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(h["x-keepwarm-route"], "explicit b,model-b");
    assert_eq!(
        h["x-keepwarm-attempts"], "1",
        "the open breaker cost no attempt"
    );
    assert_eq!((a.received().len(), b.received().len()), (1, before_b + 1));
}

#[tokio::test]
async fn a_fallback_target_of_the_other_api_gets_the_request_translated() {
    let o = FaultyProvider::start(MockApi::OpenAi, &[K2]).await;
    let text = r#"{
      "Providers": [
        { "name": "a", "api_base_url": "$A_URL", "api_key": "$K1" },
        { "name": "o", "api_base_url": "$O_URL", "api_key": "$K2" }],
      "Retry": {"attempts": 0},
      "fallback": {"default": ["o,gpt-x"]}
    }"#;
    let vars = vec![
        ("A_URL", refused_url("/v1/messages")),
        ("O_URL", o.endpoint()),
        ("K1", K1.into()),
        ("K2", K2.into()),
    ];
    let gw = Gateway::start(text, &vars, &[]).await;
    let body = r#"{"model":"a,m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    let (status, h, text) = messages(&gw, body).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(h["x-keepwarm-route"], "explicit o,gpt-x");
    assert_eq!(
        json(&text)["type"],
        "message",
        "answered in the caller's (Anthropic) shape: {text}"
    );
    let got = o.received();
    assert_eq!(got.len(), 1);
    let sent = json(std::str::from_utf8(&got[0].body).unwrap());
    assert_eq!(
        (sent["model"].as_str(), sent["messages"][0]["role"].as_str()),
        (Some("gpt-x"), Some("user")),
        "OpenAI-shaped: {sent}"
    );
}
