//! The expiry task: sleeps until the earliest idle deadline, closes what
//! expired, and sleeps again. With no idle connection it sleeps until woken,
//! so an idle pool costs no CPU. It ends when the pool is dropped.

use std::sync::{Arc, Weak};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::pool::Shared;
use crate::traits::{PoolKey, Poolable};

pub(crate) async fn run<K: PoolKey, C: Poolable>(pool: Weak<Shared<K, C>>, wake: Arc<Notify>) {
    loop {
        let next = match pool.upgrade() {
            Some(p) => p.expire(Instant::now()),
            None => return,
        };
        match next {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = wake.notified() => {}
                }
            }
            None => wake.notified().await,
        }
    }
}
