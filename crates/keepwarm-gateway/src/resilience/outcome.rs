//! What one upstream attempt came to, as the resilience layer sees it:
//! the single classification that the retry policy, the circuit breaker
//! and the key pool all read, so they never disagree about a failure.

use http::StatusCode;

/// The result of one attempt, known before any byte of the answer went to
/// the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No connection could be made (refused, DNS, TLS handshake, connect
    /// timeout): the request never reached the provider.
    Connect,
    /// The provider did not answer in time (response headers or body
    /// inactivity): the request may have reached it.
    Timeout,
    /// Any other transport failure after the request may have been sent
    /// (reset, broken pipe, protocol error).
    Transport,
    /// The provider answered with this status.
    Status(StatusCode),
}

impl Outcome {
    /// Counts against the circuit breaker: connect errors, timeouts,
    /// transport failures and 5xx answers (529 included). 4xx — the
    /// caller's or the key's problem — never does.
    pub fn is_breaker_failure(self) -> bool {
        match self {
            Outcome::Connect | Outcome::Timeout | Outcome::Transport => true,
            Outcome::Status(s) => s.is_server_error(),
        }
    }

    /// A `2xx` or `3xx` answer.
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Status(s) if s.is_success() || s.is_redirection())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_side_failures_trip_the_breaker() {
        let st = |n| Outcome::Status(StatusCode::from_u16(n).unwrap());
        for o in [
            Outcome::Connect,
            Outcome::Timeout,
            Outcome::Transport,
            st(500),
            st(503),
            st(529),
        ] {
            assert!(o.is_breaker_failure(), "{o:?}");
        }
        for o in [st(200), st(400), st(401), st(404), st(429)] {
            assert!(!o.is_breaker_failure(), "{o:?}");
        }
        assert!(st(200).is_success() && !st(429).is_success() && !Outcome::Connect.is_success());
    }
}
