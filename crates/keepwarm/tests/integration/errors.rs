//! Errors say what happened and where; bad input never panics.

use std::time::Duration;

use keepwarm::Client;
use keepwarm_testkit::{KnobSettings, Upstream};

use crate::support::{builder_for, get, only};

#[tokio::test]
async fn connect_refused_names_the_host() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let client = Client::new().unwrap();
    let err = client
        .get(&format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("connect to 127.0.0.1 (127.0.0.1:{port}) failed")),
        "{err}"
    );
    assert_eq!(only(&client).pool.connecting, 0);
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error() {
    let up = Upstream::tls().await;
    let client = Client::new().unwrap();
    let err = client.get(&up.url("/")).await.unwrap_err();
    assert!(err.is_tls(), "{err}");
    assert!(
        err.to_string().contains("TLS handshake with localhost"),
        "{err}"
    );
}

#[tokio::test]
async fn pool_exhausted_names_the_limit_and_the_wait() {
    let up = Upstream::plain().await;
    let client = builder_for(&up)
        .max_sockets(1)
        .acquire_timeout(Some(Duration::from_millis(100)))
        .build()
        .unwrap();
    let held = client.get(&up.url("/held")).await.unwrap();
    let err = client.get(&up.url("/next")).await.unwrap_err();
    assert!(err.is_pool_exhausted(), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "pool exhausted for 127.0.0.1 (127.0.0.1:{}): 1 of 1 connections busy, waited 100ms",
            up.addr().port()
        )
    );
    drop(held);
}

#[tokio::test]
async fn slow_headers_time_out() {
    let up = Upstream::builder()
        .knobs(KnobSettings {
            header_delay: Some(Duration::from_secs(5)),
            ..Default::default()
        })
        .start()
        .await;
    let client = builder_for(&up)
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let err = client.get(&up.url("/slow")).await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(
        err.to_string()
            .contains("waiting for response headers from"),
        "{err}"
    );
    assert_eq!(only(&client).pool.active, 0);
}

#[tokio::test]
async fn response_header_timeout_overrides_the_inactivity_timeout() {
    let up = Upstream::builder()
        .knobs(KnobSettings {
            header_delay: Some(Duration::from_millis(300)),
            ..Default::default()
        })
        .start()
        .await;
    let client = builder_for(&up)
        .timeout(Duration::from_millis(100))
        .response_header_timeout(Some(Duration::from_secs(10)))
        .build()
        .unwrap();
    get(&client, &up.url("/llm")).await.unwrap();
}

#[tokio::test]
async fn a_body_pausing_past_the_inactivity_timeout_fails() {
    let up = Upstream::builder()
        .knobs(KnobSettings {
            chunk_delay: Some(Duration::from_millis(400)),
            ..Default::default()
        })
        .start()
        .await;
    let client = builder_for(&up)
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let err = get(&client, &up.url("/pause")).await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(
        err.to_string()
            .contains("paused longer than the inactivity timeout"),
        "{err}"
    );
}

#[tokio::test]
async fn bad_urls_are_errors() {
    let client = Client::new().unwrap();
    let err = client.get("ftp://example.com/").await.unwrap_err();
    assert!(
        err.is_invalid_url() && err.to_string().contains("unsupported scheme"),
        "{err}"
    );
    let err = client.get("/relative").await.unwrap_err();
    assert!(err.is_invalid_url(), "{err}");
    let err = client.get("http://").await.unwrap_err();
    assert!(err.is_invalid_url(), "{err}");
}
