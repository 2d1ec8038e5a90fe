//! Changing a label's options while the pool runs (a config reload): the
//! new options apply from the next acquire (an open connection's idle
//! timeout and request cap from its next release); open connections, idle
//! ones included, stay in the pool. A raised `maxSockets` serves waiters at once;
//! a lowered one lets connections over it finish and close as they return
//! (`maxFreeSockets`) or expire.

use std::sync::Arc;

use tokio::time::Instant;

use crate::clock::Span;
use crate::options::{OptionsError, PoolOptions};
use crate::pool::Pool;
use crate::traits::{PoolKey, Poolable};

impl<K: PoolKey, C: Poolable> Pool<K, C> {
    /// Sets the options of every key with `label`, now and for keys first
    /// seen later, replacing the `PoolConfig`'s. Invalid options are
    /// rejected and change nothing.
    pub fn set_label_options(&self, label: &str, opts: PoolOptions) -> Result<(), OptionsError> {
        opts.validate()?;
        let opts = Arc::new(opts);
        let now = Instant::now();
        self.shared.with(|s, fx| {
            s.g.label_opts.insert(label.to_string(), opts.clone());
            let now = s.g.clock.at(now);
            for idx in s.keys.select(|k| k.label() == label) {
                if let Some(ks) = s.keys.state_mut(idx) {
                    // Per-connection limits taken from the old options follow
                    // the new ones (from the connection's next release); a
                    // tighter limit a server hinted at stays.
                    let no_cap = |m: Option<u64>| m.unwrap_or(u64::MAX);
                    let (old_idle, old_max) = (
                        Span::of(ks.opts.free_socket_timeout),
                        no_cap(ks.opts.max_requests_per_socket),
                    );
                    let (new_idle, new_max) = (
                        Span::of(opts.free_socket_timeout),
                        no_cap(opts.max_requests_per_socket),
                    );
                    for e in ks.entries.values_mut() {
                        e.idle_timeout = if e.idle_timeout == old_idle {
                            new_idle
                        } else {
                            e.idle_timeout.min(new_idle)
                        };
                        if e.max_requests == old_max {
                            e.max_requests = new_max;
                        }
                    }
                    ks.opts = opts.clone();
                }
                // More room may serve waiters now, or want pre-warming.
                s.dispatch_at(idx, now, fx);
                s.refill(idx, fx);
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::advance;

    use crate::*;

    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    struct Key(&'static str);

    impl PoolKey for Key {
        fn label(&self) -> &str {
            self.0
        }
    }

    #[derive(Debug)]
    struct Conn;

    impl Poolable for Conn {
        fn is_open(&self) -> bool {
            true
        }
    }

    fn opts(max_sockets: usize) -> PoolOptions {
        PoolOptions {
            max_sockets,
            max_free_sockets: max_sockets.min(10),
            ..PoolOptions::default()
        }
    }

    async fn lease(pool: &Pool<Key, Conn>, key: &Key) -> Lease<Key, Conn> {
        match pool.acquire(key).await.expect("served") {
            Acquired::Connect(permit) => permit.complete(Conn),
            Acquired::Ready(lease) => lease,
        }
    }

    fn pool(max_sockets: usize) -> Pool<Key, Conn> {
        Pool::new(PoolConfig {
            default: opts(max_sockets),
            ..PoolConfig::default()
        })
        .expect("valid")
    }

    #[tokio::test(start_paused = true)]
    async fn a_raised_limit_serves_a_waiter_at_once() {
        let pool = pool(1);
        let key = Key("p");
        let held = lease(&pool, &key).await;
        let waiting = tokio::spawn({
            let (pool, key) = (pool.clone(), key.clone());
            async move { matches!(pool.acquire(&key).await, Ok(Acquired::Connect(_))) }
        });
        tokio::task::yield_now().await;
        assert_eq!(pool.key_snapshot(&key).unwrap().waiters, 1);
        pool.set_label_options("p", opts(2)).unwrap();
        assert!(waiting.await.unwrap(), "the waiter got a slot to connect");
        assert_eq!(pool.key_snapshot(&key).unwrap().max_sockets, 2);
        drop(held);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connections_stay_and_new_timeouts_apply_from_the_next_release() {
        let pool = pool(5);
        let key = Key("p");
        let first = lease(&pool, &key).await;
        let id = first.info().id;
        first.release();
        pool.set_label_options(
            "p",
            PoolOptions {
                free_socket_timeout: Duration::from_secs(1),
                ..opts(5)
            },
        )
        .unwrap();
        // The idle connection survived the change and is reused...
        let again = lease(&pool, &key).await;
        assert_eq!((again.info().id, again.info().reused), (id, true));
        again.release();
        // ...and, released under the new options, expires after 1 s, not 15.
        advance(Duration::from_millis(1500)).await;
        tokio::task::yield_now().await;
        let s = pool.key_snapshot(&key).unwrap();
        assert_eq!(s.idle, 0);
        assert_eq!(s.counters.closed.get(CloseReason::IdleTimeout), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_label_not_seen_yet_starts_with_the_new_options_and_others_keep_theirs() {
        let pool = pool(50);
        pool.set_label_options("new", opts(1)).unwrap();
        let key = Key("new");
        let _held = lease(&pool, &key).await;
        assert_eq!(pool.key_snapshot(&key).unwrap().max_sockets, 1);
        let other = Key("other");
        let _o = lease(&pool, &other).await;
        assert_eq!(pool.key_snapshot(&other).unwrap().max_sockets, 50);
        // At the new limit the next request waits (and times out here).
        pool.set_label_options(
            "new",
            PoolOptions {
                acquire_timeout: Some(Duration::from_secs(2)),
                ..opts(1)
            },
        )
        .unwrap();
        match pool.acquire(&key).await {
            Err(AcquireError::Exhausted {
                max_sockets,
                waited,
                ..
            }) => {
                assert_eq!(max_sockets, 1);
                assert_eq!(waited, Duration::from_secs(2), "the new acquireTimeout");
            }
            other => panic!("expected a wait at the limit, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn invalid_options_change_nothing() {
        let pool = pool(3);
        let key = Key("p");
        lease(&pool, &key).await.release();
        let err = pool
            .set_label_options(
                "p",
                PoolOptions {
                    max_free_sockets: 0,
                    ..opts(0)
                },
            )
            .unwrap_err();
        assert_eq!(err.option, "maxSockets");
        assert_eq!(pool.key_snapshot(&key).unwrap().max_sockets, 3);
    }
}
