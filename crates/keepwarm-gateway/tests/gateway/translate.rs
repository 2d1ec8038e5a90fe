//! Cross-format requests end to end: an Anthropic caller reaches an
//! OpenAI-format mock and an OpenAI caller an Anthropic mock, JSON, streams
//! (event by event), tool calls, errors and count_tokens; routing scenarios
//! pick the provider and say so in `x-keepwarm-route` and `/metrics`.

use std::time::Duration;

use http_body_util::BodyExt;
use keepwarm_testkit::{MockApi, MockProvider, MOCK_TOOL_ARGUMENTS};
use serde_json::Value;

use crate::support::*;

/// One OpenAI-format provider `oai` at `$MOCK_URL`, plus `extra` top-level keys.
fn openai_config(extra: &str) -> String {
    format!(
        r#"{{"Providers": [{{"name": "oai", "api_base_url": "$MOCK_URL", "api_key": "$MOCK_KEY", "models": ["gpt-x"]}}]{extra}}}"#
    )
}

/// (event name, data) pairs of an Anthropic SSE body.
fn anthropic_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (name, data) = e.split_once('\n').unwrap();
            let name = name.strip_prefix("event: ").unwrap().to_owned();
            (name, json(data.strip_prefix("data: ").unwrap()))
        })
        .collect()
}

/// `data:` payloads of an OpenAI SSE body (comments skipped).
fn openai_chunks(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

fn upstream_json(mock: &MockProvider, i: usize) -> Value {
    serde_json::from_slice(&mock.received()[i].body).unwrap()
}

#[tokio::test]
async fn anthropic_caller_gets_an_anthropic_answer_from_an_openai_provider() {
    let mock = MockProvider::openai().await;
    let gw = Gateway::start(&openai_config(""), &vars(&mock), &[&mock]).await;
    let resp = post(
        &client(),
        &format!("{}/v1/messages", gw.url),
        &[("anthropic-version", "2023-06-01")],
        r#"{"model": "oai,gpt-x", "max_tokens": 50, "system": "be brief",
            "messages": [{"role": "user", "content": "hi"}]}"#,
    )
    .await;
    let (status, headers, body) = read(resp).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-keepwarm-route"], "explicit oai,gpt-x");
    let v = json(&body);
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], mock.text());
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert!(v["usage"]["output_tokens"].as_u64().unwrap() > 0);
    let up = upstream_json(&mock, 0);
    assert_eq!(up["model"], "gpt-x");
    assert_eq!(
        up["messages"],
        serde_json::json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
    );
    assert_eq!(mock.received()[0].path, "/v1/chat/completions");
}

