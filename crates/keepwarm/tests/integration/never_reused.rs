//! Responses after which a connection must never be reused.

use std::time::Duration;

use http_body_util::BodyExt;
use keepwarm::CloseReason;
use keepwarm_testkit::{KnobSettings, Upstream};

use crate::support::{builder_for, eventually, get, only};

async fn three_requests_three_connections(knobs: KnobSettings) -> keepwarm::KeyStats {
    let up = Upstream::builder().knobs(knobs).start().await;
    let client = builder_for(&up).build().unwrap();
    for _ in 0..3 {
        let (_, info) = get(&client, &up.url("/n")).await.unwrap();
        assert!(!info.reused);
    }
    assert_eq!(up.stats().accepted, 3);
    let s = eventually(&client, |s| s.pool.idle == 0).await;
    assert_eq!(s.pool.counters.reused, 0);
    s
}

#[tokio::test]
async fn connection_close_is_never_reused() {
    let s = three_requests_three_connections(KnobSettings {
        connection_close: true,
        ..Default::default()
    })
    .await;
    assert_eq!(s.pool.counters.closed.get(CloseReason::ServerClosed), 3);
}

#[tokio::test]
async fn http10_without_keep_alive_is_never_reused() {
    three_requests_three_connections(KnobSettings {
        http10: true,
        ..Default::default()
    })
    .await;
}

#[tokio::test]
async fn keep_alive_timeout_one_is_never_reused() {
    let s = three_requests_three_connections(KnobSettings {
        keep_alive_header: Some((1, None)),
        ..Default::default()
    })
    .await;
    assert_eq!(s.pool.counters.closed.get(CloseReason::IdleTimeout), 3);
}

#[tokio::test]
async fn a_truncated_body_fails_and_is_never_reused() {
    let up = Upstream::builder()
        .body(vec![b'x'; 1000])
        .knobs(KnobSettings {
            truncate_body: true,
            ..Default::default()
        })
        .start()
        .await;
    let client = builder_for(&up).build().unwrap();
    for _ in 0..3 {
        let err = get(&client, &up.url("/t")).await.unwrap_err();
        assert!(err.is_body(), "{err}");
    }
    assert_eq!(up.stats().accepted, 3);
    let s = only(&client);
    assert_eq!(s.pool.counters.reused, 0);
    assert_eq!(s.pool.counters.closed.get(CloseReason::Error), 3);
}

#[tokio::test]
async fn a_body_dropped_half_read_closes_the_connection() {
    let up = Upstream::builder()
        .body(vec![b'y'; 4000])
        .knobs(KnobSettings {
            chunk_delay: Some(Duration::from_millis(20)),
            ..Default::default()
        })
        .start()
        .await;
    let client = builder_for(&up).build().unwrap();
    let resp = client.get(&up.url("/h")).await.unwrap();
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    drop(body);
    let (_, info) = get(&client, &up.url("/h")).await.unwrap();
    assert!(!info.reused);
    assert_eq!(up.stats().accepted, 2);
    let s = only(&client);
    assert_eq!(s.pool.counters.closed.get(CloseReason::Abandoned), 1);
}

#[tokio::test]
async fn a_reset_fails_the_request_and_is_never_reused() {
    let up = Upstream::builder()
        .knobs(KnobSettings {
            reset: true,
            ..Default::default()
        })
        .start()
        .await;
    let client = builder_for(&up).build().unwrap();
    for _ in 0..3 {
        let err = get(&client, &up.url("/r")).await.unwrap_err();
        assert!(err.is_request(), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("127.0.0.1:{}", up.addr().port())),
            "{err}"
        );
    }
    let server = up.stats();
    assert_eq!((server.accepted, server.resets), (3, 3));
    let s = only(&client);
    assert_eq!((s.pool.counters.created, s.pool.counters.reused), (3, 0));
    assert_eq!(
        s.pool.counters.retries, 0,
        "fresh connections are never retried"
    );
}
