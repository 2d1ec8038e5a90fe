//! Proxies in the gateway: `PROXY_URL` sends a provider's requests through
//! one `CONNECT` tunnel per pooled connection (the testkit proxy counts
//! them), a provider's `"proxy": null` goes direct, a reload to another
//! proxy drains the old tunnels, and no management answer shows the
//! proxy's password.

use keepwarm_testkit::{MockApi, MockProvider, ProxyServer};

use crate::support::{client, eventually, json, post, read, Gateway};

const BODY: &str =
    r#"{"max_tokens":8,"messages":[{"role":"user","content":"hi"}],"model":"MODEL"}"#;

async fn tls_mock() -> MockProvider {
    MockProvider::builder(MockApi::Anthropic)
        .tls(true)
        .start()
        .await
}

async fn ask(gw: &Gateway, provider: &str) {
    let body = BODY.replace("MODEL", &format!("{provider},claude-test"));
    let (s, _, text) =
        read(post(&client(), &format!("{}/v1/messages", gw.url), &[], &body).await).await;
    assert_eq!(s, 200, "{provider}: {text}");
}

async fn get_text(gw: &Gateway, path: &str) -> String {
    let resp = client().get(&format!("{}{path}", gw.url)).await.unwrap();
    let (s, _, text) = read(resp).await;
    assert_eq!(s, 200, "{path}: {text}");
    text
}

#[tokio::test]
async fn proxy_url_tunnels_a_provider_and_null_goes_direct() {
    let (via, direct) = (tls_mock().await, tls_mock().await);
    let proxy = ProxyServer::builder()
        .credentials("corp", "s3cret")
        .start()
        .await;
    let cfg = r#"{
      "PROXY_URL": "http://corp:$PROXY_PASS@$PROXY_ADDR",
      "Providers": [
        { "name": "via", "api_base_url": "$VIA_URL", "api_key": "$VIA_KEY" },
        { "name": "direct", "api_base_url": "$DIRECT_URL", "api_key": "$DIRECT_KEY", "proxy": null }
      ]
    }"#;
    let vars = [
        ("PROXY_PASS", "s3cret".to_string()),
        ("PROXY_ADDR", proxy.addr().to_string()),
        ("VIA_URL", via.endpoint()),
        ("VIA_KEY", via.key().to_string()),
        ("DIRECT_URL", direct.endpoint()),
        ("DIRECT_KEY", direct.key().to_string()),
    ];
    let gw = Gateway::start(cfg, &vars, &[&via, &direct]).await;
    for _ in 0..5 {
        ask(&gw, "via").await;
        ask(&gw, "direct").await;
    }
    let p = proxy.stats();
    let tunnel = format!("CONNECT localhost:{}", via.upstream().addr().port());
    assert_eq!(p.targets, vec![tunnel], "only `via` goes through the proxy");
    assert_eq!((p.connects, p.auth_required), (1, 0));
    assert_eq!(
        (via.received().len(), via.upstream().stats().accepted),
        (5, 1)
    );
    assert_eq!(
        (direct.received().len(), direct.upstream().stats().accepted),
        (5, 1)
    );

    // Management answers name the proxy, never its password.
    let providers = json(&get_text(&gw, "/api/connections/providers").await);
    let by = |n: &str| {
        (providers["data"].as_array().unwrap().iter())
            .find(|p| p["provider"] == n)
            .cloned()
            .unwrap()
    };
    let shown = format!("http://corp:***@{}", proxy.addr());
    assert_eq!(by("via")["proxy"], shown.as_str());
    assert_eq!(by("direct")["proxy"], serde_json::Value::Null);
    for path in [
        "/api/connections/providers",
        "/api/connections/config",
        "/api/connections/details",
        "/api/connections/stats",
        "/metrics",
    ] {
        let text = get_text(&gw, path).await;
        assert!(
            !text.contains("s3cret"),
            "{path} leaks the proxy password: {text}"
        );
    }
    let cfg = json(&get_text(&gw, "/api/connections/config").await);
    let via_cfg = (cfg["data"]["providers"].as_array().unwrap().iter())
        .find(|p| p["provider"] == "via")
        .cloned()
        .unwrap();
    assert_eq!(via_cfg["proxy"], shown.as_str());
}

#[tokio::test]
async fn a_provider_proxy_wins_and_a_refusing_proxy_is_a_clear_error() {
    let mock = tls_mock().await;
    let good = ProxyServer::start().await;
    let refusing = ProxyServer::builder().refuse_connect(true).start().await;
    let cfg = r#"{
      "PROXY_URL": "$REFUSING",
      "Providers": [
        { "name": "own", "api_base_url": "$URL", "api_key": "$KEY", "proxy": "$GOOD" },
        { "name": "global", "api_base_url": "$URL", "api_key": "$KEY" }
      ]
    }"#;
    let vars = [
        ("REFUSING", refusing.url()),
        ("GOOD", good.url()),
        ("URL", mock.endpoint()),
        ("KEY", mock.key().to_string()),
    ];
    let gw = Gateway::start(cfg, &vars, &[&mock]).await;
    ask(&gw, "own").await;
    assert_eq!(good.stats().connects, 1);
    let body = BODY.replace("MODEL", "global,claude-test");
    let (s, _, text) =
        read(post(&client(), &format!("{}/v1/messages", gw.url), &[], &body).await).await;
    assert!(s >= 500, "{s}: {text}");
    assert!(
        text.contains(&format!("proxy {} refused CONNECT", refusing.url())) && text.contains("502"),
        "{text}"
    );
    assert!(refusing.stats().bad_gateway >= 1);
    assert!(eventually(|| mock.upstream().stats().accepted == 1).await);
}

#[tokio::test]
async fn a_reload_to_another_proxy_drains_the_old_tunnels() {
    let mock = tls_mock().await;
    let (a, b) = (ProxyServer::start().await, ProxyServer::start().await);
    let text = |proxy: &ProxyServer| {
        format!(
            r#"{{ "APIKEY": "k", "PROXY_URL": "{}", "Providers": [
              {{ "name": "p", "api_base_url": "{}", "api_key": "{}" }} ] }}"#,
            proxy.url(),
            mock.endpoint(),
            mock.key()
        )
    };
    let dir = std::env::temp_dir().join(format!("keepwarm-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("reload.json");
    std::fs::write(&path, text(&a)).unwrap();
    let gw = Gateway::start(&text(&a), &[], &[&mock]).await;
    gw.state.set_config_path(Some(path.clone()));
    let auth = [("x-api-key", "k")];
    let messages = format!("{}/v1/messages", gw.url);
    let body = BODY.replace("MODEL", "p,claude-test");
    let (s, _, t) = read(post(&client(), &messages, &auth, &body).await).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!((a.stats().connects, a.stats().tunnels_open), (1, 1));

    std::fs::write(&path, text(&b)).unwrap();
    let reload = format!("{}/api/config/reload", gw.url);
    let (s, _, t) = read(post(&client(), &reload, &auth, "").await).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(json(&t)["data"]["changed"], serde_json::json!(["p"]), "{t}");
    // The idle tunnel through the old proxy is closed at once.
    assert!(
        a.wait_until(|s| s.tunnels_open == 0, std::time::Duration::from_secs(2))
            .await
    );
    let (s, _, t) = read(post(&client(), &messages, &auth, &body).await).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!((a.stats().connects, b.stats().connects), (1, 1));
    assert_eq!(mock.upstream().stats().accepted, 2);
    std::fs::remove_dir_all(&dir).ok();
}
