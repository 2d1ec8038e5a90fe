//! A barrier for responses: with the `hold_responses` knob, each response
//! waits until that many requests are held at once, then all of them go
//! out together. Tests use it to make "rounds" of concurrent requests
//! deterministic without timing.

use std::sync::Mutex;

use tokio::sync::Notify;

/// Counts held responses; opens when a round is full.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// (responses held in the current round, rounds released so far)
    state: Mutex<(usize, u64)>,
    open: Notify,
}

impl Gate {
    /// Waits until `n` responses (this one included) are held, then returns
    /// for all of them. `n <= 1` passes at once.
    pub(crate) async fn pass(&self, n: usize) {
        let round = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.0 += 1;
            if s.0 >= n {
                s.0 = 0;
                s.1 += 1;
                self.open.notify_waiters();
                return;
            }
            s.1
        };
        loop {
            let opened = self.open.notified();
            tokio::pin!(opened);
            opened.as_mut().enable();
            if self.state.lock().unwrap_or_else(|e| e.into_inner()).1 != round {
                return;
            }
            opened.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn a_round_opens_when_full() {
        let g = Arc::new(Gate::default());
        let first = tokio::spawn({
            let g = g.clone();
            async move { g.pass(2).await }
        });
        tokio::task::yield_now().await;
        assert!(!first.is_finished(), "one of two held");
        g.pass(2).await;
        first.await.unwrap();
        g.pass(1).await;
    }
}
