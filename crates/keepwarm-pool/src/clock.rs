//! Pool time: nanoseconds since the pool's epoch as a plain integer
//! ([`Nanos`]). Each operation reads the clock once and converts it once;
//! deadlines, ages and idle times are then integer arithmetic, not
//! `Instant` arithmetic.

use std::num::NonZeroU64;
use std::time::Duration;

use tokio::time::Instant;

/// A point in pool time: nanoseconds since the pool's epoch, never zero
/// (so `Option<Nanos>` is eight bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Nanos(NonZeroU64);

/// A duration in nanoseconds (saturating at 584 years).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Span(u64);

impl Span {
    pub(crate) fn of(d: Duration) -> Span {
        Span(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

impl Nanos {
    /// `n` nanoseconds after the epoch (at least 1).
    pub(crate) fn new(n: u64) -> Nanos {
        Nanos(NonZeroU64::new(n).unwrap_or(NonZeroU64::MIN))
    }

    pub(crate) fn get(self) -> u64 {
        self.0.get()
    }

    /// `d` later (saturating).
    pub(crate) fn after(self, d: Span) -> Nanos {
        Nanos(self.0.saturating_add(d.0))
    }

    /// The time from `earlier` to this; zero if `earlier` is later.
    pub(crate) fn since(self, earlier: Nanos) -> Duration {
        Duration::from_nanos(self.get().saturating_sub(earlier.get()))
    }

    /// Whether at least `d` passed from `earlier` to this.
    pub(crate) fn reached(self, earlier: Nanos, d: Duration) -> bool {
        Span(self.get().saturating_sub(earlier.get())) >= Span::of(d)
    }
}

/// How far before its creation the pool's epoch lies, so that an `Instant`
/// a little older than the pool (another runtime's paused clock) still
/// converts exactly.
const SLACK: Duration = Duration::from_secs(1 << 20);

/// Converts between `Instant`s and pool time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    epoch: Instant,
}

impl Clock {
    pub(crate) fn new(now: Instant) -> Clock {
        Clock {
            epoch: now.checked_sub(SLACK).unwrap_or(now),
        }
    }

    /// `i` in pool time (saturating at the epoch).
    pub(crate) fn at(&self, i: Instant) -> Nanos {
        Nanos::new(Span::of(i.saturating_duration_since(self.epoch)).0)
    }

    /// The `Instant` of pool time `n`.
    pub(crate) fn instant(&self, n: Nanos) -> Instant {
        self.epoch + Duration::from_nanos(n.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_ways_exactly() {
        let now = Instant::now();
        let c = Clock::new(now);
        let later = now + Duration::from_millis(1500);
        assert_eq!(c.instant(c.at(later)), later);
        assert_eq!(c.at(later).since(c.at(now)), Duration::from_millis(1500));
        assert_eq!(c.at(now).since(c.at(later)), Duration::ZERO);
        let earlier = now.checked_sub(Duration::from_secs(60)).unwrap();
        assert_eq!(c.at(now).since(c.at(earlier)), Duration::from_secs(60));
        assert_eq!(std::mem::size_of::<Option<Nanos>>(), 8);
    }

    #[test]
    fn after_and_reached() {
        let t = Nanos::new(1_000);
        assert_eq!(
            t.after(Span::of(Duration::from_nanos(500))),
            Nanos::new(1_500)
        );
        assert_eq!(t.after(Span::of(Duration::MAX)), Nanos::new(u64::MAX));
        assert!(Nanos::new(1_500).reached(t, Duration::from_nanos(500)));
        assert!(!Nanos::new(1_499).reached(t, Duration::from_nanos(500)));
        assert_eq!(Nanos::new(0), Nanos::new(1), "never zero");
    }
}
