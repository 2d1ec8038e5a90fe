//! Connections nobody drives while idle: the pool asks them
//! ([`Poolable::poll_open`]) when they go idle, before reuse and on
//! [`Pool::check_idle`].

use super::*;

/// Looks open to `is_open`; only `poll_open` sees the peer's close (as a
/// connection whose EOF sits unread in its socket).
struct Quiet {
    closed: Arc<AtomicBool>,
    polls: Arc<AtomicU64>,
}

impl Poolable for Quiet {
    fn is_open(&self) -> bool {
        true
    }
    fn poll_open(&mut self) -> bool {
        self.polls.fetch_add(1, Ordering::SeqCst);
        !self.closed.load(Ordering::SeqCst)
    }
}

struct Setup {
    pool: Pool<Key, Quiet>,
    id: u64,
    closed: Arc<AtomicBool>,
    polls: Arc<AtomicU64>,
}

/// A pool holding one idle `Quiet` connection under `K`.
async fn one_idle() -> Setup {
    let pool: Pool<Key, Quiet> = Pool::new(PoolConfig::default()).unwrap();
    let (closed, polls) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let Acquired::Connect(permit) = pool.acquire(&K).await.unwrap() else {
        panic!("an empty pool hands out a slot");
    };
    let conn = Quiet {
        closed: closed.clone(),
        polls: polls.clone(),
    };
    let lease = permit.complete(conn);
    let id = lease.info().id;
    lease.release();
    Setup {
        pool,
        id,
        closed,
        polls,
    }
}

#[tokio::test(start_paused = true)]
async fn going_idle_asks_the_connection() {
    let s = one_idle().await;
    assert_eq!(s.polls.load(Ordering::SeqCst), 1);
    assert_eq!(s.pool.key_snapshot(&K).unwrap().idle, 1);
}

#[tokio::test(start_paused = true)]
async fn check_idle_removes_a_closed_idle_connection_as_stale() {
    let s = one_idle().await;
    s.pool.check_idle(&K, s.id);
    s.pool.check_idle(&K, s.id + 99);
    let snap = s.pool.key_snapshot(&K).unwrap();
    assert_eq!((snap.idle, snap.counters.stale), (1, 0), "still open: kept");
    s.closed.store(true, Ordering::SeqCst);
    s.pool.check_idle(&K, s.id);
    let snap = s.pool.key_snapshot(&K).unwrap();
    assert_eq!((snap.idle, snap.counters.stale), (0, 1));
    assert_eq!(snap.counters.closed.get(CloseReason::ServerClosed), 1);
}

#[tokio::test(start_paused = true)]
async fn a_connection_poll_open_finds_closed_is_never_reused() {
    let s = one_idle().await;
    s.closed.store(true, Ordering::SeqCst);
    let Acquired::Connect(_permit) = s.pool.acquire(&K).await.unwrap() else {
        panic!("the closed connection was handed out");
    };
    let snap = s.pool.key_snapshot(&K).unwrap();
    assert_eq!((snap.counters.stale, snap.counters.reused), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn check_idle_leaves_a_connection_in_use_alone() {
    let s = one_idle().await;
    let Acquired::Ready(lease) = s.pool.acquire(&K).await.unwrap() else {
        panic!("the idle connection is reused");
    };
    s.closed.store(true, Ordering::SeqCst);
    let before = s.polls.load(Ordering::SeqCst);
    s.pool.check_idle(&K, lease.info().id);
    assert_eq!(
        s.polls.load(Ordering::SeqCst),
        before,
        "not asked while in use"
    );
    assert_eq!(s.pool.key_snapshot(&K).unwrap().active, 1);
    // Released, it is asked and found closed: not pooled.
    lease.release();
    let snap = s.pool.key_snapshot(&K).unwrap();
    assert_eq!(snap.idle, 0);
    assert_eq!(snap.counters.closed.get(CloseReason::ServerClosed), 1);
}
