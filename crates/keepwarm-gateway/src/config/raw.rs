//! `config.json` as written: serde structs mirroring the JSON with
//! claude-code-router's key names, before defaults, `$VAR` expansion and
//! the checks across keys (`parse.rs` maps them onto [`Config`](super::Config)).
//!
//! A top-level key, a provider and each of its keys, and each block of
//! `HttpConnectionPool` are [`Lazy`]: read on their own, so one bad value
//! is one error and the rest is still checked. Within a block of plain
//! settings (`HealthThresholds`, a pool block) the first bad value is the
//! error. Keys no struct reads are warnings ([`ignored`]).

use serde::Deserialize;
use serde_json::Value;

use super::de::{child, Lazy, Written};
use super::values::{Flag, Int, Millis, Percent, Port, Proto, Size, Text, U32};

/// claude-code-router's top-level keys that keepwarm does not use.
pub(crate) const TOP_UNSUPPORTED: [&str; 5] = [
    "LOG",
    "transformers",
    "StatusLine",
    "NON_INTERACTIVE_MODE",
    "CUSTOM_ROUTER_PATH",
];

/// The pool settings' key names, to point one written directly in
/// `HttpConnectionPool` to where it belongs.
const POOL_KEYS: [&str; 14] = [
    "maxSockets",
    "maxFreeSockets",
    "timeout",
    "keepAlive",
    "keepAliveMsecs",
    "freeSocketTimeout",
    "maxSocketLifetime",
    "connectTimeout",
    "acquireTimeout",
    "maxRequestsPerSocket",
    "minFreeSockets",
    "maxIdleTotal",
    "protocol",
    "maxConcurrentStreams",
];

/// The warning for key `key` of the object at `parent` that nothing read.
pub(crate) fn ignored(parent: &str, key: &str) -> String {
    let path = child(parent, key);
    if parent.is_empty() && TOP_UNSUPPORTED.contains(&key) {
        format!("{path}: not supported by keepwarm (ignored)")
    } else if parent == "HttpConnectionPool" && POOL_KEYS.contains(&key) {
        format!(
            "{path}: pool settings go in HttpConnectionPool.global or providers.<name> (ignored)"
        )
    } else {
        format!("unknown key {path} (ignored)")
    }
}

/// The top-level object.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) struct Top {
    pub host: Lazy<Text>,
    pub port: Lazy<Port>,
    /// `null` and `""` mean no key.
    pub apikey: Lazy<Option<Text>>,
    pub log_level: Lazy<Text>,
    pub api_timeout_ms: Lazy<Millis>,
    pub body_limit_bytes: Lazy<Size<1>>,
    pub shutdown_timeout_ms: Lazy<Millis>,
    pub header_read_timeout_ms: Lazy<Millis>,
    pub body_read_timeout_ms: Lazy<Millis>,
    /// `null` and `""` mean no proxy (see [`super::proxy`]).
    pub proxy_url: Lazy<Option<Text>>,
    pub stats_interval_ms: Lazy<Millis>,
    #[serde(rename = "HealthThresholds")]
    pub health: Lazy<Health>,
    /// Read by [`crate::resilience::config::key_pool`].
    #[serde(rename = "ApiKeyPool")]
    pub key_pool: Lazy<Value>,
    /// Read by [`crate::resilience::config::retry`].
    #[serde(rename = "Retry")]
    pub retry: Lazy<Value>,
    /// Read by [`crate::resilience::config::breaker`].
    #[serde(rename = "CircuitBreaker")]
    pub breaker: Lazy<Value>,
    /// Read by [`crate::resilience::config::fallback`].
    #[serde(rename = "fallback")]
    pub fallback: Lazy<Value>,
    /// Read by [`super::scenarios`].
    #[serde(rename = "Router")]
    pub router: Lazy<Value>,
    #[serde(rename = "Providers")]
    pub providers: Lazy<Vec<Lazy<Provider>>>,
    #[serde(rename = "HttpConnectionPool")]
    pub pool: Lazy<Pool>,
}