#[tokio::test]
async fn openai_stream_becomes_anthropic_events_one_by_one() {
    let mock = MockProvider::builder(MockApi::OpenAi)
        .text("one two three four five six")
        .event_delay(Duration::from_millis(30))
        .start()
        .await;
    let gw = Gateway::start(&openai_config(""), &vars(&mock), &[&mock]).await;
    let resp = post(
        &client(),
        &format!("{}/v1/messages", gw.url),
        &[],
        r#"{"model": "oai,gpt-x", "stream": true, "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]}"#,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(std::str::from_utf8(&first)
        .unwrap()
        .starts_with("event: message_start"));
    assert_eq!(
        mock.upstream().stats().responses,
        0,
        "the stream was buffered"
    );
    let mut all = first.to_vec();
    while let Some(f) = body.frame().await {
        if let Ok(d) = f.unwrap().into_data() {
            all.extend_from_slice(&d);
        }
    }
    let evs = anthropic_events(std::str::from_utf8(&all).unwrap());
    let text: String = evs
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, v)| v["delta"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, mock.text());
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(
        &names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    let delta = &evs[evs.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(
        delta["usage"]["output_tokens"], 6,
        "usage came from the include_usage chunk"
    );
    assert_eq!(
        upstream_json(&mock, 0)["stream_options"]["include_usage"],
        true
    );
}

#[tokio::test]
async fn a_streamed_tool_call_arrives_as_a_tool_use_block() {
    let mock = MockProvider::openai().await;
    let gw = Gateway::start(&openai_config(""), &vars(&mock), &[&mock]).await;
    let req = r#"{"model": "oai,gpt-x", "stream": true, "max_tokens": 9,
        "tools": [{"name": "lookup", "description": "d", "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}],
        "messages": [{"role": "user", "content": "find it"}]}"#;
    let (status, _, body) =
        read(post(&client(), &format!("{}/v1/messages", gw.url), &[], req).await).await;
    assert_eq!(status, 200);
    let evs = anthropic_events(&body);
    let start = evs
        .iter()
        .find(|(n, _)| n == "content_block_start")
        .unwrap();
    assert_eq!(start.1["content_block"]["type"], "tool_use");
    assert_eq!(start.1["content_block"]["name"], "lookup");
    assert_eq!(start.1["content_block"]["id"], "call_mock");
    let fragments: Vec<&str> = evs
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, v)| v["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(fragments, MOCK_TOOL_ARGUMENTS, "fragments pass one by one");
    let delta = evs.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
    assert_eq!(
        upstream_json(&mock, 0)["tools"][0]["function"]["parameters"]["properties"]["query"]
            ["type"],
        "string"
    );
}

#[tokio::test]
async fn openai_caller_reaches_an_anthropic_provider_json_and_stream() {
    let mock = MockProvider::anthropic().await;
    let gw = Gateway::start(&anthropic_config(""), &vars(&mock), &[&mock]).await;
    let url = format!("{}/v1/chat/completions", gw.url);
    let (status, _, body) = read(
        post(&client(), &url, &[], r#"{"model": "mock,claude-test", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]}"#).await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], mock.text());
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let up = upstream_json(&mock, 0);
    assert_eq!(
        (up["system"].as_str(), up["max_tokens"].as_u64()),
        (Some("s"), Some(4096))
    );

    let req = r#"{"model": "mock,claude-test", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "hi"}]}"#;
    let (status, headers, body) = read(post(&client(), &url, &[], req).await).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    let chunks = openai_chunks(&body);
    assert_eq!(chunks.last().map(String::as_str), Some("[DONE]"));
    let parsed: Vec<Value> = chunks[..chunks.len() - 1].iter().map(|c| json(c)).collect();
    let text: String = parsed
        .iter()
        .filter_map(|c| {
            c["choices"]
                .get(0)
                .and_then(|ch| ch["delta"]["content"].as_str())
        })
        .collect();
    assert_eq!(text, mock.text());
    assert!(parsed
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop"));
    let usage = &parsed.last().unwrap()["usage"];
    assert_eq!(usage["completion_tokens"], 5, "{usage}");
}

#[tokio::test]
async fn provider_errors_keep_their_status_in_the_callers_shape() {
    let mock = MockProvider::openai().await;
    let mut v = vars(&mock);
    v[1].1 = "wrong-key".into();
    let gw = Gateway::start(&openai_config(""), &v, &[&mock]).await;
    let (status, _, body) = read(
        post(
            &client(),
            &format!("{}/v1/messages", gw.url),
            &[],
            r#"{"model": "oai,gpt-x", "messages": []}"#,
        )
        .await,
    )
    .await;
    assert_eq!(status, 401);
    let v = json(&body);
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");
    assert_eq!(
        v["error"]["message"],
        "provider oai answered 401: Incorrect API key provided"
    );
}

#[tokio::test]
async fn count_tokens_for_an_openai_provider_is_estimated_locally() {
    let mock = MockProvider::openai().await;
    let gw = Gateway::start(&openai_config(""), &vars(&mock), &[&mock]).await;
    let (status, headers, body) = read(
        post(
            &client(),
            &format!("{}/v1/messages/count_tokens", gw.url),
            &[],
            r#"{"model": "oai,gpt-x", "messages": [{"role": "user", "content": "hello world"}]}"#,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body), serde_json::json!({"input_tokens": 2}));
    assert_eq!(headers["x-keepwarm-route"], "explicit oai,gpt-x");
    assert!(mock.received().is_empty(), "nothing went upstream");
}

#[tokio::test]
async fn scenarios_route_and_are_counted() {
    let mock = MockProvider::openai().await;
    let router = r#", "Router": {"default": "oai,gpt-x", "think": "oai,thinker", "background": "oai,small"}"#;
    let gw = Gateway::start(&openai_config(router), &vars(&mock), &[&mock]).await;
    let url = format!("{}/v1/messages", gw.url);
    let cases = [
        (
            r#"{"model": "claude-opus-4", "thinking": {"type": "enabled", "budget_tokens": 2048}, "max_tokens": 4000, "messages": []}"#,
            "think oai,thinker",
        ),
        (
            r#"{"model": "claude-3-5-haiku-20241022", "messages": []}"#,
            "background oai,small",
        ),
        (
            r#"{"model": "claude-sonnet-4", "messages": []}"#,
            "default oai,gpt-x",
        ),
        (
            r#"{"model": "claude-sonnet-4", "system": [{"type": "text", "text": "x"}, {"type": "text", "text": "<CCR-SUBAGENT-MODEL>oai,sub</CCR-SUBAGENT-MODEL>task"}], "messages": []}"#,
            "subagent oai,sub",
        ),
    ];
    for (i, (req, route)) in cases.iter().enumerate() {
        let (status, headers, body) = read(post(&client(), &url, &[], req).await).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(headers["x-keepwarm-route"], *route);
        let model = route.split_once(',').unwrap().1;
        assert_eq!(upstream_json(&mock, i)["model"], model);
    }
    let think = upstream_json(&mock, 0);
    assert_eq!(think["reasoning_effort"], "medium");
    let sub = upstream_json(&mock, 3);
    assert_eq!(
        sub["messages"][0]["content"], "x\n\ntask",
        "the tag is taken out"
    );
    let metrics = read(
        client()
            .request(
                http::Request::get(format!("{}/metrics", gw.url))
                    .body(bytes::Bytes::new())
                    .unwrap(),
            )
            .await
            .unwrap(),
    )
    .await
    .2;
    for line in [
        "keepwarm_route_requests_total{scenario=\"think\"} 1",
        "keepwarm_route_requests_total{scenario=\"background\"} 1",
        "keepwarm_route_requests_total{scenario=\"default\"} 1",
        "keepwarm_route_requests_total{scenario=\"subagent\"} 1",
        "keepwarm_route_requests_total{scenario=\"longContext\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing {line}");
    }
}

#[tokio::test]
async fn a_caller_that_leaves_a_translated_stream_cancels_the_upstream() {
    let mock = MockProvider::builder(MockApi::OpenAi)
        .text("a b c d e f g h i j k l m n o p")
        .event_delay(Duration::from_millis(50))
        .start()
        .await;
    let gw = Gateway::start(&openai_config(""), &vars(&mock), &[&mock]).await;
    let resp = post(
        &client(),
        &format!("{}/v1/messages", gw.url),
        &[],
        r#"{"model": "oai,gpt-x", "stream": true, "messages": []}"#,
    )
    .await;
    let mut body = resp.into_body();
    body.frame().await.unwrap().unwrap();
    drop(body);
    let up = mock.upstream();
    assert!(
        up.wait_until(|s| s.open == 0, Duration::from_secs(3)).await,
        "{:?}",
        up.stats()
    );
    assert_eq!(up.stats().responses, 0, "the stream never completed");
}
