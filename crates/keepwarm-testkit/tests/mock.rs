//! Mock Anthropic / OpenAI providers: JSON, errors, SSE streams, TLS.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{read_resp, send_req, Resp};
use keepwarm_testkit::{
    anthropic_sse_body, install_crypto_provider, openai_sse_body, MockApi, MockProvider,
};
use rustls_pki_types::ServerName;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const ANTHROPIC_BODY: &str = r#"{"model":"claude-mock-1","max_tokens":64,"messages":[{"role":"user","content":"Say hello"}]}"#;
const OPENAI_BODY: &str =
    r#"{"model":"gpt-mock","messages":[{"role":"user","content":"Say hello"}]}"#;

fn stream_body(body: &str) -> String {
    let mut v: Value = serde_json::from_str(body).unwrap();
    v["stream"] = Value::Bool(true);
    v.to_string()
}

fn json_of(r: &Resp) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

/// Sends one request and reads the response.
async fn call<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    send_req(s, method, path, headers, body).await;
    read_resp(s, buf).await.expect("a response")
}

fn anthropic_headers(key: &str) -> [(&str, &str); 3] {
    [
        ("x-api-key", key),
        ("anthropic-version", "2023-06-01"),
        ("content-type", "application/json"),
    ]
}

#[tokio::test]
async fn anthropic_json_reply_and_received() {
    let mock = MockProvider::anthropic().await;
    assert_eq!(mock.api(), MockApi::Anthropic);
    assert_eq!(mock.key(), "sk-mock-anthropic");
    assert_eq!(mock.text(), "Hello from the mock provider");
    let port = mock.upstream().addr().port();
    assert_eq!(
        mock.endpoint(),
        format!("http://127.0.0.1:{port}/v1/messages")
    );
    let mut s = TcpStream::connect(mock.upstream().addr()).await.unwrap();
    let mut buf = Vec::new();
    let h = anthropic_headers(mock.key());
    for seq in 1..=2 {
        let r = call(
            &mut s,
            &mut buf,
            "POST",
            "/v1/messages?beta=true",
            &h,
            ANTHROPIC_BODY,
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("request-id"), Some(&*format!("req_mock_{seq}")));
        assert_eq!(
            r.header("anthropic-ratelimit-requests-remaining"),
            Some("99")
        );
        assert_eq!(r.header("x-upstream-conn"), Some("1"));
        assert_eq!(r.header("x-upstream-seq"), Some(&*seq.to_string()));
        let want = json!({
            "id": format!("msg_mock_{seq}"),
            "type": "message",
            "role": "assistant",
            "model": "claude-mock-1",
            "content": [{"type": "text", "text": "Hello from the mock provider"}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {"input_tokens": ANTHROPIC_BODY.len() / 4, "output_tokens": 5},
        });
        assert_eq!(json_of(&r), want);
    }
    let got = mock.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/v1/messages?beta=true");
    assert_eq!(&got[0].body[..], ANTHROPIC_BODY.as_bytes());
    assert!(got[0]
        .headers
        .contains(&("x-api-key".into(), "sk-mock-anthropic".into())));
    assert!(got[1]
        .headers
        .contains(&("anthropic-version".into(), "2023-06-01".into())));
    assert_eq!(mock.upstream().stats().responses, 2);
}

#[tokio::test]
async fn anthropic_errors() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .key("sk-right")
        .start()
        .await;
    let mut s = TcpStream::connect(mock.upstream().addr()).await.unwrap();
    let mut buf = Vec::new();
    let path = "/v1/messages";

    let r = call(
        &mut s,
        &mut buf,
        "POST",
        path,
        &anthropic_headers("sk-wrong"),
        ANTHROPIC_BODY,
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("request-id"), Some("req_mock_1"));
    assert_eq!(
        json_of(&r),
        json!({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}})
    );
    let no_key = [("anthropic-version", "2023-06-01")];
    let r = call(&mut s, &mut buf, "POST", path, &no_key, ANTHROPIC_BODY).await;
    assert_eq!(r.status, 401);

    let no_version = [("x-api-key", "sk-right")];
    let r = call(&mut s, &mut buf, "POST", path, &no_version, ANTHROPIC_BODY).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        json_of(&r),
        json!({"type":"error","error":{"type":"invalid_request_error","message":"anthropic-version header is required"}})
    );

    let h = anthropic_headers("sk-right");
    for (body, needle) in [
        ("{not json", "not valid JSON"),
        (r#"{"max_tokens":1}"#, "model"),
        (r#"{"model":7}"#, "model"),
        ("[]", "object"),
    ] {
        let r = call(&mut s, &mut buf, "POST", path, &h, body).await;
        assert_eq!(r.status, 400, "{body}");
        let v = json_of(&r);
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg}");
    }

    for (method, p) in [("POST", "/v1/complete"), ("GET", "/v1/messages")] {
        let r = call(&mut s, &mut buf, method, p, &h, "").await;
        assert_eq!(r.status, 404);
        assert_eq!(json_of(&r)["error"]["type"], "not_found_error");
    }
    // Errors keep the connection alive.
    let st = mock.upstream().stats();
    assert_eq!((st.accepted, st.requests, st.responses), (1, 9, 9));
}

