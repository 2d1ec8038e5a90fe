//! Requests cancelled at random points leak nothing.

use std::sync::Arc;
use std::time::Duration;

use keepwarm_testkit::{KnobSettings, Upstream};
use rand::{Rng, SeedableRng};

use crate::support::{builder_for, eventually, get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_randomly_cancelled_requests_leave_the_pool_clean() {
    let up = Upstream::builder()
        .body(vec![b'z'; 2048])
        .knobs(KnobSettings {
            chunk_delay: Some(Duration::from_micros(200)),
            ..Default::default()
        })
        .start()
        .await;
    let client = builder_for(&up).max_sockets(16).build().unwrap();
    let url = Arc::new(up.url("/x"));
    let mut tasks = Vec::new();
    for t in 0..50u64 {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(t);
            let mut completed = 0u32;
            for _ in 0..200 {
                let budget = Duration::from_micros(rng.random_range(0..12_000));
                if tokio::time::timeout(budget, get(&client, &url))
                    .await
                    .is_ok()
                {
                    completed += 1;
                }
            }
            completed
        }));
    }
    let mut completed = 0;
    for t in tasks {
        completed += t.await.unwrap();
    }
    let s = eventually(&client, |s| {
        s.pool.active == 0 && s.pool.connecting == 0 && s.pool.waiters == 0
    })
    .await;
    assert_eq!(
        (s.pool.active, s.pool.connecting, s.pool.waiters),
        (0, 0, 0),
        "{s:?}"
    );
    assert!(
        completed > 0 && completed < 10_000,
        "some finish, some are cancelled: {completed}"
    );
    // Still serves, and every connection we count, the server accepted.
    get(&client, &url).await.unwrap();
    // A connection can go back to the pool just after its body ended (when
    // hyper needs a moment to be ready again): wait for that, then read
    // every number from one snapshot.
    let s = eventually(&client, |s| s.pool.active == 0).await;
    let c = s.pool.counters;
    // Every connection we created the server accepted; the rest of its
    // accepts are dials abandoned by a cancelled request, which we count.
    let accepted = up.stats().accepted;
    assert!(
        c.created <= accepted && accepted <= c.created + c.connects_cancelled,
        "created {} cancelled {} accepted {accepted}",
        c.created,
        c.connects_cancelled
    );
    assert_eq!(s.pool.active, 0);
    assert_eq!(
        c.created,
        c.closed.total() + s.pool.idle as u64,
        "every created connection is idle or closed with a reason"
    );
    // And the server agrees: the connections it still has open are exactly
    // our idle ones (every cancelled one was really closed).
    let idle = s.pool.idle as u64;
    assert!(
        up.wait_until(|st| st.open == idle, Duration::from_secs(5))
            .await,
        "server open {} vs our idle {idle}",
        up.stats().open
    );
}
