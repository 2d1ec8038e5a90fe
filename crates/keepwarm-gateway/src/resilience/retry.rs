//! The retry policy (`Retry`, overridable per provider): which outcomes are
//! worth another attempt, how long to wait before it (exponential backoff
//! with full jitter, or the provider's `retry-after`), and whether that wait
//! still fits in the request's deadline. Retries are counted by reason.
//!
//! The caller of [`RetryPolicy::next`] must only ask before any byte of
//! the answer went to its own caller; this module cannot see that.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use rand::Rng;

use super::config::RetrySettings;
use super::outcome::Outcome;

/// Why an attempt is retried; also the `reason` label of the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryReason {
    /// No connection could be made.
    Connect,
    /// `429 Too Many Requests`.
    RateLimited,
    /// `500`, `502`, `503`, `504` or `529` (Anthropic's "overloaded").
    Status(u16),
}

/// Every reason, in [`RetryCounters::snapshot`] order.
pub const REASONS: [RetryReason; 7] = [
    RetryReason::Connect,
    RetryReason::RateLimited,
    RetryReason::Status(500),
    RetryReason::Status(502),
    RetryReason::Status(503),
    RetryReason::Status(504),
    RetryReason::Status(529),
];

impl RetryReason {
    /// The retryable reason for `outcome`, if any. Timeouts and other
    /// transport failures are not retried: the request may have reached the
    /// provider, and LLM requests are not idempotent.
    pub fn of(outcome: Outcome) -> Option<RetryReason> {
        match outcome {
            Outcome::Connect => Some(RetryReason::Connect),
            Outcome::Status(s) => match s.as_u16() {
                429 => Some(RetryReason::RateLimited),
                n @ (500 | 502 | 503 | 504 | 529) => Some(RetryReason::Status(n)),
                _ => None,
            },
            Outcome::Timeout | Outcome::Transport => None,
        }
    }

    /// The label: `"connect"`, `"429"`, `"500"`, ….
    pub fn label(self) -> &'static str {
        match self {
            RetryReason::Connect => "connect",
            RetryReason::RateLimited => "429",
            RetryReason::Status(500) => "500",
            RetryReason::Status(502) => "502",
            RetryReason::Status(503) => "503",
            RetryReason::Status(504) => "504",
            RetryReason::Status(_) => "529",
        }
    }

    fn slot(self) -> usize {
        REASONS
            .iter()
            .position(|r| *r == self)
            .unwrap_or(REASONS.len() - 1)
    }
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then try again.
    Retry {
        /// Why.
        reason: RetryReason,
        /// How long to wait first.
        delay: Duration,
    },
    /// Give the answer (or error) to the caller.
    GiveUp,
}

/// The policy for one provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    settings: RetrySettings,
}

impl RetryPolicy {
    /// A policy from its settings.
    pub fn new(settings: RetrySettings) -> RetryPolicy {
        RetryPolicy { settings }
    }

    /// The settings it applies.
    pub fn settings(&self) -> &RetrySettings {
        &self.settings
    }

    /// The backoff before retry number `retry` (0 for the first): a
    /// uniformly random time in `[0, min(maxBackoffMs, backoffMs × 2^retry)]`
    /// ("full jitter").
    pub fn backoff(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let base = self.settings.backoff.as_millis() as u64;
        let cap = base
            .saturating_mul(1u64.checked_shl(retry.min(63)).unwrap_or(u64::MAX))
            .min(self.settings.max_backoff.as_millis() as u64);
        Duration::from_millis(rng.random_range(0..=cap))
    }

    /// After attempt number `done` (1 for the first) ended in `outcome`:
    /// retry when the outcome is retryable, fewer than `attempts` retries
    /// were made, and the wait — the provider's `hint` (`retry-after`) if it
    /// sent one, else [`backoff`](Self::backoff) — ends before the request's
    /// `remaining` time does.
    pub fn next(
        &self,
        done: u32,
        outcome: Outcome,
        hint: Option<Duration>,
        remaining: Duration,
        rng: &mut impl Rng,
    ) -> Decision {
        let Some(reason) = RetryReason::of(outcome) else {
            return Decision::GiveUp;
        };
        if done > self.settings.attempts {
            return Decision::GiveUp;
        }
        let delay = hint.unwrap_or_else(|| self.backoff(done - 1, rng));
        match delay < remaining {
            true => Decision::Retry { reason, delay },
            false => Decision::GiveUp,
        }
    }
}

/// Retries made, by reason.
#[derive(Debug, Default)]
pub struct RetryCounters {
    by_reason: [AtomicU64; REASONS.len()],
}

