//! The gateway's configuration: claude-code-router's `config.json`
//! (`HOST`, `PORT`, `APIKEY`, `Providers`, `Router`, `$VAR` expansion) plus
//! the seed's `HttpConnectionPool` block, resolved into typed settings with
//! defaults — or, without a file, defaults and providers from the
//! environment.
//!
//! A bad config is a [`ConfigError`] naming the JSON path and the reason
//! (`Providers[1].api_base_url: expected an absolute http(s) URL, got …`);
//! [`parse_all`] and [`load_all`] return every error found ([`Rejected`]).
//! Keys keepwarm does not read are returned as warnings.
//!
//! | file | job |
//! |---|---|
//! | `raw.rs` | `config.json` as serde structs, CCR's key names |
//! | `de.rs` | reading them at a JSON path, collecting errors and unread keys |
//! | `values.rs` | leaf values (milliseconds, counts, …) and their checks |
//! | `parse.rs` | raw structs → [`Config`]: `$VAR`, defaults, checks across keys |
//! | `pool.rs` | `HttpConnectionPool`: merge and checks on [`keepwarm::PoolOptions`] |
//! | `proxy.rs` | `PROXY_URL`, a provider's `proxy`, the proxy environment |
//! | `tls.rs` | a provider's `tls.ca_file`, `SSL_CERT_FILE`, PEM roots |
//! | `env.rs` | `$VAR` expansion |
//! | `redact.rs` | the effective config as JSON, secrets masked |

mod de;
mod env;
mod parse;
mod pool;
mod proxy;
mod raw;
mod redact;
pub mod scenarios;
pub mod tls;
pub mod transformers;
mod values;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use pool::{PoolSection, PoolSettings};
pub use proxy::{to_json as proxy_json, ProxySection};
pub use redact::redact_url;

/// A secret such as an API key. `Debug` and `Display` print `***`; only
/// [`expose`](Self::expose) gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The value, e.g. to put in an upstream request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The API a provider speaks: decides the auth header and request shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiKind {
    /// Anthropic Messages (`x-api-key`, `anthropic-version`).
    Anthropic,
    /// OpenAI Chat Completions and compatibles (`Authorization: Bearer`).
    OpenAi,
}

impl ApiKind {
    /// The config spelling: `"anthropic"` or `"openai"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKind::Anthropic => "anthropic",
            ApiKind::OpenAi => "openai",
        }
    }

    /// A path ending in `/messages` is Anthropic, anything else OpenAI-style.
    fn from_endpoint(uri: &http::Uri) -> ApiKind {
        match uri.path().trim_end_matches('/').ends_with("/messages") {
            true => ApiKind::Anthropic,
            false => ApiKind::OpenAi,
        }
    }
}

/// One upstream provider: an entry of `Providers`.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderConfig {
    /// `name` (required): picked by `"model": "name,model"`; unique
    /// (case-insensitive), non-empty, without `,`.
    pub name: String,
    /// `api_base_url` (required): the full endpoint URL, absolute `http` or
    /// `https` with a host.
    pub api_base_url: http::Uri,
    /// `api_key` (required): non-empty after `$VAR` expansion.
    pub api_key: Secret,
    /// `models`: the models it serves. Default empty.
    pub models: Vec<String>,
    /// `api`: `"anthropic"` or `"openai"`. Default: Anthropic when the
    /// `api_base_url` path ends in `/messages`, else OpenAI.
    pub api: ApiKind,
    /// `transformer`: claude-code-router's transformers for this provider
    /// (see [`transformers`]). Default none.
    pub transformer: transformers::TransformerSection,
    /// `api_keys` (all keys, `api_key` first) and the `retry` override.
    pub resilience: crate::resilience::config::ProviderResilience,
    /// `proxy`: an `http://[user:pass@]host[:port]` proxy for this
    /// provider, or `null` to connect directly whatever `PROXY_URL` and
    /// the environment say. Default (key absent): inherit (see
    /// [`ProxySection::resolve`]).
    pub proxy: keepwarm::ProxyChoice,
    /// `tls`: the provider's own TLS trust (`ca_file`). Default none.
    pub tls: tls::ProviderTls,
}

/// A `"provider,model"` pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTarget {
    /// The provider name (in `Router.default`: as written in `Providers`).
    pub provider: String,
    /// The model name sent upstream (may contain further commas).
    pub model: String,
}

