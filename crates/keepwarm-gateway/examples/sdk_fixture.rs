//! Test fixture for `tests/sdk/run.sh` and `tests/browser/run.sh`: starts an Anthropic and an OpenAI
//! mock provider, a two-key Anthropic provider `pooled` whose first key is
//! always rate limited (`429`, `retry-after: 30`), and the gateway in front
//! of them (APIKEY `gw-test-key`, `ApiKeyPool` on),
//! prints one JSON line with the addresses and the mocks' reply text, then
//! answers `stats` lines on stdin with the mocks' own counts, until stdin
//! closes. Bare model names (Claude Code's) go to the OpenAI-format mock
//! (`Router.default` is `oai,gpt-test`), for `tests/claude/run.sh`.
//!
//! Run: `cargo run -p keepwarm-gateway --example sdk_fixture`

use std::io::BufRead;

use keepwarm_gateway::{config, server, AppState};
use keepwarm_testkit::{FaultyProvider, MockApi, MockProvider};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let anthropic = MockProvider::anthropic().await;
    let openai = MockProvider::openai().await;
    let (k1, k2) = ("sk-pooled-key-one-AAAA", "sk-pooled-key-two-BBBB");
    let pooled = FaultyProvider::start(MockApi::Anthropic, &[k1, k2]).await;
    pooled.rate_limit_key(k1, &[("retry-after", "30")]);
    let text = r#"{
      "APIKEY": "gw-test-key",
      "STATS_INTERVAL_MS": 300,
      "Providers": [
        {"name": "mock", "api_base_url": "$A_URL", "api_key": "$A_KEY", "models": ["claude-test"]},
        {"name": "oai", "api_base_url": "$O_URL", "api_key": "$O_KEY", "models": ["gpt-test"]},
        {"name": "pooled", "api_base_url": "$P_URL", "api_keys": ["$P_K1", "$P_K2"]}
      ],
      "Router": {"default": "oai,gpt-test"},
      "ApiKeyPool": {"enabled": true}
    }"#;
    let vars = [
        ("A_URL", anthropic.endpoint()),
        ("A_KEY", anthropic.key().to_string()),
        ("O_URL", openai.endpoint()),
        ("O_KEY", openai.key().to_string()),
        ("P_URL", pooled.endpoint()),
        ("P_K1", k1.to_string()),
        ("P_K2", k2.to_string()),
    ];
    let env = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let (cfg, _) = config::parse(text, &env)?;
    let state = AppState::new(cfg)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gateway = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(listener, state, async {
        let _ = stop_rx.await;
    }));
    println!(
        "{}",
        json!({"gateway": gateway, "anthropic_text": anthropic.text(), "openai_text": openai.text()})
    );
    let (line_tx, mut line_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = line_rx.recv().await {
        if line.trim() == "stats" {
            let (a, o) = (anthropic.upstream().stats(), openai.upstream().stats());
            let last = |m: &MockProvider| {
                m.received()
                    .last()
                    .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            };
            println!(
                "{}",
                json!({
                    "anthropic": {"accepted": a.accepted, "open": a.open, "requests": a.requests, "last_body": last(&anthropic)},
                    "openai": {"accepted": o.accepted, "open": o.open, "requests": o.requests, "last_body": last(&openai)},
                    "pooled": {"key1": pooled.requests_with_key(k1), "key2": pooled.requests_with_key(k2)},
                })
            );
        }
    }
    let _ = stop_tx.send(());
    server.await??;
    Ok(())
}
