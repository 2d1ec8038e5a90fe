//! SSE streams are forwarded frame by frame, byte for byte, never buffered;
//! a caller that leaves cancels the upstream request.

use std::time::Duration;

use http_body_util::BodyExt;
use keepwarm::CloseReason;
use keepwarm_testkit::{anthropic_sse_body, openai_sse_body, MockApi, MockProvider};

use crate::support::*;

#[tokio::test]
async fn anthropic_stream_is_forwarded_unchanged_and_unbuffered() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .text("one two three four five six")
        .event_delay(Duration::from_millis(30))
        .start()
        .await;
    let gw = Gateway::start(&anthropic_config(""), &vars(&mock), &[&mock]).await;
    let resp = post(
        &client(),
        &format!("{}/v1/messages", gw.url),
        &[("anthropic-version", "2023-06-01")],
        r#"{"model":"mock,claude-test","stream":true,"messages":[]}"#,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(std::str::from_utf8(&first)
        .unwrap()
        .starts_with("event: message_start"));
    // The first event reached us while the mock was still sending the rest.
    assert_eq!(
        mock.upstream().stats().responses,
        0,
        "the stream was buffered"
    );
    let mut all = first.to_vec();
    let mut frames = 1;
    while let Some(f) = body.frame().await {
        if let Ok(d) = f.unwrap().into_data() {
            all.extend_from_slice(&d);
            frames += 1;
        }
    }
    assert_eq!(
        String::from_utf8(all).unwrap(),
        anthropic_sse_body("claude-test", mock.text())
    );
    assert!(frames >= 6, "forwarded event by event, got {frames} frames");
    let s = String::from_utf8(anthropic_sse_body("m", "x").into_bytes()).unwrap();
    assert!(s.contains("event: ping") && s.contains("x_mock_unknown"));
}

#[tokio::test]
async fn openai_stream_ends_with_done() {
    let mock = MockProvider::builder(MockApi::OpenAi).start().await;
    let cfg = r#"{"Providers":[{"name":"oai","api_base_url":"$URL","api_key":"$KEY"}]}"#;
    let gw = Gateway::start(
        cfg,
        &[("URL", mock.endpoint()), ("KEY", mock.key().into())],
        &[&mock],
    )
    .await;
    let (s, _, body) = read(
        post(
            &client(),
            &format!("{}/v1/chat/completions", gw.url),
            &[],
            r#"{"model":"oai,gpt-test","stream":true,"messages":[]}"#,
        )
        .await,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(body, openai_sse_body("gpt-test", mock.text()));
    assert!(body.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn tls_provider_stream() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .tls(true)
        .start()
        .await;
    let gw = Gateway::start(&anthropic_config(""), &vars(&mock), &[&mock]).await;
    let (s, _, body) = read(
        post(
            &client(),
            &format!("{}/v1/messages", gw.url),
            &[],
            r#"{"model":"mock,claude-test","stream":true,"messages":[]}"#,
        )
        .await,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(body, anthropic_sse_body("claude-test", mock.text()));
    assert_eq!(mock.upstream().stats().tls_full, 1);
}

#[tokio::test]
async fn a_caller_that_leaves_cancels_the_upstream_request() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .text("a b c d e f g h i j k l m n o p")
        .event_delay(Duration::from_millis(50))
        .start()
        .await;
    let gw = Gateway::start(&anthropic_config(""), &vars(&mock), &[&mock]).await;
    let resp = post(
        &client(),
        &format!("{}/v1/messages", gw.url),
        &[],
        r#"{"model":"mock,claude-test","stream":true,"messages":[]}"#,
    )
    .await;
    let mut body = resp.into_body();
    body.frame().await.unwrap().unwrap();
    drop(body);
    // The gateway closes its upstream connection instead of pooling it half-read.
    let up = mock.upstream();
    assert!(
        up.wait_until(|s| s.open == 0, Duration::from_secs(3)).await,
        "{:?}",
        up.stats()
    );
    assert_eq!(up.stats().responses, 0, "the stream never completed");
    let pool = gw.state.client().clone();
    assert!(
        eventually(|| pool.stats()[0]
            .pool
            .counters
            .closed
            .get(CloseReason::Abandoned)
            == 1)
        .await,
        "{:?}",
        pool.stats()
    );
    assert_eq!(pool.stats()[0].pool.idle, 0);
}
