//! Routing, rewriting, key injection and header handling, checked on what
//! the mock provider received.

use keepwarm_testkit::{MockApi, MockProvider};

use crate::support::*;

#[tokio::test]
async fn anthropic_request_is_routed_rewritten_and_keyed() {
    let mock = MockProvider::anthropic().await;
    let gw = Gateway::start(&anthropic_config(""), &vars(&mock), &[&mock]).await;
    let c = client();
    let resp = post(
        &c,
        &format!("{}/v1/messages?beta=true", gw.url),
        &[
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "tools-2024-04-04"),
            ("x-api-key", "caller-key-must-not-leak"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
        ],
        r#"{"model":"Mock,claude-test","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    let (status, headers, body) = read(resp).await;
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["model"], "claude-test");
    assert_eq!(v["content"][0]["text"], mock.text());
    assert_eq!(headers["request-id"], "req_mock_1");
    assert_eq!(headers["anthropic-ratelimit-requests-remaining"], "99");
    assert_eq!(headers["x-keepwarm-connection-reused"], "false");
    let overhead: f64 = headers["x-keepwarm-overhead-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(overhead >= 0.0);

    let got = mock.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.path, "/v1/messages?beta=true");
    let h = |name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(h("x-api-key"), Some(mock.key()));
    assert_eq!(h("anthropic-version"), Some("2023-06-01"));
    assert_eq!(h("anthropic-beta"), Some("tools-2024-04-04"));
    assert_eq!(h("x-hop"), None, "named in Connection: hop-by-hop");
    let sent = json(std::str::from_utf8(&r.body).unwrap());
    assert_eq!(sent["model"], "claude-test", "the bare model goes upstream");
    assert_eq!(sent["max_tokens"], 10);
}

#[tokio::test]
async fn openai_request_gets_a_bearer_key() {
    let mock = MockProvider::openai().await;
    let cfg = r#"{"Providers":[{"name":"oai","api_base_url":"$URL","api_key":"$KEY","models":["gpt-test"]}]}"#;
    let gw = Gateway::start(
        cfg,
        &[("URL", mock.endpoint()), ("KEY", mock.key().into())],
        &[&mock],
    )
    .await;
    let resp = post(
        &client(),
        &format!("{}/v1/chat/completions", gw.url),
        &[("authorization", "Bearer caller-key")],
        r#"{"model":"oai,gpt-test","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    let (status, headers, body) = read(resp).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["choices"][0]["message"]["content"], mock.text());
    assert_eq!(headers["x-request-id"], "req_mock_1");
    let r = &mock.received()[0];
    let auth = r
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap();
    assert_eq!(auth.1, format!("Bearer {}", mock.key()));
}

#[tokio::test]
async fn bare_models_use_router_default_or_the_one_provider_listing_them() {
    let a = MockProvider::anthropic().await;
    let b = MockProvider::builder(MockApi::Anthropic)
        .key("sk-b")
        .start()
        .await;
    let cfg = r#"{"Providers":[
        {"name":"a","api_base_url":"$A","api_key":"$AK","models":["model-a"]},
        {"name":"b","api_base_url":"$B","api_key":"sk-b","models":["model-b"]}]}"#;
    let v = vec![
        ("A", a.endpoint()),
        ("AK", a.key().into()),
        ("B", b.endpoint()),
    ];
    let gw = Gateway::start(cfg, &v, &[&a, &b]).await;
    let c = client();
    let url = format!("{}/v1/messages", gw.url);
    let (s, _, body) =
        read(post(&c, &url, &[], r#"{"model":"model-b","messages":[]}"#).await).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(b.received().len(), 1);
    assert_eq!(a.received().len(), 0);
    drop(gw);

    let with_default = cfg.replacen('{', r#"{"Router":{"default":"a,model-a"},"#, 1);
    let gw = Gateway::start(&with_default, &v, &[&a, &b]).await;
    let url = format!("{}/v1/messages", gw.url);
    let (s, _, body) =
        read(post(&c, &url, &[], r#"{"model":"anything","messages":[]}"#).await).await;
    assert_eq!(s, 200, "{body}");
    let sent = json(std::str::from_utf8(&a.received()[0].body).unwrap());
    assert_eq!(sent["model"], "model-a");
}

#[tokio::test]
async fn sequential_requests_open_one_upstream_connection() {
    let mock = MockProvider::anthropic().await;
    let gw = Gateway::start(&anthropic_config(""), &vars(&mock), &[&mock]).await;
    let c = client();
    let url = format!("{}/v1/messages", gw.url);
    for i in 0..20 {
        let (s, h, _) = read(
            post(
                &c,
                &url,
                &[],
                r#"{"model":"mock,claude-test","messages":[]}"#,
            )
            .await,
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(
            h["x-keepwarm-connection-reused"],
            if i == 0 { "false" } else { "true" }
        );
    }
    let up = mock.upstream().stats();
    assert_eq!((up.accepted, up.requests), (1, 20), "the mock's own count");
    let stats = gw.state.client().stats();
    assert_eq!(stats[0].pool.counters.created, 1);
    assert_eq!(stats[0].pool.counters.reused, 19);
}

#[tokio::test]
async fn pool_disabled_opens_one_connection_per_request() {
    let mock = MockProvider::anthropic().await;
    let cfg = anthropic_config(r#", "HttpConnectionPool": {"enabled": false}"#);
    let gw = Gateway::start(&cfg, &vars(&mock), &[&mock]).await;
    let c = client();
    let url = format!("{}/v1/messages", gw.url);
    for _ in 0..5 {
        let (s, h, _) = read(
            post(
                &c,
                &url,
                &[],
                r#"{"model":"mock,claude-test","messages":[]}"#,
            )
            .await,
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(h["x-keepwarm-connection-reused"], "false");
    }
    assert_eq!(mock.upstream().stats().accepted, 5);
}

#[tokio::test]
async fn count_tokens_goes_to_the_count_tokens_endpoint() {
    let mock = MockProvider::anthropic().await;
    let gw = Gateway::start(&anthropic_config(""), &vars(&mock), &[&mock]).await;
    let url = format!("{}/v1/messages/count_tokens?beta=true", gw.url);
    let (s, _, body) = read(
        post(
            &client(),
            &url,
            &[],
            r#"{"model":"mock,claude-test","messages":[]}"#,
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(json(&body)["input_tokens"].as_u64().unwrap() >= 1);
    assert_eq!(
        mock.received()[0].path,
        "/v1/messages/count_tokens?beta=true"
    );
}

#[tokio::test]
async fn hop_by_hop_response_headers_are_stripped() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .knobs(keepwarm_testkit::KnobSettings {
            keep_alive_header: Some((30, None)),
            ..Default::default()
        })
        .start()
        .await;
    let gw = Gateway::start(&anthropic_config(""), &vars(&mock), &[&mock]).await;
    let url = format!("{}/v1/messages", gw.url);
    let (s, h, _) = read(
        post(
            &client(),
            &url,
            &[],
            r#"{"model":"mock,claude-test","messages":[]}"#,
        )
        .await,
    )
    .await;
    assert_eq!(s, 200);
    assert!(!h.contains_key("keep-alive"), "{h:?}");
}
