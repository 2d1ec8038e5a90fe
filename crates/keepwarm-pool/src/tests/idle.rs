//! The pool-wide idle index: deadlines kept lazily (a reuse moves nothing;
//! the expiry task moves a deadline when it reaches it), each connection
//! expiring by its own timeout across keys, least recently used first
//! under the global cap, and dead entries compacted away.

use tokio::time::Instant;

use super::*;

fn idle(p: &Pool<Key, Fake>, k: &Key) -> usize {
    p.key_snapshot(k).map_or(0, |s| s.idle)
}

fn closed(p: &Pool<Key, Fake>, k: &Key, r: CloseReason) -> u64 {
    p.key_snapshot(k).map_or(0, |s| s.counters.closed.get(r))
}

/// Advances paused time and lets the expiry task run.
async fn pass(d: Duration) {
    advance(d).await;
    tokio::task::yield_now().await;
}

#[tokio::test(start_paused = true)]
async fn a_reused_connection_expires_by_its_last_release_not_its_first() {
    let p = pool(PoolOptions::default());
    let t0 = Instant::now();
    get(&p, &K).await.release();
    tokio::task::yield_now().await;
    assert_eq!(p.shared_reaper_at(), Some(t0 + Duration::from_secs(15)));
    pass(Duration::from_secs(10)).await;
    // Reused and released again: idle until t0 + 25 s. The expiry task
    // still sleeps until t0 + 15 s, the deadline it was given.
    get(&p, &K).await.release();
    pass(Duration::from_millis(5_100)).await;
    assert_eq!(idle(&p, &K), 1, "not expired by its first deadline");
    assert_eq!(
        p.shared_reaper_at(),
        Some(t0 + Duration::from_secs(25)),
        "the task moved on to the exact deadline"
    );
    pass(Duration::from_millis(9_800)).await;
    assert_eq!(idle(&p, &K), 1);
    pass(Duration::from_millis(200)).await;
    assert_eq!(idle(&p, &K), 0);
    assert_eq!(closed(&p, &K, CloseReason::IdleTimeout), 1);
}

#[tokio::test(start_paused = true)]
async fn each_connection_expires_by_its_own_timeout_across_keys() {
    let short = PoolOptions {
        free_socket_timeout: Duration::from_secs(10),
        ..PoolOptions::default()
    };
    let p: Pool<Key, Fake> = Pool::new(PoolConfig {
        per_label: [("ten".to_string(), short)].into(),
        ..PoolConfig::default()
    })
    .unwrap();
    let (ten, fifteen, hinted) = (Key("ten"), Key("fifteen"), Key("hinted"));
    let t0 = Instant::now();
    get(&p, &ten).await.release();
    get(&p, &fifteen).await.release();
    pass(Duration::from_secs(1)).await;
    let mut l = get(&p, &hinted).await;
    l.limit_idle_timeout(Duration::from_secs(4));
    l.release();
    tokio::task::yield_now().await;
    // Released last, due first.
    assert_eq!(p.shared_reaper_at(), Some(t0 + Duration::from_secs(5)));
    pass(Duration::from_millis(4_100)).await;
    assert_eq!(
        [idle(&p, &hinted), idle(&p, &ten), idle(&p, &fifteen)],
        [0, 1, 1]
    );
    assert_eq!(p.shared_reaper_at(), Some(t0 + Duration::from_secs(10)));
    pass(Duration::from_secs(5)).await;
    assert_eq!([idle(&p, &ten), idle(&p, &fifteen)], [0, 1]);
    assert_eq!(p.shared_reaper_at(), Some(t0 + Duration::from_secs(15)));
    pass(Duration::from_secs(5)).await;
    assert_eq!(idle(&p, &fifteen), 0);
    for k in [&ten, &fifteen, &hinted] {
        assert_eq!(closed(&p, k, CloseReason::IdleTimeout), 1, "{k:?}");
    }
    assert_eq!(p.idle_total(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_idle_cap_evicts_the_least_recently_used_across_keys_after_many_reuses() {
    let p: Pool<Key, Fake> = Pool::new(PoolConfig {
        max_idle_total: Some(3),
        ..PoolConfig::default()
    })
    .unwrap();
    let keys = [Key("a"), Key("b"), Key("c")];
    for k in &keys {
        get(&p, k).await.release();
    }
    // Round after round in the order c, a, b: each release moves the key
    // to the most recent end; nothing is over the cap.
    for _ in 0..500 {
        for i in [2, 0, 1] {
            let l = get(&p, &keys[i]).await;
            assert!(l.info().reused);
            l.release();
        }
    }
    assert_eq!(p.idle_total(), 3);
    let (_, queued) = p.lock_state().g.idle.held();
    assert!(
        queued <= 2 * 3 + 64,
        "the release-order queue is compacted: {queued}"
    );
    // A fourth idle connection: `c`, used longest ago, goes.
    let d = Key("d");
    get(&p, &d).await.release();
    assert_eq!(p.idle_total(), 3);
    assert_eq!(closed(&p, &keys[2], CloseReason::IdleCap), 1);
    assert_eq!(
        [idle(&p, &keys[0]), idle(&p, &keys[1]), idle(&p, &d)],
        [1, 1, 1]
    );
    // Then `a`.
    get(&p, &Key("e")).await.release();
    assert_eq!(closed(&p, &keys[0], CloseReason::IdleCap), 1);
    assert_eq!(idle(&p, &keys[1]), 1);
}

#[tokio::test(start_paused = true)]
async fn deadlines_of_closed_connections_are_compacted_away() {
    let p = pool(PoolOptions::default());
    // Each connection goes idle (its deadline queued), then its peer
    // closes it: 1000 dead deadlines, one live connection at a time.
    for _ in 0..1_000 {
        let l = get(&p, &K).await;
        assert!(!l.info().reused);
        let id = l.info().id;
        l.release();
        p.connection_closed(&K, id);
        tokio::task::yield_now().await;
    }
    let (heap, _) = p.lock_state().g.idle.held();
    assert!(heap <= 2 + 64, "{heap} deadlines held for one connection");
    assert_eq!(snap(&p).counters.stale, 1_000);
    // The pool still expires what is idle, and nothing else.
    get(&p, &K).await.release();
    pass(Duration::from_secs(16)).await;
    let s = snap(&p);
    assert_eq!(
        (s.idle, s.counters.closed.get(CloseReason::IdleTimeout)),
        (0, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn many_moved_deadlines_take_several_short_passes_and_none_expires_early() {
    let p = pool(PoolOptions::default());
    let hosts: Vec<Key> = (0..1_000)
        .map(|i| Key(Box::leak(format!("h{i}").into_boxed_str())))
        .collect();
    let t0 = Instant::now();
    for k in &hosts {
        get(&p, k).await.release();
    }
    pass(Duration::from_secs(10)).await;
    // All reused: idle until t0 + 25 s, their deadlines still queued at
    // t0 + 15 s. Moving them takes more than one pass's budget.
    for k in &hosts {
        get(&p, k).await.release();
    }
    advance(Duration::from_millis(5_100)).await;
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert_eq!(p.idle_total(), 1_000, "nothing expired by a stale deadline");
    assert_eq!(p.shared_reaper_at(), Some(t0 + Duration::from_secs(25)));
    advance(Duration::from_millis(9_900)).await;
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert_eq!(p.idle_total(), 0);
    let closed: u64 = hosts
        .iter()
        .map(|k| closed(&p, k, CloseReason::IdleTimeout))
        .sum();
    assert_eq!(closed, 1_000);
}