#[tokio::test]
async fn anthropic_stream_is_byte_exact_and_chunked_per_event() {
    let text = "one two  three";
    let mock = MockProvider::builder(MockApi::Anthropic)
        .text(text)
        .start()
        .await;
    let mut s = TcpStream::connect(mock.upstream().addr()).await.unwrap();
    let mut buf = Vec::new();
    let h = anthropic_headers(mock.key());
    let r = call(
        &mut s,
        &mut buf,
        "POST",
        "/v1/messages",
        &h,
        &stream_body(ANTHROPIC_BODY),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("request-id"), Some("req_mock_1"));
    assert_eq!(
        r.header("anthropic-ratelimit-requests-remaining"),
        Some("99")
    );
    let body = String::from_utf8(r.body.clone()).unwrap();
    assert_eq!(body, anthropic_sse_body("claude-mock-1", text));

    // One HTTP chunk per event: 3 + 3 words + unknown + 3.
    assert_eq!(r.chunks.len(), 10);
    let mut types = Vec::new();
    let mut deltas = String::new();
    for c in &r.chunks {
        let ev = std::str::from_utf8(c).unwrap();
        let rest = ev.strip_prefix("event: ").unwrap();
        let (ty, rest) = rest.split_once("\ndata: ").unwrap();
        let data: Value = serde_json::from_str(rest.strip_suffix("\n\n").unwrap()).unwrap();
        assert_eq!(data["type"], ty);
        if ty == "content_block_delta" {
            deltas.push_str(data["delta"]["text"].as_str().unwrap());
        }
        if ty == "message_delta" {
            assert_eq!(data["usage"]["output_tokens"], 3);
            assert_eq!(data["delta"]["stop_reason"], "end_turn");
        }
        if ty == "message_start" {
            assert_eq!(data["message"]["id"], "msg_mock");
            assert_eq!(data["message"]["model"], "claude-mock-1");
        }
        types.push(ty.to_owned());
    }
    assert_eq!(deltas, text);
    assert_eq!(
        types,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "x_mock_unknown",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert!(body.contains("event: x_mock_unknown\ndata: {\"type\":\"x_mock_unknown\"}\n\n"));
    assert_eq!(
        anthropic_sse_body("m", "Hello world")
            .matches("text_delta")
            .count(),
        2
    );

    // The connection stays usable after a stream.
    let r = call(&mut s, &mut buf, "POST", "/v1/messages", &h, ANTHROPIC_BODY).await;
    assert_eq!(
        (r.status, r.header("request-id")),
        (200, Some("req_mock_2"))
    );
    assert!(
        mock.upstream()
            .wait_until(|s| s.responses == 2, Duration::from_secs(2))
            .await
    );
}

#[tokio::test]
async fn anthropic_count_tokens() {
    let mock = MockProvider::anthropic().await;
    let mut s = TcpStream::connect(mock.upstream().addr()).await.unwrap();
    let mut buf = Vec::new();
    let path = "/v1/messages/count_tokens";
    let h = anthropic_headers(mock.key());
    let r = call(&mut s, &mut buf, "POST", path, &h, ANTHROPIC_BODY).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        json_of(&r),
        json!({"input_tokens": ANTHROPIC_BODY.len() / 4})
    );
    let r = call(
        &mut s,
        &mut buf,
        "POST",
        path,
        &anthropic_headers("nope"),
        ANTHROPIC_BODY,
    )
    .await;
    assert_eq!(r.status, 401);
    let tiny = r#"{"model":"m"}"#;
    let r = call(&mut s, &mut buf, "POST", path, &h, tiny).await;
    assert_eq!(json_of(&r), json!({"input_tokens": 3}));
}

