//! Pool time: nanoseconds since the pool's epoch as a plain integer
//! ([`Nanos`]). Each operation reads the clock once and converts it once;
//! deadlines, ages and idle times are then integer arithmetic, not
//! `Instant` arithmetic.

use std::time::Duration;

use tokio::time::Instant;

/// A point in pool time: nanoseconds since the pool's epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Nanos(pub(crate) u64);

impl Nanos {
    /// `d` later (saturating).
    pub(crate) fn after(self, d: Duration) -> Nanos {
        Nanos(self.0.saturating_add(nanos(d)))
    }

    /// The time from `earlier` to this; zero if `earlier` is later.
    pub(crate) fn since(self, earlier: Nanos) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// Whether at least `d` passed from `earlier` to this.
    pub(crate) fn reached(self, earlier: Nanos, d: Duration) -> bool {
        self.0.saturating_sub(earlier.0) >= nanos(d)
    }
}

/// `d` in nanoseconds, saturating at `u64::MAX` (584 years).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
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
        Nanos(nanos(i.saturating_duration_since(self.epoch)))
    }

    /// The `Instant` of pool time `n`.
    pub(crate) fn instant(&self, n: Nanos) -> Instant {
        self.epoch + Duration::from_nanos(n.0)
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
    }

    #[test]
    fn after_and_reached() {
        let t = Nanos(1_000);
        assert_eq!(t.after(Duration::from_nanos(500)), Nanos(1_500));
        assert_eq!(t.after(Duration::MAX), Nanos(u64::MAX));
        assert!(Nanos(1_500).reached(t, Duration::from_nanos(500)));
        assert!(!Nanos(1_499).reached(t, Duration::from_nanos(500)));
        assert!(!Nanos(10).reached(t, Duration::ZERO.saturating_add(Duration::from_nanos(1))));
    }
}
