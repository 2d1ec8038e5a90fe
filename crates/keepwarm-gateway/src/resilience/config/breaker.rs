//! The `CircuitBreaker` section, applied to every provider:
//! `{"enabled": true, "failureThreshold": 5, "windowMs": 60000, "openMs": 30000}`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::{deserialize, error, millis, unknown_keys};
use crate::config::ConfigError;

/// When a provider's breaker opens and for how long; defaults in brackets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerSettings {
    /// `enabled` [true]: `false` never refuses a request.
    pub enabled: bool,
    /// `failureThreshold` [5]: failures (connect errors, timeouts, 5xx)
    /// within the window that open the breaker; at least 1.
    pub failure_threshold: u32,
    /// `windowMs` [60000]: how far back failures count.
    pub window: Duration,
    /// `openMs` [30000]: how long an open breaker refuses requests before
    /// letting one probe through.
    pub open: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            enabled: true,
            failure_threshold: 5,
            window: Duration::from_millis(60_000),
            open: Duration::from_millis(30_000),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    enabled: Option<bool>,
    failure_threshold: Option<u32>,
    window_ms: Option<u64>,
    open_ms: Option<u64>,
}

const KNOWN: [&str; 4] = ["enabled", "failureThreshold", "windowMs", "openMs"];

/// Reads a `CircuitBreaker` object found at `path`.
pub fn parse(value: &Value, path: &str) -> Result<(BreakerSettings, Vec<String>), ConfigError> {
    let raw: Raw = deserialize(value, path)?;
    let at = |key: &str| format!("{path}.{key}");
    let mut s = BreakerSettings::default();
    s.enabled = raw.enabled.unwrap_or(s.enabled);
    if let Some(n) = raw.failure_threshold {
        if n == 0 {
            return Err(error(
                &at("failureThreshold"),
                "expected a positive integer, got 0",
            ));
        }
        s.failure_threshold = n;
    }
    if let Some(ms) = raw.window_ms {
        s.window = millis(ms, &at("windowMs"), true)?;
    }
    if let Some(ms) = raw.open_ms {
        s.open = millis(ms, &at("openMs"), true)?;
    }
    Ok((s, unknown_keys(value, path, &KNOWN)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_fields_over_defaults() {
        assert_eq!(
            parse(&json!({}), "CircuitBreaker").unwrap(),
            (BreakerSettings::default(), vec![])
        );
        let (s, w) = parse(
            &json!({"failureThreshold": 2, "openMs": 1000, "halfOpen": 1}),
            "CircuitBreaker",
        )
        .unwrap();
        assert_eq!(
            s,
            BreakerSettings {
                failure_threshold: 2,
                open: Duration::from_secs(1),
                ..BreakerSettings::default()
            }
        );
        assert_eq!(w, ["unknown key CircuitBreaker.halfOpen (ignored)"]);
        assert!(
            !parse(&json!({"enabled": false}), "CircuitBreaker")
                .unwrap()
                .0
                .enabled
        );
    }

    #[test]
    fn errors_name_the_path_and_reason() {
        let e = |v: Value| parse(&v, "CircuitBreaker").unwrap_err().to_string();
        assert_eq!(
            e(json!({"failureThreshold": 0})),
            "CircuitBreaker.failureThreshold: expected a positive integer, got 0"
        );
        assert_eq!(
            e(json!({"windowMs": 0})),
            "CircuitBreaker.windowMs: expected a positive integer (milliseconds), got 0"
        );
        assert!(e(json!({"enabled": "yes"}))
            .starts_with("CircuitBreaker.enabled: invalid type: string \"yes\""));
        assert!(e(json!({"openMs": 1.5}))
            .starts_with("CircuitBreaker.openMs: invalid type: floating point"));
    }
}
