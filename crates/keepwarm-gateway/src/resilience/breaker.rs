//! A circuit breaker per provider (`CircuitBreaker`): closed → open after
//! `failureThreshold` failures ([`Outcome::is_breaker_failure`]) within
//! `windowMs`; open answers at once for `openMs`; then half-open lets
//! exactly one probe through — its success closes the breaker, its failure
//! opens it again. Every transition is counted and logged.
//!
//! The state sits behind a `std` mutex held only for a few instructions,
//! never across `.await`. Times are `tokio::time::Instant`, so tests run in
//! paused time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::config::BreakerSettings;
use super::outcome::Outcome;

/// The breaker's state, as reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests flow; failures are counted.
    Closed,
    /// Requests are refused until the open period ends.
    Open,
    /// One probe request decides between closed and open.
    HalfOpen,
}

impl BreakerState {
    /// `"closed"`, `"open"` or `"half_open"`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// The `/metrics` gauge value: 0 closed, 1 open, 2 half-open.
    pub fn gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

/// The four transitions, in [`Breaker::transitions`] order.
pub const TRANSITIONS: [(BreakerState, BreakerState); 4] = [
    (BreakerState::Closed, BreakerState::Open),
    (BreakerState::Open, BreakerState::HalfOpen),
    (BreakerState::HalfOpen, BreakerState::Closed),
    (BreakerState::HalfOpen, BreakerState::Open),
];

#[derive(Debug)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
struct Inner {
    state: State,
    /// Times of recent failures while closed, oldest first.
    failures: VecDeque<Instant>,
}

/// Why a request may not go to the provider now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Time until the breaker lets a probe through; `None` while a probe
    /// is already in flight.
    pub reopens_in: Option<Duration>,
}

/// One provider's breaker. Share it as `Arc<Breaker>`.
#[derive(Debug)]
pub struct Breaker {
    provider: Arc<str>,
    settings: BreakerSettings,
    inner: Mutex<Inner>,
    transitions: [AtomicU64; 4],
}

