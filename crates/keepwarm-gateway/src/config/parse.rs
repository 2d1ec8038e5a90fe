//! Walking the config JSON: every value keeps its path (`Providers[1].name`)
//! for error messages, typed getters check it, and keys nobody read become
//! unknown-key warnings.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::resilience::config::{self as resilience, ProviderResilience};

use super::{
    env, pool, ApiKind, Config, ConfigError, HealthThresholds, ProviderConfig, RouteTarget, Secret,
};

/// Looks up an environment variable.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Longest accepted duration: 365 days, in milliseconds.
const MAX_MS: u64 = 365 * 24 * 3600 * 1000;

/// claude-code-router keys keepwarm does not use, per object.
const TOP_UNSUPPORTED: &str = "LOG transformers StatusLine NON_INTERACTIVE_MODE CUSTOM_ROUTER_PATH";
const ROUTER_UNSUPPORTED: &str = "";

pub(crate) fn err(path: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// A short rendering of a JSON value for "got …" in messages.
fn show(v: &Value) -> String {
    match v {
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
        Value::String(s) => quoted(s),
        other => other.to_string(),
    }
}

/// `s` as a JSON string, cut at 80 characters.
pub(crate) fn quoted(s: &str) -> String {
    let cut: String = s.chars().take(80).collect();
    let more = if cut.len() < s.len() { "…" } else { "" };
    format!("{}{more}", Value::String(cut))
}

/// An absolute `http` or `https` URL with a host.
pub(crate) fn http_url(s: &str) -> Option<http::Uri> {
    let uri: http::Uri = s.parse().ok()?;
    let scheme = matches!(uri.scheme_str(), Some("http" | "https"));
    (scheme && uri.host().is_some_and(|h| !h.is_empty())).then_some(uri)
}

/// A TCP port 1–65535 from a number or a numeric string.
pub(crate) fn port(s: &str) -> Option<u16> {
    s.trim().parse().ok().filter(|&p| p != 0)
}

/// One value and where it was found.
pub(crate) struct Field<'a> {
    pub(crate) path: String,
    pub(crate) value: &'a Value,
}

impl Field<'_> {
    pub(crate) fn fail(&self, expected: &str) -> ConfigError {
        err(&self.path, format!("{expected}, got {}", show(self.value)))
    }

    /// A string with `$VAR`/`${VAR}` expanded.
    pub(crate) fn string(&self, env: Env<'_>) -> Result<String, ConfigError> {
        let Value::String(s) = self.value else {
            return Err(self.fail("expected a string"));
        };
        env::expand(s, env)
            .map_err(|var| err(&self.path, format!("environment variable {var} is not set")))
    }

    pub(crate) fn boolean(&self) -> Result<bool, ConfigError> {
        self.value
            .as_bool()
            .ok_or_else(|| self.fail("expected true or false"))
    }

    /// A non-negative integer; at least 1 when `positive`.
    pub(crate) fn int(&self, positive: bool) -> Result<u64, ConfigError> {
        let (min, what) = match positive {
            true => (1, "expected a positive integer"),
            false => (0, "expected a non-negative integer"),
        };
        let n = self.value.as_u64().filter(|&n| n >= min);
        n.ok_or_else(|| self.fail(what))
    }

    /// A positive integer that fits in 32 bits (e.g. a stream count).
    pub(crate) fn u32_positive(&self) -> Result<u32, ConfigError> {
        let n = self.int(true)?;
        u32::try_from(n).map_err(|_| err(&self.path, format!("{n} is above {}", u32::MAX)))
    }

    pub(crate) fn size(&self, positive: bool) -> Result<usize, ConfigError> {
        let n = self.int(positive)?;
        usize::try_from(n).map_err(|_| err(&self.path, format!("{n} is too large")))
    }

    /// A positive number of milliseconds, at most 365 days.
    pub(crate) fn millis(&self) -> Result<Duration, ConfigError> {
        let n = self.value.as_u64().filter(|&n| n > 0);
        let n = n.ok_or_else(|| self.fail("expected a positive integer (milliseconds)"))?;
        if n > MAX_MS {
            return Err(err(
                &self.path,
                format!("{n} ms is above {MAX_MS} (365 days)"),
            ));
        }
        Ok(Duration::from_millis(n))
    }

    /// `null` as `None`, anything else through `get`.
    pub(crate) fn nullable<T>(
        &self,
        get: impl FnOnce(&Self) -> Result<T, ConfigError>,
    ) -> Result<Option<T>, ConfigError> {
        match self.value {
            Value::Null => Ok(None),
            _ => get(self).map(Some),
        }
    }
}