impl RetryCounters {
    /// Counts one retry.
    pub fn count(&self, reason: RetryReason) {
        self.by_reason[reason.slot()].fetch_add(1, Relaxed);
    }

    /// `(label, count)` for every reason in [`REASONS`] order.
    pub fn snapshot(&self) -> [(&'static str, u64); REASONS.len()] {
        std::array::from_fn(|i| (REASONS[i].label(), self.by_reason[i].load(Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use rand::{rngs::StdRng, SeedableRng};

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::new(RetrySettings::default())
    }

    fn st(n: u16) -> Outcome {
        Outcome::Status(StatusCode::from_u16(n).unwrap())
    }

    const LONG: Duration = Duration::from_secs(600);

    #[test]
    fn only_the_listed_outcomes_are_retried() {
        let mut rng = StdRng::seed_from_u64(1);
        for (o, label) in [
            (Outcome::Connect, "connect"),
            (st(429), "429"),
            (st(500), "500"),
            (st(502), "502"),
            (st(503), "503"),
            (st(504), "504"),
            (st(529), "529"),
        ] {
            match policy().next(1, o, None, LONG, &mut rng) {
                Decision::Retry { reason, .. } => assert_eq!(reason.label(), label),
                d => panic!("{o:?} gave {d:?}"),
            }
        }
        for o in [
            st(200),
            st(400),
            st(401),
            st(404),
            st(501),
            Outcome::Timeout,
            Outcome::Transport,
        ] {
            assert_eq!(
                policy().next(1, o, None, LONG, &mut rng),
                Decision::GiveUp,
                "{o:?}"
            );
        }
    }

    #[test]
    fn attempts_counts_retries_after_the_first_try() {
        let mut rng = StdRng::seed_from_u64(2);
        let p = policy(); // attempts: 2
        assert!(matches!(
            p.next(1, st(503), None, LONG, &mut rng),
            Decision::Retry { .. }
        ));
        assert!(matches!(
            p.next(2, st(503), None, LONG, &mut rng),
            Decision::Retry { .. }
        ));
        assert_eq!(p.next(3, st(503), None, LONG, &mut rng), Decision::GiveUp);
        let none = RetryPolicy::new(RetrySettings {
            attempts: 0,
            ..RetrySettings::default()
        });
        assert_eq!(
            none.next(1, st(503), None, LONG, &mut rng),
            Decision::GiveUp
        );
    }

    #[test]
    fn backoff_is_full_jitter_under_an_exponential_cap() {
        let mut rng = StdRng::seed_from_u64(3);
        let p = policy(); // 500 ms doubling, capped at 8000 ms
        for (retry, cap) in [
            (0, 500),
            (1, 1000),
            (2, 2000),
            (4, 8000),
            (5, 8000),
            (200, 8000),
        ] {
            let samples: Vec<u64> = (0..2000)
                .map(|_| p.backoff(retry, &mut rng).as_millis() as u64)
                .collect();
            let (lo, hi) = (
                *samples.iter().min().unwrap(),
                *samples.iter().max().unwrap(),
            );
            assert!(hi <= cap, "retry {retry}: {hi} > {cap}");
            assert!(
                lo < cap / 10 && hi > cap * 9 / 10,
                "retry {retry}: spread {lo}..{hi} of 0..{cap}"
            );
        }
    }

    #[test]
    fn retry_after_is_honoured_within_the_deadline() {
        let mut rng = StdRng::seed_from_u64(4);
        let hint = Some(Duration::from_secs(3));
        assert_eq!(
            policy().next(1, st(429), hint, Duration::from_secs(10), &mut rng),
            Decision::Retry {
                reason: RetryReason::RateLimited,
                delay: Duration::from_secs(3)
            }
        );
        assert_eq!(
            policy().next(1, st(429), hint, Duration::from_secs(3), &mut rng),
            Decision::GiveUp
        );
        assert_eq!(
            policy().next(1, st(503), None, Duration::ZERO, &mut rng),
            Decision::GiveUp
        );
    }

    #[test]
    fn counters_count_by_reason() {
        let c = RetryCounters::default();
        c.count(RetryReason::RateLimited);
        c.count(RetryReason::RateLimited);
        c.count(RetryReason::Status(529));
        let s = c.snapshot();
        assert_eq!(s[1], ("429", 2));
        assert_eq!(s[6], ("529", 1));
        assert_eq!(s.iter().map(|(_, n)| n).sum::<u64>(), 3);
    }
}
