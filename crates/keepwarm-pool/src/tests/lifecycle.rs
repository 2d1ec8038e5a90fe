//! The pool outlives runtimes and hosts: its expiry task restarts on a live
//! runtime, and the state of a key nobody uses any more is dropped while its
//! counters stay in the label's totals.

use super::*;

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

#[test]
fn the_expiry_task_restarts_after_its_runtime_is_dropped() {
    let p = pool(PoolOptions::default());
    // The first connection is parked from a runtime that then goes away,
    // taking the expiry task it started with it.
    let first = paused_runtime();
    first.block_on(async { get(&p, &K).await.release() });
    drop(first);
    let second = paused_runtime();
    second.block_on(async {
        // Parked again on a live runtime (the idle one is reused).
        let lease = get(&p, &K).await;
        assert!(lease.info().reused);
        lease.release();
        advance(Duration::from_secs(16)).await;
        tokio::task::yield_now().await;
        let s = snap(&p);
        assert_eq!(s.idle, 0, "closed by a live expiry task: {s:?}");
        assert_eq!(s.counters.closed.get(CloseReason::IdleTimeout), 1);
    });
}

#[tokio::test(start_paused = true)]
async fn an_unused_key_is_dropped_and_its_counters_kept_by_label() {
    let p = pool(PoolOptions::default());
    // A client talking to 1000 hosts in turn, three requests each.
    let hosts: Vec<&'static str> = (0..1000)
        .map(|i| &*Box::leak(format!("h{i}").into_boxed_str()))
        .collect();
    for h in &hosts {
        for _ in 0..3 {
            get(&p, &Key(h)).await.release();
        }
    }
    assert_eq!(p.key_count(), 1000);
    // 15 s of idle closes each connection, 15 s more with nothing open
    // drops each key.
    advance(Duration::from_secs(16)).await;
    tokio::task::yield_now().await;
    assert_eq!(
        p.key_count(),
        1000,
        "keys stay while they may be used again"
    );
    advance(Duration::from_secs(16)).await;
    tokio::task::yield_now().await;
    assert_eq!(p.key_count(), 0);
    let retired = p.retired();
    assert_eq!(retired.len(), 1000);
    let total = retired.iter().fold(Counters::default(), |mut t, (_, c)| {
        t.merge(c);
        t
    });
    assert_eq!(
        (total.requests, total.reused, total.created),
        (3000, 2000, 1000)
    );
    assert_eq!(total.closed.get(CloseReason::IdleTimeout), 1000);
    // Used again: a fresh key, its label's old counters still retired.
    get(&p, &Key("h7")).await.release();
    assert_eq!(p.key_count(), 1);
    assert_eq!(p.key_snapshot(&Key("h7")).unwrap().counters.requests, 1);
}

#[tokio::test(start_paused = true)]
async fn a_key_used_again_before_its_deadline_is_kept() {
    let p = pool(PoolOptions::default());
    let permit = match p.acquire(&K).await.unwrap() {
        Acquired::Connect(permit) => permit,
        Acquired::Ready(_) => panic!("nothing is open yet"),
    };
    permit.fail();
    // Empty now (the connect failed); used again 10 s later.
    advance(Duration::from_secs(10)).await;
    get(&p, &K).await.release();
    advance(Duration::from_secs(10)).await;
    tokio::task::yield_now().await;
    let s = snap(&p);
    assert_eq!(
        (s.idle, s.counters.connect_errors, s.counters.requests),
        (1, 1, 1)
    );
}
