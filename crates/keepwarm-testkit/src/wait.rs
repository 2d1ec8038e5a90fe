//! Waiting for a server's own counts to reach a state: every test server's
//! `wait_until` is this loop over its `stats()`.

use std::time::Duration;

/// Polls `stats` every 5 ms (tokio time, so paused time works) until `f`
/// holds (`true`) or `max` has elapsed (`false`).
pub(crate) async fn until<S>(stats: impl Fn() -> S, f: impl Fn(&S) -> bool, max: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + max;
    loop {
        if f(&stats()) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
