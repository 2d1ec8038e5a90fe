//! From the raw structs of [`raw`](super::raw) to [`Config`]: `$VAR`
//! expansion, defaults, and the checks across keys (unique provider names,
//! targets that name a provider, pool limits), collecting every error
//! found rather than stopping at the first.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::resilience::config::{self as resilience, ProviderResilience, RetrySettings};

use super::de::{child, Diag, Failed, Lazy};
use super::raw::{self, Top};
use super::tls::ProviderTls;
use super::values::{err, http_url, port, quoted, show, Port, Text};
use super::{
    env, pool, ApiKind, Config, ConfigError, ProviderConfig, Rejected, RouteTarget, Secret,
};

/// Looks up an environment variable.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

fn syntax_error(name: &str, e: &serde_json::Error) -> ConfigError {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let msg = full.strip_suffix(&suffix).unwrap_or(&full);
    err(
        name,
        format!("line {}, column {}: {msg}", e.line(), e.column()),
    )
}

/// Parses a whole config document; `name` labels JSON syntax errors.
/// `Err` holds every error found, in document order.
pub(crate) fn document(
    text: &str,
    name: &str,
    env: Env<'_>,
) -> Result<(Config, Vec<String>), Rejected> {
    let root: Value = serde_json::from_str(text).map_err(|e| syntax_error(name, &e))?;
    if !root.is_object() {
        let msg = format!(
            "expected a JSON object at the top level, got {}",
            show(&root)
        );
        return Err(err(name, msg).into());
    }
    let mut r = Reader {
        d: Diag::default(),
        env,
    };
    let mut c = Config {
        ssl_cert_file: env("SSL_CERT_FILE")
            .filter(|v| !v.is_empty())
            .map(Into::into),
        ..Config::default()
    };
    // Every key of `Top` is lazy: reading it cannot fail.
    if let Ok(top) = r.d.value::<Top>(&root, "") {
        r.config(&top, &mut c);
    }
    let Diag { errors, warnings } = r.d;
    match errors.is_empty() {
        true => Ok((c, warnings)),
        false => Err(Rejected { errors, warnings }),
    }
}

/// Reads raw values into a config, recording errors and warnings.
struct Reader<'a> {
    d: Diag,
    env: Env<'a>,
}

