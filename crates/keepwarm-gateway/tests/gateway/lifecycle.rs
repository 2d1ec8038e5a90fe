//! Timeouts that fit LLM traffic, graceful shutdown, slow clients.

use std::time::Duration;

use http_body_util::BodyExt;
use keepwarm_testkit::{anthropic_sse_body, MockApi, MockProvider};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

#[tokio::test(start_paused = true)]
async fn a_45_second_answer_succeeds_with_default_settings() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .header_delay(Duration::from_secs(45))
        .start()
        .await;
    let gw = Gateway::start(&anthropic_config(""), &vars(&mock), &[&mock]).await;
    let c = keepwarm::Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    let started = tokio::time::Instant::now(); // paused clock: advances only by the mock's delay
    let (s, _, body) = read(
        post(
            &c,
            &format!("{}/v1/messages", gw.url),
            &[],
            r#"{"model":"mock,claude-test"}"#,
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(45),
        "the mock's 45 s delay really happened: {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_may_pause_up_to_the_socket_timeout_between_events() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .text("slow thinking model")
        .event_delay(Duration::from_secs(20))
        .start()
        .await;
    let gw = Gateway::start(&anthropic_config(""), &vars(&mock), &[&mock]).await;
    let c = keepwarm::Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    let (s, _, body) = read(
        post(
            &c,
            &format!("{}/v1/messages", gw.url),
            &[],
            r#"{"model":"mock,claude-test","stream":true}"#,
        )
        .await,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(body, anthropic_sse_body("claude-test", mock.text()));
}

#[tokio::test]
async fn shutdown_lets_in_flight_streams_finish_and_refuses_new_connections() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .text("a b c d e")
        .event_delay(Duration::from_millis(40))
        .start()
        .await;
    let mut gw = Gateway::start(&anthropic_config(""), &vars(&mock), &[&mock]).await;
    let c = client();
    let resp = post(
        &c,
        &format!("{}/v1/messages", gw.url),
        &[],
        r#"{"model":"mock,claude-test","stream":true}"#,
    )
    .await;
    let mut body = resp.into_body();
    let mut all = body
        .frame()
        .await
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap()
        .to_vec();
    gw.stop();
    while let Some(f) = body.frame().await {
        all.extend_from_slice(&f.unwrap().into_data().unwrap_or_default());
    }
    assert_eq!(
        String::from_utf8(all).unwrap(),
        anthropic_sse_body("claude-test", mock.text())
    );
    gw.task.take().unwrap().await.unwrap();
    let addr = gw.url.trim_start_matches("http://").to_string();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test(start_paused = true)]
async fn at_the_deadline_a_running_stream_is_cut_with_an_error_event_and_counted() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .text("a b c")
        .event_delay(Duration::from_secs(60))
        .start()
        .await;
    let mut gw = Gateway::start(
        &anthropic_config(r#", "SHUTDOWN_TIMEOUT_MS": 1000"#),
        &vars(&mock),
        &[&mock],
    )
    .await;
    let c = client();
    let url = format!("{}/v1/messages", gw.url);
    // A stream that would run for minutes holds one upstream connection...
    let resp = post(
        &c,
        &url,
        &[],
        r#"{"model":"mock,claude-test","stream":true}"#,
    )
    .await;
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(std::str::from_utf8(&first)
        .unwrap()
        .contains("message_start"));
    // ...and a finished request leaves a second one idle.
    let (s, _, _) = read(post(&c, &url, &[], r#"{"model":"mock,claude-test"}"#).await).await;
    assert_eq!(s, 200);
    assert_eq!(mock.upstream().stats().open, 2);
    assert_eq!(gw.state.metrics().streams_cut().get(), 0);
    gw.stop();
    let mut rest = Vec::new();
    while let Some(f) = body.frame().await {
        rest.extend_from_slice(
            &f.expect("the stream ends cleanly")
                .into_data()
                .unwrap_or_default(),
        );
    }
    let rest = String::from_utf8(rest).unwrap();
    assert!(rest.starts_with("event: error\ndata: "), "{rest}");
    assert!(
        rest.contains("SHUTDOWN_TIMEOUT_MS deadline (1000 ms)"),
        "{rest}"
    );
    assert!(!rest.contains("message_stop"), "{rest}");
    gw.task.take().unwrap().await.unwrap();
    assert_eq!(gw.state.metrics().streams_cut().get(), 1);
    // Both upstream connections are gone: the idle one closed by the
    // drain, the cut one dropped half-read. The state is still alive, so
    // nothing closed them but the gateway.
    assert!(eventually(|| mock.upstream().stats().open == 0).await);
    let snap = &gw.state.client().stats()[0].pool;
    assert_eq!((snap.active, snap.idle), (0, 0));
}

#[tokio::test]
async fn a_client_dribbling_headers_is_cut_off() {
    let mock = MockProvider::anthropic().await;
    let gw = Gateway::start(
        &anthropic_config(r#", "HEADER_READ_TIMEOUT_MS": 200"#),
        &vars(&mock),
        &[&mock],
    )
    .await;
    let mut s = tokio::net::TcpStream::connect(gw.url.trim_start_matches("http://"))
        .await
        .unwrap();
    s.write_all(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    // Closed (EOF, or a reset) instead of waiting for the rest forever.
    let _closed = read.expect("the gateway closes the connection well before 5 s");
    let text = String::from_utf8_lossy(&buf);
    assert!(buf.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(mock.received().is_empty());
}
