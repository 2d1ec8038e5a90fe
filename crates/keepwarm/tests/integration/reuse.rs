//! Reuse and limits under concurrency, checked against the server's counts.

use std::sync::Arc;
use std::time::Duration;

use keepwarm_testkit::{KnobSettings, LatencyShim, Upstream};

use crate::support::{builder_for, eventually, get, only};

#[tokio::test]
async fn hundred_sequential_requests_use_one_connection() {
    let up = Upstream::plain().await;
    let client = builder_for(&up).build().unwrap();
    for i in 0..100u64 {
        let (body, info) = get(&client, &up.url("/seq")).await.unwrap();
        assert_eq!(&body[..], b"ok");
        assert_eq!(info.reused, i > 0);
        assert_eq!(info.requests_before, i);
    }
    let s = only(&client);
    let server = up.stats();
    assert_eq!(server.accepted, 1);
    assert_eq!(server.requests, 100);
    assert_eq!(s.pool.counters.created, server.accepted);
    assert_eq!(s.pool.counters.requests, 100);
    assert_eq!(s.pool.counters.reused, 99);
    assert_eq!(s.pool.reuse_rate(), 99.0);
    assert_eq!((s.pool.active, s.pool.idle), (0, 1));
}

#[tokio::test]
async fn sixty_four_tasks_share_eight_connections_in_fifo_order() {
    let up = Upstream::builder()
        .knobs(KnobSettings {
            // Rounds without timing: the server answers when all 8
            // connections carry a request.
            hold_responses: Some(8),
            ..Default::default()
        })
        .start()
        .await;
    let client = builder_for(&up).max_sockets(8).build().unwrap();
    let url = Arc::new(up.url("/c"));
    let mut tasks = Vec::new();
    for i in 0..64u64 {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let (_, info) = get(&client, &url).await.unwrap();
            (i, info)
        }));
        // On the current-thread runtime this queues the tasks in order.
        tokio::task::yield_now().await;
    }
    for t in tasks {
        let (i, info) = t.await.unwrap();
        // FIFO: the waiters of round k are served by the k-th request of
        // each of the 8 connections.
        assert_eq!(info.requests_before, i / 8, "task {i}: {info:?}");
    }
    let server = up.stats();
    assert!(server.max_open <= 8, "server saw {} open", server.max_open);
    assert_eq!(server.accepted, 8);
    assert_eq!(server.responses, 64);
    let s = only(&client);
    assert_eq!(s.pool.counters.created, 8);
    assert_eq!(s.pool.counters.requests - s.pool.counters.reused, 8);
    // How many found a connection free on arrival depends on when the
    // rounds open; every one that waited was served and recorded once.
    let c = s.pool.counters;
    assert!(c.waits <= 56, "{c:?}");
    assert_eq!(c.wait_histogram.count(), c.waits);
    assert_eq!(c.acquire_timeouts, 0);
    assert_eq!(
        (s.pool.active, s.pool.waiters, s.pool.connecting),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn through_the_latency_shim_pooled_vs_unpooled_counts() {
    let up = Upstream::tls().await;
    let shim = LatencyShim::start(up.addr(), Duration::from_millis(10)).await;
    let url = format!("https://localhost:{}/shim", shim.addr().port());

    let pooled = builder_for(&up).build().unwrap();
    for _ in 0..10 {
        get(&pooled, &url).await.unwrap();
    }
    assert_eq!(shim.accepted(), 1);
    let s = only(&pooled);
    assert_eq!((s.pool.counters.created, s.pool.counters.reused), (1, 9));
    assert_eq!(s.tls.full + s.tls.resumed, 1);

    let unpooled = builder_for(&up).keep_alive(false).build().unwrap();
    for _ in 0..10 {
        let (_, info) = get(&unpooled, &url).await.unwrap();
        assert!(!info.reused);
    }
    assert_eq!(shim.accepted(), 11);
    let s = eventually(&unpooled, |s| s.pool.idle == 0).await;
    assert_eq!((s.pool.counters.created, s.pool.counters.reused), (10, 0));
    assert_eq!(s.tls.full + s.tls.resumed, 10);
    let server = up.stats();
    assert_eq!(server.accepted, 11);
    assert_eq!(server.tls_full + server.tls_resumed, 11);
}