impl RouteTarget {
    /// Splits `"provider,model"` at the first comma; `None` unless both
    /// parts are non-empty.
    pub fn parse(s: &str) -> Option<RouteTarget> {
        let (provider, model) = s.split_once(',')?;
        (!provider.is_empty() && !model.is_empty()).then(|| RouteTarget {
            provider: provider.to_owned(),
            model: model.to_owned(),
        })
    }
}

impl fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.provider, self.model)
    }
}

/// The effective gateway configuration; defaults in brackets.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `HOST` ["127.0.0.1"]: address to listen on.
    pub host: String,
    /// `PORT` [3456], a number or a numeric string.
    pub port: u16,
    /// `APIKEY` [none; `""` and `null` also mean none]: key clients must send.
    pub api_key: Option<Secret>,
    /// `LOG_LEVEL` ["info"]: one of error, warn, info, debug, trace.
    pub log_level: String,
    /// `API_TIMEOUT_MS` [600000 ms]: bound on waiting for upstream response headers.
    pub api_timeout: Duration,
    /// `BODY_LIMIT_BYTES` [32 MiB]: largest request body accepted.
    pub body_limit: usize,
    /// `SHUTDOWN_TIMEOUT_MS` [30000 ms]: how long in-flight requests may finish on shutdown.
    pub shutdown_timeout: Duration,
    /// `HEADER_READ_TIMEOUT_MS` [10000 ms]: a client must send its request headers within this.
    pub header_read_timeout: Duration,
    /// `BODY_READ_TIMEOUT_MS` [30000 ms]: longest pause between a request
    /// body's bytes (the whole body must also arrive within `API_TIMEOUT_MS`).
    pub body_read_timeout: Duration,
    /// `Providers` [none].
    pub providers: Vec<ProviderConfig>,
    /// `Router.default` [none]: where a model without `provider,` goes.
    pub router_default: Option<RouteTarget>,
    /// `Router` scenarios [none set; `longContextThreshold` 60000] (see
    /// [`crate::scenario`]).
    pub router: scenarios::RouterSection,
    /// `HttpConnectionPool` [all defaults].
    pub pool: PoolSection,
    /// `PROXY_URL` and the environment's proxies [none] (see
    /// [`ProxySection`]).
    pub proxy: ProxySection,
    /// `STATS_INTERVAL_MS` [2000 ms]: how often `/api/connections/stream` sends stats.
    pub stats_interval: Duration,
    /// `HealthThresholds` [see [`HealthThresholds`]]: when `/api/connections/health` reports an issue.
    pub health: HealthThresholds,
    /// `ApiKeyPool`, `Retry`, `CircuitBreaker`, `fallback` [see
    /// [`ResilienceConfig`](crate::resilience::config::ResilienceConfig)].
    pub resilience: crate::resilience::config::ResilienceConfig,
    /// The `SSL_CERT_FILE` environment variable [unset]: a PEM file of CA
    /// certificates trusted for every provider, besides the built-in roots.
    pub ssl_cert_file: Option<PathBuf>,
}

/// The seed's health rules, with their thresholds; defaults in brackets.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthThresholds {
    /// `reuseRateBelow` [70.0]: a provider's reuse rate below this (percent) is an issue…
    pub reuse_rate_below: f64,
    /// `minRequests` [20]: …once it has carried at least this many requests.
    pub min_requests: u64,
    /// `idleAbove` [50]: more idle connections than this in total is an issue.
    pub idle_above: usize,
    /// `connectionAgeBelowMs` [10000]: closed connections that lived this
    /// short on average ("connections dying too quickly") are an issue…
    pub connection_age_below: Duration,
    /// `minClosedConnections` [10]: …once at least this many have closed.
    pub min_closed: u64,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        HealthThresholds {
            reuse_rate_below: 70.0,
            min_requests: 20,
            idle_above: 50,
            connection_age_below: Duration::from_secs(10),
            min_closed: 10,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: 3456,
            api_key: None,
            log_level: "info".into(),
            api_timeout: Duration::from_millis(600_000),
            body_limit: 32 * 1024 * 1024,
            shutdown_timeout: Duration::from_millis(30_000),
            header_read_timeout: Duration::from_millis(10_000),
            body_read_timeout: Duration::from_millis(30_000),
            providers: Vec::new(),
            router_default: None,
            router: scenarios::RouterSection::default(),
            pool: PoolSection::default(),
            proxy: ProxySection::default(),
            stats_interval: Duration::from_millis(2_000),
            health: HealthThresholds::default(),
            resilience: Default::default(),
            ssl_cert_file: None,
        }
    }
}

