//! The expiry task: sleeps until the earliest deadline (an idle
//! connection's, or an empty key's), closes or drops what expired, and sleeps
//! again. With nothing to expire it sleeps until woken, so an idle pool costs
//! no CPU. It ends when the pool is dropped. If its runtime shuts down first
//! (the pool outlives the runtime that parked its first connection), it
//! says so as it is dropped, and the next connection parked on a live
//! runtime starts a new one.

use std::sync::{Arc, Weak};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::pool::Shared;
use crate::traits::{PoolKey, Poolable};

/// Held by the running expiry task; dropping it (the task ended, or its
/// runtime dropped it) lets the pool start another.
pub(crate) struct Alive<K: PoolKey, C: Poolable>(pub(crate) Weak<Shared<K, C>>);

impl<K: PoolKey, C: Poolable> Drop for Alive<K, C> {
    fn drop(&mut self) {
        if let Some(p) = self.0.upgrade() {
            p.reaper_gone();
        }
    }
}

pub(crate) async fn run<K: PoolKey, C: Poolable>(alive: Alive<K, C>, wake: Arc<Notify>) {
    let pool = alive.0.clone();
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