impl Reader<'_> {
    /// `s` (found at `path`) with `$VAR`/`${VAR}` expanded.
    fn expand(&mut self, s: &str, path: &str) -> Result<String, Failed> {
        env::expand(s, self.env).map_err(|var| {
            self.d
                .fail(path, format!("environment variable {var} is not set"))
        })
    }

    /// A string (or `null`, for a `Lazy<Option<Text>>`) at `path`,
    /// expanded; `Ok(None)` when absent or `null`.
    fn text<T>(&mut self, lazy: &Lazy<T>, path: &str) -> Result<Option<String>, Failed>
    where
        T: DeserializeOwned + Into<Option<Text>>,
    {
        match self.d.read(lazy, path)?.and_then(Into::into) {
            None => Ok(None),
            Some(Text(s)) => self.expand(&s, path).map(Some),
        }
    }

    /// Section `lazy` read by `parse` (which returns its warnings too);
    /// `Ok(None)` when absent.
    fn section<T>(
        &mut self,
        lazy: &Lazy<Value>,
        parse: impl FnOnce(&Value) -> Result<(T, Vec<String>), ConfigError>,
    ) -> Result<Option<T>, Failed> {
        lazy.raw().map(|v| self.d.section(parse(v))).transpose()
    }

    /// A string at `path` that must be written.
    fn required(&mut self, lazy: &Lazy<Text>, path: &str) -> Result<String, Failed> {
        self.text(lazy, path)?
            .ok_or_else(|| self.d.fail(path, "missing (required)"))
    }

    fn config(&mut self, t: &Top, c: &mut Config) {
        self.server(t, c);
        if let Ok(Some(h)) = self.d.object(&t.health, "HealthThresholds") {
            let h0 = &mut c.health;
            h0.reuse_rate_below = h.reuse_rate_below.map_or(h0.reuse_rate_below, |p| p.0);
            h0.min_requests = h.min_requests.map_or(h0.min_requests, |n| n.0);
            h0.idle_above = h.idle_above.map_or(h0.idle_above, |n| n.0);
            h0.connection_age_below =
                (h.connection_age_below_ms).map_or(h0.connection_age_below, |m| m.0);
            h0.min_closed = h.min_closed_connections.map_or(h0.min_closed, |n| n.0);
        }
        let res = &mut c.resilience;
        let key_pool = self.section(&t.key_pool, |v| {
            resilience::key_pool::parse(v, "ApiKeyPool")
        });
        let retry = res.retry;
        let retry = self.section(&t.retry, |v| resilience::retry::parse(v, "Retry", retry));
        let breaker = self.section(&t.breaker, |v| {
            resilience::breaker::parse(v, "CircuitBreaker")
        });
        res.key_pool = key_pool.ok().flatten().unwrap_or(res.key_pool);
        res.retry = retry.ok().flatten().unwrap_or(res.retry);
        res.breaker = breaker.ok().flatten().unwrap_or(res.breaker);
        // Every name written, valid provider or not: a reference to a
        // provider that failed its own checks is not a second error.
        let mut names = Vec::new();
        c.providers = self.providers(&t.providers, c.resilience.retry, &mut names);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        if let Some(v) = t.fallback.raw() {
            let f = resilience::fallback::parse(v, "fallback", &refs);
            if let Ok(f) = self.d.check(f) {
                c.resilience.fallback = f;
            }
        }
        if !c.resilience.key_pool.enabled {
            for (i, p) in c.providers.iter().enumerate() {
                if p.resilience.keys.len() > 1 {
                    self.d.warnings.push(format!(
                        "Providers[{i}].api_keys: ApiKeyPool.enabled is false, so only the first key is used"
                    ));
                }
            }
        }
        self.router(&t.router, &names, c);
        c.pool = pool::section(&t.pool, &c.providers, &names, &mut self.d);
        if let Ok(url) = self.text(&t.proxy_url, "PROXY_URL") {
            let section = super::proxy::section(url.as_deref(), "PROXY_URL", self.env);
            if let Ok(section) = self.d.check(section) {
                c.proxy = section;
            }
        }
    }

    /// The listener, the client key, the log level and the timers.
    fn server(&mut self, t: &Top, c: &mut Config) {
        if let Ok(Some(host)) = self.text(&t.host, "HOST") {
            match host.is_empty() {
                true => drop(
                    self.d
                        .fail("HOST", "expected a host name or address, got \"\""),
                ),
                false => c.host = host,
            }
        }
        let port_text = match self.d.read(&t.port, "PORT") {
            Ok(Some(Port::Number(p))) => {
                c.port = p;
                None
            }
            Ok(Some(Port::Text(s))) => self.expand(&s, "PORT").ok(),
            _ => None,
        };
        if let Some(s) = port_text {
            match port(&s) {
                Some(p) => c.port = p,
                None => {
                    let msg = format!("expected an integer from 1 to 65535, got {}", quoted(&s));
                    self.d.fail("PORT", msg);
                }
            }
        }
        if let Ok(Some(key)) = self.text(&t.apikey, "APIKEY") {
            c.api_key = (!key.is_empty()).then(|| Secret::new(key));
        }
        if let Ok(Some(level)) = self.text(&t.log_level, "LOG_LEVEL") {
            let lower = level.to_ascii_lowercase();
            match LOG_LEVELS.contains(&lower.as_str()) {
                true => c.log_level = lower,
                false => {
                    let msg = format!(
                        "expected one of {}, got {}",
                        LOG_LEVELS.join(", "),
                        quoted(&level)
                    );
                    self.d.fail("LOG_LEVEL", msg);
                }
            }
        }
        // Plain values: raw field (named as the key) => `Config` field.
        macro_rules! plain {
            ($($raw:ident => $field:ident),*) => {$(
                let key = stringify!($raw).to_ascii_uppercase();
                if let Ok(Some(v)) = self.d.read(&t.$raw, &key) {
                    c.$field = v.0;
                }
            )*};
        }
        plain!(
            api_timeout_ms => api_timeout,
            body_limit_bytes => body_limit,
            shutdown_timeout_ms => shutdown_timeout,
            header_read_timeout_ms => header_read_timeout,
            body_read_timeout_ms => body_read_timeout,
            stats_interval_ms => stats_interval
        );
    }

    /// `Providers`: the valid ones; every name read goes into `names`.
    fn providers(
        &mut self,
        lazy: &Lazy<Vec<Lazy<raw::Provider>>>,
        retry: RetrySettings,
        names: &mut Vec<String>,
    ) -> Vec<ProviderConfig> {
        let mut out = Vec::new();
        let what = "an array of providers";
        let Ok(Some(items)) = self.d.shaped(lazy, "Providers", Value::is_array, what) else {
            return out;
        };
        for (i, item) in items.iter().enumerate() {
            let path = format!("Providers[{i}]");
            if let Ok(Some(raw)) = self.d.object(item, &path) {
                out.extend(self.provider(&raw, &path, retry, names));
            }
        }
        out
    }

    /// One provider at `path`; `None` when any of it is bad (each bad
    /// value is recorded).
    fn provider(
        &mut self,
        p: &raw::Provider,
        path: &str,
        retry: RetrySettings,
        names: &mut Vec<String>,
    ) -> Option<ProviderConfig> {
        let at = |key: &str| child(path, key);
        let name = self.required(&p.name, &at("name")).and_then(|name| {
            if name.is_empty() || name.contains(',') {
                let msg = format!(
                    "expected a non-empty name without ',', got {}",
                    quoted(&name)
                );
                return Err(self.d.fail(&at("name"), msg));
            }
            if names.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                let msg = format!(
                    "duplicate provider name {} (names are case-insensitive)",
                    quoted(&name)
                );
                return Err(self.d.fail(&at("name"), msg));
            }
            names.push(name.clone());
            Ok(name)
        });
        let url = self
            .required(&p.api_base_url, &at("api_base_url"))
            .and_then(|url| {
                http_url(&url).ok_or_else(|| {
                    let msg = format!("expected an absolute http(s) URL, got {}", quoted(&url));
                    self.d.fail(&at("api_base_url"), msg)
                })
            });
        let env = self.env;
        let expand = |s: &str| env::expand(s, env);
        let keys =
            resilience::key_pool::provider_keys(p.api_key.raw(), p.api_keys.raw(), path, &expand);
        let keys = self.d.check(keys);
        let retry = self.section(&p.retry, |v| {
            resilience::retry::parse(v, &at("retry"), retry)
        });
        let what = "an array of model names";
        let models = match (self.d).shaped(&p.models, &at("models"), Value::is_array, what) {
            Ok(None) => Ok(Vec::new()),
            Ok(Some(models)) => {
                let all: Vec<_> = (models.iter().enumerate())
                    .map(|(j, Text(m))| self.expand(m, &format!("{}[{j}]", at("models"))))
                    .collect();
                all.into_iter().collect()
            }
            Err(f) => Err(f),
        };
        let api = match self.text(&p.api, &at("api")) {
            Ok(None) => Ok(None),
            Ok(Some(a)) => match a.as_str() {
                "anthropic" => Ok(Some(ApiKind::Anthropic)),
                "openai" => Ok(Some(ApiKind::OpenAi)),
                _ => {
                    let msg = format!("expected \"anthropic\" or \"openai\", got {}", quoted(&a));
                    Err(self.d.fail(&at("api"), msg))
                }
            },
            Err(f) => Err(f),
        };
        let transformer = self.section(&p.transformer, |v| {
            super::transformers::parse(v, &at("transformer"))
        });
        let proxy = match p.proxy.raw() {
            None => Ok(keepwarm::ProxyChoice::Inherit),
            Some(_) => self.text(&p.proxy, &at("proxy")).and_then(|url| {
                (self.d).check(super::proxy::provider(url.as_deref(), &at("proxy")))
            }),
        };
        let tls = self.tls(&p.tls, &at("tls"));
        let (name, api_base_url, keys) = (name.ok()?, url.ok()?, keys.ok()?);
        let (retry, models, api, transformer) = (
            retry.ok()?,
            models.ok()?,
            api.ok()?,
            transformer.ok()?.unwrap_or_default(),
        );
        let (proxy, tls) = (proxy.ok()?, tls.ok()?);
        Some(ProviderConfig {
            api: api.unwrap_or_else(|| ApiKind::from_endpoint(&api_base_url)),
            name,
            api_base_url,
            api_key: keys[0].clone(),
            models,
            transformer,
            resilience: ProviderResilience { keys, retry },
            proxy,
            tls,
        })
    }

    /// A provider's `tls` at `path` [none].
    fn tls(&mut self, lazy: &Lazy<raw::Tls>, path: &str) -> Result<ProviderTls, Failed> {
        let Some(raw::Tls { ca_file }) = self.d.object(lazy, path)? else {
            return Ok(ProviderTls::default());
        };
        let Some(Text(written)) = ca_file else {
            return Ok(ProviderTls::default());
        };
        let at = child(path, "ca_file");
        let file = self.expand(&written, &at)?;
        let ca_file = self.d.check(super::tls::ca_file(file, &written, &at))?;
        Ok(ProviderTls {
            ca_file: Some(ca_file),
        })
    }

    /// `Router`: the scenario targets, each naming a provider in `names`.
    fn router(&mut self, lazy: &Lazy<Value>, names: &[String], c: &mut Config) {
        let Some(v) = lazy.raw() else { return };
        if !v.is_object() {
            self.d
                .fail("Router", format!("expected an object, got {}", show(v)));
            return;
        }
        let Ok(section) = self.d.section(super::scenarios::parse(v, "Router")) else {
            return;
        };
        for (key, t) in section.targets() {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(&t.provider)) {
                let msg = format!("unknown provider {}", quoted(&t.provider));
                self.d.fail(&child("Router", key), msg);
            }
        }
        // `Router.default` names its provider as written in `Providers`.
        c.router_default = section.default.as_ref().and_then(|t| {
            let p = c.provider(&t.provider)?;
            Some(RouteTarget {
                provider: p.name.clone(),
                model: t.model.clone(),
            })
        });
        c.router = section;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{parse, parse_all, tests::env_of, ApiKind, Config, PoolSettings};

    const EXAMPLE: &str = r#"{
      "HOST": "127.0.0.1", "PORT": 3456, "APIKEY": "$GATEWAY_KEY", "LOG_LEVEL": "info", "API_TIMEOUT_MS": 600000,
      "BODY_LIMIT_BYTES": 33554432, "SHUTDOWN_TIMEOUT_MS": 30000, "HEADER_READ_TIMEOUT_MS": 10000,
      "Providers": [
        { "name": "anthropic", "api_base_url": "https://api.anthropic.com/v1/messages", "api_key": "${ANTHROPIC_API_KEY}", "models": ["claude-sonnet-4-5"] },
        { "name": "openai", "api_base_url": "https://api.openai.com/v1/chat/completions", "api_key": "$OPENAI_API_KEY", "models": ["gpt-4o"], "api": "openai" }
      ],
      "Router": { "default": "anthropic,claude-sonnet-4-5" },
      "HttpConnectionPool": {
        "enabled": true,
        "global": { "maxSockets": 50, "maxFreeSockets": 10, "timeout": 30000, "keepAlive": true, "keepAliveMsecs": 60000, "freeSocketTimeout": 15000, "maxSocketLifetime": 600000, "connectTimeout": 10000, "acquireTimeout": 30000, "maxRequestsPerSocket": null, "minFreeSockets": 0, "maxIdleTotal": null },
        "providers": { "anthropic": { "maxSockets": 20, "maxFreeSockets": 5, "keepAliveMsecs": 120000 } }
      }
    }"#;

    fn keys() -> impl Fn(&str) -> Option<String> {
        env_of(&[
            ("GATEWAY_KEY", "gw"),
            ("ANTHROPIC_API_KEY", "sk-a"),
            ("OPENAI_API_KEY", "sk-o"),
            ("HOST_A", "10.0.0.2"),
        ])
    }

    fn error(text: &str) -> String {
        parse(text, &keys()).unwrap_err().to_string()
    }

    #[test]
    fn the_full_example_parses() {
        let (c, warnings) = parse(EXAMPLE, &keys()).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.api_key.as_ref().map(|k| k.expose()), Some("gw"));
        let (a, o) = (
            c.provider("anthropic").unwrap(),
            c.provider("OpenAI").unwrap(),
        );
        assert_eq!(
            (a.api, a.api_key.expose(), a.models.as_slice()),
            (
                ApiKind::Anthropic,
                "sk-a",
                &["claude-sonnet-4-5".to_owned()][..]
            )
        );
        assert_eq!((o.api, o.api_key.expose()), (ApiKind::OpenAi, "sk-o"));
        let route = c.router_default.as_ref().unwrap();
        assert_eq!(
            (route.provider.as_str(), route.model.as_str()),
            ("anthropic", "claude-sonnet-4-5")
        );
        let merged = PoolSettings {
            max_sockets: 20,
            max_free_sockets: 5,
            keep_alive_msecs: Duration::from_millis(120_000),
            ..PoolSettings::default()
        };
        assert_eq!(c.pool.for_provider("anthropic"), &merged);
        assert_eq!(c.pool.for_provider("openai"), &PoolSettings::default());
        assert_eq!(c.pool.global, PoolSettings::default());
        let expected = Config {
            providers: c.providers.clone(),
            router_default: c.router_default.clone(),
            router: c.router.clone(),
            api_key: c.api_key.clone(),
            pool: c.pool.clone(),
            ..Config::default()
        };
        assert_eq!(c, expected);
        assert_eq!(c.router.default, c.router_default);
        assert_eq!(c.router.targets().len(), 1);
    }

    #[test]
    fn body_read_timeout_is_read_and_checked() {
        let (c, _) = parse(r#"{"BODY_READ_TIMEOUT_MS": 250}"#, &keys()).unwrap();
        assert_eq!(c.body_read_timeout, Duration::from_millis(250));
        let e = parse(r#"{"BODY_READ_TIMEOUT_MS": "soon"}"#, &keys()).unwrap_err();
        assert!(e.to_string().starts_with("BODY_READ_TIMEOUT_MS: "), "{e}");
    }

    #[test]
    fn each_timer_and_limit_is_read_under_its_own_key() {
        let names = [
            "API_TIMEOUT_MS",
            "BODY_LIMIT_BYTES",
            "SHUTDOWN_TIMEOUT_MS",
            "HEADER_READ_TIMEOUT_MS",
            "BODY_READ_TIMEOUT_MS",
            "STATS_INTERVAL_MS",
        ];
        let doc = |v: u32| {
            let pairs: Vec<String> = names.iter().map(|k| format!(r#""{k}": {v}"#)).collect();
            format!("{{{}}}", pairs.join(", "))
        };
        let rejected = parse_all(&doc(0), &keys()).unwrap_err();
        let paths: Vec<&str> = rejected.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, names);
        let (c, _) = parse(&doc(7), &keys()).unwrap();
        let ms = Duration::from_millis(7);
        assert_eq!(
            (c.api_timeout, c.body_limit, c.shutdown_timeout),
            (ms, 7, ms)
        );
        assert_eq!(
            (c.header_read_timeout, c.body_read_timeout, c.stats_interval),
            (ms, ms, ms)
        );
    }

    #[test]
    fn an_empty_object_is_all_defaults() {
        assert_eq!(parse("{}", &keys()).unwrap(), (Config::default(), vec![]));
        let (c, _) = parse(
            r#"{"PORT": "8080", "APIKEY": "", "LOG_LEVEL": "DEBUG"}"#,
            &keys(),
        )
        .unwrap();
        assert_eq!(
            (c.port, c.api_key, c.log_level.as_str()),
            (8080, None, "debug")
        );
    }

    #[test]
    fn errors_name_the_path_and_the_reason() {
        let p = |extra: &str| {
            format!(
                r#"{{"Providers": [{{"name": "anthropic", "api_base_url": "https://a.example/v1/messages", "api_key": "k"}}{extra}]"#
            )
        };
        let cases = [
            (format!(r#"{}, "HttpConnectionPool": {{"providers": {{"anthropic": {{"maxSockets": -1}}}}}}}}"#, p("")),
             "HttpConnectionPool.providers.anthropic.maxSockets: expected a positive integer, got -1"),
            (r#"{"PORT": "abc"}"#.into(), r#"PORT: expected an integer from 1 to 65535, got "abc""#),
            (r#"{"PORT": 70000}"#.into(), "PORT: expected an integer from 1 to 65535, got 70000"),
            (format!(r#"{}}}"#, p(r#", {"name": "x", "api_base_url": "api.example.com", "api_key": "k"}"#)),
             r#"Providers[1].api_base_url: expected an absolute http(s) URL, got "api.example.com""#),
            (format!(r#"{}}}"#, p(r#", {"name": "Anthropic", "api_base_url": "http://b", "api_key": "k"}"#)),
             r#"Providers[1].name: duplicate provider name "Anthropic" (names are case-insensitive)"#),
            (format!(r#"{}, "Router": {{"default": "foo,bar"}}}}"#, p("")), r#"Router.default: unknown provider "foo""#),
            (format!(r#"{}, "Router": {{"default": "foo"}}}}"#, p("")), r#"Router.default: expected "provider,model", got "foo""#),
            (format!(r#"{}, "HttpConnectionPool": {{"providers": {{"openai": {{"maxSockets": 10, "maxFreeSockets": 20}}}}}}}}"#,
                p(r#", {"name": "openai", "api_base_url": "http://o/v1", "api_key": "k"}"#)),
             "HttpConnectionPool.providers.openai.maxFreeSockets: 20 is above maxSockets (10)"),
            (r#"{"HttpConnectionPool": {"global": {"timeout": 0}}}"#.into(),
             "HttpConnectionPool.global.timeout: expected a positive integer (milliseconds), got 0"),
            (r#"{"Providers": [{"name": "a", "api_base_url": "http://a", "api_key": "${NOPE}"}]}"#.into(),
             "Providers[0].api_key: environment variable NOPE is not set"),
            (r#"{"Providers": [{"name": "a", "api_base_url": "http://a", "api_key": ""}]}"#.into(),
             r#"Providers[0].api_key: the provider's API key must not be empty ("$VAR" reads it from the environment)"#),
            (r#"{"Providers": [{"name": "a", "api_key": "k"}]}"#.into(), "Providers[0].api_base_url: missing (required)"),
            (r#"{"Providers": [{"name": "a", "api_base_url": "http://a", "api_key": "k", "models": "m"}]}"#.into(),
             r#"Providers[0].models: expected an array of model names, got "m""#),
            (r#"{"Providers": {"name": "a"}}"#.into(), "Providers: expected an array of providers, got an object"),
            (r#"{"HttpConnectionPool": {"enabled": "yes"}}"#.into(), r#"HttpConnectionPool.enabled: expected true or false, got "yes""#),
            (r#"{"HttpConnectionPool": {"global": {"minFreeSockets": 11}}}"#.into(),
             "HttpConnectionPool.global.minFreeSockets: 11 is above maxFreeSockets (10)"),
            (r#"{"LOG_LEVEL": "verbose"}"#.into(), r#"LOG_LEVEL: expected one of error, warn, info, debug, trace, got "verbose""#),
            ("[1]".into(), "config: expected a JSON object at the top level, got an array"),
        ];
        for (text, expected) in cases {
            assert_eq!(error(&text), expected, "for {text}");
        }
        assert!(error("{\n  \"PORT\": 1,\n  x")
            .starts_with("config: line 3, column 3: key must be a string"));
    }

    #[test]
    fn the_more_specific_layer_is_blamed() {
        let text = r#"{"Providers": [{"name": "o", "api_base_url": "http://o", "api_key": "k"}],
            "HttpConnectionPool": {"global": {"maxFreeSockets": 20}, "providers": {"o": {"maxSockets": 10}}}}"#;
        assert_eq!(
            error(text),
            "HttpConnectionPool.providers.o.maxSockets: 10 is below maxFreeSockets (20)"
        );
    }

    #[test]
    fn env_vars_expand_inside_strings() {
        let text = r#"{"PORT": "$P", "Providers": [{"name": "a", "api_base_url": "https://${HOST_A}:8443/v1/messages", "api_key": "x$ANTHROPIC_API_KEY"}]}"#;
        let (c, _) = parse(
            text,
            &env_of(&[
                ("HOST_A", "10.0.0.2"),
                ("ANTHROPIC_API_KEY", "k"),
                ("P", "81"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.providers[0].api_base_url.to_string(),
            "https://10.0.0.2:8443/v1/messages"
        );
        assert_eq!((c.providers[0].api_key.expose(), c.port), ("xk", 81));
        assert_eq!(c.providers[0].api, ApiKind::Anthropic);
    }

    #[test]
    fn unknown_and_unsupported_keys_are_warnings() {
        let text = r#"{"LOG": "$UNSET", "transformers": [], "Hostname": 1,
            "Providers": [{"name": "a", "api_base_url": "http://a", "api_key": "k", "transformer": {"use": ["gemini"]}, "modles": []}],
            "Router": {"default": "a,m", "think": "a,t", "thinc": "a,t"},
            "HttpConnectionPool": {"maxSockets": 5, "global": {"maxSocket": 3},
              "providers": {"nvidia": {"maxSockets": 15}, "a": {"maxIdleTotal": 3}}}}"#;
        let (_, mut w) = parse(text, &keys()).unwrap();
        w.sort();
        assert_eq!(w, [
            "HttpConnectionPool.maxSockets: pool settings go in HttpConnectionPool.global or providers.<name> (ignored)",
            "HttpConnectionPool.providers.a.maxIdleTotal: only read from HttpConnectionPool.global (ignored)",
            "HttpConnectionPool.providers.nvidia: no provider named \"nvidia\" in Providers (ignored)",
            "LOG: not supported by keepwarm (ignored)",
            "Providers[0].transformer.use[0]: transformer \"gemini\" is not implemented by keepwarm (ignored)",
            "transformers: not supported by keepwarm (ignored)",
            "unknown key Hostname (ignored)",
            "unknown key HttpConnectionPool.global.maxSocket (ignored)",
            "unknown key Providers[0].modles (ignored)",
            "unknown key Router.thinc (ignored)",
        ]);
    }

    #[test]
    fn every_error_is_reported_not_only_the_first() {
        let text = r#"{"PORT": 0, "LOG_LEVEL": "loud", "API_TIMEOUT_MS": -1,
            "HealthThresholds": {"idleAbove": "many"},
            "Retry": {"attempts": 99},
            "Providers": [
              {"name": "a,b", "api_base_url": "ftp://x", "api_key": "$NOPE", "models": [1]},
              {"name": "ok", "api_base_url": "http://ok", "api_key": "k", "api": "gemini",
               "proxy": "socks5://u:s3cret@p:1", "tls": {"ca_file": ""}},
              "not a provider"
            ],
            "Router": {"default": "ok,m", "think": "ghost,m"},
            "HttpConnectionPool": {"enabled": 1, "global": {"maxSockets": 0},
              "providers": {"ok": {"timeout": 0}, "x": {"protocol": "h3"},
                            "y": {"maxConcurrentStreams": 5000000000}}},
            "PROXY_URL": 1}"#;
        let rejected = parse_all(text, &keys()).unwrap_err();
        let got: Vec<String> = rejected.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(got, [
            "PORT: expected an integer from 1 to 65535, got 0",
            r#"LOG_LEVEL: expected one of error, warn, info, debug, trace, got "loud""#,
            "API_TIMEOUT_MS: expected a positive integer (milliseconds), got -1",
            r#"HealthThresholds.idleAbove: expected a non-negative integer, got "many""#,
            "Retry.attempts: 99 is above the limit of 10 retries",
            r#"Providers[0].name: expected a non-empty name without ',', got "a,b""#,
            r#"Providers[0].api_base_url: expected an absolute http(s) URL, got "ftp://x""#,
            "Providers[0].api_key: environment variable NOPE is not set",
            "Providers[0].models[0]: expected a string, got 1",
            r#"Providers[1].api: expected "anthropic" or "openai", got "gemini""#,
            r#"Providers[1].proxy: expected an http:// proxy URL (or null), got "socks5://u:***@p:1": scheme `socks5://` is not supported (only http:// proxies are)"#,
            r#"Providers[1].tls.ca_file: expected the path of a PEM file, got """#,
            r#"Providers[2]: expected an object, got "not a provider""#,
            r#"Router.think: unknown provider "ghost""#,
            "HttpConnectionPool.enabled: expected true or false, got 1",
            "HttpConnectionPool.global.maxSockets: expected a positive integer, got 0",
            "HttpConnectionPool.providers.ok.timeout: expected a positive integer (milliseconds), got 0",
            r#"HttpConnectionPool.providers.x.protocol: expected "auto", "http1" or "http2", got "h3""#,
            "HttpConnectionPool.providers.y.maxConcurrentStreams: 5000000000 is above 4294967295",
            "PROXY_URL: expected a string, got 1",
        ]);
        // `parse` (what `serve` and reload use) stops at the first.
        assert_eq!(error(text), got[0]);
    }

    #[test]
    fn a_bad_provider_is_one_error_not_a_cascade() {
        // Its name was readable: routes, fallbacks and pool overrides that
        // name it are no second error, and no "no provider named" warning.
        let text = r#"{"Providers": [{"name": "a", "api_base_url": "nope", "api_key": "k"}],
            "Router": {"default": "a,m"}, "fallback": {"default": ["a,n"]},
            "HttpConnectionPool": {"providers": {"a": {"maxSockets": 2}}}}"#;
        let rejected = parse_all(text, &keys()).unwrap_err();
        assert_eq!(rejected.errors.len(), 1, "{rejected}");
        assert_eq!(rejected.errors[0].path, "Providers[0].api_base_url");
        assert!(rejected.warnings.is_empty(), "{:?}", rejected.warnings);
    }

    #[test]
    fn unread_keys_are_warned_with_their_full_path() {
        let text = r#"{"HealthThresholds": {"idleAbov": 1},
            "Providers": [{"name": "a", "api_base_url": "http://a", "api_key": "k"},
                          {"name": "b", "api_base_url": "http://b", "api_key": "k", "api_bse_url": "x"}],
            "HttpConnectionPool": {"global": {"keepAliveMs": 1}, "providers": {"b": {"timout": 1}}},
            "StatusLine": {"enabled": true}, "NON_INTERACTIVE_MODE": true}"#;
        let (_, w) = parse(text, &keys()).unwrap();
        assert_eq!(
            w,
            [
                "StatusLine: not supported by keepwarm (ignored)",
                "NON_INTERACTIVE_MODE: not supported by keepwarm (ignored)",
                "unknown key HealthThresholds.idleAbov (ignored)",
                "unknown key Providers[1].api_bse_url (ignored)",
                "unknown key HttpConnectionPool.global.keepAliveMs (ignored)",
                "unknown key HttpConnectionPool.providers.b.timout (ignored)",
            ]
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        // `key value|…`: each pair alone at the top level, in a provider, in `global`.
        let top = r#"PORT 1e999|HOST 1|HOST ""|PORT 0|PORT 1.5|PORT [80]|APIKEY 5|API_TIMEOUT_MS -5|
            API_TIMEOUT_MS 1e3|API_TIMEOUT_MS 18446744073709551615|BODY_LIMIT_BYTES "1"|Providers {}|
            Providers [1]|Providers [{}]|Router []|Router {"default": 1}|Router {"default": ","}|
            HttpConnectionPool 1|HttpConnectionPool {"global": []}|HttpConnectionPool {"providers": []}|
            PROXY_URL 1|PROXY_URL "https://p"|PROXY_URL "http://p:x"|PROXY_URL []"#;
        let provider = r#"name ""|name "a,b"|name null|api_base_url "ftp://a"|api_base_url "http://"|
            api_key 1|models "m"|models [1]|api "gemini"|proxy 1|proxy "socks5://p"|proxy """#;
        let global = r#"maxSockets 0|maxSockets null|keepAlive 1|maxIdleTotal 0|maxRequestsPerSocket 0|
            acquireTimeout 0|maxSockets 18446744073709551616|timeout 1.0|minFreeSockets -1"#;
        let pairs = |s: &'static str| s.split('|').filter_map(|kv| kv.trim().split_once(' '));
        let mut docs: Vec<String> = ["", "{", "}", "null", "1", "\"x\"", "{\"a\": 1,}", "\u{0}"]
            .map(String::from)
            .into();
        docs.extend(pairs(top).map(|(k, v)| format!(r#"{{"{k}": {v}}}"#)));
        let p = r#""name": "a", "api_base_url": "http://a", "api_key": "k""#;
        docs.extend(
            pairs(provider).map(|(k, v)| format!(r#"{{"Providers": [{{{p}, "{k}": {v}}}]}}"#)),
        );
        let pool = |(k, v)| format!(r#"{{"HttpConnectionPool": {{"global": {{"{k}": {v}}}}}}}"#);
        docs.extend(pairs(global).map(pool));
        assert_eq!(docs.len(), 8 + 24 + 12 + 9);
        for doc in docs {
            assert!(parse(&doc, &keys()).is_err(), "accepted {doc}");
        }
    }
}
