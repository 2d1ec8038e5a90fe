//! `ClientBuilder`: every option, its default, and validation at `build()`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use keepwarm_pool::{PoolConfig, PoolOptions};
use rustls::ClientConfig;
use rustls_pki_types::CertificateDer;

use crate::client::{Client, ClientOptions};
use crate::error::Error;
use crate::profile::Profile;
use crate::protocol::Protocol;
use crate::proxy::Proxy;
use crate::proxy_rules::ProxyRules;

/// Builds a [`Client`]. Options use the names of Node's `http.Agent` /
/// `agentkeepalive` in their docs (`maxSockets`, …). A bad setting is
/// reported by [`build`](Self::build), never by a panic.
#[must_use]
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    pool: PoolOptions,
    max_free_set: bool,
    per_label: HashMap<String, PoolOptions>,
    profiles: HashMap<String, Profile>,
    max_idle_total: Option<usize>,
    opts: ClientOptions,
    roots: Vec<CertificateDer<'static>>,
    webpki_roots: bool,
    tls: Option<Arc<ClientConfig>>,
    /// The proxies, or why the environment's could not be read.
    proxy: Result<ProxyRules, String>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            pool: PoolOptions::default(),
            max_free_set: false,
            per_label: HashMap::new(),
            profiles: HashMap::new(),
            max_idle_total: None,
            opts: ClientOptions::default(),
            roots: Vec::new(),
            webpki_roots: true,
            tls: None,
            proxy: Ok(ProxyRules::default()),
        }
    }
}

impl ClientBuilder {
    /// `keepAlive`: keep connections for reuse. `false` sends
    /// `Connection: close` and opens one connection per request (the
    /// baseline to compare against). Default `true`.
    pub fn keep_alive(mut self, on: bool) -> Self {
        self.pool.keep_alive = on;
        self
    }

    /// `maxSockets`: most connections per key (connecting + active + idle);
    /// past it requests wait in FIFO order. Default 50.
    pub fn max_sockets(mut self, n: usize) -> Self {
        self.pool.max_sockets = n;
        self
    }

    /// `maxFreeSockets`: most idle connections kept per key. Default 10, or
    /// `maxSockets` when that is lower and this is not set.
    pub fn max_free_sockets(mut self, n: usize) -> Self {
        self.pool.max_free_sockets = n;
        self.max_free_set = true;
        self
    }

    /// `freeSocketTimeout`: close a connection idle this long. Default 15 s.
    pub fn free_socket_timeout(mut self, d: Duration) -> Self {
        self.pool.free_socket_timeout = d;
        self
    }

    /// `maxSocketLifetime`: never reuse a connection older than this.
    /// `None` for no limit. Default 600 s.
    pub fn max_socket_lifetime(mut self, d: Option<Duration>) -> Self {
        self.pool.max_socket_lifetime = d;
        self
    }

    /// `acquireTimeout`: how long a request waits for a slot at
    /// `maxSockets`. `None` waits forever. Default 30 s.
    pub fn acquire_timeout(mut self, d: Option<Duration>) -> Self {
        self.pool.acquire_timeout = d;
        self
    }

    /// `maxRequestsPerSocket`: close a connection after this many requests.
    /// Default `None` (no limit).
    pub fn max_requests_per_socket(mut self, n: Option<u64>) -> Self {
        self.pool.max_requests_per_socket = n;
        self
    }

    /// `minFreeSockets`: pre-warmed idle connections kept ready per key
    /// once it has been used or warmed ([`Client::warm`]). Default 0.
    pub fn min_free_sockets(mut self, n: usize) -> Self {
        self.pool.min_free_sockets = n;
        self
    }

    /// Most idle connections across all keys (least recently used closed
    /// first). Default `None` (no global cap).
    pub fn max_idle_total(mut self, n: Option<usize>) -> Self {
        self.max_idle_total = n;
        self
    }

    /// Replaces all pool options at once (keys without a label override).
    pub fn pool_options(mut self, opts: PoolOptions) -> Self {
        self.pool = opts;
        self.max_free_set = true;
        self
    }

    /// Pool options for keys with this label (a provider), replacing the
    /// defaults whole. Default: none.
    pub fn label_options(mut self, label: impl Into<String>, opts: PoolOptions) -> Self {
        self.per_label.insert(label.into(), opts);
        self
    }

