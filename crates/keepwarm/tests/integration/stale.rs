//! Servers that close idle connections at random moments: no request fails,
//! and stale + retries account for every close the server made.

use std::time::Duration;

use bytes::Bytes;
use keepwarm::CloseReason;
use keepwarm_testkit::{KnobSettings, Upstream};
use rand::{Rng, SeedableRng};

use crate::support::{builder_for, eventually, get, only};

#[tokio::test]
async fn random_idle_closes_during_2000_gets_cause_no_errors() {
    let up = Upstream::builder()
        .knobs(KnobSettings {
            close_idle_random: Some((Duration::from_millis(1), Duration::from_millis(4))),
            drop_next_request_after: Some(7),
            ..Default::default()
        })
        .start()
        .await;
    let client = builder_for(&up).build().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for i in 0..2000 {
        if rng.random_bool(0.5) {
            tokio::time::sleep(Duration::from_micros(rng.random_range(0..4000))).await;
        }
        get(&client, &up.url("/s"))
            .await
            .unwrap_or_else(|e| panic!("request {i} failed: {e}"));
    }
    assert!(
        up.wait_until(|st| st.open <= 1, Duration::from_secs(2))
            .await
    );
    let server = up.stats();
    let s = eventually(&client, |s| {
        s.pool.counters.stale + s.pool.counters.retries
            >= server.idle_closes + server.dropped_requests
    })
    .await;
    let c = s.pool.counters;
    assert_eq!(server.responses, 2000);
    assert!(c.stale > 0, "{c:?}");
    assert!(c.retries > 0, "{c:?}");
    assert_eq!(
        c.retries,
        server.dropped_requests + (server.idle_closes - c.stale),
        "{c:?} {server:?}"
    );
    assert_eq!(
        c.stale + c.retries,
        server.idle_closes + server.dropped_requests
    );
    assert_eq!(c.created, server.accepted);
    assert_eq!(
        c.requests,
        2000 + c.retries,
        "each retry is one more dispatch"
    );
    assert_eq!(
        c.closed.get(CloseReason::ServerClosed),
        server.idle_closes + server.dropped_requests
    );
}

#[tokio::test]
async fn a_post_is_retried_only_when_nothing_was_written() {
    let up = Upstream::builder()
        .knobs(KnobSettings {
            drop_next_request_after: Some(1),
            ..Default::default()
        })
        .start()
        .await;
    let client = builder_for(&up).build().unwrap();
    let post = |idem: bool| {
        let mut b = http::Request::post(up.url("/p"));
        if idem {
            b = b.header("idempotency-key", "abc");
        }
        b.body(Bytes::from_static(b"{}")).unwrap()
    };
    let r = client.request(post(false)).await.unwrap();
    r.into_body().bytes().await.unwrap();
    // The server reads the second request and closes without answering: a
    // POST that reached the server must not be replayed.
    let err = client.request(post(false)).await.unwrap_err();
    assert!(err.is_request(), "{err}");
    assert_eq!(only(&client).pool.counters.retries, 0);
    assert_eq!(up.stats().dropped_requests, 1);
    // With an Idempotency-Key it may be.
    let r = client.request(post(true)).await.unwrap();
    r.into_body().bytes().await.unwrap();
    let r = client.request(post(true)).await.unwrap();
    assert_eq!(
        r.extensions()
            .get::<keepwarm::ConnectionInfo>()
            .unwrap()
            .retries,
        1
    );
    r.into_body().bytes().await.unwrap();
    assert_eq!(only(&client).pool.counters.retries, 1);
    assert_eq!(up.stats().dropped_requests, 2);
}

#[tokio::test]
async fn a_server_closed_idle_socket_is_caught_before_reuse() {
    for tls in [false, true] {
        let up = Upstream::builder()
            .tls(tls)
            .knobs(KnobSettings {
                close_idle_after: Some(Duration::from_millis(20)),
                ..Default::default()
            })
            .start()
            .await;
        let client = builder_for(&up).build().unwrap();
        get(&client, &up.url("/a")).await.unwrap();
        assert!(
            up.wait_until(|st| st.idle_closes == 1, Duration::from_secs(2))
                .await
        );
        // Nobody sends: the idle watch on the parked socket saw the close.
        let s = eventually(&client, |s| s.pool.counters.stale == 1).await;
        assert_eq!((s.pool.idle, s.pool.counters.stale), (0, 1), "tls={tls}");
        let (_, info) = get(&client, &up.url("/a")).await.unwrap();
        assert!(!info.reused, "tls={tls}");
        assert_eq!(only(&client).pool.counters.retries, 0, "tls={tls}");
    }
}