impl Config {
    /// The provider called `name` (ASCII case-insensitive).
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }
}

/// Where a [`Loaded`] config came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// This config file.
    File(PathBuf),
    /// No file: defaults and environment variables ([`from_env`]).
    Environment,
}

/// The result of [`load`].
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// Keys that were ignored, one message each (unknown or unsupported keys).
    pub warnings: Vec<String>,
    /// Where it came from.
    pub source: ConfigSource,
}

/// Why a config was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The JSON path (`Providers[1].name`), the file name for syntax and
    /// read errors, or the environment variable; may be empty.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path.is_empty() {
            true => f.write_str(&self.message),
            false => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A rejected config: every error found, in document order (never
/// empty), and the warnings found along the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The errors; the first is what [`parse`] and [`load`] return.
    pub errors: Vec<ConfigError>,
    /// Keys that were ignored, as in [`Loaded::warnings`].
    pub warnings: Vec<String>,
}

impl Rejected {
    /// The first error.
    pub fn into_first(self) -> ConfigError {
        let mut errors = self.errors.into_iter();
        errors.next().unwrap_or_else(|| ConfigError {
            path: String::new(),
            message: "the config was rejected".into(),
        })
    }
}

impl From<ConfigError> for Rejected {
    fn from(e: ConfigError) -> Self {
        Rejected {
            errors: vec![e],
            warnings: Vec::new(),
        }
    }
}

impl fmt::Display for Rejected {
    /// One error per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejected {}

/// Parses config text into the config and its warnings. `env` looks up
/// environment variables for `$VAR`/`${VAR}`; syntax errors are labelled
/// `config`. The error is the first found ([`parse_all`] gives all).
pub fn parse(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, Vec<String>), ConfigError> {
    parse_all(text, env).map_err(Rejected::into_first)
}

/// [`parse`], rejecting with every error found.
pub fn parse_all(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, Vec<String>), Rejected> {
    parse::document(text, "config", env)
}

/// With `path`, reads and parses that file (a missing file is an error
/// naming it). Without, reads `./config.json` if it exists, else
/// [`from_env`]. The error is the first found ([`load_all`] gives all).
pub fn load(
    path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    load_all(path, env).map_err(Rejected::into_first)
}

/// [`load`], rejecting with every error found (what `check-config` prints).
pub fn load_all(
    path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, Rejected> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None if Path::new("config.json").is_file() => PathBuf::from("config.json"),
        None => {
            let config = from_env(env)?;
            let (warnings, source) = (Vec::new(), ConfigSource::Environment);
            return Ok(Loaded {
                config,
                warnings,
                source,
            });
        }
    };
    let name = path.display().to_string();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| values::err(&name, format!("cannot read the config file: {e}")))?;
    let (config, warnings) = parse::document(&text, &name, env)?;
    Ok(Loaded {
        config,
        warnings,
        source: ConfigSource::File(path),
    })
}

