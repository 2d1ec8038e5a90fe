//! Each pool limit closes or opens exactly what it should, as the server sees it.

use std::time::Duration;

use futures_util::future::join_all;
use keepwarm::CloseReason;
use keepwarm_testkit::{KnobSettings, Upstream};

use crate::support::{builder_for, eventually, get, only};

async fn concurrent(client: &keepwarm::Client, url: &str, n: usize) {
    let all = (0..n).map(|_| get(client, url));
    for r in join_all(all).await {
        r.unwrap();
    }
}

fn slow() -> KnobSettings {
    KnobSettings {
        header_delay: Some(Duration::from_millis(30)),
        ..Default::default()
    }
}

#[tokio::test]
async fn max_free_sockets_keeps_only_that_many_idle() {
    let up = Upstream::builder().knobs(slow()).start().await;
    let client = builder_for(&up)
        .max_sockets(8)
        .max_free_sockets(3)
        .build()
        .unwrap();
    concurrent(&client, &up.url("/f"), 8).await;
    let s = only(&client);
    assert_eq!(s.pool.idle, 3);
    assert_eq!(s.pool.counters.closed.get(CloseReason::OverMaxFree), 5);
    assert!(
        up.wait_until(
            |st| st.client_closes == 5 && st.open == 3,
            Duration::from_secs(2)
        )
        .await
    );
}

#[tokio::test]
async fn free_socket_timeout_closes_idle_connections() {
    let up = Upstream::plain().await;
    let client = builder_for(&up)
        .free_socket_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    get(&client, &up.url("/t")).await.unwrap();
    let s = eventually(&client, |s| s.pool.idle == 0).await;
    assert_eq!(s.pool.counters.closed.get(CloseReason::IdleTimeout), 1);
    assert!(
        up.wait_until(|st| st.client_closes == 1, Duration::from_secs(2))
            .await
    );
    let (_, info) = get(&client, &up.url("/t")).await.unwrap();
    assert!(!info.reused);
    assert_eq!(up.stats().accepted, 2);
}

#[tokio::test]
async fn max_socket_lifetime_rotates_connections() {
    let up = Upstream::plain().await;
    let lifetime = Duration::from_millis(150);
    let client = builder_for(&up)
        .max_socket_lifetime(Some(lifetime))
        .build()
        .unwrap();
    for _ in 0..4 {
        for _ in 0..2 {
            let (_, info) = get(&client, &up.url("/l")).await.unwrap();
            assert!(
                info.age < lifetime,
                "never handed out past its lifetime: {info:?}"
            );
        }
        // Not a fixed sleep: wait until the pool retired the connection.
        let s = eventually(&client, |s| s.pool.idle + s.pool.active == 0).await;
        assert_eq!(s.pool.idle + s.pool.active, 0, "{s:?}");
    }
    let c = only(&client).pool.counters;
    assert!(
        up.wait_until(|st| st.open == 0, Duration::from_secs(2))
            .await
    );
    let server = up.stats();
    // Each round starts on a new connection; a round slower than the
    // lifetime may open a second one, so count rather than assume.
    assert!(c.created >= 4, "{c:?}");
    assert_eq!(server.accepted, c.created);
    assert_eq!(c.reused, 8 - c.created);
    assert_eq!(c.closed.get(CloseReason::Lifetime), c.created);
    assert_eq!((c.stale, c.retries, server.idle_closes), (0, 0, 0));
    assert_eq!(
        server.client_closes, c.created,
        "the client closed every one"
    );
}

#[tokio::test]
async fn max_requests_per_socket_caps_each_connection() {
    let up = Upstream::plain().await;
    let client = builder_for(&up)
        .max_requests_per_socket(Some(10))
        .build()
        .unwrap();
    for _ in 0..50 {
        get(&client, &up.url("/m")).await.unwrap();
    }
    assert!(
        up.wait_until(|st| st.open == 0, Duration::from_secs(2))
            .await
    );
    let server = up.stats();
    assert_eq!(server.accepted, 5);
    assert_eq!(server.requests_per_connection, vec![10; 5]);
    assert_eq!(
        only(&client)
            .pool
            .counters
            .closed
            .get(CloseReason::MaxRequests),
        5
    );
}

