//! Hot reload through `POST /api/config/reload`: new providers appear,
//! removed ones drain, changed pool settings apply, unchanged providers keep
//! their idle connections (the upstream's accept count does not move), and a
//! bad file leaves the running config serving.

use std::path::PathBuf;
use std::time::Duration;

use http_body_util::BodyExt;
use keepwarm_testkit::{anthropic_sse_body, MockApi, MockProvider};
use serde_json::Value;

use crate::support::*;

const KEY: &str = "reload-key";

fn provider(name: &str, mock: &MockProvider) -> String {
    format!(
        r#"{{ "name": "{name}", "api_base_url": "{}", "api_key": "{}", "models": ["m"] }}"#,
        mock.endpoint(),
        mock.key()
    )
}

fn config_text(providers: &[String], pool: &str) -> String {
    format!(
        r#"{{ "APIKEY": "{KEY}", "Providers": [{}], "HttpConnectionPool": {{ "providers": {{ {pool} }} }} }}"#,
        providers.join(", ")
    )
}

struct Reloading {
    gw: Gateway,
    path: PathBuf,
}

impl Reloading {
    async fn start(name: &str, text: &str, mocks: &[&MockProvider]) -> Reloading {
        let dir = std::env::temp_dir().join(format!("keepwarm-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, text).unwrap();
        let gw = Gateway::start(text, &[], mocks).await;
        gw.state.set_config_path(Some(path.clone()));
        Reloading { gw, path }
    }

    async fn reload(&self, text: &str) -> (u16, Value) {
        std::fs::write(&self.path, text).unwrap();
        let (s, _, body) = read(
            post(
                &client(),
                &format!("{}/api/config/reload", self.gw.url),
                &[("x-api-key", KEY)],
                "",
            )
            .await,
        )
        .await;
        (s, json(&body))
    }

    async fn call(&self, provider: &str) -> u16 {
        let body = format!(r#"{{"model":"{provider},m","messages":[]}}"#);
        let (s, _, _) = read(
            post(
                &client(),
                &format!("{}/v1/messages", self.gw.url),
                &[("x-api-key", KEY)],
                &body,
            )
            .await,
        )
        .await;
        s
    }

    async fn metrics(&self) -> String {
        let req = http::Request::get(format!("{}/metrics", self.gw.url))
            .header("x-api-key", KEY)
            .body(bytes::Bytes::new())
            .unwrap();
        read(client().request(req).await.unwrap()).await.2
    }
}

#[tokio::test]
async fn unchanged_providers_keep_their_connections_and_new_ones_appear() {
    let a = MockProvider::anthropic().await;
    let b = MockProvider::anthropic().await;
    let first = config_text(&[provider("a", &a)], "");
    let r = Reloading::start("add", &first, &[&a, &b]).await;
    for _ in 0..3 {
        assert_eq!(r.call("a").await, 200);
    }
    assert_eq!(r.call("b").await, 400, "b is not configured yet");
    assert!(r.gw.state.registry().resilience().get("b").is_none());
    assert_eq!(a.upstream().stats().accepted, 1);
    let before = r.gw.state.registry();

    let (s, v) = r
        .reload(&config_text(&[provider("a", &a), provider("b", &b)], ""))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["success"], true);
    assert_eq!(v["data"]["added"], serde_json::json!(["b"]));
    assert_eq!(v["data"]["unchanged"], serde_json::json!(["a"]));
    for k in ["removed", "changed", "warnings"] {
        assert_eq!(v["data"][k], serde_json::json!([]), "{k}");
    }

    for _ in 0..3 {
        assert_eq!(r.call("a").await, 200);
    }
    // The accept count did not move: a's idle connection survived the reload.
    assert_eq!(a.upstream().stats().accepted, 1);
    assert_eq!(a.upstream().stats().requests, 6);
    assert_eq!(r.call("b").await, 200);
    assert_eq!(b.upstream().stats().accepted, 1);
    // The resilience state moved with the registry: b has its guards, and
    // a, unchanged, kept its own (the same breaker and counters).
    let after = r.gw.state.registry();
    assert!(after.resilience().get("b").is_some());
    assert!(std::ptr::eq(
        before.resilience().get("a").unwrap(),
        after.resilience().get("a").unwrap()
    ));
    assert!(r
        .metrics()
        .await
        .contains(r#"keepwarm_config_reloads_total{result="success"} 1"#));
}

#[tokio::test]
async fn a_removed_provider_drains_its_streams_finish_and_idle_connections_close() {
    let a = MockProvider::anthropic().await;
    let b = MockProvider::builder(MockApi::Anthropic)
        .text("one two three four")
        .event_delay(Duration::from_millis(100))
        .start()
        .await;
    let both = config_text(&[provider("a", &a), provider("b", &b)], "");
    let r = Reloading::start("remove", &both, &[&a, &b]).await;
    // A stream in flight on b, and an idle connection beside it.
    let resp = post(
        &client(),
        &format!("{}/v1/messages", r.gw.url),
        &[("x-api-key", KEY)],
        r#"{"model":"b,m","stream":true,"messages":[]}"#,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut got = body
        .frame()
        .await
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap()
        .to_vec();
    assert_eq!(r.call("b").await, 200);
    assert_eq!(b.upstream().stats().open, 2);

    let (s, v) = r.reload(&config_text(&[provider("a", &a)], "")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["removed"], serde_json::json!(["b"]));
    // b's idle connection closes now; the stream runs on to its end.
    assert!(eventually(|| b.upstream().stats().open == 1).await);
    while let Some(f) = body.frame().await {
        got.extend_from_slice(&f.unwrap().into_data().unwrap_or_default());
    }
    assert_eq!(
        String::from_utf8(got).unwrap(),
        anthropic_sse_body("m", b.text())
    );
    // ...and then its connection closes too.
    assert!(eventually(|| b.upstream().stats().open == 0).await);
    assert_eq!(r.call("b").await, 400, "b is gone");
    assert_eq!(r.call("a").await, 200);
}

#[tokio::test]
async fn changed_pool_settings_apply_and_the_idle_connection_stays() {
    let a = MockProvider::anthropic().await;
    let r = Reloading::start(
        "change",
        &config_text(
            &[provider("a", &a)],
            r#""a": { "maxSockets": 1, "maxFreeSockets": 1 }"#,
        ),
        &[&a],
    )
    .await;
    assert_eq!(r.call("a").await, 200);
    let (s, v) = r
        .reload(&config_text(
            &[provider("a", &a)],
            r#""a": { "maxSockets": 7, "maxFreeSockets": 3 }"#,
        ))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["changed"], serde_json::json!(["a"]));
    assert_eq!(r.call("a").await, 200);
    assert_eq!(
        a.upstream().stats().accepted,
        1,
        "the idle connection was reused"
    );
    let req = http::Request::get(format!("{}/api/connections/details", r.gw.url))
        .header("x-api-key", KEY)
        .body(bytes::Bytes::new())
        .unwrap();
    let d = json(&read(client().request(req).await.unwrap()).await.2);
    assert_eq!(d["data"]["providers"][0]["connections"]["maxSockets"], 7);
}

#[tokio::test]
async fn a_bad_file_is_refused_with_its_json_path_and_the_running_config_serves_on() {
    let a = MockProvider::anthropic().await;
    let good = config_text(&[provider("a", &a)], "");
    let r = Reloading::start("bad", &good, &[&a]).await;
    let (s, v) = r
        .reload(&config_text(
            &[provider("a", &a)],
            r#""a": { "maxSockets": -1 }"#,
        ))
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["success"], false);
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains("HttpConnectionPool.providers.a.maxSockets"),
        "{msg}"
    );
    let (s, v) = r.reload("{ not json").await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(r.call("a").await, 200, "the running config still serves");
    let m = r.metrics().await;
    assert!(
        m.contains(r#"keepwarm_config_reloads_total{result="error"} 2"#),
        "{m}"
    );
    // Without the key the route is refused like every other.
    let (s, _, _) = read(
        post(
            &client(),
            &format!("{}/api/config/reload", r.gw.url),
            &[],
            "",
        )
        .await,
    )
    .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn without_apikey_the_http_reload_is_refused() {
    let a = MockProvider::anthropic().await;
    let text = format!(r#"{{ "Providers": [{}] }}"#, provider("a", &a));
    let gw = Gateway::start(&text, &[], &[&a]).await;
    let (s, _, body) =
        read(post(&client(), &format!("{}/api/config/reload", gw.url), &[], "").await).await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("APIKEY"), "{body}");
}

#[tokio::test]
async fn watch_reloads_when_the_file_changes() {
    let a = MockProvider::anthropic().await;
    let b = MockProvider::anthropic().await;
    let r = Reloading::start("watch", &config_text(&[provider("a", &a)], ""), &[&a, &b]).await;
    let task = tokio::spawn(keepwarm_gateway::reload::watch(
        r.gw.state.clone(),
        r.path.clone(),
        Duration::from_millis(20),
    ));
    tokio::time::sleep(Duration::from_millis(60)).await;
    std::fs::write(
        &r.path,
        config_text(&[provider("a", &a), provider("b", &b)], ""),
    )
    .unwrap();
    let state = r.gw.state.clone();
    assert!(eventually(|| state.registry().get("b").is_some()).await);
    assert_eq!(r.call("b").await, 200);
    task.abort();
}
