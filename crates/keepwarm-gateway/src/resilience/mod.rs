//! Resilience around one upstream attempt (issue 12): an API key pool per
//! provider, a retry policy with backoff, a circuit breaker per provider,
//! and fallback chains by routing scenario. Pure pieces, no I/O — the proxy
//! path calls them in this order:
//!
//! ```text
//! for target in fallback::targets(..):          (fallback.rs)
//!     breaker.admit()      open → next target    (breaker.rs)
//!     key_pool.pick()      all cooling → next    (key_pool.rs)
//!     attempt → Outcome                          (outcome.rs)
//!     429 → lease.rate_limited(retry_after(..))  (retry_after.rs)
//!     policy.next(..)      retry / give up       (retry.rs)
//! ```
//!
//! Settings are parsed by [`config`], one file per config section. Every
//! time is a `tokio::time::Instant`, so timer logic is tested in paused time.

pub mod breaker;
pub mod config;
pub mod fallback;
pub mod guards;
pub mod key_pool;
pub mod outcome;
pub mod retry;
pub mod retry_after;

pub use breaker::{Breaker, BreakerState, Permit, Refused};
pub use guards::{ProviderGuards, Resilience};
pub use key_pool::{KeyLease, KeyPool, KeyStats, NoKey};
pub use outcome::Outcome;
pub use retry::{Decision, RetryCounters, RetryPolicy, RetryReason};
pub use retry_after::retry_after;
