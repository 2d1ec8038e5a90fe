//! The provider registry: every configured provider resolved once — its
//! API kind, endpoint, pool label, a pre-built *sensitive* auth header, its
//! pool settings and its metric handles — so routing hands out a
//! `&Provider` and nothing on the request path joins by name or parses
//! configuration again.
//!
//! A [`Registry`] is immutable; the state holds it behind an `Arc` that can
//! be swapped whole (hot reload) while requests in flight keep the one they
//! started with.

use std::sync::Arc;

use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::Uri;
use keepwarm::{CertificateDer, Label, Profile, ProxyChoice};

use crate::config::{ApiKind, Config, PoolSettings, ProviderConfig};
use crate::management::{DurationSink, Metrics};
use crate::resilience::Resilience;

/// The client's response-header timeout in the gateway's profiles: never
/// reached (tokio caps it at its far future), because the gateway's attempt
/// deadline bounds the whole attempt.
pub const NO_HEADER_TIMER: std::time::Duration = std::time::Duration::MAX;

/// A provider the registry cannot build, with the reason.
#[derive(Debug)]
pub struct RegistryError {
    /// The provider's name as configured.
    pub provider: String,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "provider \"{}\": {}", self.provider, self.reason)
    }
}

impl std::error::Error for RegistryError {}

/// One provider, resolved from its configuration.
pub struct Provider {
    /// The name as configured; also its pool label.
    pub name: Arc<str>,
    /// The request extension that puts its requests under its pool label.
    pub label: Label,
    /// Its configuration entry (`Providers[i]`).
    pub config: ProviderConfig,
    /// Its merged `HttpConnectionPool` settings.
    pub settings: PoolSettings,
    /// `http` or `https`, the scheme of its endpoint.
    pub protocol: &'static str,
    /// Its proxy, resolved: its own `proxy`, else `PROXY_URL`, else the
    /// environment's (see [`ProxySection::resolve`](crate::config::ProxySection::resolve));
    /// `Direct` when none applies.
    pub proxy: ProxyChoice,
    /// The CA certificates of its `tls.ca_file`, read when the registry was
    /// built. Default empty (no `ca_file`).
    pub ca_roots: Vec<CertificateDer<'static>>,
    /// The auth header injected upstream (`x-api-key: …` or
    /// `authorization: Bearer …`), marked sensitive so it is never logged
    /// or HPACK-indexed.
    auth: (HeaderName, HeaderValue),
    /// Where status 200's request durations go, resolved once.
    duration_ok: DurationSink,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("api", &self.config.api)
            .field("protocol", &self.protocol)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// Resolves `config` with its pool `settings`; the metric handles come
    /// from `metrics`. Fails when the key cannot be an HTTP header value.
    pub(crate) fn new(
        config: ProviderConfig,
        settings: PoolSettings,
        metrics: &Metrics,
    ) -> Result<Provider, RegistryError> {
        let key = config.api_key.expose();
        let (name, value) = match config.api {
            ApiKind::Anthropic => (HeaderName::from_static("x-api-key"), key.to_owned()),
            ApiKind::OpenAi => (AUTHORIZATION, format!("Bearer {key}")),
        };
        let mut value = HeaderValue::try_from(value).map_err(|_| RegistryError {
            provider: config.name.clone(),
            reason: "api_key holds characters an HTTP header cannot carry".into(),
        })?;
        value.set_sensitive(true);
        let protocol = match config.api_base_url.scheme_str() {
            Some("https") => "https",
            _ => "http",
        };
        let ca_roots = match &config.tls.ca_file {
            Some(path) => crate::config::tls::load_pem_roots(path).map_err(|e| RegistryError {
                provider: config.name.clone(),
                reason: format!("tls.ca_file: {e}"),
            })?,
            None => Vec::new(),
        };
        let label: Arc<str> = Arc::from(config.name.as_str());
        Ok(Provider {
            ca_roots,
            duration_ok: metrics.request_duration(&label, 200),
            label: Label(label.clone()),
            name: label,
            auth: (name, value),
            protocol,
            proxy: match &config.proxy {
                ProxyChoice::Via(p) => ProxyChoice::Via(p.clone()),
                _ => ProxyChoice::Direct,
            },
            config,
            settings,
        })
    }

    /// The API it speaks.
    pub fn api(&self) -> ApiKind {
        self.config.api
    }

    /// Its endpoint (`api_base_url`), query included.
    pub fn base(&self) -> &Uri {
        &self.config.api_base_url
    }

    /// The auth header to send upstream (sensitive).
    pub fn auth_header(&self) -> (&HeaderName, &HeaderValue) {
        (&self.auth.0, &self.auth.1)
    }

    /// Where request durations of this provider and `status` go.
    pub(crate) fn request_duration(&self, metrics: &Metrics, status: u16) -> DurationSink {
        match status {
            200 => self.duration_ok.clone(),
            _ => metrics.request_duration(&self.name, status),
        }
    }

