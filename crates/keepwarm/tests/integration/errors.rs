//! Errors say what happened and where; bad input never panics.

use std::future::Future;
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
async fn pool_exhausted_names_the_limit_and_the_measured_wait() {
    let up = Upstream::plain().await;
    let client = builder_for(&up)
        .max_sockets(1)
        .acquire_timeout(Some(Duration::from_millis(100)))
        .build()
        .unwrap();
    let held = client.get(&up.url("/held")).await.unwrap();
    // From here no I/O is needed: the clock is ours. The waiter's 100 ms
    // deadline passes, but it runs only 250 ms in (a busy runtime), and
    // the error says how long it really waited.
    tokio::time::pause();
    let url = up.url("/next");
    let mut next = std::pin::pin!(client.get(&url));
    let polled =
        std::future::poll_fn(|cx| std::task::Poll::Ready(next.as_mut().poll(cx).is_pending()));
    assert!(polled.await, "queued behind the held connection");
    tokio::time::advance(Duration::from_millis(250)).await;
    let err = next.await.unwrap_err();
    tokio::time::resume();
    assert!(err.is_pool_exhausted(), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "pool exhausted for 127.0.0.1 (127.0.0.1:{}): 1 of 1 connections busy, waited 250ms",
            up.addr().port()
        )
    );
    assert_eq!(only(&client).pool.counters.acquire_timeouts, 1);
    drop(held);
    // The server saw one connection, and it closes with the dropped response.
    assert!(
        up.wait_until(
            |st| st.accepted == 1 && st.open == 0,
            Duration::from_secs(2)
        )
        .await
    );
}

#[tokio::test]
async fn slow_headers_time_out() {
    let up = Upstream::builder()
        .knobs(KnobSettings {
            header_delay: Some(Duration::from_millis(500)),
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
    let s = only(&client).pool;
    assert_eq!((s.active, s.idle), (0, 0));
    assert_eq!(s.counters.closed.get(keepwarm::CloseReason::Error), 1);
    // The server agrees: its one connection was closed by us, not kept.
    assert!(
        up.wait_until(|st| st.open == 0, Duration::from_secs(3))
            .await
    );
    assert_eq!(up.stats().accepted, 1);
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
    // Kept, not timed out: one open connection on both sides.
    assert_eq!(only(&client).pool.idle, 1);
    let server = up.stats();
    assert_eq!((server.accepted, server.open, server.responses), (1, 1, 1));
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
    let s = only(&client).pool;
    assert_eq!((s.active, s.idle, s.counters.closed.total()), (0, 0, 1));
    // The server's connection ends too (we closed it mid-body).
    assert!(
        up.wait_until(|st| st.open == 0, Duration::from_secs(3))
            .await
    );
    assert_eq!(up.stats().accepted, 1);
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
