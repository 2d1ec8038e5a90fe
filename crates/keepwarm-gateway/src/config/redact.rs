//! The effective configuration as JSON, in `config.json`'s own key names,
//! with every secret replaced by `***`: safe for logs and the management API.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::{Config, PoolSettings};

const MASK: &str = "***";

impl Config {
    /// The effective configuration (defaults filled in, pool settings merged
    /// per provider) in the file's key names: `HOST`, `PORT`, `APIKEY`
    /// (`"***"`, or `null` when unset), `PROXY_URL` (password `***`),
    /// `Providers` (`api_key` `"***"`; credentials and query strings in
    /// URLs masked; `proxy` with its password `***` when set), `Router`, and
    /// `HttpConnectionPool` with every key of `global` and of each
    /// provider. No secret appears in it.
    pub fn redacted_json(&self) -> Value {
        let providers: Vec<Value> = (self.providers.iter())
            .map(|p| {
                let mut v = json!({
                    "name": p.name, "api_base_url": url(&p.api_base_url), "api_key": MASK,
                    "models": p.models, "api": p.api.as_str(),
                });
                for (k, x) in p.resilience.to_json() {
                    v[k] = x;
                }
                if p.proxy != keepwarm::ProxyChoice::Inherit {
                    v["proxy"] = super::proxy::to_json(&p.proxy);
                }
                v
            })
            .collect();
        let mut global = settings(&self.pool.global);
        global.insert("maxIdleTotal".into(), json!(self.pool.max_idle_total));
        let per: Map<String, Value> = (self.pool.per_provider.iter())
            .map(|(name, s)| (name.clone(), Value::Object(settings(s))))
            .collect();
        let mut out = json!({
            "HOST": self.host, "PORT": self.port, "APIKEY": self.api_key.as_ref().map(|_| MASK),
            "LOG_LEVEL": self.log_level, "API_TIMEOUT_MS": ms(self.api_timeout),
            "BODY_LIMIT_BYTES": self.body_limit, "SHUTDOWN_TIMEOUT_MS": ms(self.shutdown_timeout),
            "HEADER_READ_TIMEOUT_MS": ms(self.header_read_timeout),
            "BODY_READ_TIMEOUT_MS": ms(self.body_read_timeout),
            "STATS_INTERVAL_MS": ms(self.stats_interval),
            "HealthThresholds": {
                "reuseRateBelow": self.health.reuse_rate_below,
                "minRequests": self.health.min_requests,
                "idleAbove": self.health.idle_above,
                "connectionAgeBelowMs": ms(self.health.connection_age_below),
                "minClosedConnections": self.health.min_closed,
            },
            "PROXY_URL": self.proxy.url.as_ref().map(|p| p.to_string()),
            "Providers": providers,
            "Router": { "default": self.router_default.as_ref().map(|t| t.to_string()) },
            "HttpConnectionPool": { "enabled": self.pool.enabled, "global": global, "providers": per },
        });
        for (k, x) in self.resilience.to_json() {
            out[k] = x;
        }
        out
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `u` with any `user:password@` and the value of every query parameter
/// that carries a credential (`key=`, `api-key=`, `token=`, `sig=`, …)
/// replaced by `***`; `api-version=2024-10-21` and the like stay readable.
/// Safe for logs and the management API.
pub fn redact_url(u: &http::Uri) -> String {
    url(u)
}

/// Whether a query parameter's name says it carries a credential.
fn secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "key",
        "token",
        "secret",
        "sig",
        "password",
        "passwd",
        "auth",
        "credential",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// `query` with the values of credential parameters masked.
fn query(q: &str) -> String {
    let pairs: Vec<String> = q
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if secret_param(name) => format!("{name}={MASK}"),
            None if secret_param(pair) => MASK.to_owned(),
            _ => pair.to_owned(),
        })
        .collect();
    pairs.join("&")
}

fn url(u: &http::Uri) -> String {
    let authority = u.authority().map_or("", |a| a.as_str());
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("{MASK}@{host}"),
        None => authority.to_owned(),
    };
    let query = u
        .query()
        .map_or(String::new(), |q| format!("?{}", query(q)));
    format!(
        "{}://{host}{}{query}",
        u.scheme_str().unwrap_or("http"),
        u.path()
    )
}