/// Defaults, with providers found from the environment:
/// `ANTHROPIC_API_KEY` makes `anthropic` at `ANTHROPIC_BASE_URL`
/// [https://api.anthropic.com] + `/v1/messages`; `OPENAI_API_KEY` makes
/// `openai` at `OPENAI_BASE_URL` [https://api.openai.com/v1] +
/// `/chat/completions` (trailing slashes of bases trimmed). `HOST`, `PORT`
/// and `APIKEY` are read when set, and the proxy variables (`HTTPS_PROXY`,
/// `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`). Empty variables count as unset.
pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    let mut c = Config::default();
    c.host = var("HOST").unwrap_or(c.host);
    if let Some(p) = var("PORT") {
        let msg = format!(
            "expected an integer from 1 to 65535, got {}",
            values::quoted(&p)
        );
        c.port = values::port(&p).ok_or_else(|| values::err("PORT", msg))?;
    }
    c.api_key = var("APIKEY").map(Secret::new);
    let known = [
        (
            "anthropic",
            "https://api.anthropic.com",
            "/v1/messages",
            ApiKind::Anthropic,
        ),
        (
            "openai",
            "https://api.openai.com/v1",
            "/chat/completions",
            ApiKind::OpenAi,
        ),
    ];
    for (name, default_base, suffix, api) in known {
        let prefix = name.to_ascii_uppercase();
        let Some(key) = var(&format!("{prefix}_API_KEY")) else {
            continue;
        };
        let base_var = format!("{prefix}_BASE_URL");
        let base = var(&base_var).unwrap_or_else(|| default_base.to_owned());
        let url = format!("{}{suffix}", base.trim_end_matches('/'));
        let msg = format!(
            "expected an absolute http(s) URL, got {}",
            values::quoted(&base)
        );
        let api_base_url = values::http_url(&url).ok_or_else(|| values::err(&base_var, msg))?;
        let (name, api_key, models) = (name.to_owned(), Secret::new(key), Vec::new());
        let resilience = crate::resilience::config::ProviderResilience {
            keys: vec![api_key.clone()],
            retry: None,
        };
        c.providers.push(ProviderConfig {
            name,
            api_base_url,
            api_key,
            models,
            api,
            transformer: Default::default(),
            resilience,
            proxy: keepwarm::ProxyChoice::Inherit,
            tls: Default::default(),
        });
    }
    c.pool = PoolSection::with_providers(&c.providers);
    c.proxy = proxy::from_env(None, env)?;
    c.ssl_cert_file = var("SSL_CERT_FILE").map(PathBuf::from);
    Ok(c)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fake environment from pairs.
    pub(crate) fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn secret_prints_stars() {
        let s = Secret::new("sk-123".into());
        assert_eq!(
            (format!("{s}"), format!("{s:?}")),
            ("***".into(), "***".into())
        );
        assert_eq!(s.expose(), "sk-123");
    }

    #[test]
    fn from_env_finds_providers() {
        let env = env_of(&[
            ("ANTHROPIC_API_KEY", "sk-a"),
            ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9999/"),
        ]);
        let c = from_env(&env).unwrap();
        assert_eq!(c.providers.len(), 1);
        let p = c.provider("Anthropic").unwrap();
        assert_eq!(
            p.api_base_url.to_string(),
            "http://127.0.0.1:9999/v1/messages"
        );
        assert_eq!((p.api, p.api_key.expose()), (ApiKind::Anthropic, "sk-a"));
        assert_eq!(
            c.pool.per_provider.get("anthropic"),
            Some(&PoolSettings::default())
        );

        let env = env_of(&[
            ("OPENAI_API_KEY", "sk-o"),
            ("HOST", "0.0.0.0"),
            ("PORT", "8080"),
            ("APIKEY", "g"),
        ]);
        let c = from_env(&env).unwrap();
        let p = c.provider("openai").unwrap();
        assert_eq!(
            p.api_base_url.to_string(),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            (p.api, c.host.as_str(), c.port),
            (ApiKind::OpenAi, "0.0.0.0", 8080)
        );
        assert_eq!(c.api_key.as_ref().map(Secret::expose), Some("g"));

        assert_eq!(from_env(&env_of(&[])).unwrap(), Config::default());
        let e = from_env(&env_of(&[("PORT", "0")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "PORT: expected an integer from 1 to 65535, got \"0\""
        );
        let e = from_env(&env_of(&[
            ("OPENAI_API_KEY", "k"),
            ("OPENAI_BASE_URL", "x"),
        ]))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "OPENAI_BASE_URL: expected an absolute http(s) URL, got \"x\""
        );
    }

    #[test]
    fn load_reads_a_file_or_names_the_missing_one() {
        let dir = std::env::temp_dir().join(format!("keepwarm-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.json");
        std::fs::write(&file, r#"{"PORT": "4000", "x": 1}"#).unwrap();
        let l = load(Some(&file), &env_of(&[])).unwrap();
        assert_eq!(
            (l.config.port, l.source),
            (4000, ConfigSource::File(file.clone()))
        );
        assert_eq!(l.warnings, ["unknown key x (ignored)"]);
        std::fs::write(&file, "{\n  \"PORT\": 1,\n").unwrap();
        let e = load(Some(&file), &env_of(&[])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("{}: line 3, column 0: ", file.display())),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let e = load(Some(&file), &env_of(&[])).unwrap_err();
        assert_eq!(e.path, file.display().to_string());
        assert!(e.message.starts_with("cannot read the config file"), "{e}");
    }

    #[test]
    fn route_targets_split_at_the_first_comma() {
        let t = RouteTarget::parse("openrouter,google/gemini,2").unwrap();
        assert_eq!(
            (t.provider.as_str(), t.model.as_str()),
            ("openrouter", "google/gemini,2")
        );
        assert_eq!(t.to_string(), "openrouter,google/gemini,2");
        for bad in ["", ",", "a,", ",b", "ab"] {
            assert_eq!(RouteTarget::parse(bad), None);
        }
    }
}