/// Sets `slot` from `f` when the key was written.
pub(crate) fn set<'a, T>(
    slot: &mut T,
    f: Option<Field<'a>>,
    get: impl FnOnce(&Field<'a>) -> Result<T, ConfigError>,
) -> Result<(), ConfigError> {
    if let Some(f) = f {
        *slot = get(&f)?;
    }
    Ok(())
}

/// A JSON object being read; remembers which keys were used.
pub(crate) struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
    seen: Vec<&'static str>,
    all_seen: bool,
}

impl<'a> Obj<'a> {
    pub(crate) fn new(field: Field<'a>) -> Result<Self, ConfigError> {
        match field.value {
            Value::Object(map) => Ok(Obj {
                path: field.path,
                map,
                seen: Vec::new(),
                all_seen: false,
            }),
            _ => Err(field.fail("expected an object")),
        }
    }

    /// This object's own path.
    pub(crate) fn path_of(&self) -> String {
        self.path.clone()
    }

    pub(crate) fn child(&self, key: &str) -> String {
        match self.path.is_empty() {
            true => key.to_owned(),
            false => format!("{}.{key}", self.path),
        }
    }

    /// The value at `key`, marked as used; `None` when absent.
    pub(crate) fn get(&mut self, key: &'static str) -> Option<Field<'a>> {
        self.seen.push(key);
        let value = self.map.get(key)?;
        Some(Field {
            path: self.child(key),
            value,
        })
    }

    pub(crate) fn required(&mut self, key: &'static str) -> Result<Field<'a>, ConfigError> {
        self.get(key)
            .ok_or_else(|| err(&self.child(key), "missing (required)"))
    }

    /// Every entry, all marked as used.
    pub(crate) fn entries(&mut self) -> impl Iterator<Item = (&'a String, &'a Value)> {
        self.all_seen = true;
        self.map.iter()
    }

    /// Warns about every key not read; those in `unsupported` (separated
    /// by spaces) are known claude-code-router keys keepwarm does not use.
    pub(crate) fn finish(self, warnings: &mut Vec<String>, unsupported: &str) {
        let unread = self
            .map
            .keys()
            .filter(|k| !self.all_seen && !self.seen.contains(&k.as_str()));
        for key in unread {
            let path = self.child(key);
            warnings.push(match unsupported.split_whitespace().any(|u| u == key) {
                true => format!("{path}: not supported by keepwarm (ignored)"),
                false => format!("unknown key {path} (ignored)"),
            });
        }
    }
}

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
pub(crate) fn document(
    text: &str,
    name: &str,
    env: Env<'_>,
) -> Result<(Config, Vec<String>), ConfigError> {
    let root: Value = serde_json::from_str(text).map_err(|e| syntax_error(name, &e))?;
    if !root.is_object() {
        let msg = format!(
            "expected a JSON object at the top level, got {}",
            show(&root)
        );
        return Err(err(name, msg));
    }
    let (mut w, mut c) = (Vec::new(), Config::default());
    c.ssl_cert_file = env("SSL_CERT_FILE")
        .filter(|v| !v.is_empty())
        .map(Into::into);
    let mut top = Obj::new(Field {
        path: String::new(),
        value: &root,
    })?;
    if let Some(f) = top.get("HOST") {
        c.host = f.string(env)?;
        if c.host.is_empty() {
            return Err(f.fail("expected a host name or address"));
        }
    }
    if let Some(f) = top.get("PORT") {
        let (text, shown) = match f.value {
            Value::Number(n) => (n.to_string(), n.to_string()),
            Value::String(_) => f.string(env).map(|s| (s.clone(), quoted(&s)))?,
            other => (String::new(), show(other)),
        };
        let msg = format!("expected an integer from 1 to 65535, got {shown}");
        c.port = port(&text).ok_or_else(|| err(&f.path, msg))?;
    }
    if let Some(f) = top.get("APIKEY") {
        let key = f.nullable(|f| f.string(env))?;
        c.api_key = key.filter(|k| !k.is_empty()).map(Secret::new);
    }
    if let Some(f) = top.get("LOG_LEVEL") {
        let level = f.string(env)?.to_ascii_lowercase();
        if !["error", "warn", "info", "debug", "trace"].contains(&level.as_str()) {
            return Err(f.fail("expected one of error, warn, info, debug, trace"));
        }
        c.log_level = level;
    }
    set(&mut c.api_timeout, top.get("API_TIMEOUT_MS"), Field::millis)?;
    set(&mut c.body_limit, top.get("BODY_LIMIT_BYTES"), |f| {
        f.size(true)
    })?;
    set(
        &mut c.shutdown_timeout,
        top.get("SHUTDOWN_TIMEOUT_MS"),
        Field::millis,
    )?;
    set(
        &mut c.header_read_timeout,
        top.get("HEADER_READ_TIMEOUT_MS"),
        Field::millis,
    )?;
    set(
        &mut c.body_read_timeout,
        top.get("BODY_READ_TIMEOUT_MS"),
        Field::millis,
    )?;
    set(
        &mut c.stats_interval,
        top.get("STATS_INTERVAL_MS"),
        Field::millis,
    )?;
    if let Some(f) = top.get("HealthThresholds") {
        c.health = health(f, &mut w)?;
    }
    let r = &mut c.resilience;
    if let Some(f) = top.get("ApiKeyPool") {
        let (s, more) = resilience::key_pool::parse(f.value, &f.path)?;
        (r.key_pool, w) = (s, [w, more].concat());
    }
    if let Some(f) = top.get("Retry") {
        let (s, more) = resilience::retry::parse(f.value, &f.path, r.retry)?;
        (r.retry, w) = (s, [w, more].concat());
    }
    if let Some(f) = top.get("CircuitBreaker") {
        let (s, more) = resilience::breaker::parse(f.value, &f.path)?;
        (r.breaker, w) = (s, [w, more].concat());
    }
    if let Some(f) = top.get("Providers") {
        c.providers = providers(&f, env, c.resilience.retry, &mut w)?;
    }
    if let Some(f) = top.get("fallback") {
        let names: Vec<&str> = c.providers.iter().map(|p| p.name.as_str()).collect();
        c.resilience.fallback = resilience::fallback::parse(f.value, &f.path, &names)?;
    }
    let pooled = c.resilience.key_pool.enabled;
    for (i, p) in c.providers.iter().enumerate() {
        if !pooled && p.resilience.keys.len() > 1 {
            w.push(format!(
                "Providers[{i}].api_keys: ApiKeyPool.enabled is false, so only the first key is used"
            ));
        }
    }
    if let Some(f) = top.get("Router") {
        let (section, warnings) = super::scenarios::parse(f.value, &f.path)?;
        for (key, t) in section.targets() {
            if c.provider(&t.provider).is_none() {
                let msg = format!("unknown provider {}", quoted(&t.provider));
                return Err(err(&format!("{}.{key}", f.path), msg));
            }
        }
        c.router = section;
        w.extend(warnings);
        c.router_default = router(f, &c.providers, env, &mut w)?;
    }
    c.pool = pool::section(top.get("HttpConnectionPool"), &c.providers, &mut w)?;
    c.proxy = super::proxy::section(top.get("PROXY_URL"), env)?;
    top.finish(&mut w, TOP_UNSUPPORTED);
    Ok((c, w))
}

fn health(f: Field<'_>, w: &mut Vec<String>) -> Result<HealthThresholds, ConfigError> {
    let mut h = HealthThresholds::default();
    let mut o = Obj::new(f)?;
    if let Some(f) = o.get("reuseRateBelow") {
        h.reuse_rate_below = match f.value.as_f64() {
            Some(v) if (0.0..=100.0).contains(&v) => v,
            _ => return Err(f.fail("expected a percentage from 0 to 100")),
        };
    }
    set(&mut h.min_requests, o.get("minRequests"), |f| f.int(false))?;
    set(&mut h.idle_above, o.get("idleAbove"), |f| f.size(false))?;
    set(
        &mut h.connection_age_below,
        o.get("connectionAgeBelowMs"),
        Field::millis,
    )?;
    set(&mut h.min_closed, o.get("minClosedConnections"), |f| {
        f.int(false)
    })?;
    o.finish(w, "");
    Ok(h)
}

fn providers(
    f: &Field<'_>,
    env: Env<'_>,
    retry: resilience::RetrySettings,
    w: &mut Vec<String>,
) -> Result<Vec<ProviderConfig>, ConfigError> {
    let Value::Array(items) = f.value else {
        return Err(f.fail("expected an array of providers"));
    };
    let mut out: Vec<ProviderConfig> = Vec::new();
    for (i, value) in items.iter().enumerate() {
        let path = format!("{}[{i}]", f.path);
        let mut o = Obj::new(Field { path, value })?;
        let name_f = o.required("name")?;
        let name = name_f.string(env)?;
        if name.is_empty() || name.contains(',') {
            return Err(name_f.fail("expected a non-empty name without ','"));
        }
        if out.iter().any(|p| p.name.eq_ignore_ascii_case(&name)) {
            let msg = format!(
                "duplicate provider name {} (names are case-insensitive)",
                quoted(&name)
            );
            return Err(err(&name_f.path, msg));
        }
        let url_f = o.required("api_base_url")?;
        let url = url_f.string(env)?;
        let api_base_url = http_url(&url).ok_or_else(|| {
            let msg = format!("expected an absolute http(s) URL, got {}", quoted(&url));
            err(&url_f.path, msg)
        })?;
        let (key_f, keys_f) = (o.get("api_key"), o.get("api_keys"));
        let expand = |s: &str| env::expand(s, env);
        let keys = resilience::key_pool::provider_keys(
            key_f.as_ref().map(|f| f.value),
            keys_f.as_ref().map(|f| f.value),
            &o.path_of(),
            &expand,
        )?;
        let retry = match o.get("retry") {
            None => None,
            Some(f) => {
                let (s, more) = resilience::retry::parse(f.value, &f.path, retry)?;
                w.extend(more);
                Some(s)
            }
        };
        let models = match o.get("models") {
            None => Vec::new(),
            Some(m) => match m.value {
                Value::Array(items) => (items.iter().enumerate())
                    .map(|(j, value)| {
                        Field {
                            path: format!("{}[{j}]", m.path),
                            value,
                        }
                        .string(env)
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(m.fail("expected an array of model names")),
            },
        };
        let api = match o.get("api") {
            None => ApiKind::from_endpoint(&api_base_url),
            Some(a) => match a.string(env)?.as_str() {
                "anthropic" => ApiKind::Anthropic,
                "openai" => ApiKind::OpenAi,
                _ => return Err(a.fail("expected \"anthropic\" or \"openai\"")),
            },
        };
        let transformer = match o.get("transformer") {
            None => Default::default(),
            Some(t) => {
                let (section, warnings) = super::transformers::parse(t.value, &t.path)?;
                w.extend(warnings);
                section
            }
        };
        let proxy = match o.get("proxy") {
            None => keepwarm::ProxyChoice::Inherit,
            Some(f) => super::proxy::provider(&f, env)?,
        };
        let tls = match o.get("tls") {
            Some(t) => super::tls::parse(t, env, w)?,
            None => Default::default(),
        };
        o.finish(w, "");
        let api_key = keys[0].clone();
        let resilience = ProviderResilience { keys, retry };
        out.push(ProviderConfig {
            name,
            api_base_url,
            api_key,
            models,
            api,
            transformer,
            resilience,
            proxy,
            tls,
        });
    }
    Ok(out)
}

fn router(
    f: Field<'_>,
    providers: &[ProviderConfig],
    env: Env<'_>,
    w: &mut Vec<String>,
) -> Result<Option<RouteTarget>, ConfigError> {
    let mut o = Obj::new(f)?;
    o.entries().for_each(drop); // every key was read by the scenarios section
    let mut target = None;
    if let Some(d) = o.get("default") {
        let s = d.string(env)?;
        let t = RouteTarget::parse(&s).ok_or_else(|| {
            err(
                &d.path,
                format!("expected \"provider,model\", got {}", quoted(&s)),
            )
        })?;
        let p = providers
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(&t.provider));
        let p =
            p.ok_or_else(|| err(&d.path, format!("unknown provider {}", quoted(&t.provider))))?;
        target = Some(RouteTarget {
            provider: p.name.clone(),
            model: t.model,
        });
    }
    o.finish(w, ROUTER_UNSUPPORTED);
    Ok(target)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{parse, tests::env_of, ApiKind, Config, PoolSettings};

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
