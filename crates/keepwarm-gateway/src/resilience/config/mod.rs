//! The config sections of the resilience layer, each a serde-derive struct
//! in its own file with a parse function from `&serde_json::Value` that
//! returns typed settings (defaults filled in), unknown-key warnings, and
//! errors carrying the JSON path (`Retry.backoffMs: …`):
//!
//! | section | file |
//! |---|---|
//! | `ApiKeyPool`, `Providers[].api_keys` | [`key_pool`](self::key_pool) |
//! | `Retry`, `Providers[].retry` | [`retry`](self::retry) |
//! | `CircuitBreaker` | [`breaker`](self::breaker) |
//! | `fallback` | [`fallback`](self::fallback) |

pub mod breaker;
pub mod fallback;
pub mod key_pool;
pub mod retry;

pub use breaker::BreakerSettings;
pub use fallback::Fallbacks;
pub use key_pool::{KeyPoolSettings, Strategy};
pub use retry::RetrySettings;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::{ConfigError, Secret};

/// The gateway-wide resilience settings (top-level config sections).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResilienceConfig {
    /// `ApiKeyPool` [disabled].
    pub key_pool: KeyPoolSettings,
    /// `Retry` [2 retries, 500 ms doubling to 8000 ms].
    pub retry: RetrySettings,
    /// `CircuitBreaker` [5 failures in 60 s open it for 30 s].
    pub breaker: BreakerSettings,
    /// `fallback` [none].
    pub fallback: Fallbacks,
}

/// A provider's own resilience settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderResilience {
    /// Every key: `api_key` first, then `api_keys` (repeats dropped).
    /// Empty only for providers built in code without keys.
    pub keys: Vec<Secret>,
    /// `retry` [none]: overrides fields of the global `Retry`.
    pub retry: Option<RetrySettings>,
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn retry_json(r: &RetrySettings) -> Value {
    serde_json::json!({"attempts": r.attempts, "backoffMs": ms(r.backoff), "maxBackoffMs": ms(r.max_backoff)})
}

impl ResilienceConfig {
    /// The sections in config.json's key names, for `check-config`:
    /// `ApiKeyPool`, `Retry`, `CircuitBreaker`, `fallback`.
    pub fn to_json(&self) -> Vec<(&'static str, Value)> {
        let (k, b) = (&self.key_pool, &self.breaker);
        let fallback: serde_json::Map<String, Value> = (self.fallback.iter())
            .map(|(s, c)| (s.to_owned(), c.iter().map(|t| t.to_string()).collect()))
            .collect();
        vec![
            (
                "ApiKeyPool",
                serde_json::json!({"enabled": k.enabled, "strategy": k.strategy.as_str(), "cooldownMs": ms(k.cooldown)}),
            ),
            ("Retry", retry_json(&self.retry)),
            (
                "CircuitBreaker",
                serde_json::json!({"enabled": b.enabled, "failureThreshold": b.failure_threshold,
                "windowMs": ms(b.window), "openMs": ms(b.open)}),
            ),
            ("fallback", Value::Object(fallback)),
        ]
    }
}

impl ProviderResilience {
    /// A provider's `api_keys` (each as `…` and its last 4 characters) and
    /// `retry` override, for `check-config`.
    pub fn to_json(&self) -> Vec<(&'static str, Value)> {
        let keys = self
            .keys
            .iter()
            .map(|k| Value::from(crate::resilience::key_pool::redact(k.expose())));
        vec![
            ("api_keys", keys.collect()),
            ("retry", self.retry.as_ref().map_or(Value::Null, retry_json)),
        ]
    }
}

/// Longest accepted duration: 365 days, in milliseconds.
const MAX_MS: u64 = 365 * 24 * 3600 * 1000;

pub(crate) fn error(path: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// `path` joined with a key or `[i]`.
fn join(path: &str, key: &str) -> String {
    match (path.is_empty(), key.starts_with('[')) {
        (true, _) | (_, true) => format!("{path}{key}"),
        _ => format!("{path}.{key}"),
    }
}

/// Deserializes `value`, found at `path`, into `T`; an error names the
/// full JSON path of the offending value.
pub(crate) fn deserialize<T: DeserializeOwned>(
    value: &Value,
    path: &str,
) -> Result<T, ConfigError> {
    if !value.is_object() {
        return Err(error(path, "expected an object"));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let full = match inner.as_str() {
            "." | "" => path.to_owned(),
            p => join(path, p),
        };
        error(&full, e.into_inner().to_string())
    })
}

/// One warning for every key of the object `value` not in `known`.
pub(crate) fn unknown_keys(value: &Value, path: &str, known: &[&str]) -> Vec<String> {
    let Some(map) = value.as_object() else {
        return Vec::new();
    };
    map.keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| format!("unknown key {} (ignored)", join(path, k)))
        .collect()
}

/// A number of milliseconds, at most 365 days; `positive` rejects 0.
pub(crate) fn millis(
    ms: u64,
    path: &str,
    positive: bool,
) -> Result<std::time::Duration, ConfigError> {
    if positive && ms == 0 {
        return Err(error(
            path,
            "expected a positive integer (milliseconds), got 0",
        ));
    }
    if ms > MAX_MS {
        return Err(error(path, format!("{ms} ms is above {MAX_MS} (365 days)")));
    }
    Ok(std::time::Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Probe {
        max_things: Option<u32>,
        inner: Option<Vec<u32>>,
    }

    #[test]
    fn errors_carry_the_full_path() {
        let v: Value = serde_json::json!({"maxThings": -1});
        let e = deserialize::<Probe>(&v, "Retry").unwrap_err();
        assert_eq!(e.path, "Retry.maxThings");
        assert!(e.message.contains("-1"), "{}", e.message);
        let v: Value = serde_json::json!({"inner": [1, "x"]});
        assert_eq!(
            deserialize::<Probe>(&v, "Providers[2].retry")
                .unwrap_err()
                .path,
            "Providers[2].retry.inner[1]"
        );
        assert_eq!(
            deserialize::<Probe>(&Value::from(3), "Retry")
                .unwrap_err()
                .to_string(),
            "Retry: expected an object"
        );
        let v: Value = serde_json::json!({"maxThings": 1, "other": 2});
        assert_eq!(
            unknown_keys(&v, "Retry", &["maxThings"]),
            ["unknown key Retry.other (ignored)"]
        );
        assert!(
            millis(0, "x", true).is_err()
                && millis(0, "x", false).is_ok()
                && millis(MAX_MS + 1, "x", false).is_err()
        );
    }
}
