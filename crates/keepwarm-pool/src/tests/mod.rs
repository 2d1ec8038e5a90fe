//! Unit tests of the pool with fake connections; timer logic in paused time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{advance, sleep};

use crate::*;

mod idle;
mod lifecycle;
mod outcomes;
mod watch;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key(&'static str);

impl PoolKey for Key {
    fn label(&self) -> &str {
        self.0
    }
}

/// A fake connection; `open` can be flipped to simulate the peer closing.
#[derive(Debug)]
struct Fake {
    open: Arc<AtomicBool>,
    capacity: usize,
}

impl Fake {
    fn new() -> (Fake, Arc<AtomicBool>) {
        let open = Arc::new(AtomicBool::new(true));
        (
            Fake {
                open: open.clone(),
                capacity: 1,
            },
            open,
        )
    }
}

impl Poolable for Fake {
    fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }
    fn max_concurrent(&self) -> usize {
        self.capacity
    }
    fn share(&self) -> Option<Self> {
        (self.capacity > 1).then(|| Fake {
            open: self.open.clone(),
            capacity: self.capacity,
        })
    }
}

fn pool(mut opts: PoolOptions) -> Pool<Key, Fake> {
    opts.max_free_sockets = opts.max_free_sockets.min(opts.max_sockets);
    Pool::new(PoolConfig {
        default: opts,
        ..Default::default()
    })
    .unwrap()
}

const K: Key = Key("a");

/// Acquires, opening a fake connection when given a slot.
async fn get(p: &Pool<Key, Fake>, k: &Key) -> Lease<Key, Fake> {
    match p.acquire(k).await.unwrap() {
        Acquired::Ready(l) => l,
        Acquired::Connect(permit) => permit.complete(Fake::new().0),
    }
}

fn snap(p: &Pool<Key, Fake>) -> KeySnapshot {
    p.key_snapshot(&K).unwrap()
}

#[tokio::test(start_paused = true)]
async fn sequential_requests_reuse_one_connection() {
    let p = pool(PoolOptions::default());
    for i in 0..100 {
        let l = get(&p, &K).await;
        assert_eq!(l.info().reused, i > 0);
        assert_eq!(l.info().requests_before, i);
        l.release();
    }
    let s = snap(&p);
    assert_eq!(s.counters.requests, 100);
    assert_eq!(s.counters.reused, 99);
    assert_eq!(s.counters.created, 1);
    assert_eq!((s.active, s.idle, s.connecting, s.waiters), (0, 1, 0, 0));
    assert_eq!(s.reuse_rate(), 99.0);
}

#[tokio::test(start_paused = true)]
async fn max_sockets_queues_waiters_in_fifo_order() {
    let p = pool(PoolOptions {
        max_sockets: 2,
        max_free_sockets: 2,
        ..Default::default()
    });
    let a = get(&p, &K).await;
    let b = get(&p, &K).await;
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..5 {
        let (p, order) = (p.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let l = get(&p, &K).await;
            order.lock().unwrap().push(i);
            sleep(Duration::from_millis(1)).await;
            l.release();
        }));
        // Queue them in a known order.
        tokio::task::yield_now().await;
    }
    assert_eq!(snap(&p).waiters, 5);
    assert_eq!(snap(&p).active, 2);
    a.release();
    b.release();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    let s = snap(&p);
    assert_eq!(s.counters.created, 2, "never more than maxSockets");
    assert_eq!(s.counters.waits, 5);
    assert_eq!(s.counters.wait_histogram.count(), 5);
    assert_eq!(s.counters.lifetime_histogram.count(), 0, "nothing closed");
    assert_eq!((s.active, s.waiters, s.idle), (0, 0, 2));
}

