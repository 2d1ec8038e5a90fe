//! The `Retry` section (global) and `Providers[].retry` (a per-provider
//! override of any of its fields):
//! `{"attempts": 2, "backoffMs": 500, "maxBackoffMs": 8000}`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::{deserialize, error, millis, unknown_keys};
use crate::config::ConfigError;

/// Most retries allowed per request.
const MAX_ATTEMPTS: u32 = 10;

/// When and how a failed attempt is retried; defaults in brackets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetrySettings {
    /// `attempts` [2]: retries after the first try (0 = never retry; at most 10).
    pub attempts: u32,
    /// `backoffMs` [500]: the backoff cap before the first retry; it doubles
    /// with each retry (the actual wait is random below the cap).
    pub backoff: Duration,
    /// `maxBackoffMs` [8000]: the cap never grows beyond this.
    pub max_backoff: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            attempts: 2,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_millis(8000),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    attempts: Option<u32>,
    backoff_ms: Option<u64>,
    max_backoff_ms: Option<u64>,
}

const KNOWN: [&str; 3] = ["attempts", "backoffMs", "maxBackoffMs"];

/// Reads a `Retry` object found at `path` over `base` (the defaults for
/// the global section, the global settings for a provider's override).
pub fn parse(
    value: &Value,
    path: &str,
    base: RetrySettings,
) -> Result<(RetrySettings, Vec<String>), ConfigError> {
    let raw: Raw = deserialize(value, path)?;
    let at = |key: &str| format!("{path}.{key}");
    let mut s = base;
    if let Some(n) = raw.attempts {
        if n > MAX_ATTEMPTS {
            return Err(error(
                &at("attempts"),
                format!("{n} is above the limit of {MAX_ATTEMPTS} retries"),
            ));
        }
        s.attempts = n;
    }
    if let Some(ms) = raw.backoff_ms {
        s.backoff = millis(ms, &at("backoffMs"), false)?;
    }
    if let Some(ms) = raw.max_backoff_ms {
        s.max_backoff = millis(ms, &at("maxBackoffMs"), false)?;
    }
    if s.max_backoff < s.backoff {
        let (blame, msg) = match raw.max_backoff_ms {
            Some(_) => (
                "maxBackoffMs",
                format!(
                    "{} is below backoffMs ({})",
                    s.max_backoff.as_millis(),
                    s.backoff.as_millis()
                ),
            ),
            None => (
                "backoffMs",
                format!(
                    "{} is above maxBackoffMs ({})",
                    s.backoff.as_millis(),
                    s.max_backoff.as_millis()
                ),
            ),
        };
        return Err(error(&at(blame), msg));
    }
    Ok((s, unknown_keys(value, path, &KNOWN)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_fields_and_overrides() {
        let (s, w) = parse(&json!({}), "Retry", RetrySettings::default()).unwrap();
        assert_eq!((s, w.len()), (RetrySettings::default(), 0));
        let (g, _) = parse(
            &json!({"attempts": 4, "backoffMs": 100, "maxBackoffMs": 1000}),
            "Retry",
            s,
        )
        .unwrap();
        assert_eq!(
            g,
            RetrySettings {
                attempts: 4,
                backoff: Duration::from_millis(100),
                max_backoff: Duration::from_millis(1000)
            }
        );
        let (p, w) = parse(
            &json!({"attempts": 0, "jitter": true}),
            "Providers[1].retry",
            g,
        )
        .unwrap();
        assert_eq!(p, RetrySettings { attempts: 0, ..g });
        assert_eq!(w, ["unknown key Providers[1].retry.jitter (ignored)"]);
    }

    #[test]
    fn errors_name_the_path_and_reason() {
        let e = |v: Value| {
            parse(&v, "Retry", RetrySettings::default())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            e(json!({"attempts": 11})),
            "Retry.attempts: 11 is above the limit of 10 retries"
        );
        assert!(
            e(json!({"attempts": -1})).starts_with("Retry.attempts: invalid value: integer `-1`")
        );
        assert!(
            e(json!({"backoffMs": "5"})).starts_with("Retry.backoffMs: invalid type: string \"5\"")
        );
        assert_eq!(
            e(json!({"maxBackoffMs": 100})),
            "Retry.maxBackoffMs: 100 is below backoffMs (500)"
        );
        assert_eq!(
            e(json!({"backoffMs": 9000})),
            "Retry.backoffMs: 9000 is above maxBackoffMs (8000)"
        );
        assert_eq!(e(json!([])), "Retry: expected an object");
    }
}