#[tokio::test]
async fn global_idle_cap_closes_the_least_recently_used() {
    let a = Upstream::plain().await;
    let b = Upstream::plain().await;
    let client = builder_for(&a).max_idle_total(Some(1)).build().unwrap();
    get(&client, &a.url("/g")).await.unwrap();
    get(&client, &b.url("/g")).await.unwrap();
    assert!(
        a.wait_until(|st| st.client_closes == 1, Duration::from_secs(2))
            .await
    );
    assert_eq!(b.stats().open, 1);
    let stats = client.stats();
    let closed: u64 = stats
        .iter()
        .map(|s| s.pool.counters.closed.get(CloseReason::IdleCap))
        .sum();
    assert_eq!(closed, 1);
    assert_eq!(stats.iter().map(|s| s.pool.idle).sum::<usize>(), 1);
}

#[tokio::test]
async fn min_free_sockets_prewarms_before_the_first_request_and_refills() {
    let up = Upstream::plain().await;
    let client = builder_for(&up).min_free_sockets(2).build().unwrap();
    client.warm(&up.url("/"), None).unwrap();
    assert!(
        up.wait_until(|st| st.accepted == 2, Duration::from_secs(2))
            .await
    );
    let s = eventually(&client, |s| s.pool.idle == 2).await;
    assert_eq!(s.pool.counters.prewarmed, 2);
    let (_, info) = get(&client, &up.url("/w")).await.unwrap();
    assert!(!info.reused, "first request on a pre-warmed connection");
    assert_eq!(info.requests_before, 0);
    // Taking one left 1 idle: the pool refilled to 2 in the background, and
    // the released connection came back on top (3 idle, under maxFreeSockets).
    let s = eventually(&client, |s| s.pool.idle == 3 && s.pool.connecting == 0).await;
    assert_eq!(up.stats().accepted, 3);
    assert_eq!(s.pool.counters.created, 3);
    assert_eq!(
        s.pool.counters.prewarmed, 3,
        "every connection was opened ahead of a request: the request paid no connect"
    );
}

#[tokio::test]
async fn keep_alive_header_caps_idle_time_and_requests() {
    let up = Upstream::builder()
        .knobs(KnobSettings {
            keep_alive_header: Some((2, Some(2))),
            ..Default::default()
        })
        .start()
        .await;
    let client = builder_for(&up).build().unwrap();
    // max=2: the first response allows 2 more requests on the connection.
    for _ in 0..3 {
        get(&client, &up.url("/k")).await.unwrap();
    }
    let s = only(&client);
    assert_eq!(s.pool.counters.closed.get(CloseReason::MaxRequests), 1);
    assert_eq!(up.stats().accepted, 1);
    // timeout=2: kept idle at most 1 s (2 s less a 1 s margin). The server
    // really closes after 2 idle seconds, so the client must retire the
    // connection first.
    up.knobs().update(|k| k.keep_alive_header = Some((2, None)));
    get(&client, &up.url("/k")).await.unwrap();
    let s = eventually(&client, |s| s.pool.idle == 0).await;
    assert_eq!(s.pool.counters.closed.get(CloseReason::IdleTimeout), 1);
    assert!(
        up.wait_until(|st| st.open == 0, Duration::from_secs(5))
            .await
    );
    let server = up.stats();
    assert_eq!(server.accepted, 2);
    assert_eq!(
        (server.idle_closes, server.client_closes),
        (0, 2),
        "we closed each connection before the server had to"
    );
    let c = only(&client).pool.counters;
    assert_eq!((c.stale, c.retries), (0, 0));
}