impl Breaker {
    /// A closed breaker for `provider`.
    pub fn new(provider: &str, settings: BreakerSettings) -> Breaker {
        Breaker {
            provider: Arc::from(provider),
            settings,
            inner: Mutex::new(Inner {
                state: State::Closed,
                failures: VecDeque::new(),
            }),
            transitions: Default::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn moved(&self, from: BreakerState, to: BreakerState, why: &str) {
        if let Some(i) = TRANSITIONS.iter().position(|t| *t == (from, to)) {
            self.transitions[i].fetch_add(1, Relaxed);
        }
        let (provider, from, to) = (&*self.provider, from.as_str(), to.as_str());
        match to {
            "open" => tracing::warn!(
                provider,
                from,
                to,
                why,
                open_ms = self.settings.open.as_millis() as u64,
                "circuit breaker opened"
            ),
            _ => tracing::info!(provider, from, to, why, "circuit breaker changed state"),
        }
    }

    /// Asks to send a request. Closed: always. Open: refused until `openMs`
    /// has passed, then the first caller becomes the half-open probe.
    /// Half-open: refused while the probe is in flight.
    pub fn admit(self: &Arc<Self>, now: Instant) -> Result<Permit, Refused> {
        if !self.settings.enabled {
            return Ok(self.permit(false));
        }
        let mut inner = self.lock();
        match inner.state {
            State::Closed => Ok(self.permit(false)),
            State::Open { until } if now < until => Err(Refused {
                reopens_in: Some(until - now),
            }),
            State::Open { .. } | State::HalfOpen { probing: false } => {
                let was_open = matches!(inner.state, State::Open { .. });
                inner.state = State::HalfOpen { probing: true };
                drop(inner);
                if was_open {
                    self.moved(
                        BreakerState::Open,
                        BreakerState::HalfOpen,
                        "open period over; probing",
                    );
                }
                Ok(self.permit(true))
            }
            State::HalfOpen { probing: true } => Err(Refused { reopens_in: None }),
        }
    }

    fn permit(self: &Arc<Self>, probe: bool) -> Permit {
        Permit {
            breaker: Arc::clone(self),
            probe,
            done: false,
        }
    }

    fn record(&self, probe: bool, outcome: Outcome, now: Instant) {
        if !self.settings.enabled {
            return;
        }
        let failed = outcome.is_breaker_failure();
        let mut inner = self.lock();
        match (&inner.state, probe) {
            (State::HalfOpen { .. }, true) if failed => {
                inner.state = State::Open {
                    until: now + self.settings.open,
                };
                drop(inner);
                self.moved(
                    BreakerState::HalfOpen,
                    BreakerState::Open,
                    "the probe failed",
                );
            }
            (State::HalfOpen { .. }, true) => {
                inner.state = State::Closed;
                inner.failures.clear();
                drop(inner);
                self.moved(
                    BreakerState::HalfOpen,
                    BreakerState::Closed,
                    "the probe succeeded",
                );
            }
            (State::Closed, _) if failed => {
                let window = self.settings.window;
                while inner
                    .failures
                    .front()
                    .is_some_and(|&t| now.saturating_duration_since(t) >= window)
                {
                    inner.failures.pop_front();
                }
                inner.failures.push_back(now);
                if inner.failures.len() >= self.settings.failure_threshold as usize {
                    inner.state = State::Open {
                        until: now + self.settings.open,
                    };
                    inner.failures.clear();
                    drop(inner);
                    let why = format!(
                        "{} failures within {} ms",
                        self.settings.failure_threshold,
                        window.as_millis()
                    );
                    self.moved(BreakerState::Closed, BreakerState::Open, &why);
                }
            }
            // Answers to requests admitted before the state changed.
            _ => {}
        }
    }

    fn abandon_probe(&self) {
        let mut inner = self.lock();
        if matches!(inner.state, State::HalfOpen { probing: true }) {
            inner.state = State::HalfOpen { probing: false };
        }
    }

    /// The state now (an open breaker whose period is over still reads
    /// open until a request probes it).
    pub fn state(&self) -> BreakerState {
        match self.lock().state {
            State::Closed => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// How many times each of [`TRANSITIONS`] happened, in that order.
    pub fn transitions(&self) -> [u64; 4] {
        std::array::from_fn(|i| self.transitions[i].load(Relaxed))
    }

    /// The provider it guards.
    pub fn provider(&self) -> &str {
        &self.provider
    }
}

/// Leave to send one request. Report how it went with
/// [`Permit::record`]; a half-open probe dropped unreported (the caller
/// went away) frees the probe slot for the next request.
#[derive(Debug)]
pub struct Permit {
    breaker: Arc<Breaker>,
    probe: bool,
    done: bool,
}

impl Permit {
    /// Whether this request is the half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Reports the attempt's outcome.
    pub fn record(mut self, outcome: Outcome, now: Instant) {
        self.done = true;
        self.breaker.record(self.probe, outcome, now);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.probe && !self.done {
            self.breaker.abandon_probe();
        }
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    fn breaker() -> Arc<Breaker> {
        let settings = BreakerSettings {
            enabled: true,
            failure_threshold: 3,
            window: Duration::from_secs(10),
            open: Duration::from_secs(30),
        };
        Arc::new(Breaker::new("p", settings))
    }

    const FAIL: Outcome = Outcome::Status(StatusCode::SERVICE_UNAVAILABLE);
    const OK: Outcome = Outcome::Status(StatusCode::OK);

    fn now() -> Instant {
        Instant::now()
    }

    #[tokio::test(start_paused = true)]
    async fn walks_closed_open_half_open_closed() {
        let b = breaker();
        for _ in 0..2 {
            b.admit(now()).unwrap().record(FAIL, now());
        }
        assert_eq!(b.state(), BreakerState::Closed);
        b.admit(now()).unwrap().record(Outcome::Connect, now());
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            b.admit(now()).unwrap_err().reopens_in,
            Some(Duration::from_secs(30))
        );
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(
            b.admit(now()).unwrap_err().reopens_in,
            Some(Duration::from_secs(1))
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        let probe = b.admit(now()).unwrap();
        assert!(probe.is_probe());
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(
            b.admit(now()).unwrap_err().reopens_in,
            None,
            "exactly one probe"
        );
        probe.record(OK, now());
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(!b.admit(now()).unwrap().is_probe());
        assert_eq!(b.transitions(), [1, 1, 1, 0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_opens_it_again() {
        let b = breaker();
        for _ in 0..3 {
            b.admit(now()).unwrap().record(Outcome::Timeout, now());
        }
        tokio::time::advance(Duration::from_secs(30)).await;
        b.admit(now()).unwrap().record(Outcome::Transport, now());
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            b.admit(now()).unwrap_err().reopens_in,
            Some(Duration::from_secs(30))
        );
        assert_eq!(b.transitions(), [1, 1, 0, 1]);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_outside_the_window_do_not_count() {
        let b = breaker();
        for _ in 0..5 {
            b.admit(now()).unwrap().record(FAIL, now());
            b.admit(now()).unwrap().record(FAIL, now());
            tokio::time::advance(Duration::from_secs(10)).await;
        }
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.transitions(), [0; 4]);
    }

    #[tokio::test(start_paused = true)]
    async fn client_errors_never_open_it() {
        let b = breaker();
        for s in [400, 401, 403, 404, 429, 400, 429] {
            b.admit(now())
                .unwrap()
                .record(Outcome::Status(StatusCode::from_u16(s).unwrap()), now());
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_frees_the_slot_and_late_answers_change_nothing() {
        let b = breaker();
        let late = b.admit(now()).unwrap();
        for _ in 0..3 {
            b.admit(now()).unwrap().record(FAIL, now());
        }
        late.record(OK, now()); // admitted while closed, answers while open
        assert_eq!(b.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(30)).await;
        drop(b.admit(now()).unwrap());
        let probe = b.admit(now()).unwrap();
        assert!(
            probe.is_probe(),
            "a dropped probe lets the next request probe"
        );
        probe.record(OK, now());
        assert_eq!(b.transitions(), [1, 1, 1, 0]);
    }

    #[tokio::test(start_paused = true)]
    async fn disabled_admits_everything() {
        let settings = BreakerSettings {
            enabled: false,
            ..BreakerSettings::default()
        };
        let b = Arc::new(Breaker::new("p", settings));
        for _ in 0..20 {
            b.admit(now()).unwrap().record(FAIL, now());
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
