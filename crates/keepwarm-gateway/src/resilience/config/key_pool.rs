//! The `ApiKeyPool` section
//! (`{"enabled": true, "strategy": "least-loaded", "cooldownMs": 60000}`) and
//! a provider's keys: `api_key` and/or `api_keys: ["…", "…"]`, `$VAR` and
//! `${VAR}` expanded in each.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::{deserialize, error, millis, unknown_keys};
use crate::config::{ConfigError, Secret};

/// How a key is chosen for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// `"least-loaded"` (default): the key with the fewest requests in
    /// flight; ties broken round-robin.
    LeastLoaded,
    /// `"round-robin"`: each key in turn.
    RoundRobin,
}

impl Strategy {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::LeastLoaded => "least-loaded",
            Strategy::RoundRobin => "round-robin",
        }
    }
}

/// The key pool's settings; defaults in brackets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPoolSettings {
    /// `enabled` [false]: use every key of a provider. When off, only the
    /// first key (`api_key`, else `api_keys[0]`) is sent, and a `429` or
    /// `401` does not bench it.
    pub enabled: bool,
    /// `strategy` ["least-loaded"]: see [`Strategy`].
    pub strategy: Strategy,
    /// `cooldownMs` [60000]: how long a key rests after a `429` that names
    /// no `retry-after`/`retry-after-ms`.
    pub cooldown: Duration,
}

impl Default for KeyPoolSettings {
    fn default() -> Self {
        KeyPoolSettings {
            enabled: false,
            strategy: Strategy::LeastLoaded,
            cooldown: Duration::from_millis(60_000),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    enabled: Option<bool>,
    strategy: Option<Strategy>,
    cooldown_ms: Option<u64>,
}

const KNOWN: [&str; 3] = ["enabled", "strategy", "cooldownMs"];

/// Reads an `ApiKeyPool` object found at `path`.
pub fn parse(value: &Value, path: &str) -> Result<(KeyPoolSettings, Vec<String>), ConfigError> {
    let raw: Raw = deserialize(value, path)?;
    let mut s = KeyPoolSettings::default();
    s.enabled = raw.enabled.unwrap_or(s.enabled);
    s.strategy = raw.strategy.unwrap_or(s.strategy);
    if let Some(ms) = raw.cooldown_ms {
        s.cooldown = millis(ms, &format!("{path}.cooldownMs"), true)?;
    }
    Ok((s, unknown_keys(value, path, &KNOWN)))
}

/// A provider's keys from its `api_key` and `api_keys` values (either may
/// be absent, not both), found in the provider object at `path`, each
/// expanded by `expand` (`Err(NAME)` for an unset variable). `api_key`
/// comes first; repeats are dropped; none may be empty.
pub fn provider_keys(
    api_key: Option<&Value>,
    api_keys: Option<&Value>,
    path: &str,
    expand: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Vec<Secret>, ConfigError> {
    let mut found: Vec<(String, &Value)> = Vec::new();
    if let Some(v) = api_key {
        found.push((format!("{path}.api_key"), v));
    }
    match api_keys {
        None => {}
        Some(Value::Array(items)) if !items.is_empty() => {
            found.extend(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (format!("{path}.api_keys[{i}]"), v)),
            );
        }
        Some(_) => {
            return Err(error(
                &format!("{path}.api_keys"),
                "expected a non-empty array of keys",
            ))
        }
    }
    if found.is_empty() {
        return Err(error(
            &format!("{path}.api_key"),
            "missing (required unless api_keys is given)",
        ));
    }
    let mut keys: Vec<Secret> = Vec::new();
    for (at, v) in found {
        let Value::String(s) = v else {
            return Err(error(&at, "expected a string"));
        };
        let key = expand(s)
            .map_err(|var| error(&at, format!("environment variable {var} is not set")))?;
        if key.is_empty() {
            return Err(error(
                &at,
                "the provider's API key must not be empty (\"$VAR\" reads it from the environment)",
            ));
        }
        if !keys.iter().any(|k| k.expose() == key) {
            keys.push(Secret::new(key));
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_section_reads_over_defaults() {
        assert_eq!(
            parse(&json!({}), "ApiKeyPool").unwrap(),
            (KeyPoolSettings::default(), vec![])
        );
        let (s, w) = parse(
            &json!({"enabled": true, "strategy": "round-robin", "cooldownMs": 5000}),
            "ApiKeyPool",
        )
        .unwrap();
        assert_eq!(
            s,
            KeyPoolSettings {
                enabled: true,
                strategy: Strategy::RoundRobin,
                cooldown: Duration::from_secs(5)
            }
        );
        assert!(w.is_empty());
        let e = parse(&json!({"strategy": "random"}), "ApiKeyPool").unwrap_err();
        assert_eq!(e.path, "ApiKeyPool.strategy");
        assert!(
            e.message.contains("least-loaded") && e.message.contains("round-robin"),
            "{}",
            e.message
        );
        assert_eq!(
            parse(&json!({"cooldownMs": 0}), "ApiKeyPool")
                .unwrap_err()
                .path,
            "ApiKeyPool.cooldownMs"
        );
    }

    fn expand(s: &str) -> Result<String, String> {
        match s {
            "$K1" => Ok("sk-one".into()),
            "$EMPTY" => Ok(String::new()),
            s if s.starts_with('$') => Err(s[1..].to_owned()),
            s => Ok(s.to_owned()),
        }
    }

    fn keys(key: Option<Value>, list: Option<Value>) -> Result<Vec<String>, String> {
        provider_keys(key.as_ref(), list.as_ref(), "Providers[0]", &expand)
            .map(|ks| ks.iter().map(|k| k.expose().to_owned()).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn provider_keys_merge_expand_and_dedupe() {
        assert_eq!(keys(Some(json!("$K1")), None).unwrap(), ["sk-one"]);
        assert_eq!(
            keys(Some(json!("$K1")), Some(json!(["sk-two", "$K1"]))).unwrap(),
            ["sk-one", "sk-two"]
        );
        assert_eq!(keys(None, Some(json!(["a", "b"]))).unwrap(), ["a", "b"]);
    }

    #[test]
    fn provider_key_errors_name_the_entry() {
        assert_eq!(
            keys(None, None).unwrap_err(),
            "Providers[0].api_key: missing (required unless api_keys is given)"
        );
        assert_eq!(
            keys(None, Some(json!([]))).unwrap_err(),
            "Providers[0].api_keys: expected a non-empty array of keys"
        );
        assert_eq!(
            keys(None, Some(json!(["a", "$NOPE"]))).unwrap_err(),
            "Providers[0].api_keys[1]: environment variable NOPE is not set"
        );
        assert_eq!(
            keys(None, Some(json!(["a", 5]))).unwrap_err(),
            "Providers[0].api_keys[1]: expected a string"
        );
        assert!(keys(Some(json!("$EMPTY")), None)
            .unwrap_err()
            .starts_with("Providers[0].api_key: the provider's API key must not be empty"));
    }
}
