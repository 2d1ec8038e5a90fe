//! `AppState`: the provider registry (config resolved once) and the one
//! keep-alive pool, a `keepwarm::Client` with a profile per provider under
//! one global idle cap and one TLS configuration (sessions resume across
//! providers).

use std::sync::{Arc, RwLock, Weak};
use std::time::Instant;

use tokio::sync::watch;

use keepwarm::{CertificateDer, Client};

use crate::config::Config;
use crate::management::Metrics;
use crate::registry::{Registry, RegistryError};
use crate::trust::Trust;

/// Why the state could not be built: a provider, or a client setting.
#[derive(Debug)]
pub enum BuildError {
    /// A provider's configuration cannot be resolved.
    Provider(RegistryError),
    /// The client rejected a setting.
    Client(keepwarm::Error),
    /// A TLS trust file (`SSL_CERT_FILE`, a provider's `tls.ca_file`)
    /// cannot be used; the message names it.
    Trust(String),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Provider(e) => e.fmt(f),
            BuildError::Client(e) => e.fmt(f),
            BuildError::Trust(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for BuildError {}

/// The configuration of one registry snapshot; derefs to [`Config`].
#[derive(Clone, Debug)]
pub struct ConfigRef(Arc<Registry>);

impl std::ops::Deref for ConfigRef {
    type Target = Config;
    fn deref(&self) -> &Config {
        self.0.config()
    }
}

struct Inner {
    /// Swapped whole on reload; read by cloning the `Arc` (never held
    /// across an `.await`).
    registry: RwLock<Arc<Registry>>,
    client: Client,
    /// The roots every provider trusts (a reload builds the profiles of
    /// `ca_file` providers from them).
    trust: Trust,
    started: Instant,
    metrics: Metrics,
    closing: watch::Sender<bool>,
    /// Turns `true` at the shutdown deadline: running responses are cut.
    cut: watch::Sender<bool>,
    /// Rebuilt whole on reload; read by cloning the `Arc`.
    /// The config file a reload re-reads (`None`: `./config.json`, else the
    /// environment, as at start).
    config_path: std::sync::Mutex<Option<std::path::PathBuf>>,
    /// Held for the length of one reload, so two never interleave.
    reloading: std::sync::Mutex<()>,
}

/// A handle that does not keep the state alive.
#[derive(Clone, Debug)]
pub(crate) struct WeakState(Weak<Inner>);

impl WeakState {
    pub(crate) fn upgrade(&self) -> Option<AppState> {
        self.0.upgrade().map(|inner| AppState { inner })
    }
}

/// Shared state of the gateway. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// Builds an [`AppState`]; extra TLS roots are for tests and the demo's
/// self-signed mock provider.
#[must_use]
pub struct AppStateBuilder {
    config: Config,
    roots: Vec<CertificateDer<'static>>,
    built_in_roots: bool,
}

impl AppStateBuilder {
    /// Trusts `cert` as a root for upstream TLS, besides the built-in roots.
    pub fn add_root_certificate(mut self, cert: CertificateDer<'static>) -> Self {
        self.roots.push(cert);
        self
    }

    /// Use the built-in webpki roots. Default `true`.
    pub fn built_in_roots(mut self, on: bool) -> Self {
        self.built_in_roots = on;
        self
    }

    /// Resolves the providers and builds the one client, a profile per
    /// provider.
    pub fn build(self) -> Result<AppState, BuildError> {
        let ssl_cert_file = self.config.ssl_cert_file.clone();
        let trust = Trust::new(self.roots, self.built_in_roots, ssl_cert_file.as_deref())
            .map_err(BuildError::Trust)?;
        let tls = trust.shared().map_err(BuildError::Client)?;
        let (metrics, collector) = Metrics::new();
        let registry = Registry::build(self.config, &metrics).map_err(BuildError::Provider)?;
        let config = registry.config();
        let mut builder = Client::builder()
            .max_idle_total(config.pool.max_idle_total)
            .response_header_timeout(Some(crate::registry::NO_HEADER_TIMER))
            .tls_config(tls);
        for p in registry.providers() {
            let profile = trust.profile(p).map_err(BuildError::Trust)?;
            builder = builder.profile(&*p.name, profile);
        }
        let client = builder.build().map_err(BuildError::Client)?;
        let inner = Arc::new(Inner {
            registry: RwLock::new(Arc::new(registry)),
            client,
            trust,
            started: Instant::now(),
            metrics,
            closing: watch::Sender::new(false),
            cut: watch::Sender::new(false),
            config_path: std::sync::Mutex::new(None),
            reloading: std::sync::Mutex::new(()),
        });
        collector.attach(WeakState(Arc::downgrade(&inner)));
        Ok(AppState { inner })
    }
}

impl AppState {
    /// A builder for `config`.
    pub fn builder(config: Config) -> AppStateBuilder {
        AppStateBuilder {
            config,
            roots: Vec::new(),
            built_in_roots: true,
        }
    }

    /// State with the built-in TLS roots.
    pub fn new(config: Config) -> Result<AppState, BuildError> {
        Self::builder(config).build()
    }

    /// `p`'s client profile: its settings, and a TLS configuration of its
    /// own when it has a `tls.ca_file` (a reload).
    pub(crate) fn provider_profile(
        &self,
        p: &crate::registry::Provider,
    ) -> Result<keepwarm::Profile, String> {
        self.inner.trust.profile(p)
    }

    /// The registry in force now: the effective configuration and its
    /// providers. A request keeps the one it started with.
    pub fn registry(&self) -> Arc<Registry> {
        let r = self.inner.registry.read();
        r.unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `registry` in force (a reload); requests in flight keep the one
    /// they started with.
    pub(crate) fn swap_registry(&self, registry: Arc<Registry>) {
        let mut r = self
            .inner
            .registry
            .write()
            .unwrap_or_else(|e| e.into_inner());
        *r = registry;
    }

    /// Sets the config file a reload re-reads (`keepwarm serve` sets the one
    /// it started from). Default `None`: `./config.json`, else the environment.
    pub fn set_config_path(&self, path: Option<std::path::PathBuf>) {
        *self
            .inner
            .config_path
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = path;
    }

    /// Held while a reload runs (it never awaits), so reloads apply one at a time.
    pub(crate) fn reload_guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner
            .reloading
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The config file a reload re-reads.
    pub fn config_path(&self) -> Option<std::path::PathBuf> {
        self.inner
            .config_path
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The effective configuration now (a snapshot that keeps the registry
    /// it came from alive; do not hold it across an `.await` you do not
    /// need it for).
    pub fn config(&self) -> ConfigRef {
        ConfigRef(self.registry())
    }

    /// The one client (and pool) all providers share.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// When the state was built.
    pub fn started(&self) -> Instant {
        self.inner.started
    }

    /// The metric registry.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Becomes `true` when the server starts shutting down (long-lived
    /// responses such as the stats stream end then).
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.inner.closing.subscribe()
    }

    /// Tells long-lived responses the server is shutting down.
    pub fn begin_shutdown(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Turns `true` when the shutdown deadline passes (see [`crate::drain`]).
    pub(crate) fn cut_signal(&self) -> watch::Receiver<bool> {
        self.inner.cut.subscribe()
    }

    /// The shutdown deadline passed: cut every response still running, each
    /// with an error event (streams) and counted in `keepwarm_streams_cut_total`.
    pub fn cut_responses(&self) {
        self.inner.cut.send_replace(true);
    }

    /// Closes every idle connection now; active ones close when released.
    /// Returns how many idle connections it closed.
    pub fn close_pools(&self) -> usize {
        self.inner.client.destroy_where(|_| true).closed_idle
    }
}