    /// The settings of the keys with this label (a provider): pool
    /// options and timers, replacing this builder's pool options and
    /// `connectTimeout`, `timeout`, `responseHeaderTimeout`,
    /// `keepAliveMsecs`, `protocol`, `maxConcurrentStreams`, the proxy and
    /// (when the profile has one) the TLS configuration for them; the rest
    /// (`maxIdleTotal`, retries, PING timeout) stays client-wide.
    /// Default: none.
    pub fn profile(mut self, label: impl Into<String>, profile: Profile) -> Self {
        self.profiles.insert(label.into(), profile);
        self
    }

    /// `connectTimeout`: DNS + TCP + TLS must finish within this. Default 10 s.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.opts.connect_timeout = d;
        self
    }

    /// `timeout`: inactivity limit of an active exchange; a response body
    /// that pauses longer fails. Also bounds the wait for response headers
    /// unless [`response_header_timeout`](Self::response_header_timeout) is
    /// set. Default 30 s.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.opts.timeout = d;
        self
    }

    /// How long to wait for response headers after sending (for slow LLM
    /// responses, e.g. 600 s). Default `None`: the `timeout` applies.
    pub fn response_header_timeout(mut self, d: Option<Duration>) -> Self {
        self.opts.response_header_timeout = d;
        self
    }

    /// `keepAliveMsecs`: initial delay of TCP keep-alive probes on pooled
    /// sockets, and how long an HTTP/2 connection goes without streams
    /// before it is PINGed. Default 60 s.
    pub fn keep_alive_msecs(mut self, d: Duration) -> Self {
        self.opts.keep_alive_msecs = d;
        self
    }

    /// Most times one request is retried on another connection, under the
    /// safe-retry rules. Default 3.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.opts.max_retries = n;
        self
    }

    /// `protocol`: HTTP/1.1, HTTP/2, or whatever the server picks in ALPN
    /// over TLS (see [`Protocol`]). Default [`Protocol::Auto`].
    pub fn protocol(mut self, p: Protocol) -> Self {
        self.opts.protocol = p;
        self
    }

    /// `maxConcurrentStreams`: most streams on one HTTP/2 connection, below
    /// the server's `SETTINGS_MAX_CONCURRENT_STREAMS`. When every connection
    /// is full another opens, up to `maxSockets`. Default `None`: the
    /// server's limit (100 when it sets none).
    pub fn max_concurrent_streams(mut self, n: Option<u32>) -> Self {
        self.opts.max_concurrent_streams = n;
        self
    }

    /// How long an HTTP/2 PING (sent after `keepAliveMsecs` without streams)
    /// may go unanswered before the connection is dropped as dead.
    /// Default 20 s.
    pub fn http2_ping_timeout(mut self, d: Duration) -> Self {
        self.opts.ping_timeout = d;
        self
    }

    /// Sends every request through `proxy` (labels whose
    /// [`Profile::proxy`] says otherwise excepted). Default: no proxy.
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = Ok(ProxyRules::all(proxy));
        self
    }

    /// Uses these proxy rules (see [`ProxyRules`]). Default: none.
    pub fn proxy_rules(mut self, rules: ProxyRules) -> Self {
        self.proxy = Ok(rules);
        self
    }

    /// Uses the proxies of the process environment: `HTTPS_PROXY`,
    /// `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (lower-case names too),
    /// as [`ProxyRules::from_lookup`] reads them. A variable that is not a
    /// usable `http://` proxy makes [`build`](Self::build) fail, naming it.
    /// Default: the environment is not read.
    pub fn proxy_from_env(mut self) -> Self {
        self.proxy = ProxyRules::from_env().map_err(|e| e.to_string());
        self
    }

    /// Trusts `cert` as a root, besides the built-in webpki roots.
    pub fn add_root_certificate(mut self, cert: CertificateDer<'static>) -> Self {
        self.roots.push(cert);
        self
    }

    /// Use the built-in webpki (Mozilla) roots. Default `true`.
    pub fn tls_built_in_roots(mut self, on: bool) -> Self {
        self.webpki_roots = on;
        self
    }

    /// Uses this rustls configuration instead of building one (root
    /// options are then ignored). Default: built from the roots above.
    pub fn tls_config(mut self, config: Arc<ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Checks every setting and builds the client. May be called outside a
    /// tokio runtime.
    pub fn build(self) -> Result<Client, Error> {
        let mut pool = self.pool;
        if !self.max_free_set {
            pool.max_free_sockets = pool.max_free_sockets.min(pool.max_sockets);
        }
        let mut per_label = self.per_label;
        for (label, p) in &self.profiles {
            p.pool.validate().map_err(|e| {
                Error::builder(format!("invalid client setting {e} (profile \"{label}\")"))
            })?;
            per_label.insert(label.clone(), p.pool.clone());
        }
        let config = PoolConfig {
            default: pool,
            per_label,
            max_idle_total: self.max_idle_total,
        };
        config
            .validate()
            .map_err(|e| Error::builder(format!("invalid client setting {e}")))?;
        for (name, d) in [
            ("connectTimeout", Some(self.opts.connect_timeout)),
            ("timeout", Some(self.opts.timeout)),
            ("responseHeaderTimeout", self.opts.response_header_timeout),
            ("keepAliveMsecs", Some(self.opts.keep_alive_msecs)),
            ("http2PingTimeout", Some(self.opts.ping_timeout)),
        ] {
            if d.is_some_and(|d| d.is_zero()) {
                return Err(Error::builder(format!(
                    "invalid client setting {name}: must be greater than 0"
                )));
            }
        }
        if self.opts.max_concurrent_streams == Some(0) {
            return Err(Error::builder(
                "invalid client setting maxConcurrentStreams: must be at least 1, got 0",
            ));
        }
        let proxy_rules = self
            .proxy
            .map_err(|e| Error::builder(format!("invalid proxy setting {e}")))?;
        let tls = match self.tls {
            Some(t) => t,
            None => crate::tls::client_config(&self.roots, self.webpki_roots)?,
        };
        let mut profiles = HashMap::with_capacity(self.profiles.len());
        for (label, p) in self.profiles {
            let whose = format!(" (profile \"{label}\")");
            p.validate(&whose)?;
            let opts = ClientOptions {
                connect_timeout: p.connect_timeout,
                timeout: p.timeout,
                response_header_timeout: p.response_header_timeout,
                keep_alive_msecs: p.keep_alive_msecs,
                proxy: p.proxy,
                protocol: p.protocol,
                max_concurrent_streams: p.max_concurrent_streams,
                tls: p
                    .tls
                    .as_ref()
                    .map(|t| Arc::new(crate::client::alpn_variants(t))),
                ..self.opts.clone()
            };
            profiles.insert(label, opts);
        }
        Ok(Client::from_parts(
            config,
            self.opts,
            profiles,
            tls,
            proxy_rules,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_errors_not_panics() {
        let e = ClientBuilder::default().max_sockets(0).build().unwrap_err();
        assert!(e.is_builder());
        assert_eq!(
            e.to_string(),
            "invalid client setting maxSockets: must be at least 1, got 0"
        );
        let e = ClientBuilder::default()
            .max_sockets(4)
            .max_free_sockets(8)
            .build()
            .unwrap_err();
        assert!(e
            .to_string()
            .contains("maxFreeSockets: 8 is above maxSockets (4)"));
        let e = ClientBuilder::default()
            .timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("timeout: must be greater than 0"));
        let e = ClientBuilder::default()
            .free_socket_timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("freeSocketTimeout"));
    }

    #[test]
    fn an_unset_max_free_follows_a_low_max_sockets() {
        let c = ClientBuilder::default().max_sockets(4).build().unwrap();
        assert_eq!(c.pool_config().default.max_free_sockets, 4);
    }

    #[test]
    fn a_profile_sets_its_label_and_is_checked_by_name() {
        let pool = PoolOptions {
            max_sockets: 2,
            max_free_sockets: 2,
            ..PoolOptions::default()
        };
        let c = ClientBuilder::default()
            .max_idle_total(Some(3))
            .profile(
                "p1",
                Profile {
                    pool: pool.clone(),
                    timeout: Duration::from_secs(5),
                    ..Profile::default()
                },
            )
            .build()
            .unwrap();
        assert_eq!(c.pool_config().for_label("p1"), &pool);
        assert_eq!(c.pool_config().for_label("other").max_sockets, 50);
        assert_eq!(c.timeout_for("p1"), Duration::from_secs(5));
        assert_eq!(c.timeout_for("other"), Duration::from_secs(30));
        assert_eq!(c.pool_config().max_idle_total, Some(3));
        let e = ClientBuilder::default()
            .profile(
                "p2",
                Profile {
                    pool: PoolOptions {
                        max_sockets: 0,
                        ..PoolOptions::default()
                    },
                    ..Profile::default()
                },
            )
            .build()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid client setting maxSockets: must be at least 1, got 0 (profile \"p2\")"
        );
    }
}
