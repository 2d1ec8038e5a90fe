//! A waiter has exactly one outcome (served, timed out or cancelled) and one
//! wait-histogram record, even when its assignment and its deadline land
//! together.

use super::*;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use crate::dispatch::Returned;
use crate::facts::{Hints, Outcome};
use crate::state::Effects;

/// Polls `f` once; whether it is still pending.
async fn pending<F: Future>(mut f: Pin<&mut F>) -> bool {
    std::future::poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx).is_pending())).await
}

fn one_slot() -> Pool<Key, Fake> {
    pool(PoolOptions {
        max_sockets: 1,
        max_free_sockets: 1,
        acquire_timeout: Some(Duration::from_millis(100)),
        ..Default::default()
    })
}

/// Exactly one of served / timed out, one histogram record, nothing leaked.
fn assert_one_outcome(p: &Pool<Key, Fake>, served: bool) {
    let s = snap(p);
    let c = &s.counters;
    assert_eq!(c.waits, 1, "{c:?}");
    assert_eq!(c.wait_histogram.count(), 1, "one record per waiter: {c:?}");
    assert_eq!(c.acquire_timeouts, u64::from(!served), "{c:?}");
    assert_eq!(c.created, 1, "{c:?}");
    assert_eq!((s.waiters, s.connecting), (0, 0), "{s:?}");
}

#[tokio::test(start_paused = true)]
async fn release_then_deadline_on_the_same_tick_serves_the_waiter() {
    let p = one_slot();
    let held = get(&p, &K).await;
    let mut waiter = std::pin::pin!(p.acquire(&K));
    assert!(pending(waiter.as_mut()).await);
    // The deadline is reached and, before the waiter runs, the connection
    // comes back and is handed to it.
    advance(Duration::from_millis(100)).await;
    held.release();
    let Acquired::Ready(lease) = waiter.await.unwrap() else {
        panic!("the idle connection is handed over");
    };
    assert!(lease.info().reused);
    lease.release();
    assert_one_outcome(&p, true);
    assert_eq!(snap(&p).idle, 1);
}

#[tokio::test(start_paused = true)]
async fn deadline_then_release_on_the_same_tick_times_out_once() {
    let p = one_slot();
    let held = get(&p, &K).await;
    let mut waiter = std::pin::pin!(p.acquire(&K));
    assert!(pending(waiter.as_mut()).await);
    advance(Duration::from_millis(100)).await;
    let err = waiter.await.unwrap_err();
    assert!(
        matches!(err, AcquireError::Exhausted { waited, .. } if waited == Duration::from_millis(100))
    );
    held.release();
    assert_one_outcome(&p, false);
    assert_eq!(
        snap(&p).idle,
        1,
        "the connection went idle, not to the gone waiter"
    );
}

/// The race across threads: the waiter's deadline fires and, before it has
/// left the queue, the connection is released and assigned to it. The old
/// code counted it as a timeout, undid the assignment and recorded its wait
/// twice (once as served, once as timed out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_timing_out_as_it_is_served_has_one_outcome() {
    let p = pool(PoolOptions {
        max_sockets: 1,
        max_free_sockets: 1,
        acquire_timeout: Some(Duration::from_millis(20)),
        ..Default::default()
    });
    let mut held = get(&p, &K).await;
    let waiter = tokio::spawn({
        let p = p.clone();
        async move {
            match p.acquire(&K).await? {
                Acquired::Ready(lease) => lease.release(),
                Acquired::Connect(_) => panic!("no slot is free, only the held connection"),
            }
            Ok::<(), AcquireError>(())
        }
    });
    while snap(&p).waiters == 0 {
        tokio::task::yield_now().await;
    }
    {
        // Hold the pool's lock past the waiter's deadline, so the other
        // worker's timer fires while it cannot leave the queue, then hand it
        // the connection inside that window.
        let mut state = p.lock_state();
        std::thread::sleep(Duration::from_millis(300));
        let conn = held.conn.take().expect("held");
        let back = Returned {
            id: held.info.id,
            at: held.at,
            conn,
            outcome: Outcome::Reusable,
            hints: Hints::default(),
        };
        let mut fx = Effects::default();
        state.release(&K, back, tokio::time::Instant::now(), &mut fx);
        drop(state);
        drop(fx);
    }
    let served = waiter.await.unwrap();
    assert_one_outcome(&p, served.is_ok());
    let s = snap(&p);
    assert_eq!(
        s.idle + s.active,
        1,
        "the connection is idle or with the waiter: {s:?}"
    );
}
