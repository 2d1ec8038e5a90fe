//! `AppState`: the effective config and one keep-alive pool (a
//! `keepwarm::Client`) per provider, all sharing one TLS configuration so
//! sessions resume across them.

use std::sync::{Arc, Weak};
use std::time::Instant;

use tokio::sync::watch;

use keepwarm::{CertificateDer, Client};

use crate::config::{Config, PoolSettings};
use crate::management::Metrics;
use crate::resilience::Resilience;

/// One provider's pool.
#[derive(Clone, Debug)]
pub struct ProviderPool {
    /// The provider's name as configured.
    pub name: String,
    /// Its client (and pool).
    pub client: Client,
    /// The pool settings in force for it.
    pub settings: PoolSettings,
}

struct Inner {
    config: Config,
    /// One per provider, in config order (a handful: a scan beats hashing).
    pools: Vec<ProviderPool>,
    started: Instant,
    metrics: Metrics,
    closing: watch::Sender<bool>,
    /// Turns `true` at the shutdown deadline: running responses are cut.
    cut: watch::Sender<bool>,
    resilience: Resilience,
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

    /// Builds one pool per provider from the merged settings.
    pub fn build(self) -> Result<AppState, keepwarm::Error> {
        let tls = keepwarm::tls_config(&self.roots, self.built_in_roots)?;
        let mut pools = Vec::with_capacity(self.config.providers.len());
        for p in &self.config.providers {
            let settings = self.config.pool.for_provider(&p.name).clone();
            let client = Client::builder()
                .pool_options(settings.to_pool_options())
                .max_idle_total(self.config.pool.max_idle_total)
                .timeout(settings.timeout)
                .connect_timeout(settings.connect_timeout)
                .keep_alive_msecs(settings.keep_alive_msecs)
                .response_header_timeout(Some(self.config.api_timeout))
                .tls_config(tls.clone())
                .build()?;
            pools.push(ProviderPool {
                name: p.name.clone(),
                client,
                settings,
            });
        }
        let (metrics, collector) = Metrics::new();
        let resilience = Resilience::build(&self.config);
        let inner = Arc::new(Inner {
            resilience,
            config: self.config,
            pools,
            started: Instant::now(),
            metrics,
            closing: watch::Sender::new(false),
            cut: watch::Sender::new(false),
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
    pub fn new(config: Config) -> Result<AppState, keepwarm::Error> {
        Self::builder(config).build()
    }

    /// Key pools, circuit breakers, retry policies and fallback chains.
    pub fn resilience(&self) -> &Resilience {
        &self.inner.resilience
    }

    /// The effective configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The pool of provider `name` (case-insensitive).
    pub fn pool(&self, name: &str) -> Option<&ProviderPool> {
        self.inner
            .pools
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// Every provider's pool, in config order.
    pub fn pools(&self) -> &[ProviderPool] {
        &self.inner.pools
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
        self.inner
            .pools
            .iter()
            .map(|p| p.client.destroy_where(|_| true).closed_idle)
            .sum()
    }
}
