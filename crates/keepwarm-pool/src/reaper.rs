//! The expiry task: sleeps until the earliest deadline (an idle
//! connection's, or an empty key's), closes or drops what expired, and sleeps
//! again. With nothing to expire it sleeps until woken, so an idle pool costs
//! no CPU. A pass with more to do than one lock hold should take returns a
//! time already passed, and the task runs again at once. It ends when the pool is dropped. If its runtime shuts down first
//! (the pool outlives the runtime that parked its first connection), it
//! says so as it is dropped, and the next connection parked on a live
//! runtime starts a new one.

use std::sync::{Arc, Weak};

use tokio::sync::Notify;
use tokio::time::Instant;

/// What the expiry task needs of the pool (its shared state implements it),
/// so this module does not depend on the pool's.
pub(crate) trait Expires: Send + Sync + 'static {
    /// Closes or drops what expired by `now`; the next deadline, if any.
    fn expire(&self, now: Instant) -> Option<Instant>;
    /// The running task ended: the next parked connection starts another.
    fn reaper_gone(&self);
}

/// Held by the running expiry task; dropping it (the task ended, or its
/// runtime dropped it) lets the pool start another.
pub(crate) struct Alive<P: Expires>(pub(crate) Weak<P>);

impl<P: Expires> Drop for Alive<P> {
    fn drop(&mut self) {
        if let Some(p) = self.0.upgrade() {
            p.reaper_gone();
        }
    }
}

pub(crate) async fn run<P: Expires>(alive: Alive<P>, wake: Arc<Notify>) {
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