#[tokio::test]
async fn openai_json_stream_and_errors() {
    let mock = MockProvider::openai().await;
    assert_eq!(mock.key(), "sk-mock-openai");
    assert!(mock.endpoint().ends_with("/v1/chat/completions"));
    let mut s = TcpStream::connect(mock.upstream().addr()).await.unwrap();
    let mut buf = Vec::new();
    let path = "/v1/chat/completions";
    let auth = format!("Bearer {}", mock.key());
    let h = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];

    let r = call(&mut s, &mut buf, "POST", path, &h, OPENAI_BODY).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-request-id"), Some("req_mock_1"));
    assert_eq!(r.header("x-ratelimit-remaining-requests"), Some("99"));
    let n = OPENAI_BODY.len() / 4;
    assert_eq!(
        json_of(&r),
        json!({
            "id": "chatcmpl-mock-1",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "gpt-mock",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the mock provider"},
                "finish_reason": "stop",
            }],
            "usage": {"prompt_tokens": n, "completion_tokens": 5, "total_tokens": n + 5},
        })
    );

    let r = call(
        &mut s,
        &mut buf,
        "POST",
        path,
        &h,
        &stream_body(OPENAI_BODY),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.header("x-request-id"), Some("req_mock_2"));
    let body = String::from_utf8(r.body.clone()).unwrap();
    assert_eq!(body, openai_sse_body("gpt-mock", mock.text()));
    assert!(body.ends_with("data: [DONE]\n\n"));
    // Role chunk + 5 words + finish chunk + [DONE], each its own HTTP chunk.
    assert_eq!(r.chunks.len(), 8);
    let mut content = String::new();
    for (i, c) in r.chunks[..7].iter().enumerate() {
        let line = std::str::from_utf8(c).unwrap();
        let data = line.strip_prefix("data: ").unwrap().strip_suffix("\n\n");
        let v: Value = serde_json::from_str(data.unwrap()).unwrap();
        assert_eq!(v["id"], "chatcmpl-mock");
        assert_eq!(v["object"], "chat.completion.chunk");
        assert_eq!(v["created"], 1_700_000_000);
        let choice = &v["choices"][0];
        match i {
            0 => assert_eq!(choice["delta"], json!({"role": "assistant", "content": ""})),
            6 => {
                assert_eq!(choice["delta"], json!({}));
                assert_eq!(choice["finish_reason"], "stop");
            }
            _ => {
                assert_eq!(choice["finish_reason"], Value::Null);
                content.push_str(choice["delta"]["content"].as_str().unwrap());
            }
        }
    }
    assert_eq!(content, mock.text());

    let bad = [("authorization", "Bearer sk-wrong")];
    let r = call(&mut s, &mut buf, "POST", path, &bad, OPENAI_BODY).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        json_of(&r),
        json!({"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}})
    );
    let r = call(&mut s, &mut buf, "POST", path, &[], OPENAI_BODY).await;
    assert_eq!(r.status, 401);
    let r = call(&mut s, &mut buf, "POST", path, &h, "nope").await;
    assert_eq!(r.status, 400);
    assert_eq!(json_of(&r)["error"]["type"], "invalid_request_error");
    let r = call(&mut s, &mut buf, "POST", "/v1/completions", &h, OPENAI_BODY).await;
    assert_eq!(r.status, 404);
    assert!(json_of(&r)["error"]["message"].is_string());
    assert_eq!(mock.received().len(), 6);
}