    /// Its client profile: pool options and timers. The client's own
    /// response-header timer is off ([`NO_HEADER_TIMER`]): the attempt
    /// deadline (`API_TIMEOUT_MS` from the request's start, `attempts.rs`)
    /// is the one clock that bounds the wait, so two timers for one limit
    /// never race. Also its proxy.
    pub fn profile(&self) -> Profile {
        let s = &self.settings;
        Profile {
            pool: s.to_pool_options(),
            connect_timeout: s.connect_timeout,
            timeout: s.timeout,
            response_header_timeout: Some(NO_HEADER_TIMER),
            keep_alive_msecs: s.keep_alive_msecs,
            proxy: self.proxy.clone(),
            protocol: s.protocol,
            max_concurrent_streams: s.max_concurrent_streams,
            tls: None,
        }
    }
}

/// The effective configuration, its providers, resolved, and their
/// resilience state (key pools, breakers, retry counters, fallbacks), so a
/// request reads all of them from the one registry it started with.
#[derive(Debug)]
pub struct Registry {
    config: Config,
    providers: Vec<Provider>,
    resilience: Resilience,
}

impl Registry {
    /// Resolves every provider of `config`, with fresh resilience state.
    pub(crate) fn build(config: Config, metrics: &Metrics) -> Result<Registry, RegistryError> {
        Self::replacing(config, metrics, None)
    }

    /// Resolves every provider of `config` to replace `before` (a reload):
    /// providers whose entry and resilience settings are unchanged keep
    /// their breakers, key pools and counters.
    pub(crate) fn replacing(
        config: Config,
        metrics: &Metrics,
        before: Option<&Registry>,
    ) -> Result<Registry, RegistryError> {
        let resilience =
            Resilience::carry_over(&config, before.map(|b| (&b.config, &b.resilience)));
        let providers = (config.providers.iter())
            .map(|p| {
                let settings = config.pool.for_provider(&p.name).clone();
                let mut provider = Provider::new(p.clone(), settings, metrics)?;
                provider.proxy = config.proxy.resolve(p);
                Ok(provider)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Registry {
            config,
            providers,
            resilience,
        })
    }

    /// Key pools, circuit breakers, retry policies and fallback chains of
    /// these providers.
    pub fn resilience(&self) -> &Resilience {
        &self.resilience
    }

    /// The effective configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Every provider, in config order.
    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// Provider `name`, matched case-insensitively (a handful of
    /// providers: a scan beats hashing).
    pub fn get(&self, name: &str) -> Option<&Provider> {
        (self.providers.iter()).find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// `configured: a, b` or `none are configured`, for error messages.
    pub fn known(&self) -> String {
        if self.providers.is_empty() {
            return "none are configured".into();
        }
        let names: Vec<&str> = self.providers.iter().map(|p| &*p.name).collect();
        format!("configured: {}", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn provider(api: ApiKind, key: &str) -> ProviderConfig {
        ProviderConfig {
            name: "P".into(),
            api_base_url: "https://a.example/v1/messages?api-version=1"
                .parse()
                .unwrap(),
            api_key: Secret::new(key.into()),
            models: vec![],
            api,
            transformer: Default::default(),
            resilience: Default::default(),
            proxy: Default::default(),
            tls: Default::default(),
        }
    }

    #[test]
    fn auth_headers_are_built_once_and_sensitive() {
        let (m, _) = Metrics::new();
        let p = Provider::new(
            provider(ApiKind::Anthropic, "sk-a"),
            PoolSettings::default(),
            &m,
        )
        .unwrap();
        let (name, value) = p.auth_header();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("x-api-key", "sk-a")
        );
        assert!(value.is_sensitive());
        assert_eq!(p.protocol, "https");
        assert_eq!(p.base().query(), Some("api-version=1"));
        let p = Provider::new(
            provider(ApiKind::OpenAi, "sk-o"),
            PoolSettings::default(),
            &m,
        )
        .unwrap();
        let (name, value) = p.auth_header();
        assert_eq!(
            (name, value.to_str().unwrap()),
            (&AUTHORIZATION, "Bearer sk-o")
        );
        assert!(value.is_sensitive());
        assert!(format!("{value:?}").contains("Sensitive"));
    }

    #[test]
    fn a_key_that_cannot_be_a_header_is_an_error_naming_the_provider() {
        let (m, _) = Metrics::new();
        let e = Provider::new(
            provider(ApiKind::OpenAi, "sk\nx"),
            PoolSettings::default(),
            &m,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "provider \"P\": api_key holds characters an HTTP header cannot carry"
        );
    }

    #[test]
    fn lookups_are_case_insensitive() {
        let (m, _) = Metrics::new();
        let mut c = Config::default();
        c.providers.push(provider(ApiKind::Anthropic, "k"));
        let r = Registry::build(c, &m).unwrap();
        assert_eq!(r.get("p").map(|p| &*p.name), Some("P"));
        assert!(r.get("q").is_none());
        assert_eq!(r.known(), "configured: P");
    }
}