#[tokio::test(start_paused = true)]
async fn acquire_timeout_names_the_limit_and_leaves_nothing_queued() {
    let p = pool(PoolOptions {
        max_sockets: 1,
        max_free_sockets: 1,
        acquire_timeout: Some(Duration::from_secs(30)),
        ..Default::default()
    });
    let held = get(&p, &K).await;
    let err = p.acquire(&K).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "pool exhausted for a: 1 of 1 connections busy, waited 30s"
    );
    let s = snap(&p);
    assert_eq!(s.waiters, 0);
    assert_eq!(s.counters.acquire_timeouts, 1);
    assert_eq!(s.counters.wait_time, Duration::from_secs(30));
    held.release();
    assert!(get(&p, &K).await.info().reused);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_leaves_the_queue() {
    let p = pool(PoolOptions {
        max_sockets: 1,
        ..Default::default()
    });
    let held = get(&p, &K).await;
    let fut = p.acquire(&K);
    let r = tokio::time::timeout(Duration::from_millis(5), fut).await;
    assert!(r.is_err());
    assert_eq!(snap(&p).waiters, 0);
    held.release();
    let s = snap(&p);
    assert_eq!((s.idle, s.active), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_lease_closes_its_connection_and_frees_the_slot() {
    let p = pool(PoolOptions {
        max_sockets: 1,
        ..Default::default()
    });
    let held = get(&p, &K).await;
    let p2 = p.clone();
    let waiter =
        tokio::spawn(async move { matches!(p2.acquire(&K).await.unwrap(), Acquired::Connect(_)) });
    tokio::task::yield_now().await;
    drop(held);
    assert!(waiter.await.unwrap(), "the waiter gets the freed slot");
    let s = snap(&p);
    assert_eq!(s.counters.closed.get(CloseReason::Abandoned), 1);
    assert_eq!((s.active, s.idle, s.connecting), (0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_or_failed_permit_frees_its_slot() {
    let p = pool(PoolOptions {
        max_sockets: 1,
        ..Default::default()
    });
    let Acquired::Connect(permit) = p.acquire(&K).await.unwrap() else {
        panic!()
    };
    assert_eq!(snap(&p).connecting, 1);
    drop(permit);
    assert_eq!(snap(&p).connecting, 0);
    assert_eq!(snap(&p).counters.connects_cancelled, 1);
    let Acquired::Connect(permit) = p.acquire(&K).await.unwrap() else {
        panic!()
    };
    permit.fail();
    let s = snap(&p);
    assert_eq!((s.connecting, s.counters.connect_errors), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn max_free_sockets_closes_the_excess() {
    let p = pool(PoolOptions {
        max_sockets: 5,
        max_free_sockets: 2,
        ..Default::default()
    });
    let leases = vec![get(&p, &K).await, get(&p, &K).await, get(&p, &K).await];
    for l in leases {
        l.release();
    }
    let s = snap(&p);
    assert_eq!(s.idle, 2);
    assert_eq!(s.counters.closed.get(CloseReason::OverMaxFree), 1);
}

#[tokio::test(start_paused = true)]
async fn idle_connections_expire_by_deadline_without_traffic() {
    let p = pool(PoolOptions::default());
    get(&p, &K).await.release();
    advance(Duration::from_millis(14_900)).await;
    assert_eq!(snap(&p).idle, 1);
    advance(Duration::from_millis(200)).await;
    tokio::task::yield_now().await;
    let s = snap(&p);
    assert_eq!(s.idle, 0, "closed by its deadline, no checkout needed");
    assert_eq!(s.counters.closed.get(CloseReason::IdleTimeout), 1);
    assert_eq!(s.counters.lifetime_histogram.count(), 1);
    assert!(s.counters.lifetime_histogram.sum() >= Duration::from_secs(15));
    // Nothing is idle: the only deadline left is the empty key's retirement;
    // once it is gone the reaper sleeps with no deadline.
    assert!(p.shared_reaper_at().is_some());
    advance(Duration::from_secs(15)).await;
    tokio::task::yield_now().await;
    assert_eq!(p.key_snapshot(&K), None);
    assert_eq!(p.shared_reaper_at(), None);
}

#[tokio::test(start_paused = true)]
async fn reuse_pushes_the_idle_deadline_back() {
    let p = pool(PoolOptions::default());
    get(&p, &K).await.release();
    for _ in 0..5 {
        advance(Duration::from_secs(10)).await;
        let l = get(&p, &K).await;
        assert!(l.info().reused);
        assert_eq!(l.info().idle_for, Duration::from_secs(10));
        l.release();
    }
    assert_eq!(snap(&p).counters.created, 1);
}

#[tokio::test(start_paused = true)]
async fn lifetime_limits_reuse() {
    let p = pool(PoolOptions {
        max_socket_lifetime: Some(Duration::from_secs(60)),
        ..Default::default()
    });
    get(&p, &K).await.release();
    for _ in 0..5 {
        advance(Duration::from_secs(10)).await;
        get(&p, &K).await.release();
    }
    advance(Duration::from_secs(10)).await; // age 60 s, idle 10 s
    tokio::task::yield_now().await;
    let s = snap(&p);
    assert_eq!(s.idle, 0);
    assert_eq!(s.counters.closed.get(CloseReason::Lifetime), 1);
    let l = get(&p, &K).await;
    assert!(!l.info().reused);
    // Released past its lifetime: closed, not kept.
    advance(Duration::from_secs(61)).await;
    l.release();
    assert_eq!(snap(&p).counters.closed.get(CloseReason::Lifetime), 2);
}

#[tokio::test(start_paused = true)]
async fn max_requests_per_socket_rotates_connections() {
    let p = pool(PoolOptions {
        max_requests_per_socket: Some(3),
        ..Default::default()
    });
    for _ in 0..9 {
        get(&p, &K).await.release();
    }
    let s = snap(&p);
    assert_eq!(s.counters.created, 3);
    assert_eq!(s.counters.closed.get(CloseReason::MaxRequests), 3);
}

#[tokio::test(start_paused = true)]
async fn server_hints_cap_idle_time_and_requests() {
    let p = pool(PoolOptions::default());
    let mut l = get(&p, &K).await;
    l.limit_idle_timeout(Duration::from_secs(4));
    l.release();
    advance(Duration::from_millis(4_100)).await;
    tokio::task::yield_now().await;
    assert_eq!(snap(&p).counters.closed.get(CloseReason::IdleTimeout), 1);

    let mut l = get(&p, &K).await;
    l.limit_remaining_requests(1);
    l.release();
    get(&p, &K).await.release(); // the one allowed
    assert_eq!(snap(&p).counters.closed.get(CloseReason::MaxRequests), 1);
}

#[tokio::test(start_paused = true)]
async fn global_idle_cap_evicts_least_recently_used() {
    let p: Pool<Key, Fake> = Pool::new(PoolConfig {
        max_idle_total: Some(2),
        ..Default::default()
    })
    .unwrap();
    let (a, b, c) = (Key("a"), Key("b"), Key("c"));
    get(&p, &a).await.release();
    advance(Duration::from_secs(1)).await;
    get(&p, &b).await.release();
    advance(Duration::from_secs(1)).await;
    get(&p, &c).await.release();
    assert_eq!(p.idle_total(), 2);
    let sa = p.key_snapshot(&a).unwrap();
    assert_eq!(sa.idle, 0);
    assert_eq!(sa.counters.closed.get(CloseReason::IdleCap), 1);
    assert_eq!(p.key_snapshot(&b).unwrap().idle, 1);
}

#[tokio::test(start_paused = true)]
async fn a_dead_idle_connection_is_caught_before_reuse() {
    let p = pool(PoolOptions::default());
    let Acquired::Connect(permit) = p.acquire(&K).await.unwrap() else {
        panic!()
    };
    let (conn, open) = Fake::new();
    permit.complete(conn).release();
    open.store(false, Ordering::SeqCst);
    let Acquired::Connect(_) = p.acquire(&K).await.unwrap() else {
        panic!("a dead connection must not be handed out")
    };
    let s = snap(&p);
    assert_eq!(s.counters.stale, 1);
    assert_eq!(s.counters.closed.get(CloseReason::ServerClosed), 1);
}

#[tokio::test(start_paused = true)]
async fn connection_closed_removes_idle_now_and_active_on_release() {
    let p = pool(PoolOptions::default());
    let l1 = get(&p, &K).await;
    let l2 = get(&p, &K).await;
    let (id1, id2) = (l1.info().id, l2.info().id);
    l1.release();
    p.connection_closed(&K, id1);
    assert_eq!(snap(&p).idle, 0);
    p.connection_closed(&K, id2);
    l2.release();
    let s = snap(&p);
    assert_eq!(s.idle, 0);
    assert_eq!(s.counters.stale, 1);
    assert_eq!(s.counters.closed.get(CloseReason::ServerClosed), 2);
}

#[tokio::test(start_paused = true)]
async fn destroy_closes_idle_now_and_active_when_released() {
    let p = pool(PoolOptions::default());
    let active = get(&p, &K).await;
    get(&p, &K).await.release();
    let r = p.destroy_label("a");
    assert_eq!(
        r,
        DestroyReport {
            closed_idle: 1,
            closing_active: 1
        }
    );
    // The in-flight request goes on; its connection closes afterwards.
    assert!(active.conn().is_open());
    active.release();
    let s = snap(&p);
    assert_eq!((s.idle, s.active), (0, 0));
    assert_eq!(s.counters.closed.get(CloseReason::Destroyed), 2);
    assert!(!get(&p, &K).await.info().reused);
}

#[tokio::test(start_paused = true)]
async fn keep_alive_off_is_one_request_per_connection() {
    let p = pool(PoolOptions {
        keep_alive: false,
        ..Default::default()
    });
    for _ in 0..3 {
        let l = get(&p, &K).await;
        assert!(!l.info().reused);
        l.release();
    }
    let s = snap(&p);
    assert_eq!((s.counters.created, s.counters.reused), (3, 0));
    assert_eq!(s.counters.closed.get(CloseReason::KeepAliveOff), 3);
}

struct FakeConnector(AtomicU64);

impl Connector<Key, Fake> for FakeConnector {
    fn connect(&self, _key: Key, _id: u64) -> ConnectFuture<Fake> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {
            sleep(Duration::from_millis(10)).await;
            Ok(Fake::new().0)
        })
    }
}

#[tokio::test(start_paused = true)]
async fn min_free_sockets_prewarms_and_refills() {
    let connector = Arc::new(FakeConnector(AtomicU64::new(0)));
    let p: Pool<Key, Fake> = Pool::with_connector(
        PoolConfig {
            default: PoolOptions {
                min_free_sockets: 2,
                ..Default::default()
            },
            ..Default::default()
        },
        connector.clone(),
    )
    .unwrap();
    assert_eq!(p.warm(&K), 2, "two connects started");
    assert_eq!(p.warm(&K), 0, "already under way");
    sleep(Duration::from_millis(20)).await;
    let s = snap(&p);
    assert_eq!((s.idle, s.counters.prewarmed), (2, 2));
    let l = get(&p, &K).await;
    assert!(!l.info().reused, "a pre-warmed connection's first request");
    sleep(Duration::from_millis(20)).await;
    assert_eq!(snap(&p).idle, 2, "refilled in the background");
    assert_eq!(connector.0.load(Ordering::SeqCst), 3);
    l.release();
    assert_eq!(snap(&p).idle, 3);
}

#[tokio::test(start_paused = true)]
async fn shared_connections_carry_several_requests_at_once() {
    let p = pool(PoolOptions {
        max_sockets: 2,
        ..Default::default()
    });
    let Acquired::Connect(permit) = p.acquire(&K).await.unwrap() else {
        panic!()
    };
    let (mut conn, _open) = Fake::new();
    conn.capacity = 2;
    let first = permit.complete(conn);
    let second = get(&p, &K).await;
    assert_eq!(second.info().id, first.info().id);
    assert!(second.info().reused);
    let third = match p.acquire(&K).await.unwrap() {
        Acquired::Connect(_) => "new",
        Acquired::Ready(_) => "shared",
    };
    assert_eq!(third, "new", "at capacity a new connection opens");
    let s = snap(&p);
    assert_eq!(
        (s.active, s.counters.created, s.counters.requests),
        (1, 1, 2)
    );
    first.release();
    assert_eq!(snap(&p).active, 1);
    second.release();
    let s = snap(&p);
    assert_eq!((s.active, s.idle), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn mean_age_counts_open_connections() {
    let p = pool(PoolOptions::default());
    let a = get(&p, &K).await;
    advance(Duration::from_secs(10)).await;
    let b = get(&p, &K).await;
    assert_eq!(snap(&p).mean_age, Duration::from_secs(5));
    a.release();
    b.release();
    advance(Duration::from_secs(2)).await;
    assert_eq!(snap(&p).mean_age, Duration::from_secs(7));
    let mut two = snap(&p);
    let other = KeySnapshot {
        idle: 2,
        mean_age: Duration::from_secs(1),
        ..Default::default()
    };
    two.merge(&other);
    assert_eq!((two.idle, two.mean_age), (4, Duration::from_secs(4)));
}

#[tokio::test(start_paused = true)]
async fn random_cancellation_leaks_nothing() {
    use std::sync::atomic::AtomicUsize;
    let p = pool(PoolOptions {
        max_sockets: 4,
        max_free_sockets: 4,
        acquire_timeout: Some(Duration::from_millis(50)),
        ..Default::default()
    });
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..2_000 {
        let (p, done) = (p.clone(), done.clone());
        let (cancel_at, hold, how) = (next() % 20, next() % 10, next() % 3);
        tasks.push(tokio::spawn(async move {
            let work = async {
                let l = match p.acquire(&K).await {
                    Ok(Acquired::Ready(l)) => l,
                    Ok(Acquired::Connect(permit)) => {
                        sleep(Duration::from_millis(1)).await;
                        permit.complete(Fake::new().0)
                    }
                    Err(_) => return,
                };
                sleep(Duration::from_millis(hold)).await;
                match how {
                    0 => l.release(),
                    1 => l.close(CloseReason::Error),
                    _ => drop(l),
                }
                done.fetch_add(1, Ordering::SeqCst);
            };
            let _ = tokio::time::timeout(Duration::from_millis(cancel_at), work).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let s = snap(&p);
    assert_eq!((s.active, s.connecting, s.waiters), (0, 0, 0), "{s:?}");
    assert!(s.idle <= 4);
    assert!(done.load(Ordering::SeqCst) > 0);
    assert_eq!(
        s.counters.created,
        s.counters.closed.total() + s.idle as u64,
        "every created connection is closed or idle"
    );
    // Still serves.
    get(&p, &K).await.release();
}

#[tokio::test(start_paused = true)]
async fn a_shared_connection_closes_for_the_reason_it_was_doomed_with() {
    let p = pool(PoolOptions::default());
    let Acquired::Connect(permit) = p.acquire(&K).await.unwrap() else {
        panic!()
    };
    let (mut conn, _open) = Fake::new();
    conn.capacity = 2;
    let first = permit.complete(conn);
    let second = get(&p, &K).await;
    first.close(CloseReason::Error);
    // Doomed: not handed out again while the second stream runs.
    assert!(matches!(p.acquire(&K).await.unwrap(), Acquired::Connect(_)));
    second.release();
    let s = snap(&p);
    assert_eq!(s.counters.closed.get(CloseReason::Error), 1);
    assert_eq!(s.counters.closed.get(CloseReason::ServerClosed), 0);
    assert_eq!((s.active, s.idle), (0, 0));
}

/// Spawns `n` requests for `K`; one given a slot dials for 10 ms a
/// connection carrying `capacity` requests. Each returns its lease.
async fn burst(
    p: &Pool<Key, Fake>,
    n: usize,
    capacity: usize,
) -> Vec<tokio::task::JoinHandle<Lease<Key, Fake>>> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move {
                match p.acquire(&K).await.unwrap() {
                    Acquired::Ready(l) => l,
                    Acquired::Connect(permit) => {
                        sleep(Duration::from_millis(10)).await;
                        let (mut c, _) = Fake::new();
                        c.capacity = capacity;
                        permit.complete(c)
                    }
                }
            })
        })
        .collect();
    // Let every task reach the pool (no time passes).
    for _ in 0..n + 10 {
        tokio::task::yield_now().await;
    }
    tasks
}

#[tokio::test(start_paused = true)]
async fn a_burst_on_a_shared_key_dials_only_what_the_streams_need() {
    let p = pool(PoolOptions {
        max_sockets: 10,
        ..Default::default()
    });
    p.expect_shared(&K);
    let tasks = burst(&p, 250, 100).await;
    // Capacity unknown: one dial, everyone else waits for it.
    let s = snap(&p);
    assert_eq!((s.connecting, s.waiters), (1, 249), "{s:?}");
    let mut leases = Vec::new();
    for t in tasks {
        leases.push(t.await.unwrap());
    }
    let s = snap(&p);
    assert_eq!(
        s.counters.created, 3,
        "250 requests at 100 a connection: {s:?}"
    );
    assert_eq!((s.active, s.waiters, s.connecting), (3, 0, 0));
    assert_eq!(s.counters.requests, 250);
}

#[tokio::test(start_paused = true)]
async fn an_exclusive_first_connection_lets_the_waiters_dial() {
    let p = pool(PoolOptions {
        max_sockets: 10,
        ..Default::default()
    });
    p.expect_shared(&K);
    let tasks = burst(&p, 4, 1).await;
    let s = snap(&p);
    assert_eq!((s.connecting, s.waiters), (1, 3), "{s:?}");
    let mut leases = Vec::new();
    for t in tasks {
        leases.push(t.await.unwrap());
    }
    let s = snap(&p);
    assert_eq!(
        (s.counters.created, s.active),
        (4, 4),
        "HTTP/1.1 after all: {s:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_draining_connection_takes_no_new_request_and_closes_as_goaway() {
    let p = pool(PoolOptions::default());
    let Acquired::Connect(permit) = p.acquire(&K).await.unwrap() else {
        panic!()
    };
    let (mut conn, _open) = Fake::new();
    conn.capacity = 10;
    let first = permit.complete(conn);
    let id = first.info().id;
    p.connection_draining(&K, id, CloseReason::GoAway);
    assert!(matches!(p.acquire(&K).await.unwrap(), Acquired::Connect(_)));
    first.release();
    let s = snap(&p);
    assert_eq!(s.counters.closed.get(CloseReason::GoAway), 1);
    assert_eq!((s.active, s.idle, s.counters.stale), (0, 0, 0));

    // An idle one closes at once.
    let lease = get(&p, &K).await;
    let id = lease.info().id;
    lease.release();
    assert_eq!(snap(&p).idle, 1);
    p.connection_draining(&K, id, CloseReason::GoAway);
    let s = snap(&p);
    assert_eq!(s.counters.closed.get(CloseReason::GoAway), 2);
    assert_eq!((s.idle, s.counters.stale), (0, 0));
}