/// `HealthThresholds`.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Health {
    pub reuse_rate_below: Written<Percent>,
    pub min_requests: Written<Int<0>>,
    pub idle_above: Written<Size<0>>,
    pub connection_age_below_ms: Written<Millis>,
    pub min_closed_connections: Written<Int<0>>,
}

/// An entry of `Providers`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct Provider {
    pub name: Lazy<Text>,
    pub api_base_url: Lazy<Text>,
    /// With `api_keys`, read by [`crate::resilience::config::key_pool`].
    pub api_key: Lazy<Value>,
    pub api_keys: Lazy<Value>,
    pub models: Lazy<Vec<Text>>,
    pub api: Lazy<Text>,
    /// Read by [`crate::resilience::config::retry`].
    pub retry: Lazy<Value>,
    /// Read by [`super::transformers`].
    pub transformer: Lazy<Value>,
    /// Absent: inherit; `null`: direct; a string: via that proxy.
    pub proxy: Lazy<Option<Text>>,
    pub tls: Lazy<Tls>,
}

/// A provider's `tls`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct Tls {
    /// `null` is no file.
    pub ca_file: Option<Text>,
}

/// `HttpConnectionPool`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct Pool {
    pub enabled: Lazy<Flag>,
    /// `maxIdleTotal` is read only here.
    pub global: Lazy<PoolBlock<Option<Size<1>>>>,
    /// By provider name; `maxIdleTotal` is a warning there.
    pub providers: Lazy<serde_json::Map<String, Value>>,
}

/// `HttpConnectionPool.global` or `.providers.<name>`: each setting as
/// written, `None` when absent (`Some(None)` for an explicit `null` where
/// it means "no limit"). `Idle` is what `maxIdleTotal` is read as.
#[derive(Deserialize, Default)]
#[serde(
    default,
    rename_all = "camelCase",
    bound(deserialize = "Idle: Deserialize<'de> + Default")
)]
pub(crate) struct PoolBlock<Idle> {
    pub max_sockets: Written<Size<1>>,
    pub max_free_sockets: Written<Size<0>>,
    pub min_free_sockets: Written<Size<0>>,
    pub timeout: Written<Millis>,
    pub keep_alive: Written<Flag>,
    pub keep_alive_msecs: Written<Millis>,
    pub free_socket_timeout: Written<Millis>,
    pub max_socket_lifetime: Written<Option<Millis>>,
    pub connect_timeout: Written<Millis>,
    pub acquire_timeout: Written<Option<Millis>>,
    pub max_requests_per_socket: Written<Option<Int<1>>>,
    pub max_idle_total: Written<Idle>,
    pub protocol: Written<Proto>,
    pub max_concurrent_streams: Written<Option<U32>>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::de::Diag;

    #[test]
    fn every_pool_key_is_read_by_a_pool_block() {
        // POOL_KEYS points misplaced settings to their block: it must list
        // exactly the keys a block reads.
        let all: serde_json::Map<String, Value> = (POOL_KEYS.iter())
            .map(|&k| {
                (
                    k.to_owned(),
                    match k {
                        "keepAlive" => json!(true),
                        "protocol" => json!("auto"),
                        _ => json!(1),
                    },
                )
            })
            .collect();
        let mut d = Diag::default();
        let ok = d
            .value::<PoolBlock<Value>>(&Value::Object(all), "b")
            .is_ok();
        assert!(
            ok && d.warnings.is_empty(),
            "{:?} {:?}",
            d.errors,
            d.warnings
        );
        assert_eq!(
            ignored("HttpConnectionPool", "keepAlive"),
            "HttpConnectionPool.keepAlive: pool settings go in HttpConnectionPool.global or providers.<name> (ignored)"
        );
        assert_eq!(
            ignored("", "CUSTOM_ROUTER_PATH"),
            "CUSTOM_ROUTER_PATH: not supported by keepwarm (ignored)"
        );
        assert_eq!(ignored("Router", "LOG"), "unknown key Router.LOG (ignored)");
    }
}
