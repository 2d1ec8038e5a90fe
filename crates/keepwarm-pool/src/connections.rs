//! Per-connection facts for dashboards: one [`ConnectionSnapshot`] per open
//! connection of every key, read under the pool's lock in one pass (no
//! await, nothing cloned but numbers).

use std::time::Duration;

use tokio::time::Instant;

use crate::pool::Pool;
use crate::traits::{PoolKey, Poolable};

/// One open connection, now (connections still connecting are not listed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionSnapshot {
    /// The pool's id of the connection (the same id as
    /// [`LeaseInfo::id`](crate::LeaseInfo::id)).
    pub id: u64,
    /// Time since it was opened.
    pub age: Duration,
    /// Time since its last request ended, when it is idle; `None` while it
    /// carries a request.
    pub idle_for: Option<Duration>,
    /// Requests it carried (including ones in flight).
    pub requests: u64,
    /// Requests in flight on it now (0 or 1; up to its stream limit for a
    /// shared HTTP/2 connection).
    pub in_flight: usize,
}

impl<K: PoolKey, C: Poolable> Pool<K, C> {
    /// Every open connection of every key, oldest first within a key.
    pub fn connections(&self) -> Vec<(K, Vec<ConnectionSnapshot>)> {
        let now = Instant::now();
        let s = self.shared.lock();
        let now = s.g.clock.at(now);
        s.keys
            .iter()
            .map(|(_, k, ks)| {
                let mut list: Vec<ConnectionSnapshot> = ks
                    .entries
                    .iter()
                    .map(|(_, e)| ConnectionSnapshot {
                        id: e.id,
                        age: now.since(e.created),
                        idle_for: (e.in_flight == 0).then(|| now.since(e.last_used)),
                        requests: e.requests,
                        in_flight: e.in_flight as usize,
                    })
                    .collect();
                list.sort_by_key(|c| (std::cmp::Reverse(c.age), c.id));
                (k.clone(), list)
            })
            .collect()
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

    struct Conn;

    impl Poolable for Conn {
        fn is_open(&self) -> bool {
            true
        }
    }

    async fn lease(pool: &Pool<Key, Conn>, key: &Key) -> Lease<Key, Conn> {
        match pool.acquire(key).await.expect("a slot is free") {
            Acquired::Connect(permit) => permit.complete(Conn),
            Acquired::Ready(lease) => lease,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn lists_each_open_connection_with_age_idle_time_and_requests() {
        let pool: Pool<Key, Conn> = Pool::new(PoolConfig::default()).expect("defaults are valid");
        let key = Key("p");
        assert!(pool.connections().is_empty());

        let first = lease(&pool, &key).await;
        let first_id = first.info().id;
        first.release();
        advance(Duration::from_secs(3)).await;
        // Reuses the first (2 requests), then a second connection opens.
        let again = lease(&pool, &key).await;
        assert_eq!(again.info().id, first_id);
        let second = lease(&pool, &key).await;
        let second_id = second.info().id;
        advance(Duration::from_secs(2)).await;
        again.release();
        advance(Duration::from_secs(1)).await;

        let all = pool.connections();
        assert_eq!(all.len(), 1);
        let (k, conns) = &all[0];
        assert_eq!(k, &key);
        assert_eq!(
            conns,
            &vec![
                ConnectionSnapshot {
                    id: first_id,
                    age: Duration::from_secs(6),
                    idle_for: Some(Duration::from_secs(1)),
                    requests: 2,
                    in_flight: 0,
                },
                ConnectionSnapshot {
                    id: second_id,
                    age: Duration::from_secs(3),
                    idle_for: None,
                    requests: 1,
                    in_flight: 1,
                },
            ]
        );

        // A closed connection leaves the list.
        second.close(CloseReason::Error);
        let ids: Vec<u64> = pool.connections()[0].1.iter().map(|c| c.id).collect();
        assert_eq!(ids, vec![first_id]);
    }
}