fn settings(s: &PoolSettings) -> Map<String, Value> {
    let obj = json!({
        "maxSockets": s.max_sockets, "maxFreeSockets": s.max_free_sockets,
        "timeout": ms(s.timeout), "keepAlive": s.keep_alive, "keepAliveMsecs": ms(s.keep_alive_msecs),
        "freeSocketTimeout": ms(s.free_socket_timeout),
        "maxSocketLifetime": s.max_socket_lifetime.map(ms), "connectTimeout": ms(s.connect_timeout),
        "acquireTimeout": s.acquire_timeout.map(ms), "maxRequestsPerSocket": s.max_requests_per_socket,
        "minFreeSockets": s.min_free_sockets,
        "protocol": s.protocol.as_str(),
        "maxConcurrentStreams": s.max_concurrent_streams,
    });
    match obj {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{parse, tests::env_of};

    #[test]
    fn only_credential_parameters_are_masked() {
        let u: http::Uri = "https://r.example/chat?api-version=2024-10-21&key=k1&X-Goog-Api-Key=k2&access_token=t&sig=s&beta"
            .parse()
            .unwrap();
        assert_eq!(
            super::redact_url(&u),
            "https://r.example/chat?api-version=2024-10-21&key=***&X-Goog-Api-Key=***&access_token=***&sig=***&beta"
        );
    }

    #[test]
    fn no_secret_in_the_redacted_json() {
        let text = r#"{"APIKEY": "$G", "Providers": [
            {"name": "a", "api_base_url": "https://u:pw-secret@a.example/v1/messages?key=q-secret", "api_key": "$A"},
            {"name": "o", "api_base_url": "http://127.0.0.1:8080/v1/chat/completions", "api_key": "sk-o-secret"}],
            "Router": {"default": "a,m"},
            "HttpConnectionPool": {"global": {"maxIdleTotal": 7}, "providers": {"A": {"maxSockets": 3}}}}"#;
        let env = env_of(&[("G", "gw-secret"), ("A", "sk-a-secret")]);
        let (c, _) = parse(text, &env).unwrap();
        let v = c.redacted_json();
        let s = v.to_string();
        for secret in [
            "gw-secret",
            "sk-a-secret",
            "sk-o-secret",
            "pw-secret",
            "q-secret",
        ] {
            assert!(!s.contains(secret), "{secret} leaked: {s}");
        }
        assert_eq!(v["APIKEY"], "***");
        assert_eq!(v["Providers"][1]["api_keys"], serde_json::json!(["…cret"]));
        assert_eq!(v["Retry"]["attempts"], 2);
        assert_eq!(v["CircuitBreaker"]["failureThreshold"], 5);
        assert_eq!(v["Providers"][0]["api_key"], "***");
        assert_eq!(
            v["Providers"][0]["api_base_url"],
            "https://***@a.example/v1/messages?key=***"
        );
        assert_eq!(
            v["Providers"][1]["api_base_url"],
            "http://127.0.0.1:8080/v1/chat/completions"
        );
        assert_eq!(v["Router"]["default"], "a,m");
        let pool = &v["HttpConnectionPool"];
        assert_eq!(
            (
                pool["enabled"].clone(),
                pool["global"]["maxIdleTotal"].clone()
            ),
            (true.into(), 7.into())
        );
        assert_eq!(pool["providers"]["a"]["maxSockets"], 3);
        assert_eq!(pool["providers"]["a"]["maxFreeSockets"], 3);
        assert_eq!(pool["providers"]["o"]["maxSocketLifetime"], 600000);
        assert_eq!(
            pool["providers"]["o"]["maxRequestsPerSocket"],
            serde_json::Value::Null
        );
        assert_eq!(
            pool["providers"]["o"].as_object().map(|m| m.len()),
            Some(13)
        );
        assert_eq!(pool["providers"]["o"]["protocol"], "auto");
        assert_eq!(
            pool["providers"]["o"]["maxConcurrentStreams"],
            serde_json::Value::Null
        );
        let (c, _) = parse("{}", &env).unwrap();
        assert_eq!(c.redacted_json()["APIKEY"], serde_json::Value::Null);
        assert_eq!(c.redacted_json()["PORT"], 3456);
    }
}