#[tokio::test]
async fn tls_mock_reachable_with_trusted_ca() {
    install_crypto_provider();
    let mock = MockProvider::builder(MockApi::OpenAi)
        .tls(true)
        .key("k1")
        .start()
        .await;
    let port = mock.upstream().addr().port();
    assert_eq!(
        mock.endpoint(),
        format!("https://localhost:{port}/v1/chat/completions")
    );
    let mut roots = rustls::RootCertStore::empty();
    roots.add(mock.upstream().ca_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(mock.upstream().addr()).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut s = connector.connect(name, tcp).await.unwrap();
    let mut buf = Vec::new();
    let h = [("authorization", "Bearer k1")];
    let path = "/v1/chat/completions";
    let r = call(
        &mut s,
        &mut buf,
        "POST",
        path,
        &h,
        &stream_body(OPENAI_BODY),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        openai_sse_body("gpt-mock", mock.text())
    );
    assert_eq!(mock.upstream().stats().tls_full, 1);
}

#[tokio::test(start_paused = true)]
async fn event_and_header_delays_use_tokio_time() {
    let (header_delay, event_delay) = (Duration::from_secs(5), Duration::from_secs(10));
    let mock = MockProvider::builder(MockApi::Anthropic)
        .header_delay(header_delay)
        .event_delay(event_delay)
        .start()
        .await;
    let t0 = tokio::time::Instant::now();
    let mut s = TcpStream::connect(mock.upstream().addr()).await.unwrap();
    let mut buf = Vec::new();
    let h = anthropic_headers(mock.key());
    let r = call(
        &mut s,
        &mut buf,
        "POST",
        "/v1/messages",
        &h,
        &stream_body(ANTHROPIC_BODY),
    )
    .await;
    // 5 words → 12 events, 11 gaps.
    assert_eq!(r.chunks.len(), 12);
    let virt = t0.elapsed();
    let want = header_delay + event_delay * 11;
    assert!(
        virt >= want && virt < want + Duration::from_secs(1),
        "{virt:?}"
    );
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        anthropic_sse_body("claude-mock-1", mock.text())
    );

    // The JSON reply waits for the header delay only.
    let t1 = tokio::time::Instant::now();
    let r = call(&mut s, &mut buf, "POST", "/v1/messages", &h, ANTHROPIC_BODY).await;
    assert_eq!(r.status, 200);
    let virt = t1.elapsed();
    assert!(
        virt >= header_delay && virt < header_delay + Duration::from_secs(1),
        "{virt:?}"
    );
}

#[tokio::test]
async fn fault_knobs_apply_to_the_mock() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .knobs(keepwarm_testkit::KnobSettings {
            connection_close: true,
            ..Default::default()
        })
        .start()
        .await;
    let mut s = TcpStream::connect(mock.upstream().addr()).await.unwrap();
    let mut buf = Vec::new();
    let h = anthropic_headers(mock.key());
    let r = call(&mut s, &mut buf, "POST", "/v1/messages", &h, ANTHROPIC_BODY).await;
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    assert_eq!(common::read_more(&mut s, &mut buf).await, 0);

    mock.upstream().knobs().set(keepwarm_testkit::KnobSettings {
        truncate_body: true,
        ..Default::default()
    });
    let mut s = TcpStream::connect(mock.upstream().addr()).await.unwrap();
    send_req(
        &mut s,
        "POST",
        "/v1/messages",
        &h,
        &stream_body(ANTHROPIC_BODY),
    )
    .await;
    let mut raw = Vec::new();
    while common::read_more(&mut s, &mut raw).await > 0 {}
    let raw = String::from_utf8(raw).unwrap();
    // 12 events, the first 6 sent, no terminating chunk.
    assert_eq!(raw.matches("\r\nevent: ").count(), 6, "{raw}");
    assert!(!raw.ends_with("0\r\n\r\n"));
    assert!(
        mock.upstream()
            .wait_until(|s| s.open == 0, Duration::from_secs(2))
            .await
    );
    assert_eq!(mock.upstream().stats().responses, 1);
}
